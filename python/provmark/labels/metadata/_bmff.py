"""ISO BMFF (MP4, MOV, M4A): the ``AIGC`` key in a ``meta`` box with an ``mdta`` handler (video guide
PG-20257A).

Layout written (as ffmpeg's ``-movflags use_metadata_tags``): ``moov/udta/meta`` (full box) holding ``hdlr``
(handler ``mdta``), ``keys`` (``mdta`` namespace, key ``AIGC``) and ``ilst`` (item = key index, ``data`` box
of type 1
= UTF-8 with the bare JSON). If ``udta`` already holds a ``meta`` for another handler (iTunes ``mdir``, as
ffmpeg's default muxing writes), the ``mdta`` meta is added beside it (exiftool and ffprobe read both).
Reading also accepts ``mdta`` keys in ``moov/meta``. Only ``moov`` is rewritten; media data is copied. When
``moov`` grows and media data follows it, a following ``free`` box absorbs the growth if it can, otherwise
every ``stco``/``co64`` chunk offset (and ``tfhd`` base offset) behind it is shifted.
"""

from __future__ import annotations

import struct

from ..errors import AigcFormatError, DuplicateLabelError, UnsupportedFormatError

_CONTAINERS = {
    b"moov",
    b"trak",
    b"mdia",
    b"minf",
    b"stbl",
    b"udta",
    b"moof",
    b"traf",
    b"mvex",
    b"edts",
    b"dinf",
}
_MAX_DEPTH = 16


class Box:
    __slots__ = ("children", "payload", "prefix", "type")

    def __init__(self, btype: bytes, payload: bytes = b"", children: list | None = None, prefix: bytes = b""):
        self.type, self.payload, self.children, self.prefix = btype, payload, children, prefix

    def to_bytes(self) -> bytes:
        body = self.prefix + (
            b"".join(c.to_bytes() for c in self.children) if self.children is not None else bytes(self.payload)
        )
        size = len(body) + 8
        if size > 0xFFFFFFFF:
            return struct.pack(">I4sQ", 1, self.type, size + 8) + body
        return struct.pack(">I4s", size, self.type) + body

    def find(self, btype: bytes) -> list:
        return [c for c in (self.children or []) if c.type == btype]


def _headers(data, start: int, end: int):
    """Yield (type, box_start, payload_start, box_end) for boxes in data[start:end]."""
    i = start
    while i < end:
        if i + 8 > end:
            raise AigcFormatError(f"MP4 box header truncated at byte {i}")
        size, btype = struct.unpack(">I4s", data[i : i + 8])
        hdr = 8
        if size == 1:
            if i + 16 > end:
                raise AigcFormatError(f"MP4 box header truncated at byte {i}")
            (size,) = struct.unpack(">Q", data[i + 8 : i + 16])
            hdr = 16
        elif size == 0:
            size = end - i
        if size < hdr or i + size > end:
            raise AigcFormatError(f"MP4 box {btype!r} at byte {i} has a bad size {size}")
        yield btype, i, i + hdr, i + size
        i += size


def _is_full_meta(data, p: int, e: int) -> bool:
    """ISO 'meta' is a full box (4 bytes version/flags); QuickTime's may not be: look for a child header."""
    return not (
        e - p >= 12 and data[p + 4 : p + 8] in (b"hdlr", b"keys", b"ilst") and data[p : p + 4] != b"\x00\x00\x00\x00"
    )


def _parse(data, start: int, end: int, depth: int = 0) -> list:
    if depth > _MAX_DEPTH:
        raise AigcFormatError("MP4 boxes nested too deeply")
    out = []
    for btype, _s, p, e in _headers(data, start, end):
        if btype in _CONTAINERS:
            out.append(Box(btype, children=_parse(data, p, e, depth + 1)))
        else:  # leaves, and 'meta' (parsed on demand by _parse_meta: it may or may not be a full box)
            out.append(Box(btype, payload=bytes(data[p:e])))
    return out


def _parse_meta(box: Box) -> None:
    """Turn a leaf 'meta' box into a container (keeps its version/flags prefix)."""
    if box.children is not None:
        return
    data = box.payload
    full = _is_full_meta(data, 0, len(data))
    off = 4 if full else 0
    box.prefix = bytes(data[:off])
    box.children = []
    for btype, _s, p, e in _headers(data, off, len(data)):
        if btype == b"ilst":
            items = []
            for itype, _s2, p2, e2 in _headers(data, p, e):
                items.append(
                    Box(
                        itype,
                        children=[Box(t, payload=bytes(data[pp:ee])) for t, _x, pp, ee in _headers(data, p2, e2)],
                    )
                )
            box.children.append(Box(btype, children=items))
        else:
            box.children.append(Box(btype, payload=bytes(data[p:e])))
    box.payload = b""


