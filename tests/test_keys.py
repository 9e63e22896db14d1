"""provmark.Key: generation, files, ids, secrecy, bad input."""

from __future__ import annotations

import os
import stat

import pytest

from provmark import Key


def test_generate_and_id() -> None:
    a, b = Key.generate(), Key.generate()
    assert a != b and a.id != b.id
    assert len(a.id) == 16 and int(a.id, 16) >= 0
    assert Key.from_bytes(a.secret_bytes()) == a
    assert Key.from_bytes(a.secret_bytes()).id == a.id


def test_secret_never_shown() -> None:
    k = Key.generate()
    secret_hex = k.secret_bytes().hex()
    for text in (repr(k), str(k), f"{k}", repr([k])):
        assert secret_hex not in text and k.id in text


def test_save_load_roundtrip_mode_0600(tmp_path) -> None:
    k = Key.generate()
    path = tmp_path / "wm.key"
    k.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert Key.load(path) == k
    with pytest.raises(FileExistsError):
        k.save(path)
    k2 = Key.generate()
    k2.save(path, overwrite=True)
    assert Key.load(path) == k2
    assert [p.name for p in tmp_path.iterdir()] == ["wm.key"]  # no temp files left behind


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "not a provmark key file"),
        (b"\xff\xfe garbage", "not ASCII"),
        (b"x" * 5000, "too large"),
        (b"provmark-key v1\nid 0000\nsecret zz\n", "not hex"),
        (b"provmark-key v1\nid 0000\nsecret " + b"ab" * 31 + b"\n", "31-byte secret"),
        (b"provmark-key v1\nid 0000000000000000\nsecret " + b"ab" * 32 + b"\n", "does not match"),
        (b"something else\nid 0\nsecret 00\n", "bad header"),
    ],
)
def test_load_corrupt_files(tmp_path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        Key.load(path)


def test_load_missing_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no key file"):
        Key.load(tmp_path / "missing.key")


def test_bad_secret_types_and_sizes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Key.from_bytes(b"short")
    with pytest.raises(TypeError):
        Key.from_bytes("a" * 32)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pickled"):
        import pickle

        pickle.dumps(Key.generate())


def test_coerce_accepts_key_or_secret_bytes() -> None:
    k = Key.generate()
    assert Key.coerce(k) is k
    assert Key.coerce(k.secret_bytes()) == k and Key.coerce(bytearray(k.secret_bytes())).id == k.id
    with pytest.raises(ValueError, match="32 bytes, got 5"):
        Key.coerce(b"short", "image")
    with pytest.raises(TypeError, match="image: key must be"):
        Key.coerce("a" * 32, "image")


def test_label_ledger_key_id_is_the_public_id_for_key_or_bytes() -> None:
    from provmark.labels.pipeline import _key_id

    k = Key.generate()
    assert _key_id(k) == _key_id(k.secret_bytes()) == k.id  # ledger records the same public id either way
