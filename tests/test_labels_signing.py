"""Integrity: Ed25519 signature in ReservedCode1 and the label-derived watermark payload (LABELING.md 7,
8)."""

from __future__ import annotations

import dataclasses
import os
import stat

import pytest

from provmark import Key, Payload
from provmark.labels import (
    AigcLabel,
    LabelError,
    SignatureStatus,
    SigningKey,
    VerifyKey,
    derive_payload,
    derive_payload_bytes,
    sign_label,
    verify_label,
)
from provmark.labels.metadata import is_allowed_char
from provmark.labels.signing import parse_reserved_code

CODE = "001191110102MAD55U9H0F10002"


@pytest.fixture(scope="module")
def skey():
    return SigningKey.generate()


def _signed(skey, pid="item-0001", payload=b"\x01\x02\x03\x04\x05\x06\x07\x08"):
    return sign_label(AigcLabel.first_write(CODE, pid), payload, skey)


def test_signature_round_trip_and_charset(skey):
    lab = _signed(skey)
    assert all(is_allowed_char(c) for c in lab.reserved_code1)
    lab.to_json()  # stays a valid Annex E value
    chk = verify_label(lab, [skey.public_key])
    assert chk.status is SignatureStatus.VALID and chk.valid
    assert chk.key_id == skey.key_id and chk.payload == b"\x01\x02\x03\x04\x05\x06\x07\x08"
    assert AigcLabel.parse(lab.to_json()) == lab


@pytest.mark.parametrize(
    "field,value",
    [("label", "3"), ("content_producer", "001191110102MAD55U9H0F10003"), ("produce_id", "item-0002")],
)
def test_any_change_to_signed_fields_is_detected(skey, field, value):
    lab = dataclasses.replace(_signed(skey), **{field: value})
    if field == "label":
        lab = dataclasses.replace(lab, content_propagator="P", propagate_id="Q")
    assert verify_label(lab, [skey.public_key]).status is SignatureStatus.INVALID


def test_payload_and_signature_tamper_detected(skey):
    lab = _signed(skey)
    rc = lab.reserved_code1
    parts = rc.split(".")
    # other payload, same signature
    forged_payload = ".".join([*parts[:2], "ff" + parts[2][2:], *parts[3:]])
    assert verify_label(lab.with_reserved_code1(forged_payload), [skey.public_key]).status is SignatureStatus.INVALID
    # flip one character of the signature
    sig = parts[3]
    flipped = ".".join([*parts[:3], ("A" if sig[5] != "A" else "B").join([sig[:5], sig[6:]])])
    assert verify_label(lab.with_reserved_code1(flipped), [skey.public_key]).status is SignatureStatus.INVALID


def test_propagation_update_keeps_signature_valid(skey):
    lab = _signed(skey).with_propagation("PLATFORM0001", "vid-9", "platform-sig")
    assert verify_label(lab, [skey.public_key]).valid


def test_unknown_key_unsigned_and_foreign(skey):
    other = SigningKey.generate()
    assert verify_label(_signed(skey), [other.public_key]).status is SignatureStatus.UNKNOWN_KEY
    assert verify_label(AigcLabel.first_write(CODE, "x"), [skey.public_key]).status is SignatureStatus.UNSIGNED
    sm2 = AigcLabel.first_write(CODE, "x").with_reserved_code1("e862483430d978cbf828b8b24296ef9328d843a0")
    assert verify_label(sm2, [skey.public_key]).status is SignatureStatus.FOREIGN
    assert parse_reserved_code("PM1.zz.00.abc") is None


def test_key_files(tmp_path, skey):
    p = tmp_path / "sign.key"
    priv, pub = skey.save(p)
    assert pub.name == "sign.key.pub"
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    assert b"PRIVATE" not in pub.read_bytes()
    loaded = SigningKey.load(priv)
    assert loaded.key_id == skey.key_id
    assert verify_label(_signed(loaded), [VerifyKey.load(pub)]).valid
    assert verify_label(_signed(skey), [str(pub)]).valid  # paths work too
    with pytest.raises(FileExistsError):
        skey.save(p)
    with pytest.raises(LabelError):
        SigningKey.load(pub)
    with pytest.raises(LabelError):
        VerifyKey.load(priv)
    garbage = tmp_path / "g.pub"
    garbage.write_text("not a key")
    with pytest.raises(LabelError):
        VerifyKey.load(garbage)


def test_derived_payload_is_keyed_and_item_specific():
    k1, k2 = Key.generate(), Key.generate()
    a = derive_payload(k1, CODE, "item-1")
    assert isinstance(a, Payload) and a.bits == 64
    assert a == derive_payload(k1, CODE, "item-1")  # deterministic
    assert a != derive_payload(k1, CODE, "item-2")
    assert a != derive_payload(k1, "OTHER0000001", "item-1")
    assert a != derive_payload(k2, CODE, "item-1")
    assert derive_payload_bytes(k1.secret_bytes(), CODE, "item-1") == a.data
    assert len(derive_payload_bytes(k1, CODE, "item-1", bits=128)) == 16
    with pytest.raises(LabelError):
        derive_payload_bytes(k1, CODE, "item-1", bits=60)
    with pytest.raises(LabelError):
        derive_payload_bytes(k1, CODE, "")
    with pytest.raises(TypeError):
        derive_payload_bytes("secret", CODE, "x")
