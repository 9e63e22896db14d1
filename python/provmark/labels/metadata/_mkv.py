"""Matroska / WebM: ``Segment/Tags/Tag/SimpleTag`` with ``TagName`` = ``AIGC`` and ``TagString`` = bare JSON.

Clusters (the media data) are never moved, so Cues and SeekHead positions stay valid: an updated ``Tags``
element is written back in place when it fits (padded with an EBML ``Void``), into a large enough ``Void``
before the clusters, or else appended at the end of the segment with its old place turned into a ``Void``; the
``SeekHead`` entry for ``Tags`` is updated or added (using the ``Void`` that muxers reserve after it) and the
segment size fixed.
"""

from __future__ import annotations

from ..errors import AigcFormatError, DuplicateLabelError, UnsupportedFormatError

EBML, SEGMENT = 0x1A45DFA3, 0x18538067
SEEKHEAD, SEEK, SEEKID, SEEKPOS = 0x114D9B74, 0x4DBB, 0x53AB, 0x53AC
TAGS, TAG, TARGETS, SIMPLETAG = 0x1254C367, 0x7373, 0x63C0, 0x67C8
TAGNAME, TAGLANG, TAGDEFAULT, TAGSTRING, TAGBINARY = 0x45A3, 0x447A, 0x4484, 0x4487, 0x4485
VOID, CLUSTER = 0xEC, 0x1F43B675
_MASTER = {SEEKHEAD, SEEK, TAGS, TAG, TARGETS, SIMPLETAG}


def _read_id(d, i):
    if i >= len(d):
        raise AigcFormatError("EBML element ID truncated")
    b, n = d[i], 1
    while n <= 4 and not b & (0x80 >> (n - 1)):
        n += 1
    if n > 4 or i + n > len(d):
        raise AigcFormatError(f"bad EBML element ID at byte {i}")
    return int.from_bytes(d[i : i + n], "big"), i + n


def _read_size(d, i):
    if i >= len(d):
        raise AigcFormatError("EBML size truncated")
    b, n = d[i], 1
    while n <= 8 and not b & (0x80 >> (n - 1)):
        n += 1
    if n > 8 or i + n > len(d):
        raise AigcFormatError(f"bad EBML size at byte {i}")
    v = int.from_bytes(d[i : i + n], "big") & ((1 << (7 * n)) - 1)
    unknown = v == (1 << (7 * n)) - 1
    return (None if unknown else v), i + n, n


def _enc_id(eid: int) -> bytes:
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big")


def _enc_size(v: int, length: int | None = None) -> bytes:
    n = length or next(k for k in range(1, 9) if v < (1 << (7 * k)) - 1)
    if v >= (1 << (7 * n)) - 1:
        raise AigcFormatError(f"EBML size {v} does not fit in {n} bytes")
    return ((1 << (7 * n)) | v).to_bytes(n, "big")


def _el(eid: int, body: bytes) -> bytes:
    return _enc_id(eid) + _enc_size(len(body)) + body


def _void(total: int) -> bytes:
    """A Void element of exactly ``total`` bytes (total >= 2)."""
    if total < 2:
        raise AigcFormatError("internal error: Void of less than 2 bytes")
    for n in range(1, 9):
        body = total - 1 - n
        if body >= 0 and body < (1 << (7 * n)) - 1:
            return b"\xec" + _enc_size(body, n) + b"\x00" * body
    raise AigcFormatError("Void too large")


def _children(d, start, end):
    """Yield (id, el_start, data_start, el_end)."""
    i = start
    while i < end:
        eid, j = _read_id(d, i)
        size, k, _n = _read_size(d, j)
        if size is None:
            raise UnsupportedFormatError("Matroska element of unknown size (live stream); remux the file first")
        if k + size > end:
            raise AigcFormatError(f"EBML element 0x{eid:X} at byte {i} runs past its parent")
        yield eid, i, k, k + size
        i = k + size


