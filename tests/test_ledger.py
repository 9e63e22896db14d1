"""Audit ledger: append-only hash chain, tamper detection, concurrent writers, export, retention pruning."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from provmark.ledger import GENESIS, LedgerRecord, SQLiteLedger, open_ledger, read_jsonl


def _rec(i: int, **kw) -> LedgerRecord:
    base = dict(
        payload=i.to_bytes(8, "big"),
        produce_id=f"item-{i:04d}",
        provider_code="001191110102MAD55U9H0F10002",
        service_type="face",
        content_type="image",
        key_id="k1",
        explicit_variant="image:box:AI生成",
        explicit_position="bottom-right",
        file_sha256="ab" * 32,
        account=f"user{i % 3}",
    )
    base.update(kw)
    return LedgerRecord(**base)


@pytest.fixture
def ledger(tmp_path):
    with open_ledger(tmp_path / "ledger.db") as led:
        for i in range(1, 11):
            led.append(_rec(i))
        yield led


def _raw(led) -> sqlite3.Connection:
    """A second connection with the guard triggers removed, as an attacker with file access would do."""
    db = sqlite3.connect(led.path, isolation_level=None)
    db.execute("DROP TRIGGER records_append_only")
    db.execute("DROP TRIGGER records_prune_only")
    return db


def test_append_find_and_chain(ledger):
    rep = ledger.verify_chain()
    assert rep.ok and rep.count == 10 and (rep.first_seq, rep.last_seq) == (1, 10)
    r = ledger.find((5).to_bytes(8, "big"))
    assert len(r) == 1 and r[0].produce_id == "item-0005" and r[0].explicit_variant == "image:box:AI生成"
    assert ledger.find((5).to_bytes(8, "big").hex()) == r
    assert ledger.find(b"\xff" * 8) == []
    assert ledger.find_produce_id("item-0007")[0].seq == 7
    assert ledger.get(1).prev_hash == GENESIS and ledger.get(2).prev_hash == ledger.get(1).hash
    assert ledger.head() == (10, ledger.get(10).hash)


def test_unlabeled_copy_recipient_is_kept(ledger):
    s = ledger.append(_rec(99, unlabeled_recipient="acct-7", extra={"agreement": "v3"}))
    got = ledger.get(s.seq)
    assert got.unlabeled_recipient == "acct-7" and got.extra == {"agreement": "v3"}
    assert ledger.verify_chain().ok


def test_guards_refuse_update_and_delete(ledger):
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        ledger._db.execute("UPDATE records SET account = 'x' WHERE seq = 3")
    with pytest.raises(sqlite3.DatabaseError, match="prune"):
        ledger._db.execute("DELETE FROM records WHERE seq = 3")


@pytest.mark.parametrize(
    "column,value",
    [
        ("account", "mallory"),
        ("payload", "00" * 8),
        ("time", "2020-01-01"),
        ("unlabeled_recipient", "x"),
        ("extra", '{"a":1}'),
    ],
)
def test_edited_row_detected(ledger, column, value):
    _raw(ledger).execute(f"UPDATE records SET {column} = ? WHERE seq = 4", (value,))
    rep = ledger.verify_chain()
    assert not rep.ok and any("seq 4" in p and "edited" in p for p in rep.problems)


def test_edited_row_with_recomputed_hash_detected(ledger):
    from dataclasses import asdict

    from provmark.ledger import record_hash

    r = ledger.get(4)
    d = asdict(r)
    d["account"] = "mallory"
    new_hash = record_hash(r.prev_hash, d)
    _raw(ledger).execute("UPDATE records SET account = 'mallory', hash = ? WHERE seq = 4", (new_hash,))
    rep = ledger.verify_chain()
    assert not rep.ok and any("seq 5" in p and "prev_hash" in p for p in rep.problems)


@pytest.mark.parametrize("seq", [1, 5, 10])
def test_deleted_row_detected(ledger, seq):
    _raw(ledger).execute("DELETE FROM records WHERE seq = ?", (seq,))
    rep = ledger.verify_chain()
    assert not rep.ok, seq
    assert rep.problems


def test_reordered_rows_detected(ledger):
    db = _raw(ledger)
    # swap the content of rows 3 and 6 (keeping their seq numbers)
    cols = [c[1] for c in db.execute("PRAGMA table_info(records)") if c[1] != "seq"]
    r3 = db.execute(f"SELECT {', '.join(cols)} FROM records WHERE seq = 3").fetchone()
    r6 = db.execute(f"SELECT {', '.join(cols)} FROM records WHERE seq = 6").fetchone()
    setter = ", ".join(f"{c} = ?" for c in cols)
    db.execute(f"UPDATE records SET {setter} WHERE seq = 3", r6)
    db.execute(f"UPDATE records SET {setter} WHERE seq = 6", r3)
    rep = ledger.verify_chain()
    assert not rep.ok and any("seq 3" in p for p in rep.problems) and any("seq 6" in p for p in rep.problems)
    # renumbering rows to hide a deletion is also caught
    db2 = _raw_again(ledger)
    db2.execute("DELETE FROM records WHERE seq = 8")
    db2.execute("UPDATE records SET seq = seq - 1 WHERE seq > 8")
    assert not ledger.verify_chain().ok


def _raw_again(led):
    return sqlite3.connect(led.path, isolation_level=None)


_WRITER = """
import sys
from provmark.ledger import LedgerRecord, SQLiteLedger
path, wid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with SQLiteLedger(path) as led:
    for i in range(n):
        led.append(LedgerRecord(payload=(wid * 1000 + i).to_bytes(8, "big"), produce_id=f"w{wid}-{i}",
                                account=f"w{wid}"))
