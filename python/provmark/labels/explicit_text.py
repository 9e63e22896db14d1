"""Explicit labels for text (GB 45438 5.1): a notice with both elements at the start and/or end of the text.

Formats: ``plain`` (a notice line), ``markdown`` (a block quote in bold, placed after YAML front matter),
``html`` (a ``<p class="aigc-label" role="note">`` right after ``<body>`` / before ``</body>``, or at the
fragment's ends). Labeling is idempotent: a notice that is already in place is not added twice.
"""

from __future__ import annotations

import html as _html
import re

from .elements import check_wording
from .errors import LabelError

__all__ = ["DEFAULT_TEXT_WORDING", "label_text", "text_notice"]

DEFAULT_TEXT_WORDING = "本内容由AI生成"
_FORMATS = ("plain", "markdown", "html")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<])")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n.*?\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.I)
_BODY_CLOSE = re.compile(r"</body\s*>", re.I)


def text_notice(wording: str = DEFAULT_TEXT_WORDING, fmt: str = "plain") -> str:
    """The notice as it is inserted for ``fmt`` (no surrounding newlines)."""
    check_wording(wording, "text label wording")
    if "\n" in wording or "\r" in wording:
        raise LabelError("text label wording must be a single line")
    if fmt == "plain":
        return f"【{wording}】"
    if fmt == "markdown":
        escaped = _MD_SPECIAL.sub(r"\\\1", wording)
        return f"> **{escaped}**"
    if fmt == "html":
        return f'<p class="aigc-label" role="note">{_html.escape(wording)}</p>'
    raise LabelError(f"fmt must be one of {_FORMATS}, got {fmt!r}")


def label_text(text: str, wording: str = DEFAULT_TEXT_WORDING, *, at: str = "start", fmt: str = "plain") -> str:
    """Return ``text`` with the notice added at ``at`` = "start", "end" or "both"."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if at not in ("start", "end", "both"):
        raise LabelError(f"at must be 'start', 'end' or 'both', got {at!r}")
    notice = text_notice(wording, fmt)
    nl = "\r\n" if "\r\n" in text else "\n"
    out = text
    if at in ("start", "both"):
        out = _insert_start(out, notice, fmt, nl)
    if at in ("end", "both"):
        out = _insert_end(out, notice, fmt, nl)
    return out


def _insert_start(text: str, notice: str, fmt: str, nl: str) -> str:
    head, body = "", text
    if fmt == "markdown":
        m = _FRONT_MATTER.match(text)
        if m:
            head, body = text[: m.end()], text[m.end() :]
            if not head.endswith(("\n", "\r")):
                head += nl
    elif fmt == "html":
        m = _BODY_OPEN.search(text)
        if m:
            head, body = text[: m.end()], text[m.end() :]
    if body.lstrip().startswith(notice):
        return text
    sep = nl if fmt == "html" else nl * 2
    return head + (nl if fmt == "html" and head else "") + notice + (sep if body else nl) + body.lstrip("\r\n")


def _insert_end(text: str, notice: str, fmt: str, nl: str) -> str:
    body, tail = text, ""
    if fmt == "html":
        matches = list(_BODY_CLOSE.finditer(text))
        if matches:
            body, tail = text[: matches[-1].start()], text[matches[-1].start() :]
    if body.rstrip().endswith(notice):
        return text
    stripped = body.rstrip("\r\n")
    sep = nl if fmt == "html" else nl * 2
    return stripped + (sep if stripped else "") + notice + nl + tail
