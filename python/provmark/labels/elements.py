"""The element rule for explicit label wording (LABELING.md section 3).

Every text or voice explicit label must contain both an AI element ("人工智能" or "AI") and a generation
element ("生成" and/or "合成"). GB 45438 fixes no wording; these helpers check a caller's wording against the
rule.
"""

from __future__ import annotations

from .errors import ElementRuleError

__all__ = ["AI_ELEMENTS", "DEFAULT_WORDING", "GENERATION_ELEMENTS", "check_wording", "has_required_elements"]

#: Strings that satisfy the AI element. Full-width "ＡＩ" is the same letters in CJK typesetting.
AI_ELEMENTS: tuple[str, ...] = ("人工智能", "AI", "ＡＩ")
#: Strings that satisfy the generation element.
GENERATION_ELEMENTS: tuple[str, ...] = ("生成", "合成")
#: Default explicit label wording for images, video frames and text notices.
DEFAULT_WORDING = "AI生成"


def has_required_elements(text: str) -> bool:
    """True when ``text`` contains an AI element and a generation element (case-sensitive: "AI", not "ai")."""
    if not isinstance(text, str):
        return False
    return any(a in text for a in AI_ELEMENTS) and any(g in text for g in GENERATION_ELEMENTS)


def check_wording(text: object, what: str = "label wording") -> str:
    """Return ``text`` unchanged if it meets the element rule, else raise :class:`ElementRuleError`."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ElementRuleError(f"{what} is empty")
    missing = []
    if not any(a in text for a in AI_ELEMENTS):
        missing.append('an AI element ("人工智能" or "AI")')
    if not any(g in text for g in GENERATION_ELEMENTS):
        missing.append('a generation element ("生成" or "合成")')
    if missing:
        raise ElementRuleError(
            f"{what} {text!r} lacks "
            + " and ".join(missing)
            + " (GB 45438 element rule; e.g. 'AI生成', '人工智能合成')"
        )
    return text
