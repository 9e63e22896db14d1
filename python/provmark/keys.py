"""Watermark keys: the 256-bit secret every pattern derives from."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from ._fileio import atomic_write_text

_KEY_BYTES = 32
_FILE_MAGIC = "provmark-key v1"
_ID_DOMAIN = b"provmark/key-id/v1"


class Key:
    """A 256-bit watermark key.

    The secret never appears in ``repr``, ``str``, logs or exception messages; ``key.id`` is a short public
    identifier (a domain-separated SHA-256 prefix) that is safe to log and to store in records.
    """

    __slots__ = ("__secret", "_id")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, (bytes, bytearray, memoryview)):
            raise TypeError(f"Key: secret must be bytes, got {type(secret).__name__}")
        secret = bytes(secret)
        if len(secret) != _KEY_BYTES:
            raise ValueError(f"Key: secret must be {_KEY_BYTES} bytes, got {len(secret)}")
        self.__secret = secret
        self._id = hashlib.sha256(_ID_DOMAIN + secret).hexdigest()[:16]

    @classmethod
    def generate(cls) -> Key:
        """A fresh key from the operating system's CSPRNG."""
        return cls(secrets.token_bytes(_KEY_BYTES))

    @classmethod
    def from_bytes(cls, secret: bytes) -> Key:
        """A key from exactly 32 bytes of secret material."""
        return cls(secret)

    @classmethod
    def coerce(cls, key: object, where: str = "key") -> Key:
        """Accept a Key or its 32 secret bytes (the forms every API takes); anything else raises TypeError."""
        if isinstance(key, Key):
            return key
        if isinstance(key, (bytes, bytearray, memoryview)):
            if len(key) != _KEY_BYTES:
                raise ValueError(f"{where}: key must be {_KEY_BYTES} bytes, got {len(key)}")
            return cls(bytes(key))
        kind = type(key).__name__
        raise TypeError(f"{where}: key must be a provmark.Key or its {_KEY_BYTES} secret bytes, got {kind}")

    @property
    def id(self) -> str:
        """Public key id: 16 hex characters, safe to log."""
        return self._id

    def secret_bytes(self) -> bytes:
        """The raw secret (for the native core). Handle with care: never log it."""
        return self.__secret

    # -- files --------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the key file atomically with mode 0600. Refuses to replace an existing file by default."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"Key.save: {path} exists (pass overwrite=True to replace it)")
        text = f"{_FILE_MAGIC}\nid {self.id}\nsecret {self.__secret.hex()}\n"
        atomic_write_text(path, text, mode=0o600)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Key:
        """Read a key file written by :meth:`save`; a corrupt or wrong-size file raises ValueError."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"Key.load: no key file at {path}") from None
        if len(raw) > 4096:
            raise ValueError(f"Key.load: {path} is not a provmark key file (too large)")
        try:
            lines = raw.decode("ascii").splitlines()
        except UnicodeDecodeError:
            raise ValueError(f"Key.load: {path} is not a provmark key file (not ASCII text)") from None
        if len(lines) != 3 or lines[0] != _FILE_MAGIC:
            raise ValueError(f"Key.load: {path} is not a provmark key file (bad header or line count)")
        if not lines[1].startswith("id ") or not lines[2].startswith("secret "):
            raise ValueError(f"Key.load: {path} is corrupt (missing id or secret line)")
        hex_secret = lines[2][len("secret ") :]
        try:
            secret = bytes.fromhex(hex_secret)
        except ValueError:
            raise ValueError(f"Key.load: {path} is corrupt (secret is not hex)") from None
        if len(secret) != _KEY_BYTES:
            raise ValueError(f"Key.load: {path} holds a {len(secret)}-byte secret, expected {_KEY_BYTES}")
        key = cls(secret)
        if key.id != lines[1][len("id ") :]:
            raise ValueError(f"Key.load: {path} is corrupt (secret does not match its id)")
        return key

    # -- identity -----------------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return secrets.compare_digest(self.__secret, other.__secret)

    def __hash__(self) -> int:
        return hash(self._id)

    def __repr__(self) -> str:
        return f"Key(id={self.id})"

    __str__ = __repr__

    def __reduce__(self):  # pickling would copy the secret into places users don't expect
        raise TypeError("Key objects cannot be pickled; pass the key file path instead")
