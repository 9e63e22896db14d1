"""JPEG: XMP in APP1 (``TC260:AIGC``) and EXIF UserComment in the Exif APP1. Entropy-coded data is copied as
is."""

from __future__ import annotations

import struct

from ..errors import AigcFormatError, DuplicateLabelError
from . import _exif, _xmp

XMP_ID = b"http://ns.adobe.com/xap/1.0/\x00"
EXIF_ID = b"Exif\x00\x00"


def _segments(data: bytes):
    """Split into [(marker, payload)] up to SOS, and the rest (SOS onwards) as bytes."""
    if data[:2] != b"\xff\xd8":
        raise AigcFormatError("not a JPEG file (no SOI marker)")
    segs, i = [], 2
    while True:
        if i + 4 > len(data):
            raise AigcFormatError("JPEG ends before the start of scan")
        if data[i] != 0xFF:
            raise AigcFormatError(f"JPEG marker expected at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:
            return segs, data[i:]
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            segs.append((marker, b""))
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2 or i + 2 + length > len(data):
            raise AigcFormatError(f"JPEG segment 0x{marker:02X} at byte {i} has a bad length {length}")
        segs.append((marker, data[i + 4 : i + 2 + length]))
        i += 2 + length


def _seg(marker: int, payload: bytes) -> bytes:
    if len(payload) + 2 > 0xFFFF:
        raise AigcFormatError(f"JPEG APP segment payload of {len(payload)} bytes exceeds 65533")
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def read(data: bytes) -> list[tuple[str, str]]:
    segs, _ = _segments(data)
    out = []
    xmps = [p for m, p in segs if m == 0xE1 and p.startswith(XMP_ID)]
    exifs = [p for m, p in segs if m == 0xE1 and p.startswith(EXIF_ID)]
    if len(xmps) > 1:
        raise DuplicateLabelError(f"JPEG has {len(xmps)} XMP APP1 segments; expected at most one")
    if len(exifs) > 1:
        raise DuplicateLabelError(f"JPEG has {len(exifs)} Exif APP1 segments; expected at most one")
    for p in xmps:
        out += [("xmp:TC260:AIGC", v) for v in _xmp.read_aigc(p[len(XMP_ID) :])]
    for p in exifs:
        uc = _exif.read_user_comment(p)
        if uc and "AIGC" in uc:
            out.append(("exif:UserComment", uc))
    return out


def read_xmp(data: bytes) -> bytes | None:
    segs, _ = _segments(data)
    for m, p in segs:
        if m == 0xE1 and p.startswith(XMP_ID):
            return p[len(XMP_ID) :]
    return None


def write(data: bytes, bare: str, wrapped: str) -> bytes:
    segs, scan = _segments(data)
    xmp_old = next((p[len(XMP_ID) :] for m, p in segs if m == 0xE1 and p.startswith(XMP_ID)), None)
    exif_old = next((p for m, p in segs if m == 0xE1 and p.startswith(EXIF_ID)), None)
    xmp_seg = _seg(0xE1, XMP_ID + _xmp.merge(xmp_old, bare))
    exif_seg = _seg(0xE1, _exif.set_user_comment(exif_old, wrapped))
    out = [b"\xff\xd8"]
    placed_exif = placed_xmp = False
    rest = []
    for m, p in segs:
        if m == 0xE1 and p.startswith(EXIF_ID):
            rest.append(exif_seg)
            placed_exif = True
        elif m == 0xE1 and p.startswith(XMP_ID):
            rest.append(xmp_seg)
            placed_xmp = True
        elif m in (0x01,) or 0xD0 <= m <= 0xD7:
            rest.append(bytes((0xFF, m)))
        else:
            rest.append(_seg(m, p))
    # new segments go after JFIF APP0 (which must come first) or straight after SOI
    head = 1 if segs and segs[0][0] == 0xE0 else 0
    new = ([] if placed_exif else [exif_seg]) + ([] if placed_xmp else [xmp_seg])
    rest[head:head] = new
    out += rest
    out.append(scan)
    return b"".join(out)
