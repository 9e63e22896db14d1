"""Content labels required for AI-generated content (GB 45438, CAC Measures; see docs/labels.md).

- :class:`Policy`: which labels a service owes per content type (LABELING.md section 10);
- explicit labels: :func:`render_image_label`, :class:`VideoLabeler`, :func:`add_audio_label`,
  :func:`label_text`;
- implicit metadata label: :mod:`provmark.labels.metadata` (``AIGC`` JSON in every file location);
- integrity: :class:`SigningKey` / :func:`sign_label` / :func:`verify_label` (Ed25519 in ``ReservedCode1``)
  and
  :func:`derive_payload` (the watermark payload bound to the label).

Nothing here imports the native core at import time.
"""

from __future__ import annotations

from .binding import derive_payload, derive_payload_bytes
from .elements import DEFAULT_WORDING, check_wording, has_required_elements
from .errors import (
    AigcFormatError,
    ConsentRequiredError,
    DuplicateLabelError,
    ElementRuleError,
    ExistingLabelError,
    FontNotFoundError,
    LabelError,
    MetadataWriteError,
    PolicyError,
    UnsupportedFormatError,
)
from .explicit_audio import RhythmCue, add_audio_label
from .explicit_image import ImageLabel, ImageLabelStyle, VideoLabeler, label_video_frames, render_image_label
from .explicit_text import DEFAULT_TEXT_WORDING, label_text, text_notice
from .metadata import AigcLabel, read_label, write_label
from .pipeline import LabelResult, VerifyReport, label_file, verify
from .policy import ContentType, LabelKind, Policy, Requirements, ServiceType
from .signing import SignatureStatus, SigningKey, VerifyKey, sign_label, verify_label

__all__ = [
    "DEFAULT_TEXT_WORDING",
    "DEFAULT_WORDING",
    "AigcFormatError",
    "AigcLabel",
    "ConsentRequiredError",
    "ContentType",
    "DuplicateLabelError",
    "ElementRuleError",
    "ExistingLabelError",
    "FontNotFoundError",
    "ImageLabel",
    "ImageLabelStyle",
    "LabelError",
    "LabelKind",
    "LabelResult",
    "MetadataWriteError",
    "Policy",
    "PolicyError",
    "Requirements",
    "RhythmCue",
    "ServiceType",
    "SignatureStatus",
    "SigningKey",
    "UnsupportedFormatError",
    "VerifyKey",
    "VerifyReport",
    "VideoLabeler",
    "add_audio_label",
    "check_wording",
    "derive_payload",
    "derive_payload_bytes",
    "has_required_elements",
    "label_file",
    "label_text",
    "label_video_frames",
    "read_label",
    "render_image_label",
    "sign_label",
    "text_notice",
    "verify",
    "verify_label",
    "write_label",
]
