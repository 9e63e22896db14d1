from __future__ import annotations

import dataclasses

import pytest

from provmark import Detection


def test_frozen_and_serialisable() -> None:
    d = Detection(found=True, payload=b"\x01\x02", p_value=1e-9, score=12.5, details={"shift": (1, 2)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.found = False  # type: ignore[misc]
    assert d.to_dict()["payload"] == "0102" and d.payload_hex == "0102"


def test_invariants() -> None:
    with pytest.raises(ValueError, match="requires a payload"):
        Detection(found=True, payload=None, p_value=0.0, score=1.0)
    with pytest.raises(ValueError, match="p_value"):
        Detection(found=False, payload=None, p_value=1.5, score=0.0)
