"""Payloads: the bits a watermark carries, with CRC and error-correcting code (csrc/core/ecc.*)."""

from __future__ import annotations

import numpy as np

from . import _core

DEFAULT_BITS = 64
MIN_BITS = 16
MAX_BITS = 256
LIST_SIZE = 256  # paths CRC-checked by Payload.decode_list (docs/ecc.md: gain and false-accept cost)


def _check_bits(bits: object) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise TypeError(f"Payload: bits must be an int, got {type(bits).__name__}")
    if bits % 8 or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"Payload: bits must be a multiple of 8 in [{MIN_BITS}, {MAX_BITS}], got {bits}")
    return bits


class Payload:
    """A fixed-size payload (64 bits by default; any multiple of 8 from 16 to 256).

    Build it from ``bytes`` (whose length sets the size unless ``bits`` is given) or from a non-negative
    ``int`` that fits in ``bits``. Encoding appends a CRC-32 and applies a rate-1/3 convolutional code
    (K=7); decoding is soft-decision Viterbi and returns None unless the CRC passes.
    """

    __slots__ = ("_bits", "_data")

    def __init__(self, data: bytes | bytearray | memoryview | int, bits: int | None = None) -> None:
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data)
            nbits = _check_bits(8 * len(data) if bits is None else bits)
            if len(data) * 8 != nbits:
                raise ValueError(f"Payload: {len(data)} bytes given for a {nbits}-bit payload")
        elif isinstance(data, int) and not isinstance(data, bool):
            nbits = _check_bits(DEFAULT_BITS if bits is None else bits)
            if data < 0 or data >= 1 << nbits:
                raise ValueError(f"Payload: integer {data} does not fit in {nbits} unsigned bits")
            data = data.to_bytes(nbits // 8, "big")
        else:
            raise TypeError(f"Payload: expected bytes or int, got {type(data).__name__}")
        self._data = data
        self._bits = nbits

    @classmethod
    def coerce(cls, value: Payload | bytes | int, bits: int | None = None) -> Payload:
        """Accept a Payload, bytes or int (the forms every embed function takes)."""
        if isinstance(value, Payload):
            if bits is not None and value.bits != bits:
                raise ValueError(f"Payload: expected {bits} bits, got {value.bits}")
            return value
        return cls(value, bits)

    @classmethod
    def from_hex(cls, text: str) -> Payload:
        """From a hex string (an optional 0x prefix is allowed)."""
        text = text.strip().lower().removeprefix("0x")
        try:
            return cls(bytes.fromhex(text))
        except ValueError as e:
            raise ValueError(f"Payload.from_hex: {e}") from None

    @property
    def bits(self) -> int:
        return self._bits

    @property
    def data(self) -> bytes:
        return self._data

    def __bytes__(self) -> bytes:
        return self._data

    def __int__(self) -> int:
        return int.from_bytes(self._data, "big")

    def hex(self) -> str:
        return self._data.hex()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Payload):
            return self._data == other._data
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._data)

    def __repr__(self) -> str:
        return f"Payload(0x{self.hex()}, bits={self.bits})"

    # -- coding -------------------------------------------------------------------------------------------
    @staticmethod
    def coded_length(bits: int = DEFAULT_BITS) -> int:
        """Number of coded bits that ``encode`` produces for a ``bits``-bit payload."""
        return int(_core.ecc_coded_length(_check_bits(bits)))

    def encode(self) -> np.ndarray:
        """Coded bits (uint8 0/1) of length ``coded_length(self.bits)``: payload + CRC-32, conv. coded."""
        return _core.ecc_encode(self._data)

    @classmethod
    def decode(cls, soft: np.ndarray, bits: int = DEFAULT_BITS) -> Payload | None:
        """Soft-decision decode. ``soft[i] > 0`` favours coded bit 1, ``|soft[i]|`` is the confidence and
        0 is an erasure. Returns None unless the CRC passes."""
        payload, _confidence = cls.decode_with_confidence(soft, bits)
        return payload

    @classmethod
    def decode_with_confidence(cls, soft: np.ndarray, bits: int = DEFAULT_BITS) -> tuple[Payload | None, float]:
        """Like :meth:`decode`, also returning the decoder's confidence (see docs/ecc.md)."""
        bits = _check_bits(bits)
        data, confidence = _core.ecc_decode(_check_soft(soft), bits)
        return (None if data is None else cls(data)), float(confidence)

    @classmethod
    def decode_list(
        cls, soft: np.ndarray, bits: int = DEFAULT_BITS, list_size: int | None = None
    ) -> tuple[Payload | None, int]:
        """CRC-aided list decoding: when the Viterbi path fails its CRC, the ``list_size`` (default
        ``LIST_SIZE``) most likely paths are CRC-checked from the best down (docs/ecc.md). Returns ``(payload or
        None, crc_checks)``: every check is a 2**-32 chance for a random input to pass, so a detector's
        false-accept bound multiplies by ``crc_checks`` (1 when the Viterbi path passed, at most
        ``list_size + 1``)."""
        bits = _check_bits(bits)
        list_size = LIST_SIZE if list_size is None else list_size
        if isinstance(list_size, bool) or not isinstance(list_size, int):
            raise TypeError(f"Payload.decode_list: list_size must be an int, got {type(list_size).__name__}")
        data, _confidence, checked, _rank = _core.ecc_decode_list(_check_soft(soft), bits, list_size)
        return (None if data is None else cls(data)), int(checked)


def _check_soft(soft: np.ndarray) -> np.ndarray:
    arr = np.asarray(soft)
    if arr.ndim != 1:
        raise ValueError(f"Payload.decode: soft must be 1-D, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"Payload.decode: soft must be a float array, got {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("Payload.decode: soft values must be finite")
    return np.ascontiguousarray(arr, dtype=np.float32)
