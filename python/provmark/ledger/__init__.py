"""The audit ledger: one append-only, hash-chained record per labeled item (LABELING.md section 12).

``open_ledger(path)`` gives the SQLite backend; a PostgreSQL backend can implement :class:`Ledger` later.
"""

from __future__ import annotations

import os

from .base import (
    GENESIS,
    ChainReport,
    Ledger,
    LedgerRecord,
    StoredRecord,
    read_jsonl,
    record_hash,
    verify_records,
)
from .sqlite import SQLiteLedger

__all__ = [
    "GENESIS",
    "ChainReport",
    "Ledger",
    "LedgerRecord",
    "SQLiteLedger",
    "StoredRecord",
    "open_ledger",
    "read_jsonl",
    "record_hash",
    "verify_records",
]


def open_ledger(location: str | os.PathLike) -> Ledger:
    """Open a ledger: a file path or ``sqlite:///path`` for SQLite."""
    loc = os.fspath(location)
    if loc.startswith("sqlite:///"):
        loc = loc[len("sqlite:///") :]
    elif "://" in loc:
        raise ValueError(f"unsupported ledger location {loc!r}; only SQLite paths (or sqlite:///path) for now")
    return SQLiteLedger(loc)
