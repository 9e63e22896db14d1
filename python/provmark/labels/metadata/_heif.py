"""HEIF / AVIF still images: the XMP packet (``TC260:AIGC``) as a ``mime`` item ``application/rdf+xml``.

The XMP item's data goes in its own ``mdat`` box right after the top-level ``meta`` (iloc construction method
0, which every reader supports; exiftool 12.57 cannot read ``idat`` items), so an update replaces that box;
the item is linked to the primary image by a ``cdsc`` reference. An XMP item written by another tool inside a
shared ``mdat`` is superseded (its bytes stay, unreferenced). Only ``meta`` is rewritten: the file offsets in
``iloc`` that point behind it are shifted, and the coded image data is copied byte for byte.
"""

from __future__ import annotations

import struct

from ..errors import AigcFormatError, DuplicateLabelError, UnsupportedFormatError
from . import _xmp
from ._bmff import _headers

XMP_MIME = b"application/rdf+xml"


def _u(data: bytes, i: int, size: int) -> int:
    if size == 0:
        return 0
    if i + size > len(data):
        raise AigcFormatError("HEIF box truncated")
    return int.from_bytes(data[i : i + size], "big")


class _Iloc:
    """Parsed ``iloc``: version, field sizes and items [id, method, dref, base, [(index, offset, length)]]."""

    def __init__(self, body: bytes) -> None:
        self.version = body[0]
        if self.version > 2:
            raise UnsupportedFormatError(f"HEIF iloc version {self.version} is not supported")
        self.flags = body[1:4]
        self.offset_size, self.length_size = body[4] >> 4, body[4] & 15
        self.base_offset_size = body[5] >> 4
        self.index_size = body[5] & 15 if self.version in (1, 2) else 0
        i = 6
        n_size = 2 if self.version < 2 else 4
        count = _u(body, i, n_size)
        i += n_size
        self.items = []
        for _ in range(count):
            item_id = _u(body, i, n_size)
            i += n_size
            method = 0
            if self.version in (1, 2):
                method = _u(body, i, 2) & 15
                i += 2
            dref = _u(body, i, 2)
            i += 2
            base = _u(body, i, self.base_offset_size)
            i += self.base_offset_size
            n_ext = _u(body, i, 2)
            i += 2
            extents = []
            for _ in range(n_ext):
                idx = _u(body, i, self.index_size)
                i += self.index_size
                off = _u(body, i, self.offset_size)
                i += self.offset_size
                ln = _u(body, i, self.length_size)
                i += self.length_size
                extents.append([idx, off, ln])
            self.items.append([item_id, method, dref, base, extents])

    def to_bytes(self) -> bytes:
        if self.version == 0 and any(it[1] for it in self.items):
            self.version = 1
        n_size = 2 if self.version < 2 else 4
        out = bytearray([self.version]) + self.flags
        out += bytes([(self.offset_size << 4) | self.length_size, (self.base_offset_size << 4) | self.index_size])
        out += len(self.items).to_bytes(n_size, "big")
        for item_id, method, dref, base, extents in self.items:
            out += item_id.to_bytes(n_size, "big")
            if self.version in (1, 2):
                out += method.to_bytes(2, "big")
            out += dref.to_bytes(2, "big")
            out += base.to_bytes(self.base_offset_size, "big") if self.base_offset_size else b""
            out += len(extents).to_bytes(2, "big")
            for idx, off, ln in extents:
                if self.index_size:
                    out += idx.to_bytes(self.index_size, "big")
                try:
                    out += off.to_bytes(self.offset_size, "big") if self.offset_size else b""
                    out += ln.to_bytes(self.length_size, "big") if self.length_size else b""
                except OverflowError:
                    raise UnsupportedFormatError("HEIF iloc offsets no longer fit their field size") from None
        return bytes(out)