"""


def test_concurrent_writer_processes(tmp_path):
    path = str(tmp_path / "shared.db")
    SQLiteLedger(path).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, path, str(w), "40"], stderr=subprocess.PIPE, text=True)
        for w in range(4)
    ]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errs
    with SQLiteLedger(path) as led:
        rep = led.verify_chain()
        assert rep.ok and rep.count == 160
        assert sorted(r.seq for r in led.records()) == list(range(1, 161))
        for w in range(4):
            assert len(led.find((w * 1000 + 39).to_bytes(8, "big"))) == 1
            assert len(led.find_produce_id(f"w{w}-0")) == 1
        assert led._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_export_jsonl_and_verify_export(ledger, tmp_path):
    out = tmp_path / "ledger.jsonl"
    assert ledger.export_jsonl(out) == 10
    lines = out.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"type": "anchor", "seq": 0, "hash": GENESIS}
    assert json.loads(lines[3])["produce_id"] == "item-0003"
    assert read_jsonl(out).ok
    lines[5] = lines[5].replace("user", "resu")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert not read_jsonl(out).ok


def test_prune_keeps_chain_verifiable(tmp_path):
    with open_ledger(tmp_path / "p.db") as led:
        for i in range(1, 7):
            led.append(_rec(i))
        now = datetime.now(timezone.utc)
        # records 1-3 are "old": pretend the clock is a year ahead when pruning everything before record 4
        cutoff = datetime.fromisoformat(led.get(4).time)
        with pytest.raises(ValueError, match="183 days"):
            led.prune(cutoff)  # within the six-month retention minimum
        assert led.prune(cutoff, now=now + timedelta(days=365)) == 3
        assert [r.seq for r in led.records()] == [4, 5, 6]
        assert led.anchor()[0] == 3
        rep = led.verify_chain()
        assert rep.ok and rep.first_seq == 4
        led.append(_rec(7))
        assert led.verify_chain().ok
        # the anchor does not let anyone drop more rows unnoticed
        db = _raw(led)
        db.execute("DELETE FROM records WHERE seq = 4")
        assert not led.verify_chain().ok
        with pytest.raises(ValueError, match="timezone"):
            led.prune(datetime(2020, 1, 1))


def test_prune_refuses_tampered_prefix(tmp_path):
    with open_ledger(tmp_path / "p.db") as led:
        for i in range(1, 4):
            led.append(_rec(i))
        _raw(led).execute("UPDATE records SET account = 'x' WHERE seq = 1")
        with pytest.raises(ValueError, match="tampered"):
            led.prune(datetime.fromisoformat(led.get(3).time), now=datetime.now(timezone.utc) + timedelta(days=400))


def test_bad_records_and_locations(tmp_path):
    with pytest.raises(TypeError):
        LedgerRecord(produce_id=5)
    with pytest.raises(ValueError):
        LedgerRecord(payload="zz")
    with pytest.raises(TypeError):
        LedgerRecord(extra={"a": object()})
    with pytest.raises(ValueError, match="unsupported"):
        open_ledger("postgresql://db/ledger")
    with pytest.raises(FileNotFoundError):
        open_ledger(tmp_path / "nope" / "l.db")
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(ValueError, match="cannot open"):
        open_ledger(bad)
    with open_ledger(tmp_path / "ok.db") as led, pytest.raises(TypeError):
        led.append({"payload": "00"})
