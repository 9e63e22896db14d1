"""Find a font that can render an explicit label (CJK wording needs a CJK font).

Search order: an explicit path, then ``$PROVMARK_LABEL_FONT``, then fontconfig (``fc-list :lang=zh``) when it
is installed, then the usual font folders. A font qualifies only if every visible character of the text maps
to a real glyph (its bitmap differs from the font's .notdef box). No font is ever downloaded.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from .errors import FontNotFoundError

__all__ = ["find_font", "font_can_render", "load_font"]

_FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "C:/Windows/Fonts",
)
# CJK families in rough order of preference; matched case-insensitively against the file name.
_CJK_HINTS = (
    "wqy-zenhei",
    "wqy-microhei",
    "notosanscjk",
    "notoserifcjk",
    "sourcehansans",
    "droidsansfallback",
    "msyh",
    "simhei",
    "pingfang",
    "hiragino",
    "unifont",
    "ukai",
    "uming",
)
_NOTDEF_PROBE = "\U0010fffd"  # a private-use code point no real font maps


def _open(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


def load_font(path: str | os.PathLike, size: int):
    """Load a TrueType/OpenType font (first face of a collection) at ``size`` pixels, with a clear error."""
    try:
        return _open(os.fspath(path), int(size))
    except OSError as exc:
        raise FontNotFoundError(f"cannot load font {os.fspath(path)!r}: {exc}") from None


@functools.lru_cache(maxsize=256)
def font_can_render(path: str, text: str) -> bool:
    """True when the font at ``path`` has a real glyph for every non-space character of ``text``."""
    try:
        font = _open(path, 48)
    except OSError:
        return False
    notdef = font.getmask(_NOTDEF_PROBE)
    notdef_sig = (notdef.size, bytes(notdef))
    for ch in set(text):
        if ch.isspace():
            continue
        m = font.getmask(ch)
        if m.size[0] == 0 or m.size[1] == 0 or (m.size, bytes(m)) == notdef_sig:
            return False
    return True


def _fc_list() -> list[str]:
    exe = shutil.which("fc-list")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, ":lang=zh", "file"], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(":", 1)[0].strip() for line in out.splitlines() if line.strip()]


def _scan_dirs() -> list[str]:
    found = []
    for d in _FONT_DIRS:
        root = Path(os.path.expanduser(d))
        if not root.is_dir():
            continue
        for p in root.rglob("*"):
            if p.suffix.lower() in (".ttf", ".ttc", ".otf", ".otc"):
                found.append(str(p))

    def rank(path: str) -> int:
        """Position of the first CJK family hint in the file name (fonts without one sort last)."""
        name = Path(path).name.lower().replace("-", "").replace("_", "")
        return next((i for i, h in enumerate(_CJK_HINTS) if h.replace("-", "") in name), len(_CJK_HINTS))

    return sorted(found, key=lambda p: (rank(p), p))


@functools.lru_cache(maxsize=1)
def _candidates() -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for p in _fc_list() + _scan_dirs():
        seen.setdefault(p, None)
    return tuple(seen)


def find_font(text: str, font: str | os.PathLike | None = None) -> str:
    """Path of a font that renders ``text``; raises :class:`FontNotFoundError` with an install hint if none
    does."""
    if font is not None:
        path = os.fspath(font)
        if not os.path.isfile(path):
            raise FontNotFoundError(f"font file {path!r} does not exist")
        if not font_can_render(path, text):
            raise FontNotFoundError(f"font {path!r} has no glyph for some characters of {text!r}")
        return path
    env = os.environ.get("PROVMARK_LABEL_FONT")
    if env:
        return find_font(text, env)
    for path in _candidates():
        if font_can_render(path, text):
            return path
    raise FontNotFoundError(
        f"no installed font can render the label text {text!r}; install a CJK font (Debian: apt-get install "
        "fonts-wqy-zenhei or fonts-noto-cjk) or pass font=/path/to/font.ttf (or set PROVMARK_LABEL_FONT)"
    )