def _handler(meta: Box) -> bytes | None:
    h = meta.find(b"hdlr")
    if not h or len(h[0].payload) < 12:
        return None
    return bytes(h[0].payload[8:12])


def _keys(meta: Box) -> list[tuple[bytes, bytes]]:
    k = meta.find(b"keys")
    if not k:
        return []
    data = k[0].payload
    if len(data) < 8:
        raise AigcFormatError("MP4 keys box truncated")
    (count,) = struct.unpack(">I", data[4:8])
    out, i = [], 8
    for _ in range(count):
        if i + 8 > len(data):
            raise AigcFormatError("MP4 keys box truncated")
        size, ns = struct.unpack(">I4s", data[i : i + 8])
        if size < 8 or i + size > len(data):
            raise AigcFormatError("MP4 keys entry has a bad size")
        out.append((ns, bytes(data[i + 8 : i + size])))
        i += size
    return out


def _keys_box(keys) -> Box:
    body = (
        b"\x00\x00\x00\x00"
        + struct.pack(">I", len(keys))
        + b"".join(struct.pack(">I4s", 8 + len(name), ns) + name for ns, name in keys)
    )
    return Box(b"keys", payload=body)


def _data_box(text: str) -> Box:
    return Box(b"data", payload=struct.pack(">II", 1, 0) + text.encode("utf-8"))


def _mdta_metas(moov: Box) -> list[tuple[Box, Box]]:
    """(parent, meta) for each meta box under moov and moov/udta, parsed into children."""
    out = []
    parents = [moov, *moov.find(b"udta")]
    for parent in parents:
        for meta in parent.find(b"meta"):
            _parse_meta(meta)
            out.append((parent, meta))
    return out


def _aigc_values(meta: Box) -> list[str]:
    keys = _keys(meta)
    idx = [i + 1 for i, (ns, name) in enumerate(keys) if ns == b"mdta" and name == b"AIGC"]
    if len(idx) > 1:
        raise DuplicateLabelError("MP4 keys box lists the AIGC key more than once")
    if not idx:
        return []
    out = []
    for ilst in meta.find(b"ilst"):
        for item in ilst.children:
            if struct.unpack(">I", item.type)[0] == idx[0]:
                for d in item.find(b"data"):
                    out.append(bytes(d.payload[8:]).decode("utf-8", "replace"))
    return out


def _top(data: bytes):
    boxes = list(_headers(data, 0, len(data)))
    if not boxes or boxes[0][0] not in (b"ftyp", b"wide", b"free", b"skip", b"mdat", b"moov", b"pnot"):
        raise AigcFormatError("not an MP4/MOV file (no ftyp box)")
    moovs = [b for b in boxes if b[0] == b"moov"]
    if len(moovs) != 1:
        raise AigcFormatError(f"MP4 file has {len(moovs)} moov boxes; expected exactly one")
    return boxes, moovs[0]


def read(data: bytes) -> list[tuple[str, str]]:
    _boxes, (_t, _s, p, e) = _top(data)
    moov = Box(b"moov", children=_parse(data, p, e, 1))
    out = []
    for parent, meta in _mdta_metas(moov):
        if _handler(meta) == b"mdta":
            where = "udta/meta" if parent.type == b"udta" else "meta"
            out += [(f"mp4:{where}:AIGC", v) for v in _aigc_values(meta)]
    return out


def _set_aigc(meta: Box, bare: str) -> None:
    keys = _keys(meta)
    hits = [i for i, (ns, name) in enumerate(keys) if ns == b"mdta" and name == b"AIGC"]
    if len(hits) > 1:
        raise DuplicateLabelError("MP4 keys box lists the AIGC key more than once")
    ilsts = meta.find(b"ilst")
    if len(ilsts) > 1:
        raise DuplicateLabelError("MP4 mdta meta box has more than one ilst")
    if not ilsts:
        ilst = Box(b"ilst", children=[])
        meta.children.append(ilst)
    else:
        ilst = ilsts[0]
    if hits:
        index = hits[0] + 1
    else:
        keys.append((b"mdta", b"AIGC"))
        index = len(keys)
        ks = meta.find(b"keys")
        if ks:
            meta.children[meta.children.index(ks[0])] = _keys_box(keys)
        else:
            pos = next((i + 1 for i, c in enumerate(meta.children) if c.type == b"hdlr"), 0)
            meta.children.insert(pos, _keys_box(keys))
    item_type = struct.pack(">I", index)
    ilst.children = [c for c in ilst.children if c.type != item_type]
    ilst.children.append(Box(item_type, children=[_data_box(bare)]))


