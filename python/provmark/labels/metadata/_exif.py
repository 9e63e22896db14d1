"""EXIF UserComment (0x9286 in the Exif IFD) holding the wrapped ``{"AIGC":{...}}`` JSON (image guide Annex
B).

The TIFF structure is rebuilt with Pillow's ``Image.Exif`` (metadata only; no pixel data is touched).
"""

from __future__ import annotations

import warnings

from ..errors import AigcFormatError

EXIF_IFD = 0x8769
USER_COMMENT = 0x9286
_ASCII = b"ASCII\x00\x00\x00"
_CODES = {
    _ASCII: "ascii",
    b"UNICODE\x00": "utf-16",
    b"\x00" * 8: "utf-8",
    b"JIS\x00\x00\x00\x00\x00": "shift_jis",
}


def _load(tiff: bytes | None):
    from PIL import Image

    exif = Image.Exif()
    if tiff:
        with warnings.catch_warnings():
            # Pillow warns and skips corrupt tags: refuse instead of silently dropping data
            warnings.simplefilter("error")
            try:
                exif.load(tiff)
                exif.get_ifd(EXIF_IFD)
            except Exception as exc:  # Pillow raises assorted errors (and warnings) on corrupt TIFF
                raise AigcFormatError(f"EXIF block is corrupt: {exc}") from None
    return exif


def decode_user_comment(value) -> str | None:
    if isinstance(value, str):
        return value
    if not isinstance(value, (bytes, bytearray)):
        return None
    value = bytes(value)
    enc = _CODES.get(value[:8])
    if enc is None:
        text = value.decode("utf-8", "replace")
    else:
        body = value[8:]
        if enc == "utf-16":
            enc = "utf-16-be" if not body.startswith(b"\xff\xfe") else "utf-16"
        text = body.decode(enc, "replace")
    return text.rstrip("\x00").strip()


def read_user_comment(tiff: bytes) -> str | None:
    ifd = _load(tiff).get_ifd(EXIF_IFD)
    return decode_user_comment(ifd.get(USER_COMMENT)) if USER_COMMENT in ifd else None


def set_user_comment(tiff: bytes | None, text: str) -> bytes:
    """Return TIFF bytes prefixed with ``Exif\\0\\0`` whose UserComment is ``text`` (ASCII character code)."""
    exif = _load(tiff)
    ifd = exif.get_ifd(EXIF_IFD)
    ifd[USER_COMMENT] = _ASCII + text.encode("ascii")
    if EXIF_IFD not in exif:
        exif[EXIF_IFD] = ifd
    return exif.tobytes()
