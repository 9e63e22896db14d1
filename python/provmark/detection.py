"""The result every detector returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Detection:
    """Outcome of looking for a watermark in one item (image, clip, file).

    Attributes:
        found: True when the detection statistic clears the threshold for the configured false-positive
            rate AND the payload's CRC passed.
        payload: the recovered payload bytes when ``found``, else None.
        p_value: probability that an unmarked item scores at least this high (1.0 when nothing was tested).
        score: the detector's statistic (higher means stronger evidence of a mark).
        details: method-specific facts: geometry or offsets, per-segment scores, timings.
    """

    found: bool
    payload: bytes | None
    p_value: float
    score: float
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.found and self.payload is None:
            raise ValueError("Detection: found=True requires a payload")
        if not 0.0 <= self.p_value <= 1.0:
            raise ValueError(f"Detection: p_value must be in [0, 1], got {self.p_value!r}")

    @property
    def payload_hex(self) -> str | None:
        """The payload as lowercase hex, or None."""
        return None if self.payload is None else self.payload.hex()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view (payload as hex)."""
        return {
            "found": self.found,
            "payload": self.payload_hex,
            "p_value": self.p_value,
            "score": self.score,
            "details": self.details,
        }