def _new_mdta_meta() -> Box:
    hdlr = Box(b"hdlr", payload=b"\x00" * 8 + b"mdta" + b"\x00" * 12 + b"\x00")
    return Box(b"meta", prefix=b"\x00\x00\x00\x00", children=[hdlr])


def _shift_offsets(box: Box, after: int, delta: int) -> None:
    for c in box.children or []:
        if c.children is not None:
            _shift_offsets(c, after, delta)
        elif c.type == b"stco":
            p = bytearray(c.payload)
            (n,) = struct.unpack(">I", p[4:8])
            offs = list(struct.unpack(f">{n}I", p[8 : 8 + 4 * n]))
            new = [o + delta if o >= after else o for o in offs]
            if any(o > 0xFFFFFFFF for o in new):
                raise UnsupportedFormatError("shifting 32-bit chunk offsets would overflow; remux with co64 first")
            p[8 : 8 + 4 * n] = struct.pack(f">{n}I", *new)
            c.payload = bytes(p)
        elif c.type == b"co64":
            p = bytearray(c.payload)
            (n,) = struct.unpack(">I", p[4:8])
            offs = struct.unpack(f">{n}Q", p[8 : 8 + 8 * n])
            p[8 : 8 + 8 * n] = struct.pack(f">{n}Q", *[o + delta if o >= after else o for o in offs])
            c.payload = bytes(p)
        elif c.type == b"tfhd" and len(c.payload) >= 16 and c.payload[3] & 0x01:
            p = bytearray(c.payload)
            (base,) = struct.unpack(">Q", p[8:16])
            if base >= after:
                p[8:16] = struct.pack(">Q", base + delta)
            c.payload = bytes(p)


def write(data: bytes, bare: str, wrapped: str) -> bytes:
    boxes, (_t, ms, mp, me) = _top(data)
    moov = Box(b"moov", children=_parse(data, mp, me, 1))
    metas = _mdta_metas(moov)
    target = None
    with_aigc = [m for _p, m in metas if _handler(m) == b"mdta" and _aigc_values(m)]
    if len(with_aigc) > 1:
        raise DuplicateLabelError("MP4 file carries AIGC keys in more than one meta box")
    if with_aigc:
        target = with_aigc[0]
    else:
        mdta = [m for _p, m in metas if _handler(m) == b"mdta"]
        if mdta:
            target = mdta[0]
        else:
            udtas = moov.find(b"udta")
            udta = udtas[0] if udtas else None
            if udta is None:
                udta = Box(b"udta", children=[])
                moov.children.append(udta)
            target = _new_mdta_meta()
            udta.children.append(target)
    _set_aigc(target, bare)
    new_moov = moov.to_bytes()
    delta = len(new_moov) - (me - ms)
    after = [b for b in boxes if b[1] >= me]
    tail = b"".join(bytes(data[b[1] : b[3]]) for b in after)
    if delta and after:
        nxt = after[0]
        free_size = nxt[3] - nxt[1]
        if nxt[0] in (b"free", b"skip") and (free_size - delta >= 8 or free_size == delta):
            rest = b"".join(bytes(data[b[1] : b[3]]) for b in after[1:])
            filler = (
                struct.pack(">I4s", free_size - delta, b"free") + b"\x00" * (free_size - delta - 8)
                if free_size != delta
                else b""
            )
            return bytes(data[:ms]) + new_moov + filler + rest
        if any(b[0] == b"mfra" for b in after):
            raise UnsupportedFormatError("MP4 with an mfra index after moov cannot grow moov; remux first")
        _shift_offsets(moov, me, delta)
        new_moov = moov.to_bytes()
        if len(new_moov) - (me - ms) != delta:
            raise AigcFormatError("internal error: moov size changed while shifting offsets")
        moofs = []
        for b in after:
            if b[0] == b"moof":
                mf = Box(b"moof", children=_parse(data, b[2], b[3], 1))
                _shift_offsets(mf, me, delta)
                moofs.append(mf.to_bytes())
            else:
                moofs.append(bytes(data[b[1] : b[3]]))
        tail = b"".join(moofs)
    return bytes(data[:ms]) + new_moov + tail
