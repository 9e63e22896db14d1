"""Ledger records and the backend interface (SQLite now, PostgreSQL later through the same interface)."""

from __future__ import annotations

import abc
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "GENESIS",
    "ChainReport",
    "Ledger",
    "LedgerRecord",
    "StoredRecord",
    "payload_hex",
    "read_jsonl",
    "record_hash",
    "verify_records",
]

#: prev_hash of the first record of a fresh ledger.
GENESIS = "0" * 64
_HASHED = (
    "seq",
    "time",
    "key_id",
    "signing_key_id",
    "payload",
    "produce_id",
    "provider_code",
    "service_type",
    "content_type",
    "label",
    "explicit_variant",
    "explicit_position",
    "file_sha256",
    "account",
    "unlabeled_recipient",
    "extra",
)


def payload_hex(payload) -> str:
    """Hex of a payload given as provmark.Payload, bytes or hex string."""
    if payload is None:
        return ""
    if hasattr(payload, "data") and hasattr(payload, "bits"):
        return bytes(payload.data).hex()
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload).hex()
    if isinstance(payload, str):
        text = payload.strip().lower().removeprefix("0x")
        try:
            bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"payload {payload!r} is not a hex string") from None
        return text
    raise TypeError(f"payload must be a Payload, bytes or hex str, got {type(payload).__name__}")


@dataclass(frozen=True)
class LedgerRecord:
    """What gets logged for one labeled item (LABELING.md section 12, Measures Art. 9).

    Strings throughout; "" means not applicable. ``extra`` holds any further JSON-serialisable facts.
    """

    payload: str = ""  #: watermark payload, hex
    produce_id: str = ""
    provider_code: str = ""
    service_type: str = ""
    content_type: str = ""
    label: str = "1"  #: AIGC Label value
    key_id: str = ""  #: watermark key id
    signing_key_id: str = ""  #: Ed25519 key id of the ReservedCode1 signature
    explicit_variant: str = ""  #: e.g. "image:box:AI生成", "audio:rhythm", "none"
    explicit_position: str = ""  #: e.g. "bottom-right", "start"
    file_sha256: str = ""  #: hash of the labeled output file
    account: str = ""  #: requesting account
    unlabeled_recipient: str = ""  #: recipient of an unlabeled copy (Art. 9), logged >= 6 months
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "payload", payload_hex(self.payload))
        for f in fields(LedgerRecord):
            v = getattr(self, f.name)
            if f.name == "extra":
                if not isinstance(v, dict):
                    raise TypeError(f"LedgerRecord.extra must be a dict, got {type(v).__name__}")
                try:
                    json.dumps(v, sort_keys=True)
                except (TypeError, ValueError) as exc:
                    raise TypeError(f"LedgerRecord.extra must be JSON-serialisable: {exc}") from None
            elif not isinstance(v, str):
                raise TypeError(f"LedgerRecord.{f.name} must be a str, got {type(v).__name__}")
            elif "\x00" in v:
                raise ValueError(f"LedgerRecord.{f.name} contains a NUL character")


@dataclass(frozen=True)
class StoredRecord(LedgerRecord):
    """A record as stored: its position, UTC time and chain hashes."""

    seq: int = 0
    time: str = ""
    prev_hash: str = GENESIS
    hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_hash(prev_hash: str, values: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the canonical JSON of the hashed fields (including seq and time)."""
    body = json.dumps({k: values[k] for k in _HASHED}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(bytes.fromhex(prev_hash) + body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    """Result of :meth:`Ledger.verify_chain`. ``ok`` is False if any record was edited, deleted or
    reordered."""

    ok: bool
    count: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str
    problems: tuple[str, ...] = ()


def verify_records(
    records: Iterable[StoredRecord],
    anchor_seq: int = 0,
    anchor_hash: str = GENESIS,
    head: tuple[int, str] | None = None,
    max_problems: int = 100,
) -> ChainReport:
    """Check a sequence of stored records (in seq order) against the anchor and, if given, the head."""
    problems: list[str] = []
    prev_seq, prev_hash, count, first = anchor_seq, anchor_hash, 0, None
    for r in records:
        count += 1
        first = r.seq if first is None else first
        if r.seq != prev_seq + 1:
            problems.append(
                f"seq {r.seq} follows seq {prev_seq}: records {prev_seq + 1}..{r.seq - 1} missing or reordered"
            )
        if r.prev_hash != prev_hash:
            problems.append(f"seq {r.seq}: prev_hash does not match the hash of the record before it")
        if record_hash(r.prev_hash, asdict(r)) != r.hash:
            problems.append(f"seq {r.seq}: content does not match its hash (record edited)")
        prev_seq, prev_hash = r.seq, r.hash
        if len(problems) >= max_problems:
            break
    if head is not None and (head[0], head[1]) != (prev_seq, prev_hash):
        problems.append(
            f"chain ends at seq {prev_seq} but the ledger head is seq {head[0]}: records after "
            f"{prev_seq} deleted, or the head was altered"
        )
    return ChainReport(not problems, count, first, prev_seq if count else None, prev_hash, tuple(problems))


class Ledger(abc.ABC):
    """Append-only, hash-chained record store. Implementations must serialise appends across processes."""

    @abc.abstractmethod
    def append(self, record: LedgerRecord) -> StoredRecord: ...

    @abc.abstractmethod
    def get(self, seq: int) -> StoredRecord | None: ...

    @abc.abstractmethod
    def find(self, payload) -> list[StoredRecord]:
        """Records whose watermark payload equals ``payload`` (Payload, bytes or hex)."""

    @abc.abstractmethod
    def find_produce_id(self, produce_id: str) -> list[StoredRecord]: ...

    @abc.abstractmethod
    def records(self) -> Iterator[StoredRecord]:
        """All retained records in seq order."""

    @abc.abstractmethod
    def anchor(self) -> tuple[int, str]:
        """(seq, hash) that the first retained record chains to: (0, GENESIS), or the last pruned record."""

    @abc.abstractmethod
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last appended record, as stored separately from the records."""

    @abc.abstractmethod
    def prune(self, before, *, min_retention_days: float = 183.0, now=None) -> int: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def verify_chain(self) -> ChainReport:
        a_seq, a_hash = self.anchor()
        return verify_records(self.records(), a_seq, a_hash, head=self.head())

    def export_jsonl(self, dst) -> int:
        """Write the anchor line then one JSON object per record; returns the number of records.

        ``dst``: a path (written atomically) or a text file object.
        """
        a_seq, a_hash = self.anchor()

        def lines():
            yield json.dumps({"type": "anchor", "seq": a_seq, "hash": a_hash}) + "\n"
            for r in self.records():
                yield json.dumps({"type": "record", **r.to_dict()}, ensure_ascii=False, sort_keys=True) + "\n"

        n = 0
        if hasattr(dst, "write"):
            for line in lines():
                dst.write(line)
                n += 1
            return n - 1
        from .._fileio import atomic_output

        with atomic_output(os.fspath(dst)) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for line in lines():
                f.write(line)
                n += 1
        return n - 1

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_jsonl(path) -> ChainReport:
    """Verify an export made by :meth:`Ledger.export_jsonl`."""
    with open(path, encoding="utf-8") as f:
        first = json.loads(f.readline())
        if first.get("type") != "anchor":
            raise ValueError(f"{os.fspath(path)!r} is not a provmark ledger export (no anchor line)")

        def recs():
            for line in f:
                d = json.loads(line)
                d.pop("type", None)
                yield StoredRecord(**d)

        return verify_records(recs(), first["seq"], first["hash"])
