"""label_file / verify / CLI: explicit label + watermark + signed metadata + ledger, with the real engines."""

from __future__ import annotations

import argparse
import hashlib
import json

import numpy as np
import pytest
from PIL import Image
from skimage import data

from provmark import Key
from provmark.labels import LabelError, PolicyError, SigningKey, UnsupportedFormatError
from provmark.labels import metadata as md
from provmark.labels.cli import register
from provmark.labels.explicit_image import ImageLabel
from provmark.labels.pipeline import label_file, verify
from provmark.labels.signing import generate_signing_key_files
from provmark.ledger import open_ledger

CODE = "001191110102MAD55U9H0F10002"


@pytest.fixture(scope="module")
def keys():
    return Key.generate(), SigningKey.generate()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.astronaut()).save(d / "a.jpg", quality=92)
    Image.fromarray(data.coffee()[:300, :400]).save(d / "c.png")
    return d


def _wav(path, secs=12, sr=44100, seed=0):
    import av

    t = np.arange(sr * secs) / sr
    rng = np.random.default_rng(seed)
    x = 0.2 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 0.5 * t) + 0.05 * rng.normal(size=t.size)
    with av.open(str(path), "w", format="wav") as c:
        s = c.add_stream("pcm_s16le", rate=sr)
        fr = av.AudioFrame.from_ndarray(x.astype(np.float32)[None, :], format="flt", layout="mono")
        fr.sample_rate = sr
        for p in s.encode(fr):
            c.mux(p)
        for p in s.encode():
            c.mux(p)


def _label(src, dst, keys, tmp_path, **kw):
    k, sk = keys
    kw.setdefault("service", "face")
    return label_file(src, dst, key=k, producer=CODE, signing_key=sk, ledger=tmp_path / "ledger.db", **kw)


def _verify(path, keys, tmp_path, **kw):
    k, sk = keys
    return verify(path, key=k, public_keys=[sk.public_key], ledger=tmp_path / "ledger.db", **kw)


@pytest.mark.parametrize("name", ["a.jpg", "c.png"])
def test_image_label_then_verify_intact(photos, keys, tmp_path, name):
    src, dst = photos / name, tmp_path / ("out" + (photos / name).suffix)
    res = _label(src, dst, keys, tmp_path, account="user-1")
    assert res.applied == ("explicit", "watermark", "metadata")
    lab = md.read_label(dst)
    assert lab == res.label and lab.reserved_code1.startswith("PM1.")
    rep = _verify(dst, keys, tmp_path)
    assert rep.verdict == "intact", rep.reasons
    assert rep.checks == {
        "metadata": "present",
        "signature": "valid",
        "watermark": "found",
        "ledger": "found",
    }
    # ledger record: payload, hash of the final file, explicit label variant and position
    with open_ledger(tmp_path / "ledger.db") as led:
        (rec,) = led.find(bytes.fromhex(res.payload_hex))
        assert rec.file_sha256 == hashlib.sha256(dst.read_bytes()).hexdigest() == res.file_sha256
        assert (rec.produce_id, rec.provider_code, rec.service_type, rec.content_type) == (
            lab.produce_id,
            CODE,
            "face",
            "image",
        )
        assert rec.explicit_variant == "image:box:AI生成" and rec.explicit_position == "bottom-right"
        assert rec.account == "user-1" and rec.signing_key_id == keys[1].key_id and rec.key_id == keys[0].id
    # the explicit label is burned in at the bottom-right corner; elsewhere only the faint watermark
    a = np.asarray(Image.open(src).convert("RGB"), np.float64)
    b = np.asarray(Image.open(dst).convert("RGB"), np.float64)
    x0, y0, x1, y1 = ImageLabel(a.shape[1], a.shape[0]).box
    assert np.abs(a[y0:y1, x0:x1] - b[y0:y1, x0:x1]).mean() > 30
    rest = np.ones(a.shape[:2], bool)
    rest[y0:y1, x0:x1] = False
    mse = ((a - b)[rest] ** 2).mean()
    assert 10 * np.log10(255**2 / mse) > 35


