"""SQLite ledger backend: WAL mode, one ``BEGIN IMMEDIATE`` transaction per append (safe with several writer
processes on one machine), triggers that refuse UPDATE and any DELETE not covered by a pruning anchor."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

from .base import _HASHED, GENESIS, Ledger, LedgerRecord, StoredRecord, payload_hex, record_hash, verify_records

__all__ = ["SQLiteLedger"]

_COLS = (*_HASHED, "prev_hash", "hash")  # table columns: the hashed fields, then the chain links

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    key_id TEXT NOT NULL, signing_key_id TEXT NOT NULL, payload TEXT NOT NULL, produce_id TEXT NOT NULL,
    provider_code TEXT NOT NULL, service_type TEXT NOT NULL, content_type TEXT NOT NULL, label TEXT NOT NULL,
    explicit_variant TEXT NOT NULL, explicit_position TEXT NOT NULL, file_sha256 TEXT NOT NULL,
    account TEXT NOT NULL, unlabeled_recipient TEXT NOT NULL, extra TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_payload ON records(payload);
CREATE INDEX IF NOT EXISTS records_produce_id ON records(produce_id);
CREATE TABLE IF NOT EXISTS chain (
    name TEXT PRIMARY KEY,          -- 'head' (last appended) or 'anchor' (last pruned)
    seq INTEGER NOT NULL, hash TEXT NOT NULL, time TEXT NOT NULL
);
INSERT OR IGNORE INTO chain VALUES ('head', 0, '{GENESIS}', '');
INSERT OR IGNORE INTO chain VALUES ('anchor', 0, '{GENESIS}', '');
CREATE TRIGGER IF NOT EXISTS records_append_only BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'ledger records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_prune_only BEFORE DELETE ON records
WHEN OLD.seq > (SELECT seq FROM chain WHERE name = 'anchor')
BEGIN SELECT RAISE(ABORT, 'ledger records can only be removed by prune()'); END;
"""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _row(r) -> StoredRecord:
    d = dict(zip(_COLS, r, strict=False))
    d["extra"] = json.loads(d["extra"])
    return StoredRecord(**d)


class SQLiteLedger(Ledger):
    """Ledger in an SQLite file. Open one instance per process (connections are not shared across
    processes)."""

    def __init__(self, path: str | os.PathLike, *, timeout: float = 60.0) -> None:
        self.path = os.fspath(path)
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise FileNotFoundError(f"ledger folder {parent!r} does not exist")
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise sqlite3.OperationalError(f"could not switch {self.path!r} to WAL mode (got {mode})")
            self._db.execute("PRAGMA synchronous = FULL")
            try:
                self._db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"cannot open ledger {self.path!r}: {exc}") from None

    # ------------------------------------------------------------------------------------------------- write
    def append(self, record: LedgerRecord) -> StoredRecord:
        if not isinstance(record, LedgerRecord) or isinstance(record, StoredRecord):
            raise TypeError(f"append() takes a LedgerRecord, got {type(record).__name__}")
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            seq, prev = db.execute("SELECT seq, hash FROM chain WHERE name = 'head'").fetchone()
            values = asdict(record)
            values.update(seq=seq + 1, time=_now().isoformat(timespec="microseconds"))
            h = record_hash(prev, values)
            stored = StoredRecord(**values, prev_hash=prev, hash=h)
            row = dict(asdict(stored), extra=json.dumps(stored.extra, sort_keys=True, ensure_ascii=False))
            db.execute(
                f"INSERT INTO records ({', '.join(_COLS)}) VALUES ({', '.join('?' * len(_COLS))})",
                [row[c] for c in _COLS],
            )
            db.execute(
                "UPDATE chain SET seq = ?, hash = ?, time = ? WHERE name = 'head'",
                (stored.seq, h, stored.time),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return stored

    def prune(self, before, *, min_retention_days: float = 183.0, now: datetime | None = None) -> int:
        """Remove the oldest records whose time is before ``before`` (datetime or ISO string).

        Refuses cut-offs less than ``min_retention_days`` ago (default 183: the Measures Art. 9 six months).
        Only a prefix of the chain is removed, after verifying it; the last removed record becomes the anchor
        that the first retained one chains to, so :meth:`verify_chain` still checks every retained record.
        """
        if isinstance(before, str):
            before = datetime.fromisoformat(before)
        if not isinstance(before, datetime):
            raise TypeError(f"before must be a datetime or ISO string, got {type(before).__name__}")
        if before.tzinfo is None:
            raise ValueError("before must be timezone-aware (e.g. datetime(..., tzinfo=timezone.utc))")
        now = now or _now()
        if before > now - timedelta(days=min_retention_days):
            raise ValueError(
                f"refusing to prune records newer than {min_retention_days:g} days (retention minimum; "
                "Measures Art. 9 requires six months for unlabeled-copy logs)"
            )
        cutoff = before.astimezone(timezone.utc).isoformat(timespec="microseconds")
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            a_seq, a_hash = db.execute("SELECT seq, hash FROM chain WHERE name = 'anchor'").fetchone()
            prefix = []
            for r in db.execute(f"SELECT {', '.join(_COLS)} FROM records ORDER BY seq"):
                rec = _row(r)
                if rec.time >= cutoff:
                    break
                prefix.append(rec)
            if not prefix:
                db.execute("COMMIT")
                return 0
            rep = verify_records(prefix, a_seq, a_hash)
            if not rep.ok:
                raise ValueError("refusing to prune a tampered chain: " + "; ".join(rep.problems[:3]))
            last = prefix[-1]
            db.execute(
                "UPDATE chain SET seq = ?, hash = ?, time = ? WHERE name = 'anchor'",
                (last.seq, last.hash, _now().isoformat(timespec="microseconds")),
            )
            db.execute("DELETE FROM records WHERE seq <= ?", (last.seq,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return len(prefix)

    # -------------------------------------------------------------------------------------------------- read
    def _select(self, where: str = "", args=()) -> list[StoredRecord]:
        q = f"SELECT {', '.join(_COLS)} FROM records {where} ORDER BY seq"
        return [_row(r) for r in self._db.execute(q, args)]

    def get(self, seq: int) -> StoredRecord | None:
        rows = self._select("WHERE seq = ?", (int(seq),))
        return rows[0] if rows else None

    def find(self, payload) -> list[StoredRecord]:
        return self._select("WHERE payload = ?", (payload_hex(payload),))

    def find_produce_id(self, produce_id: str) -> list[StoredRecord]:
        return self._select("WHERE produce_id = ?", (str(produce_id),))

    def records(self) -> Iterator[StoredRecord]:
        # one SELECT statement reads one consistent WAL snapshot while other processes append
        for r in self._db.cursor().execute(f"SELECT {', '.join(_COLS)} FROM records ORDER BY seq"):
            yield _row(r)

    def _chain(self, name: str) -> tuple[int, str]:
        seq, h = self._db.execute("SELECT seq, hash FROM chain WHERE name = ?", (name,)).fetchone()
        return int(seq), str(h)

    def anchor(self) -> tuple[int, str]:
        return self._chain("anchor")

    def head(self) -> tuple[int, str]:
        return self._chain("head")

    def verify_chain(self):
        db = self._db
        db.execute("BEGIN")
        try:
            a_seq, a_hash = self.anchor()
            head = self.head()
            rows = self._select()
        finally:
            db.execute("COMMIT")
        return verify_records(rows, a_seq, a_hash, head=head)

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0]

    def close(self) -> None:
        self._db.close()
