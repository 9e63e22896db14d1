"""PNG: ``iTXt`` ``XML:com.adobe.xmp`` (XMP with ``TC260:AIGC``) and ``tEXt`` keyword ``AIGC`` (wrapped JSON).

Chunks are rewritten around the untouched IDAT data; the new text chunks go right before the first IDAT.
"""

from __future__ import annotations

import struct
import zlib

from ..errors import AigcFormatError, DuplicateLabelError
from . import _xmp

SIG = b"\x89PNG\r\n\x1a\n"
XMP_KEY = b"XML:com.adobe.xmp"


def _chunks(data: bytes):
    if not data.startswith(SIG):
        raise AigcFormatError("not a PNG file (bad signature)")
    i, out = 8, []
    while i < len(data):
        if i + 12 > len(data):
            raise AigcFormatError(f"PNG truncated at byte {i}")
        length, ctype = struct.unpack(">I4s", data[i : i + 8])
        end = i + 12 + length
        if end > len(data):
            raise AigcFormatError(f"PNG chunk {ctype!r} at byte {i} runs past the end of the file")
        body = data[i + 8 : i + 8 + length]
        (crc,) = struct.unpack(">I", data[i + 8 + length : end])
        if zlib.crc32(ctype + body) != crc:
            raise AigcFormatError(f"PNG chunk {ctype!r} at byte {i} has a bad CRC")
        out.append((ctype, body))
        i = end
        if ctype == b"IEND":
            break
    if not out or out[0][0] != b"IHDR" or out[-1][0] != b"IEND":
        raise AigcFormatError("PNG must start with IHDR and end with IEND")
    return out


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _text(ctype: bytes, body: bytes) -> tuple[bytes, str] | None:
    """(keyword, text) of a tEXt/zTXt/iTXt chunk."""
    key, sep, rest = body.partition(b"\x00")
    if not sep:
        raise AigcFormatError(f"PNG {ctype.decode()} chunk has no keyword terminator")
    try:
        if ctype == b"tEXt":
            return key, rest.decode("latin-1")
        if ctype == b"zTXt":
            return key, zlib.decompress(rest[1:]).decode("latin-1")
        if ctype == b"iTXt":
            flag, _method = rest[0], rest[1]
            _lang, _, rest2 = rest[2:].partition(b"\x00")
            _tkey, _, text = rest2.partition(b"\x00")
            if flag:
                text = zlib.decompress(text)
            return key, text.decode("utf-8")
    except (zlib.error, IndexError, UnicodeDecodeError) as exc:
        raise AigcFormatError(f"PNG {ctype.decode()} chunk {key!r} is corrupt: {exc}") from None
    return None


def _itxt(key: bytes, text: str) -> bytes:
    return key + b"\x00\x00\x00\x00\x00" + text.encode("utf-8")


def read(data: bytes) -> list[tuple[str, str]]:
    out, xmps = [], 0
    for ctype, body in _chunks(data):
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            key, text = _text(ctype, body)
            if key == XMP_KEY:
                xmps += 1
                out += [("xmp:TC260:AIGC", v) for v in _xmp.read_aigc(text.encode("utf-8"))]
            elif b"AIGC" in key:
                out.append((f"png:{ctype.decode()}:{key.decode('latin-1')}", text))
    if xmps > 1:
        raise DuplicateLabelError(f"PNG has {xmps} XMP chunks; expected at most one")
    return out


def read_xmp(data: bytes) -> bytes | None:
    for ctype, body in _chunks(data):
        if ctype == b"iTXt":
            key, text = _text(ctype, body)
            if key == XMP_KEY:
                return text.encode("utf-8")
    return None


def write(data: bytes, bare: str, wrapped: str) -> bytes:
    chunks = _chunks(data)
    xmp_old, keep = None, []
    for ctype, body in chunks:
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            key, text = _text(ctype, body)
            if key == XMP_KEY:
                if xmp_old is not None:
                    raise DuplicateLabelError("PNG has more than one XMP chunk")
                xmp_old = text.encode("utf-8")
                continue
            if b"AIGC" in key:
                continue
        keep.append((ctype, body))
    new = [
        (b"iTXt", _itxt(XMP_KEY, _xmp.merge(xmp_old, bare).decode("utf-8"))),
        (b"tEXt", b"AIGC\x00" + wrapped.encode("ascii")),
    ]
    idx = next(i for i, (c, _) in enumerate(keep) if c in (b"IDAT", b"IEND"))
    keep[idx:idx] = new
    return SIG + b"".join(_chunk(c, b) for c, b in keep)