def _infe(body: bytes) -> tuple[int, bytes, bytes]:
    """(item_ID, item_type, content_type) of an infe box body."""
    version = body[0]
    if version < 2:
        return _u(body, 4, 2), b"", b""
    id_size = 2 if version == 2 else 4
    item_id = _u(body, 4, id_size)
    i = 4 + id_size + 2
    item_type = body[i : i + 4]
    i += 4
    end = body.find(b"\x00", i)
    ctype = b""
    if item_type == b"mime" and end >= 0:
        e2 = body.find(b"\x00", end + 1)
        ctype = body[end + 1 : e2 if e2 >= 0 else len(body)]
    return item_id, item_type, ctype


class _Meta:
    def __init__(self, data: bytes) -> None:
        boxes = list(_headers(data, 0, len(data)))
        if not boxes or boxes[0][0] != b"ftyp":
            raise AigcFormatError("not a HEIF/AVIF file (no ftyp box)")
        metas = [b for b in boxes if b[0] == b"meta"]
        if len(metas) != 1:
            raise AigcFormatError(f"HEIF file has {len(metas)} top-level meta boxes; expected one")
        _t, self.start, p, self.end = metas[0]
        self.prefix = data[p : p + 4]
        self.children = [[t, bytes(data[pp:e])] for t, _s, pp, e in _headers(data, p + 4, self.end)]
        types = [t for t, _ in self.children]
        for need in (b"pitm", b"iloc", b"iinf"):
            if types.count(need) != 1:
                raise AigcFormatError(f"HEIF meta must hold exactly one {need.decode()} box")
        self.iloc = _Iloc(self._get(b"iloc"))
        pitm = self._get(b"pitm")
        self.primary = _u(pitm, 4, 2 if pitm[0] == 0 else 4)
        iinf = self._get(b"iinf")
        self.iinf_version = iinf[0]
        off = 6 if iinf[0] == 0 else 8
        self.infe = [[t, bytes(iinf[pp:e])] for t, _s, pp, e in _headers(iinf, off, len(iinf))]
        self.data = data

    def _get(self, t: bytes) -> bytes:
        return next(body for bt, body in self.children if bt == t)

    def _set(self, t: bytes, body: bytes, before: bytes | None = None) -> None:
        for c in self.children:
            if c[0] == t:
                c[1] = body
                return
        pos = next((i for i, c in enumerate(self.children) if c[0] == before), len(self.children))
        self.children.insert(pos, [t, body])

    def xmp_items(self) -> list[int]:
        out = []
        for _t, body in self.infe:
            item_id, itype, ctype = _infe(body)
            if itype == b"mime" and ctype == XMP_MIME:
                out.append(item_id)
        return out

    def item_data(self, item_id: int) -> bytes:
        it = next((x for x in self.iloc.items if x[0] == item_id), None)
        if it is None:
            raise AigcFormatError(f"HEIF item {item_id} has no iloc entry")
        _id, method, dref, base, extents = it
        if dref != 0 or method not in (0, 1):
            raise UnsupportedFormatError("HEIF item data in an external file or by item reference")
        src = self.data if method == 0 else next((b for t, b in self.children if t == b"idat"), b"")
        return b"".join(src[base + off : base + off + ln] for _i, off, ln in extents)


def read(data: bytes) -> list[tuple[str, str]]:
    m = _Meta(data)
    items = m.xmp_items()
    if len(items) > 1:
        raise DuplicateLabelError(f"HEIF file has {len(items)} XMP items; expected at most one")
    out = []
    for item in items:
        out += [("xmp:TC260:AIGC", v) for v in _xmp.read_aigc(m.item_data(item))]
    return out


def read_xmp(data: bytes) -> bytes | None:
    m = _Meta(data)
    items = m.xmp_items()
    return m.item_data(items[0]) if items else None


def _box_at(data: bytes, pos: int) -> tuple[bytes, int] | None:
    """(type, size) of the box starting at ``pos``, or None at the end of the file."""
    if pos + 8 > len(data):
        return None
    size, btype = struct.unpack(">I4s", data[pos : pos + 8])
    return (btype, size) if size >= 8 else None