def test_stripped_and_forged_images(photos, keys, tmp_path):
    src = photos / "c.png"
    out = tmp_path / "out.png"
    res = _label(src, out, keys, tmp_path)
    # stripped: the pixels re-saved without metadata
    stripped = tmp_path / "stripped.png"
    Image.open(out).save(stripped)
    assert md.read_label(stripped) is None
    rep = _verify(stripped, keys, tmp_path)
    assert rep.verdict == "stripped" and rep.ledger_records and rep.ledger_records[0].produce_id == res.label.produce_id
    # forged 1: the signed label copied onto unmarked content
    copied = tmp_path / "copied.png"
    md.write_label(src, copied, res.label)
    rep = _verify(copied, keys, tmp_path)
    assert rep.verdict == "forged" and any("does not carry" in r for r in rep.reasons)
    # forged 2: ProduceID edited in place in both locations of a JPEG (same length): the signature breaks
    jpg = tmp_path / "out.jpg"
    res_j = _label(photos / "a.jpg", jpg, keys, tmp_path)
    pid = res_j.label.produce_id.encode()
    edited = tmp_path / "edited.jpg"
    edited.write_bytes(jpg.read_bytes().replace(pid, pid[::-1]))
    assert md.read_label(edited).produce_id == pid[::-1].decode()
    rep = _verify(edited, keys, tmp_path)
    assert rep.verdict == "forged" and rep.checks["signature"] == "invalid"
    # a PNG edited the same way also breaks its chunk CRCs: reported as forged, not a crash
    broken = tmp_path / "broken.png"
    broken.write_bytes(out.read_bytes().replace(res.label.produce_id.encode(), res.label.produce_id[::-1].encode()))
    rep = _verify(broken, keys, tmp_path)
    assert rep.verdict == "forged" and rep.checks["metadata"] == "invalid"
    # forged 3: label of item A on the (stripped) content of item B
    res_b = _label(src, tmp_path / "b.png", keys, tmp_path)
    b_stripped = tmp_path / "b_stripped.png"
    Image.open(tmp_path / "b.png").save(b_stripped)
    transplant = tmp_path / "transplant.png"
    md.write_label(b_stripped, transplant, res.label)
    rep = _verify(transplant, keys, tmp_path)
    assert rep.verdict == "forged" and any("transplanted" in r or "differs" in r for r in rep.reasons)
    assert res_b.payload_hex != res.payload_hex
    # nothing at all
    assert _verify(src, keys, tmp_path).verdict == "none"
    # without a key only the metadata is checked
    assert verify(out, public_keys=[keys[1].public_key]).verdict == "intact"
    assert verify(stripped).verdict == "none"


def test_audio_label_then_verify(keys, tmp_path):
    import av

    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    _wav(src)
    res = _label(src, dst, keys, tmp_path, service="voice")
    assert res.explicit_variant == "audio:rhythm" and res.explicit_position == "start"
    assert _verify(dst, keys, tmp_path).verdict == "intact"
    # stripped: decode and re-encode the samples (no metadata)
    stripped = tmp_path / "stripped.wav"
    with av.open(str(dst)) as i, av.open(str(stripped), "w", format="wav") as o:
        s = o.add_stream("pcm_s16le", rate=44100)
        for fr in i.decode(audio=0):
            for p in s.encode(fr):
                o.mux(p)
        for p in s.encode():
            o.mux(p)
    assert md.read_label(stripped) is None
    assert _verify(stripped, keys, tmp_path).verdict == "stripped"