def _segment(d):
    if d[:4] != b"\x1a\x45\xdf\xa3":
        raise AigcFormatError("not a Matroska/WebM file (no EBML header)")
    _eid, j = _read_id(d, 0)
    size, k, _ = _read_size(d, j)
    i = k + (size or 0)
    eid, j = _read_id(d, i)
    if eid != SEGMENT:
        raise AigcFormatError("Matroska file has no Segment after the EBML header")
    seg_size, s, nlen = _read_size(d, j)
    end = len(d) if seg_size is None else s + seg_size
    if end > len(d):
        raise AigcFormatError("Matroska Segment runs past the end of the file")
    if end < len(d) and d[end:].strip(b"\x00"):
        raise UnsupportedFormatError("Matroska file with more than one Segment is not supported")
    return j, nlen, seg_size, s, end


def _level1(d, s, end):
    out = []
    i = s
    while i < end:
        eid, j = _read_id(d, i)
        size, k, _ = _read_size(d, j)
        if size is None:
            if eid == CLUSTER:
                raise UnsupportedFormatError("Matroska cluster of unknown size (live stream); remux the file first")
            raise AigcFormatError(f"level-1 element 0x{eid:X} has unknown size")
        if k + size > end:
            raise AigcFormatError(f"Matroska element 0x{eid:X} at byte {i} runs past the segment")
        out.append((eid, i, k, k + size))
        i = k + size
    return out


def _simple_tags(d, start, end, out):
    for eid, _s, p, e in _children(d, start, end):
        if eid == SIMPLETAG:
            name = value = None
            for cid, _s2, p2, e2 in _children(d, p, e):
                if cid == TAGNAME:
                    name = bytes(d[p2:e2]).decode("utf-8", "replace")
                elif cid == TAGSTRING:
                    value = bytes(d[p2:e2]).decode("utf-8", "replace")
            out.append((name, value, _s, e))
            _simple_tags(d, p, e, out)  # nested SimpleTags


def read(data: bytes) -> list[tuple[str, str]]:
    _j, _n, _sz, s, end = _segment(data)
    out = []
    for eid, _st, p, e in _level1(data, s, end):
        if eid == TAGS:
            for tid, _s, tp, te in _children(data, p, e):
                if tid == TAG:
                    found = []
                    _simple_tags(data, tp, te, found)
                    out += [("mkv:Tags:AIGC", v or "") for name, v, _a, _b in found if name == "AIGC"]
    return out


def _strip_aigc_tags(d, p, e) -> bytes:
    """Body of a Tags element without AIGC SimpleTags (Tags left without SimpleTags are dropped)."""
    body = []
    for tid, ts, tp, te in _children(d, p, e):
        if tid != TAG:
            body.append(bytes(d[ts:te]))
            continue
        parts, simple = [], 0
        for cid, cs, cp, ce in _children(d, tp, te):
            if cid == SIMPLETAG:
                names = [
                    bytes(d[a:b]).decode("utf-8", "replace") for x, _y, a, b in _children(d, cp, ce) if x == TAGNAME
                ]
                if "AIGC" in names:
                    continue
                simple += 1
            parts.append(bytes(d[cs:ce]))
        if simple:
            body.append(_el(TAG, b"".join(parts)))
    return b"".join(body)


def _aigc_tag(bare: str) -> bytes:
    st = _el(TAGNAME, b"AIGC") + _el(TAGLANG, b"und") + _el(TAGDEFAULT, b"\x01") + _el(TAGSTRING, bare.encode("utf-8"))
    return _el(TAG, _el(TARGETS, b"") + _el(SIMPLETAG, st))


def write(data: bytes, bare: str, wrapped: str) -> bytes:
    d = bytearray(data)
    seg_size_pos, seg_size_len, seg_size, s, end = _segment(d)
    els = _level1(d, s, end)
    tags = [x for x in els if x[0] == TAGS]
    if len(read(data)) > 1:
        raise DuplicateLabelError("Matroska file has more than one AIGC SimpleTag")
    first_cluster = next((x[1] for x in els if x[0] == CLUSTER), end)
    # 1. strip AIGC from every Tags element; remember where the first one sits
    home = None
    for _eid, st, p, e in tags:
        body = _strip_aigc_tags(d, p, e)
        if home is None:
            home = (st, e, body)
        elif len(_el(TAGS, body)) + 2 <= e - st or len(_el(TAGS, body)) == e - st:
            new = _el(TAGS, body)
            d[st:e] = new + (_void(e - st - len(new)) if len(new) < e - st else b"")
    new_tags = _el(TAGS, (home[2] if home else b"") + _aigc_tag(bare))
    n = len(new_tags)

    def fits(room):
        return n == room or n + 2 <= room

    pos = None
    if home and fits(home[1] - home[0]):
        st, e = home[0], home[1]
        d[st:e] = new_tags + (_void(e - st - n) if n < e - st else b"")
        pos = st
    else:
        if home:
            d[home[0] : home[1]] = _void(home[1] - home[0])
        level1 = _level1(d, s, end)
        after_seekhead = {level1[i + 1][1] for i, x in enumerate(level1[:-1]) if x[0] == SEEKHEAD}
        voids = [
            x
            for x in level1
            if x[0] == VOID and x[1] < first_cluster and fits(x[3] - x[1]) and x[1] not in after_seekhead
        ]  # the Void right after the SeekHead stays free for the SeekHead's own growth
        if voids:
            st, e = voids[0][1], voids[0][3]
            d[st:e] = new_tags + (_void(e - st - n) if n < e - st else b"")
            pos = st
        else:
            if end != len(d):
                raise UnsupportedFormatError("Matroska segment is followed by other data; cannot append Tags")
            pos = end
            d += new_tags
            if seg_size is not None:
                d[seg_size_pos : seg_size_pos + seg_size_len] = _enc_size(seg_size + n, seg_size_len)
            end += n
    _update_seekhead(d, s, end, pos - s)
    return bytes(d)


def _update_seekhead(d: bytearray, s: int, end: int, rel: int) -> None:
    els = _level1(d, s, end)
    heads = [x for x in els if x[0] == SEEKHEAD]
    if not heads:
        first_cluster = next((x[1] for x in els if x[0] == CLUSTER), end)
        if s + rel < first_cluster:
            return  # readers scan level-1 elements before the first cluster
        raise UnsupportedFormatError("Matroska file has no SeekHead; Tags after the clusters would not be found")
    _eid, st, p, e = heads[0]
    seeks, replaced = [], False
    for cid, cs, cp, ce in _children(d, p, e):
        if cid != SEEK:
            seeks.append(bytes(d[cs:ce]))
            continue
        sid = next((bytes(d[a:b]) for x, _y, a, b in _children(d, cp, ce) if x == SEEKID), None)
        if sid == _enc_id(TAGS):
            if replaced:
                continue
            replaced = True
            seeks.append(_seek_entry(rel))
        else:
            seeks.append(bytes(d[cs:ce]))
    if not replaced:
        seeks.append(_seek_entry(rel))
    new = _el(SEEKHEAD, b"".join(seeks))
    room = e - st
    nxt = next((x for x in els if x[1] == e), None)
    if nxt is not None and nxt[0] == VOID:
        room = nxt[3] - st
    if not (len(new) == room or len(new) + 2 <= room):
        raise UnsupportedFormatError("no room in the Matroska SeekHead for the Tags entry; remux the file first")
    d[st : st + room] = new + (_void(room - len(new)) if len(new) < room else b"")


def _seek_entry(rel: int) -> bytes:
    return _el(
        SEEK,
        _el(SEEKID, _enc_id(TAGS)) + _el(SEEKPOS, rel.to_bytes(max(1, (rel.bit_length() + 7) // 8), "big")),
    )
