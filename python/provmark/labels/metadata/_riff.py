"""RIFF containers: WAV (``AIGC`` sub-chunk with the bare JSON) and WebP (``XMP `` + ``EXIF`` chunks in VP8X
form).

Only chunk headers are rewritten; audio samples and the VP8/VP8L bitstream are copied byte for byte.
"""

from __future__ import annotations

import struct

from ..errors import AigcFormatError, DuplicateLabelError
from . import _exif, _xmp


def _chunks(data: bytes, form: bytes):
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != form:
        raise AigcFormatError(f"not a RIFF {form.decode().strip()} file")
    (riff_size,) = struct.unpack("<I", data[4:8])
    end = min(len(data), 8 + riff_size)
    i, out = 12, []
    while i + 8 <= end:
        cid, size = data[i : i + 4], struct.unpack("<I", data[i + 4 : i + 8])[0]
        if i + 8 + size > len(data):
            raise AigcFormatError(f"RIFF chunk {cid!r} at byte {i} runs past the end of the file")
        out.append((cid, data[i + 8 : i + 8 + size]))
        i += 8 + size + (size & 1)
    return out


def _build(form: bytes, chunks) -> bytes:
    parts = []
    for cid, body in chunks:
        parts.append(cid + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b""))
    payload = form + b"".join(parts)
    if len(payload) > 0xFFFFFFFF:
        raise AigcFormatError("RIFF file would exceed 4 GiB (RF64 is not supported)")
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


# ----------------------------------------------------------------------------------------------------
# WAV
def wav_read(data: bytes) -> list[tuple[str, str]]:
    out = []
    for cid, body in _chunks(data, b"WAVE"):
        if cid == b"AIGC":
            out.append(("riff:AIGC", body.decode("utf-8", "replace")))
    return out


def wav_write(data: bytes, bare: str, wrapped: str) -> bytes:
    chunks = [(c, b) for c, b in _chunks(data, b"WAVE") if c != b"AIGC"]
    if not any(c == b"data" for c, _ in chunks):
        raise AigcFormatError("WAV file has no data chunk")
    chunks.append((b"AIGC", bare.encode("ascii")))
    return _build(b"WAVE", chunks)


# ------------------------------------------------------------------------------------------------------------
# WebP
_F_ICC, _F_ALPHA, _F_EXIF, _F_XMP, _F_ANIM = 0x20, 0x10, 0x08, 0x04, 0x02


def _canvas(chunks) -> tuple[int, int, bool]:
    for cid, body in chunks:
        if cid == b"VP8 " and len(body) >= 10:
            if body[3:6] != b"\x9d\x01\x2a":
                raise AigcFormatError("WebP VP8 chunk has a bad start code")
            w, h = struct.unpack("<HH", body[6:10])
            return w & 0x3FFF, h & 0x3FFF, False
        if cid == b"VP8L" and len(body) >= 5:
            if body[0] != 0x2F:
                raise AigcFormatError("WebP VP8L chunk has a bad signature")
            bits = int.from_bytes(body[1:5], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    raise AigcFormatError("WebP has no VP8/VP8L image chunk")


def webp_read(data: bytes) -> list[tuple[str, str]]:
    chunks = _chunks(data, b"WEBP")
    xmps = [b for c, b in chunks if c == b"XMP "]
    exifs = [b for c, b in chunks if c == b"EXIF"]
    if len(xmps) > 1 or len(exifs) > 1:
        raise DuplicateLabelError("WebP has more than one XMP or EXIF chunk")
    out = []
    for b in xmps:
        out += [("xmp:TC260:AIGC", v) for v in _xmp.read_aigc(b)]
    for b in exifs:
        uc = _exif.read_user_comment(b if b.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + b)
        if uc and "AIGC" in uc:
            out.append(("exif:UserComment", uc))
    return out


def webp_read_xmp(data: bytes) -> bytes | None:
    return next((b for c, b in _chunks(data, b"WEBP") if c == b"XMP "), None)


def webp_write(data: bytes, bare: str, wrapped: str) -> bytes:
    chunks = _chunks(data, b"WEBP")
    xmp_old = next((b for c, b in chunks if c == b"XMP "), None)
    exif_old = next((b for c, b in chunks if c == b"EXIF"), None)
    if exif_old is not None and not exif_old.startswith(b"Exif\x00\x00"):
        exif_old = b"Exif\x00\x00" + exif_old
    body = [(c, b) for c, b in chunks if c not in (b"XMP ", b"EXIF")]
    if body[0][0] == b"VP8X":
        flags = body[0][1][0]
        vp8x = bytes([flags | _F_EXIF | _F_XMP]) + body[0][1][1:]
        body[0] = (b"VP8X", vp8x)
    else:
        w, h, alpha = _canvas(body)
        flags = _F_EXIF | _F_XMP | (_F_ALPHA if alpha else 0)
        vp8x = bytes([flags, 0, 0, 0]) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
        body.insert(0, (b"VP8X", vp8x))
    exif_new = _exif.set_user_comment(exif_old, wrapped)[6:]  # WebP EXIF chunk holds bare TIFF
    body += [(b"EXIF", exif_new), (b"XMP ", _xmp.merge(xmp_old, bare))]
    return _build(b"WEBP", body)
