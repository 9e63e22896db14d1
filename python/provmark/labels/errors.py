"""Exceptions of the label layer.

Every error is a subclass of a built-in exception (mostly ``ValueError``) so callers that only know the
standard hierarchy still catch it, and every message names what was wrong and what to do instead.
"""

from __future__ import annotations

__all__ = [
    "AigcFormatError",
    "ConsentRequiredError",
    "DuplicateLabelError",
    "ElementRuleError",
    "ExistingLabelError",
    "FontNotFoundError",
    "LabelError",
    "MetadataWriteError",
    "PolicyError",
    "UnsupportedFormatError",
]


class LabelError(ValueError):
    """Base class of all label-layer input errors."""


class PolicyError(LabelError):
    """A label policy was asked for something the rules do not allow."""


class ConsentRequiredError(PolicyError):
    """Face or voice editing of a real person without a consent reference (DSP Art. 14)."""


class ElementRuleError(LabelError):
    """An explicit label wording lacks the AI element or the generation element (LABELING.md section 3)."""


class FontNotFoundError(LabelError, LookupError):
    """No font on this system can render the explicit label text."""


class AigcFormatError(LabelError):
    """An ``AIGC`` metadata value is malformed (JSON, schema, types or charset of GB 45438 Annex E)."""


class DuplicateLabelError(AigcFormatError):
    """A file holds more than one ``AIGC`` block in one location, or conflicting blocks across locations."""


class ExistingLabelError(LabelError):
    """The file already carries a different producer label; only fields 5-7 may be updated (Measures Art.
    10)."""


class UnsupportedFormatError(LabelError):
    """The file format has no metadata location that this package can write."""


class MetadataWriteError(RuntimeError):
    """A metadata write did not read back as written; the output file was not created."""
