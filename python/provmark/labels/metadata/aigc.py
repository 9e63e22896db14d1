"""The GB 45438 Annex E ``AIGC`` metadata value: build, validate and parse.

Writer rules (LABELING.md 5.1-5.3): the seven keys in Annex E order, every value a string, values only from
the GB 18030 code points 0x21, 0x23-0x5B, 0x5D-0x7E (printable ASCII without space, ``"`` and ``\\``),
``Label`` one of "1"/"2"/"3", compact UTF-8 JSON, no Base64; on first write ContentPropagator =
ContentProducer and PropagateID = ProduceID. *Bare* ``{...}`` goes in containers whose key is already
``AIGC``; *wrapped* ``{"AIGC": {...}}`` elsewhere. Readers accept both shapes, reject duplicate keys, unknown
keys and non-string values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace

from ..errors import AigcFormatError

__all__ = ["FIELDS", "LABEL_VALUES", "AigcLabel", "check_value_charset", "is_allowed_char"]

#: Annex E key order.
FIELDS = (
    "Label",
    "ContentProducer",
    "ProduceID",
    "ReservedCode1",
    "ContentPropagator",
    "PropagateID",
    "ReservedCode2",
)
#: "1" = is AIGC, "2" = possibly AIGC (user declared), "3" = suspected AIGC (platform detected).
LABEL_VALUES = ("1", "2", "3")
_ATTRS = (
    "label",
    "content_producer",
    "produce_id",
    "reserved_code1",
    "content_propagator",
    "propagate_id",
    "reserved_code2",
)
_MAX_JSON = 65536


def is_allowed_char(ch: str) -> bool:
    """Annex E j): GB 18030 code points 0x21, 0x23-0x5B, 0x5D-0x7E."""
    c = ord(ch)
    return c == 0x21 or 0x23 <= c <= 0x5B or 0x5D <= c <= 0x7E


def check_value_charset(name: str, value: str, *, allow_quote: bool = False) -> None:
    """Raise :class:`AigcFormatError` if ``value`` has a character outside Annex E j).

    ``allow_quote``: accept ``"`` (Annex E allows the escaped quote ``\\"``); readers pass True, writers
    False.
    """
    bad = sorted({ch for ch in value if not (is_allowed_char(ch) or (allow_quote and ch == '"'))})
    if bad:
        raise AigcFormatError(
            f"AIGC field {name} has characters outside GB 45438 Annex E j) "
            f"(printable ASCII without space, '\"' and "
            f"'\\'): {bad!r}; provider names must be given as codes"
        )


@dataclass(frozen=True)
class AigcLabel:
    """One ``AIGC`` metadata label. Field names follow Annex E in snake_case; all values are strings."""

    label: str = "1"
    content_producer: str = ""
    produce_id: str = ""
    reserved_code1: str = ""
    content_propagator: str = ""
    propagate_id: str = ""
    reserved_code2: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, str):
                raise AigcFormatError(
                    f"AIGC field {FIELDS[_ATTRS.index(f.name)]} must be a string, got {type(v).__name__} {v!r}"
                )
        if self.label not in LABEL_VALUES:
            raise AigcFormatError(f"AIGC Label must be one of the strings {LABEL_VALUES}, got {self.label!r}")

    # -----------------------------------------------------------------------------------------------------
    # build
    @classmethod
    def first_write(cls, producer: str, produce_id: str, reserved_code1: str = "") -> AigcLabel:
        """The producer's label: Label "1", and propagator fields equal to the producer fields (Annex E note
        1)."""
        lab = cls("1", producer, produce_id, reserved_code1, producer, produce_id, "")
        lab.validate()
        return lab

    def with_propagation(self, propagator: str, propagate_id: str, reserved_code2: str = "") -> AigcLabel:
        """The lawful platform update: fields 1-4 kept, fields 5-7 replaced (Measures Art. 6, 10)."""
        lab = replace(self, content_propagator=propagator, propagate_id=propagate_id, reserved_code2=reserved_code2)
        lab.validate()
        return lab

    def with_reserved_code1(self, value: str) -> AigcLabel:
        lab = replace(self, reserved_code1=value)
        lab.validate()
        return lab

    def validate(self, *, strict: bool = True) -> AigcLabel:
        """Check the charset (writers: no ``"``) and the fields the Label value needs; returns self."""
        for name, attr in zip(FIELDS, _ATTRS, strict=False):
            check_value_charset(name, getattr(self, attr), allow_quote=not strict)
        if self.label == "1" and not (self.content_producer and self.produce_id):
            raise AigcFormatError('AIGC Label "1" needs ContentProducer and ProduceID')
        if self.label in ("2", "3") and not (self.content_propagator and self.propagate_id):
            raise AigcFormatError(
                f'AIGC Label "{self.label}" (platform inference) needs ContentPropagator and PropagateID'
            )
        return self

    def same_origin(self, other: AigcLabel) -> bool:
        """True when fields 1-4 (the producer's part) are equal."""
        return (self.label, self.content_producer, self.produce_id, self.reserved_code1) == (
            other.label,
            other.content_producer,
            other.produce_id,
            other.reserved_code1,
        )

    # -----------------------------------------------------------------------------------------------
    # serialise
    def to_dict(self) -> dict[str, str]:
        return {name: getattr(self, attr) for name, attr in zip(FIELDS, _ATTRS, strict=False)}

    def to_json(self, *, wrapped: bool = False) -> str:
        """Compact JSON in Annex E key order; ``wrapped`` gives ``{"AIGC":{...}}``."""
        self.validate()
        d = self.to_dict()
        return json.dumps({"AIGC": d} if wrapped else d, ensure_ascii=True, separators=(",", ":"))

    # ------------------------------------------------------------------------------------------------- parse
    @classmethod
    def parse(cls, value: str | bytes, *, strict: bool = True) -> AigcLabel:
        """Parse a wrapped or bare ``AIGC`` JSON value.

        Always rejected: invalid UTF-8 or JSON, duplicate keys, a non-object, unknown keys, non-string values,
        a missing or invalid ``Label``. ``strict`` also enforces the Annex E charset and the fields the Label
        needs. Missing optional fields read as "". Trailing NUL bytes (C-string writers) are ignored.
        """
        if isinstance(value, (bytes, bytearray, memoryview)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise AigcFormatError(f"AIGC value is not valid UTF-8: {exc}") from None
        if not isinstance(value, str):
            raise TypeError(f"AIGC value must be str or bytes, got {type(value).__name__}")
        text = value.rstrip("\x00").strip()
        if len(text) > _MAX_JSON:
            raise AigcFormatError(f"AIGC value is {len(text)} characters long; refusing more than {_MAX_JSON}")

        def no_dupes(pairs):
            keys = [k for k, _ in pairs]
            dup = sorted({k for k in keys if keys.count(k) > 1})
            if dup:
                raise AigcFormatError(f"AIGC JSON has duplicate keys {dup}")
            return dict(pairs)

        try:
            obj = json.loads(text, object_pairs_hook=no_dupes)
        except json.JSONDecodeError as exc:
            raise AigcFormatError(f"AIGC value is not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise AigcFormatError(f"AIGC value must be a JSON object, got {type(obj).__name__}")
        if set(obj) == {"AIGC"}:
            obj = obj["AIGC"]
            if not isinstance(obj, dict):
                raise AigcFormatError(f'"AIGC" must hold a JSON object, got {type(obj).__name__}')
        unknown = sorted(set(obj) - set(FIELDS))
        if unknown:
            raise AigcFormatError(f"AIGC JSON has unknown keys {unknown}; expected {list(FIELDS)}")
        if "Label" not in obj:
            raise AigcFormatError("AIGC JSON has no Label")
        for k, v in obj.items():
            if not isinstance(v, str):
                raise AigcFormatError(f"AIGC field {k} must be a string, got {type(v).__name__} {v!r}")
        lab = cls(**{attr: obj.get(name, "") for name, attr in zip(FIELDS, _ATTRS, strict=False)})
        if strict:
            lab.validate(strict=False)
        return lab