def write(data: bytes, bare: str, wrapped: str) -> bytes:
    m = _Meta(data)
    items = m.xmp_items()
    if len(items) > 1:
        raise DuplicateLabelError(f"HEIF file has {len(items)} XMP items; expected at most one")
    old = m.item_data(items[0]) if items else None
    packet = _xmp.merge(old, bare)
    cut = m.end  # old bytes [m.end, cut) are dropped: our previous XMP box right after meta
    if items:
        xmp_id = items[0]
        entry = next(x for x in m.iloc.items if x[0] == xmp_id)
        nxt = _box_at(data, m.end)
        _id, method, dref, base, extents = entry
        ours = (method, dref, len(extents)) == (0, 0, 1) and nxt is not None and nxt[0] == b"mdat"
        if ours and base + extents[0][1] == m.end + 8 and extents[0][2] == nxt[1] - 8:
            cut = m.end + nxt[1]
        m.iloc.items.remove(entry)  # any other old copy stays as unreferenced bytes
    else:
        ids = [x[0] for x in m.iloc.items] + [_infe(b)[0] for _t, b in m.infe]
        xmp_id = max(ids, default=0) + 1
        if xmp_id > 0xFFFF:
            raise UnsupportedFormatError("HEIF item IDs above 65535 are not supported")
        infe = b"\x02\x00\x00\x00" + struct.pack(">HH", xmp_id, 0) + b"mime" + b"\x00" + XMP_MIME + b"\x00"
        m.infe.append([b"infe", infe])
        count = len(m.infe)
        head = bytes([m.iinf_version, 0, 0, 0]) + (
            count.to_bytes(2, "big") if m.iinf_version == 0 else count.to_bytes(4, "big")
        )
        m._set(b"iinf", head + b"".join(struct.pack(">I4s", 8 + len(b), t) + b for t, b in m.infe))
        iref = next((b for t, b in m.children if t == b"iref"), None)
        if iref is None or iref[0] == 0:
            ref = struct.pack(">HHH", xmp_id, 1, m.primary)
        else:
            ref = struct.pack(">IHI", xmp_id, 1, m.primary)
        cdsc = struct.pack(">I4s", 8 + len(ref), b"cdsc") + ref
        m._set(b"iref", (iref if iref is not None else b"\x00\x00\x00\x00") + cdsc, before=b"iprp")
    m.iloc.offset_size = max(m.iloc.offset_size, 4)
    m.iloc.length_size = max(m.iloc.length_size, 4)
    entry = [xmp_id, 0, 0, 0, [[0, 0, len(packet)]]]
    m.iloc.items.append(entry)
    box = struct.pack(">I4s", 8 + len(packet), b"mdat") + packet

    def build() -> bytes:
        m._set(b"iloc", m.iloc.to_bytes())
        body = m.prefix + b"".join(struct.pack(">I4s", 8 + len(b), t) + b for t, b in m.children)
        return struct.pack(">I4s", 8 + len(body), b"meta") + body

    meta_len = len(build())  # field widths are fixed, so the size is known before the offsets are
    shift = meta_len + len(box) - (cut - m.start)
    for it in m.iloc.items:
        if it is entry or it[1] != 0 or it[2] != 0:
            continue
        if it[3] >= cut:
            it[3] += shift
        elif it[3] == 0:
            for e in it[4]:
                if e[1] >= cut:
                    e[1] += shift
                elif e[1] >= m.start:
                    raise UnsupportedFormatError("HEIF item data inside the meta box cannot be relocated")
    entry[4][0][1] = m.start + meta_len + 8
    new_meta = build()
    if len(new_meta) != meta_len:
        raise AigcFormatError("internal error: HEIF meta size changed while setting offsets")
    return bytes(data[: m.start]) + new_meta + box + bytes(data[cut:])
