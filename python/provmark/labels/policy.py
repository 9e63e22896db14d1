"""Label policy: which labels a (service type, content type) pair owes, per LABELING.md section 10.

>>> p = Policy("001191110102MAD55U9H0F10002", "dialogue")
>>> sorted(k.value for k in p.requirements("image").due)
['agreement', 'explicit', 'metadata', 'watermark']
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import ConsentRequiredError, PolicyError

__all__ = ["ContentType", "LabelKind", "Policy", "Requirements", "ServiceType", "check_provider_code"]


class ServiceType(str, enum.Enum):
    """Generation service types: the five of DSP Art. 17(1), plus services outside it."""

    DIALOGUE = "dialogue"  #: 17(1)1 human-like dialogue, writing and other text generation/editing
    VOICE = "voice"  #: 17(1)2 voice synthesis, voice imitation and other significant voice editing
    FACE = "face"  #: 17(1)3 face generation, replacement, manipulation, gesture manipulation
    IMMERSIVE = "immersive"  #: 17(1)4 immersive realistic scenes
    OTHER = "other"  #: 17(1)5 other services that significantly change information content
    OUTSIDE = "outside"  #: generation / deep synthesis outside Art. 17(1)

    @property
    def within_art17_1(self) -> bool:
        return self is not ServiceType.OUTSIDE

    @property
    def biometric(self) -> bool:
        """Face or voice services, whose editing of a real person needs consent (DSP Art. 14)."""
        return self in (ServiceType.FACE, ServiceType.VOICE)


class ContentType(str, enum.Enum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    VIRTUAL_SCENE = "virtual_scene"


class LabelKind(str, enum.Enum):
    EXPLICIT = "explicit"  #: visible / audible label in the content (Measures Art. 4, GB 45438 section 5)
    METADATA = "metadata"  #: implicit label in file metadata (Art. 5, GB 45438 6.1 + Annex E)
    WATERMARK = "watermark"  #: content implicit label (Art. 5: encouraged)
    AGREEMENT = "agreement"  #: labeling method and style disclosed in the user service agreement (Art. 8)


#: GB 45438 clause of the explicit label per content type.
EXPLICIT_CLAUSE = {
    ContentType.TEXT: "GB 45438 5.1",
    ContentType.IMAGE: "GB 45438 5.2",
    ContentType.AUDIO: "GB 45438 5.3",
    ContentType.VIDEO: "GB 45438 5.4",
    ContentType.VIRTUAL_SCENE: "GB 45438 5.5",
}

_WATERMARKABLE = frozenset({ContentType.IMAGE, ContentType.AUDIO, ContentType.VIDEO})

# Same printable-ASCII set as the AIGC metadata values (GB 45438 Annex E j), without '"'.
_CODE_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}


def check_provider_code(code: object, what: str = "provider code") -> str:
    """Validate a provider code for the ``ContentProducer`` / ``ContentPropagator`` fields.

    Only the charset is enforced (printable ASCII without space, quote and backslash; Annex E j). Provider
    names in Chinese are rejected: use the code assigned under the TC260 coding rule (observed as 27
    digits/uppercase letters).
    """
    if not isinstance(code, str):
        raise TypeError(f"{what} must be a str, got {type(code).__name__}")
    if not code:
        raise PolicyError(f"{what} is empty")
    bad = sorted({ch for ch in code if ch not in _CODE_CHARS})
    if bad:
        raise PolicyError(
            f"{what} {code!r} contains characters outside GB 45438 Annex E j) "
            "(printable ASCII without space, '\"' "
            f"and '\\'): {bad!r}; use the provider code assigned under the TC260 coding rule, not a name"
        )
    return code


@dataclass(frozen=True)
class Requirements:
    """Labels owed for one content type under one policy.

    ``due`` are required (or required by this engine's policy, for the watermark of LABELING.md section 10);
    ``recommended`` are applied by default but not mandated. ``explicit_clause`` names the GB clause of the
    explicit label form. ``log_recipient`` is set when the unlabeled-copy recipient must be logged (Measures
    Art. 9).
    """

    content_type: ContentType
    due: frozenset[LabelKind]
    recommended: frozenset[LabelKind] = frozenset()
    explicit_clause: str | None = None
    log_recipient: bool = False
    notes: tuple[str, ...] = ()

    def __contains__(self, kind: object) -> bool:
        return LabelKind(kind) in self.due

    @property
    def applied(self) -> frozenset[LabelKind]:
        """What the engine applies by default: due plus recommended."""
        return self.due | self.recommended


@dataclass(frozen=True)
class Policy:
    """Who produces the content and under which service type; answers which labels are due.

    ``unlabeled_copy_recipient``: set when a user asked for a copy without the explicit label (Measures Art.
    9); the explicit label is then dropped, the metadata label stays, and the recipient must be logged in the
    ledger. ``biometric_edit``: the output edits a real person's face or voice (DSP Art. 14); for face/voice
    services this needs ``consent_ref`` (a reference to the recorded consent) or construction fails.
    """

    provider_code: str
    service_type: ServiceType
    unlabeled_copy_recipient: str | None = None
    biometric_edit: bool = False
    consent_ref: str | None = None

    def __post_init__(self) -> None:
        check_provider_code(self.provider_code)
        try:
            st = ServiceType(self.service_type)
        except ValueError:
            raise PolicyError(
                f"unknown service type {self.service_type!r}; expected one of {[s.value for s in ServiceType]}"
            ) from None
        object.__setattr__(self, "service_type", st)
        if self.unlabeled_copy_recipient is not None and (
            not isinstance(self.unlabeled_copy_recipient, str) or not self.unlabeled_copy_recipient.strip()
        ):
            raise PolicyError(
                "unlabeled_copy_recipient must name the account that receives the unlabeled copy "
                "(Measures Art. 9 requires logging the recipient for at least six months)"
            )
        consent_missing = not isinstance(self.consent_ref, str) or not self.consent_ref.strip()
        if self.biometric_edit and st.biometric and consent_missing:
            raise ConsentRequiredError(
                f"{st.value} editing of a real person's biometric features needs the edited person's consent "
                "(DSP Art. 14): pass consent_ref= with a reference to the recorded consent"
            )

    @property
    def unlabeled_copy(self) -> bool:
        return self.unlabeled_copy_recipient is not None

    def requirements(self, content_type: ContentType | str) -> Requirements:
        """Labels owed for ``content_type`` (LABELING.md section 10)."""
        try:
            ct = ContentType(content_type)
        except ValueError:
            raise PolicyError(
                f"unknown content type {content_type!r}; expected one of {[c.value for c in ContentType]}"
            ) from None
        due = {LabelKind.METADATA, LabelKind.AGREEMENT}
        recommended: set[LabelKind] = set()
        notes: list[str] = []
        if ct in _WATERMARKABLE:
            (due if self.service_type.within_art17_1 else recommended).add(LabelKind.WATERMARK)
        if ct is ContentType.TEXT:
            notes.append("metadata applies when the text is delivered as a file (docx/pdf/md)")
        if ct is ContentType.VIRTUAL_SCENE:
            notes.append("metadata applies when a file is exported")
        if self.service_type.within_art17_1:
            if self.unlabeled_copy:
                notes.append(
                    "unlabeled copy requested (Measures Art. 9): no explicit label; "
                    "the user agreement must set the "
                    "user's labeling duty; log the recipient for at least six months"
                )
            else:
                due.add(LabelKind.EXPLICIT)
                notes.append("download, copy and export must keep the explicit label inside the file (Art. 4)")
        else:
            notes.append(
                "outside DSP Art. 17(1): explicit label not mandated by Art. 4, applied by default "
                "(DSP Art. 17(2) requires offering a labeling function)"
            )
            if not self.unlabeled_copy:
                recommended.add(LabelKind.EXPLICIT)
        if self.biometric_edit and self.service_type.biometric:
            notes.append(f"biometric editing with consent reference {self.consent_ref!r} (DSP Art. 14)")
        return Requirements(
            content_type=ct,
            due=frozenset(due),
            recommended=frozenset(recommended),
            explicit_clause=EXPLICIT_CLAUSE[ct] if LabelKind.EXPLICIT in due | recommended else None,
            log_recipient=self.unlabeled_copy,
            notes=tuple(notes),
        )
