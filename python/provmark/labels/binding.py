"""Binding content, metadata and ledger: the watermark payload is derived from the label.

payload = first ``bits/8`` bytes of HMAC-SHA256(watermark key secret, "provmark/payload/v1" 0 producer 0
ProduceID). Only the holder of the watermark key can derive it, it differs per item, and the same value sits
in the watermark, in the signed ``ReservedCode1`` and in the ledger record, so a platform that finds the
watermark can look up the record even after the metadata was stripped.
"""

from __future__ import annotations

import hashlib
import hmac

from .errors import LabelError
from .policy import check_provider_code

__all__ = ["derive_payload", "derive_payload_bytes"]

_DOMAIN = b"provmark/payload/v1\x00"


def _secret(key) -> bytes:
    from ..keys import Key

    try:
        return Key.coerce(key, "derive_payload").secret_bytes()
    except ValueError as exc:
        raise LabelError(str(exc)) from None


def derive_payload_bytes(key, producer: str, produce_id: str, bits: int = 64) -> bytes:
    """The payload bytes for (producer, ProduceID) under ``key`` (a Key or 32 secret bytes)."""
    check_provider_code(producer, "producer code")
    if not isinstance(produce_id, str) or not produce_id:
        raise LabelError("produce_id must be a non-empty str")
    if isinstance(bits, bool) or not isinstance(bits, int) or bits % 8 or not 16 <= bits <= 256:
        raise LabelError(f"bits must be a multiple of 8 in [16, 256], got {bits!r}")
    msg = _DOMAIN + producer.encode("utf-8") + b"\x00" + produce_id.encode("utf-8")
    return hmac.new(_secret(key), msg, hashlib.sha256).digest()[: bits // 8]


def derive_payload(key, producer: str, produce_id: str, bits: int = 64):
    """Same as :func:`derive_payload_bytes`, as a ``provmark.Payload`` (imported lazily)."""
    from ..payload import Payload

    return Payload(derive_payload_bytes(key, producer, produce_id, bits), bits)
