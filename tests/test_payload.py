"""provmark.Payload: construction, coding round trips through the native ECC, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from provmark import Payload


def test_from_int_and_bytes() -> None:
    p = Payload(0x0102030405060708)
    assert p.bits == 64 and p.data == bytes(range(1, 9)) and int(p) == 0x0102030405060708
    assert Payload(bytes(range(1, 9))) == p and Payload.from_hex("0x0102030405060708") == p
    assert Payload(5, bits=16).data == b"\x00\x05"
    assert Payload(b"\xff" * 32).bits == 256
    assert Payload.coerce(p) is p and Payload.coerce(7) == Payload(7)
    assert len({p, Payload(int(p))}) == 1


@pytest.mark.parametrize("bits", [16, 24, 64, 128, 256])
def test_round_trip_with_noise(bits: int, rng: np.random.Generator) -> None:
    p = Payload(rng.bytes(bits // 8))
    coded = p.encode()
    assert coded.dtype == np.uint8 and coded.size == Payload.coded_length(bits)
    soft = (2.0 * coded - 1.0) + rng.normal(0, 0.5, coded.size)
    got, confidence = Payload.decode_with_confidence(soft, bits)
    assert got == p and 0.0 < confidence <= 1.0


def test_wrong_payload_never_returned_for_noise(rng: np.random.Generator) -> None:
    n = Payload.coded_length(64)
    assert all(Payload.decode(rng.normal(size=n)) is None for _ in range(300))


@pytest.mark.parametrize(
    "args,exc,match",
    [
        ((b"\x00",), ValueError, "multiple of 8"),
        ((b"\x00" * 33,), ValueError, "multiple of 8"),
        ((b"\x00" * 8, 128), ValueError, "8 bytes given for a 128-bit"),
        ((-1,), ValueError, "does not fit"),
        ((1 << 64,), ValueError, "does not fit"),
        ((3, 12), ValueError, "multiple of 8"),
        (("abc",), TypeError, "bytes or int"),
        ((True,), TypeError, "bytes or int"),
        ((1.5,), TypeError, "bytes or int"),
    ],
)
def test_bad_input(args, exc, match) -> None:
    with pytest.raises(exc, match=match):
        Payload(*args)


def test_bad_soft_input() -> None:
    n = Payload.coded_length(64)
    with pytest.raises(ValueError, match="1-D"):
        Payload.decode(np.zeros((2, n)))
    with pytest.raises(TypeError, match="float"):
        Payload.decode(np.zeros(n, dtype=np.int32))
    with pytest.raises(ValueError, match="finite"):
        Payload.decode(np.full(n, np.nan))
    with pytest.raises(ValueError):
        Payload.decode(np.zeros(n - 1))
    with pytest.raises(ValueError, match="hex"):
        Payload.from_hex("zz")