def test_unlabeled_copy_and_policy_errors(photos, keys, tmp_path):
    src = photos / "c.png"
    with pytest.raises(LabelError, match=r"Art\. 9"):
        _label(src, tmp_path / "u.png", keys, tmp_path, explicit=False)
    res = _label(src, tmp_path / "u.png", keys, tmp_path, explicit=False, unlabeled_recipient="acct-9")
    assert res.applied == ("watermark", "metadata") and res.explicit_variant == "none"
    with open_ledger(tmp_path / "ledger.db") as led:
        assert led.find(bytes.fromhex(res.payload_hex))[0].unlabeled_recipient == "acct-9"
    assert _verify(tmp_path / "u.png", keys, tmp_path).verdict == "intact"
    # outside Art. 17(1): explicit is on by default and may be switched off without a recipient
    assert _label(src, tmp_path / "o.png", keys, tmp_path, service="outside", explicit=False).applied == (
        "watermark",
        "metadata",
    )
    with pytest.raises(PolicyError):
        _label(src, tmp_path / "x.png", keys, tmp_path, biometric_edit=True)  # face editing without consent
    with pytest.raises(PolicyError):
        label_file(src, tmp_path / "x.png", key=keys[0], producer="某公司", service="face")
    with pytest.raises(ValueError, match="input"):
        _label(src, src, keys, tmp_path)
    bmp = tmp_path / "in.bmp"
    Image.new("RGB", (64, 64)).save(bmp)
    with pytest.raises(UnsupportedFormatError):
        _label(bmp, tmp_path / "x.bmp", keys, tmp_path)
    assert not (tmp_path / "x.png").exists() and not list(tmp_path.glob(".*media*"))


def test_cli_label_and_verify(photos, tmp_path, capsys):
    kfile, sfile = tmp_path / "wm.key", tmp_path / "sign.key"
    Key.generate().save(kfile)
    generate_signing_key_files(sfile)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out, db = tmp_path / "out.jpg", tmp_path / "l.db"
    args = parser.parse_args(
        [
            "label",
            str(photos / "a.jpg"),
            str(out),
            "--key",
            str(kfile),
            "--producer",
            CODE,
            "--service",
            "dialogue",
            "--produce-id",
            "item-42",
            "--signing-key",
            str(sfile),
            "--ledger",
            str(db),
            "--account",
            "u7",
        ]
    )
    assert args.func(args) == 0
    assert "item-42" in capsys.readouterr().out
    args = parser.parse_args(
        [
            "verify",
            str(out),
            "--key",
            str(kfile),
            "--public-key",
            f"{sfile}.pub",
            "--ledger",
            str(db),
            "--json",
        ]
    )
    assert args.func(args) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["verdict"] == "intact" and rep["label"]["ProduceID"] == "item-42"
    assert rep["ledger_records"][0]["account"] == "u7"
    args = parser.parse_args(["verify", str(photos / "a.jpg")])
    assert args.func(args) == 3
    assert "none" in capsys.readouterr().out


def test_video_label_then_verify(keys, tmp_path):
    import av

    rng = np.random.default_rng(3)
    base = data.astronaut()[::2, ::2][:128, :192]
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 192, 128, "yuv420p"
        for i in range(60):  # 2.4 s
            frame = np.clip(np.roll(base, i, axis=1) + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    res = _label(src, dst, keys, tmp_path)
    assert res.content_type.value == "video" and res.applied == ("explicit", "watermark", "metadata")
    rep = _verify(dst, keys, tmp_path)
    assert rep.verdict == "intact", rep.reasons
    # the label box is burned into the frames of the first 2 s (50 frames at 25 fps) and not after
    with av.open(str(src)) as c:
        a = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    with av.open(str(dst)) as c:
        b = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    x0, y0, x1, y1 = ImageLabel(192, 128).box
    diff = [np.abs(p[y0:y1, x0:x1] - q[y0:y1, x0:x1]).mean() for p, q in zip(a, b, strict=True)]
    assert min(diff[:50]) > 30 and max(diff[50:]) < 10, [round(d, 1) for d in diff]


def test_ledger_failure_leaves_no_output(photos, keys, tmp_path):
    dst = tmp_path / "out.png"
    with pytest.raises(FileNotFoundError):
        label_file(
            photos / "c.png",
            dst,
            key=keys[0],
            producer=CODE,
            service="face",
            ledger=tmp_path / "missing" / "l.db",
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == []
