"""Integrity of the metadata label: an Ed25519 signature in ``ReservedCode1`` (LABELING.md section 7).

``ReservedCode1`` = ``PM1.<key id>.<payload hex>.<signature>``: the signer's key id (16 hex digits: the first
8 bytes of SHA-256 of the raw public key), the watermark payload the content carries, and the base64url
Ed25519 signature (no padding) over :func:`canonical_message` = the producer fields (Label, ContentProducer,
ProduceID) and the payload. Every character is in the Annex E charset. The fields a platform may rewrite (5-7)
are not signed, so a lawful propagation update keeps the producer's signature valid; any change to fields 1-3
or to the payload breaks it. Public keys are PEM files (``FILE.pub``) anyone may hold for verification.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .._fileio import atomic_write_bytes
from .errors import LabelError
from .metadata.aigc import AigcLabel

__all__ = [
    "SignatureCheck",
    "SignatureStatus",
    "SigningKey",
    "VerifyKey",
    "canonical_message",
    "generate_signing_key_files",
    "load_public_keys",
    "parse_reserved_code",
    "sign_label",
    "verify_label",
]

_PREFIX = "PM1"
_RC_RE = re.compile(r"\APM1\.([0-9a-f]{16})\.((?:[0-9a-f]{2}){2,32})\.([A-Za-z0-9_-]{86})\Z")
_DOMAIN = b"provmark/aigc-signature/v1\x00"


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise ImportError("signing needs the 'cryptography' package (pip install cryptography)") from exc
    return serialization, ed25519


def _key_id(raw_public: bytes) -> str:
    return hashlib.sha256(raw_public).digest()[:8].hex()


class VerifyKey:
    """An Ed25519 public key used to check ``ReservedCode1`` signatures."""

    def __init__(self, raw: bytes) -> None:
        _serialization, ed25519 = _crypto()
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != 32:
            raise LabelError("an Ed25519 public key is 32 raw bytes")
        self._raw = bytes(raw)
        self._key = ed25519.Ed25519PublicKey.from_public_bytes(self._raw)

    @property
    def key_id(self) -> str:
        return _key_id(self._raw)

    def raw(self) -> bytes:
        return self._raw

    def verify(self, signature: bytes, message: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            self._key.verify(signature, message)
            return True
        except InvalidSignature:
            return False

    def to_pem(self) -> bytes:
        serialization, _ = _crypto()
        return self._key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    @classmethod
    def load(cls, path: str | os.PathLike) -> VerifyKey:
        serialization, ed25519 = _crypto()
        data = Path(path).read_bytes()
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise LabelError(f"{os.fspath(path)!r} is not a PEM public key: {exc}") from None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise LabelError(f"{os.fspath(path)!r} is not an Ed25519 public key")
        return cls(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    def __repr__(self) -> str:
        return f"VerifyKey(id={self.key_id})"


class SigningKey:
    """An Ed25519 private key. ``save(FILE)`` writes FILE (PKCS#8 PEM, mode 0600) and FILE.pub."""

    def __init__(self, private) -> None:
        self._key = private

    @classmethod
    def generate(cls) -> SigningKey:
        _, ed25519 = _crypto()
        return cls(ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str | os.PathLike) -> SigningKey:
        serialization, ed25519 = _crypto()
        p = Path(path)
        try:
            key = serialization.load_pem_private_key(p.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise LabelError(f"{os.fspath(path)!r} is not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise LabelError(f"{os.fspath(path)!r} is not an Ed25519 private key")
        return cls(key)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> tuple[Path, Path]:
        serialization, _ = _crypto()
        p = Path(path)
        pub = p.with_name(p.name + ".pub")
        for q in (p, pub):
            if q.exists() and not overwrite:
                raise FileExistsError(f"{str(q)!r} exists; refusing to overwrite a key (pass overwrite=True)")
        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        atomic_write_bytes(p, pem, mode=0o600)
        atomic_write_bytes(pub, self.public_key.to_pem(), mode=0o644)
        return p, pub

    @property
    def public_key(self) -> VerifyKey:
        serialization, _ = _crypto()
        return VerifyKey(
            self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )

    @property
    def key_id(self) -> str:
        return self.public_key.key_id

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"SigningKey(id={self.key_id})"

    def __reduce__(self):
        raise TypeError("SigningKey cannot be pickled (it would copy the private key)")


def canonical_message(label: AigcLabel, payload: bytes) -> bytes:
    """Bytes that are signed: domain tag + JSON array [Label, ContentProducer, ProduceID, payload hex]."""
    body = json.dumps(
        [label.label, label.content_producer, label.produce_id, bytes(payload).hex()],
        ensure_ascii=True,
        separators=(",", ":"),
    )
    return _DOMAIN + body.encode("ascii")


def _payload_bytes(payload) -> bytes:
    data = payload.data if hasattr(payload, "data") and hasattr(payload, "bits") else payload
    if not isinstance(data, (bytes, bytearray)) or not 2 <= len(data) <= 32:
        raise LabelError(f"payload must be a provmark.Payload or 2..32 bytes, got {type(payload).__name__}")
    return bytes(data)


def sign_label(label: AigcLabel, payload, key: SigningKey) -> AigcLabel:
    """Return ``label`` with ``ReservedCode1`` set to the producer signature over fields 1-3 and
    ``payload``."""
    data = _payload_bytes(payload)
    sig = key.sign(canonical_message(label, data))
    code = ".".join((_PREFIX, key.key_id, data.hex(), base64.urlsafe_b64encode(sig).rstrip(b"=").decode("ascii")))
    return label.with_reserved_code1(code)


@dataclass(frozen=True)
class ReservedCode:
    key_id: str
    payload: bytes
    signature: bytes


def parse_reserved_code(value: str) -> ReservedCode | None:
    """Parse a provmark ``ReservedCode1``; None when the field is empty or not in provmark form."""
    m = _RC_RE.match(value or "")
    if not m:
        return None
    try:
        sig = base64.urlsafe_b64decode(m.group(3) + "==")
    except (binascii.Error, ValueError):
        return None
    return ReservedCode(m.group(1), bytes.fromhex(m.group(2)), sig)


class SignatureStatus(str, enum.Enum):
    VALID = "valid"  #: signed by a known key, fields 1-3 and payload unchanged
    INVALID = "invalid"  #: signed by a known key, but the signed data was altered (or the signature was)
    UNKNOWN_KEY = "unknown_key"  #: provmark signature by a key we were not given
    UNSIGNED = "unsigned"  #: ReservedCode1 empty
    FOREIGN = "foreign"  #: ReservedCode1 holds something that is not a provmark signature (e.g. SM2 SecurityData)


@dataclass(frozen=True)
class SignatureCheck:
    status: SignatureStatus
    key_id: str | None = None
    payload: bytes | None = None

    @property
    def valid(self) -> bool:
        return self.status is SignatureStatus.VALID


def load_public_keys(paths) -> dict[str, VerifyKey]:
    keys = {}
    for p in paths:
        k = p if isinstance(p, VerifyKey) else VerifyKey.load(p)
        keys[k.key_id] = k
    return keys


def verify_label(label: AigcLabel, public_keys=()) -> SignatureCheck:
    """Check the provmark signature in ``ReservedCode1`` against ``public_keys`` (VerifyKey objects or
    paths)."""
    if not label.reserved_code1:
        return SignatureCheck(SignatureStatus.UNSIGNED)
    rc = parse_reserved_code(label.reserved_code1)
    if rc is None:
        return SignatureCheck(SignatureStatus.FOREIGN)
    keys = public_keys if isinstance(public_keys, dict) else load_public_keys(public_keys)
    key = keys.get(rc.key_id)
    if key is None:
        return SignatureCheck(SignatureStatus.UNKNOWN_KEY, rc.key_id, rc.payload)
    ok = key.verify(rc.signature, canonical_message(label, rc.payload))
    return SignatureCheck(SignatureStatus.VALID if ok else SignatureStatus.INVALID, rc.key_id, rc.payload)


def generate_signing_key_files(path: str | os.PathLike, *, overwrite: bool = False) -> SigningKey:
    """Create an Ed25519 key: ``path`` (private, 0600) and ``path.pub`` (public, for verifiers). For the
    CLI."""
    key = SigningKey.generate()
    key.save(path, overwrite=overwrite)
    return key
