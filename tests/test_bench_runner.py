"""provmark.bench runner, report, corpus, adapters and CLI, on small real photos."""

from __future__ import annotations

import csv
import json
import os
import sys
import textwrap
import wave

import numpy as np
import pytest
from PIL import Image

from provmark.bench import adapters as AD
from provmark.bench import cli
from provmark.bench.corpus import Corpus, Limits, UnreadableItem, load_audio_file
from provmark.bench.runner import RunConfig, read_cells, run
from provmark.bench.suites import load_suite

skimage_data = pytest.importorskip("skimage.data")

SUITE = """
[suite]
name = "t"
seed = 3
fpr = 0.1
[image]
items = 3
max_side = 160
attacks = ["identity()", "jpeg(q=50)", "flip()"]
"""


@pytest.fixture
def corpus_dir(tmp_path):
    d = tmp_path / "corpus"
    (d / "sub").mkdir(parents=True)
    for name, fn in (("astronaut", "a.png"), ("coffee", "sub/b.jpg"), ("chelsea", "c.png")):
        Image.fromarray(getattr(skimage_data, name)()).save(d / fn)
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (d / "notes.txt").write_text("ignored")
    return d


def _suite(tmp_path, text=SUITE):
    p = tmp_path / "suite.toml"
    p.write_text(text)
    return load_suite(str(p))


def _run(tmp_path, corpus_dir, out="out", workers=1, methods=("lsb-baseline",), logs=None, plots=False):
    cfg = RunConfig(
        suite=_suite(tmp_path),
        corpus=Corpus.from_folder(str(corpus_dir)),
        out_dir=str(tmp_path / out),
        methods=list(methods),
        workers=workers,
        progress=False,
        plots=plots,
    )
    return run(cfg, log=(logs.append if logs is not None else (lambda m: None)))


def _stable(rows):
    drop = {"embed_s", "attack_s", "detect_s"}
    return sorted(tuple(sorted((k, v) for k, v in r.items() if k not in drop)) for r in rows)


def test_end_to_end_report_and_counts(tmp_path, corpus_dir):
    logs = []
    doc = _run(tmp_path, corpus_dir, logs=logs, plots=True)
    out = tmp_path / "out"
    for f in ("results.csv", "summary.csv", "summary.json", "report.md"):
        assert (out / f).is_file()
    try:
        import matplotlib  # noqa: F401

        has_mpl = True
    except ImportError:
        has_mpl = False
    if has_mpl:
        assert (out / "plots" / "image_robustness_by_attack.png").stat().st_size > 1000
        assert "plots/image_robustness_by_attack.png" in (out / "report.md").read_text()
    with open(out / "results.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    # 3 readable items x (1 embed + 3 attacks x {marked, unmarked})
    assert len(rows) == 3 * (1 + 3 * 2)
    assert {r["kind"] for r in rows} == {"embed", "marked", "unmarked"}
    # the broken file is reported and counted, not silently dropped
    assert len(doc["meta"]["skipped"]) == 1 and doc["meta"]["skipped"][0]["item"].endswith("broken.png")
    assert any("broken.png" in m for m in logs)
    md = (out / "report.md").read_text()
    assert "Unreadable (skipped with a warning): 1" in md and "broken.png" in md
    # LSB survives no change and is destroyed by JPEG: the numbers must say so
    t = {r["attack"]: r for r in doc["table"]}
    assert t["identity()"]["exact_rate"] == 1.0 and t["identity()"]["tpr_at_fpr"] == 1.0
    assert t["jpeg(q=50)"]["exact_rate"] == 0.0 and t["jpeg(q=50)"]["bit_acc"] < 0.8
    info = doc["methods"]["image/lsb-baseline"]
    assert info["n_negatives"] == 9 and info["psnr_mean"] > 50
    assert json.loads((out / "summary.json").read_text())["meta"]["settings"]["seed"] == 3


def test_resume_computes_only_missing_cells(tmp_path, corpus_dir):
    _run(tmp_path, corpus_dir)
    out = tmp_path / "out"
    first = read_cells(str(out))
    doc = _run(tmp_path, corpus_dir)
    assert doc["meta"]["cells_computed"] == 0 and doc["meta"]["cells_reused"] == len(first)
    # lose the last two cells of one part file (as if the worker was killed), plus a torn line
    part = sorted((out / "cells").iterdir())[0]
    lines = part.read_text().splitlines(keepends=True)
    part.write_text("".join(lines[:-2]) + '{"method": "lsb-base')
    doc = _run(tmp_path, corpus_dir)
    assert doc["meta"]["cells_computed"] == 2
    assert _stable(read_cells(str(out))) == _stable(first)


def test_parallel_run_matches_serial(tmp_path, corpus_dir):
    a = _run(tmp_path, corpus_dir, out="serial", workers=1)
    b = _run(tmp_path, corpus_dir, out="parallel", workers=2)
    assert b["meta"]["workers"] == 2
    assert _stable(read_cells(str(tmp_path / "serial"))) == _stable(read_cells(str(tmp_path / "parallel")))
    assert a["table"] == b["table"]


def test_changed_settings_refuse_the_old_folder(tmp_path, corpus_dir):
    _run(tmp_path, corpus_dir)
    cfg = RunConfig(
        suite=_suite(tmp_path, SUITE.replace("seed = 3", "seed = 4")),
        corpus=Corpus.from_folder(str(corpus_dir)),
        out_dir=str(tmp_path / "out"),
        methods=["lsb-baseline"],
        workers=1,
        progress=False,
    )
    with pytest.raises(ValueError, match="another --out"):
        run(cfg, log=lambda m: None)


def test_unknown_method_and_bad_suites(tmp_path, corpus_dir):
    with pytest.raises(ValueError, match="unknown method"):
        _run(tmp_path, corpus_dir, methods=("nope",))
    for bad in (
        "[suite]\nfpr = 2\n[image]\nattacks=['identity()']",
        "[image]\nattacks=[]",
        "[image]\nattacks=['jpeg(q=500)']",
        "[image]\nattacks=['flip()', 'flip()']",
        "[images]\nattacks=['flip()']",
        "[image]\nattacks=['flip()']\nbogus=1",
        "not toml [",
    ):
        with pytest.raises(ValueError):
            _suite(tmp_path, bad)
    with pytest.raises(ValueError):
        load_suite(str(tmp_path / "missing.toml"))
    assert set(load_suite("quick").modalities) == {"image", "audio", "video"}
    assert len(load_suite("full").modalities["image"].attacks) > 60


def test_cli_main(tmp_path, corpus_dir, capsys):
    sp = tmp_path / "suite.toml"
    sp.write_text(SUITE)
    rc = cli.main(
        [
            "--suite",
            str(sp),
            "--corpus",
            str(corpus_dir),
            "--out",
            str(tmp_path / "o"),
            "--methods",
            "lsb-baseline",
            "--workers",
            "1",
            "--no-progress",
        ]
    )
    assert rc == 0 and (tmp_path / "o" / "report.md").is_file()
    assert "image/lsb-baseline" in capsys.readouterr().out
    assert cli.main(["--suite", "nosuch"]) == 2
    assert cli.main(["--list-attacks"]) == 0
    assert "jpeg(q, subsampling='420')" in capsys.readouterr().out
    assert cli.main(["--list-methods"]) == 0
    assert "lsb-baseline" in capsys.readouterr().out
    import argparse

    parser = argparse.ArgumentParser(prog="provmark")
    sub = parser.add_subparsers(dest="cmd")
    cli.register(sub)
    args = parser.parse_args(["bench", "--suite", "quick", "--methods", "a,b"])
    assert args.func is cli.run_from_args and args.methods == "a,b"


# ------------------------------------------------------------------------------------------ adapters


def test_load_adapter_and_entry_points(tmp_path, monkeypatch):
    assert AD.load_adapter("provmark.bench.adapters:LsbBaseline") is AD.LsbBaseline
    for bad in ("nocolon", "no.such.module:X", "provmark.bench.adapters:Nope", "json:JSONDecoder"):
        with pytest.raises((ValueError, TypeError)):
            AD.load_adapter(bad)
    # a fake installed distribution that registers an adapter in the entry-point group
    mod = tmp_path / "my_peer.py"
    mod.write_text(
        textwrap.dedent("""
        from provmark.bench.adapters import LsbBaseline
        class Peer(LsbBaseline):
            name = "my-peer"
        class Broken:
            pass
    """)
    )
    dist = tmp_path / "my_peer-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-peer\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[provmark.bench.adapters]\nmy-peer = my_peer:Peer\nbroken = my_peer:Broken\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    table, problems = AD.all_adapters()
    assert ("my-peer", "image") in table
    assert len(problems) == 1 and "broken" in problems[0]
    sys.modules.pop("my_peer", None)


def test_lsb_adapter_round_trip_and_bad_bits():
    a = AD.LsbBaseline(seed=1)
    img = skimage_data.astronaut()
    bits = np.random.default_rng(0).integers(0, 2, 64).astype(np.uint8)
    r = a.detect(a.embed(img, bits))
    assert np.array_equal(r.bits, bits) and r.score > 10
    assert a.detect(img).score < 3
    with pytest.raises(ValueError):
        a.embed(img, bits[:10])
    with pytest.raises(ValueError):
        a.embed(img.astype(np.float32), bits)


@pytest.mark.parametrize("cls", [AD.InvisibleWatermarkDwtDctSvd, AD.BlindWatermark])
def test_peer_adapters_round_trip(cls):
    ok, why = cls.available()
    if not ok:
        pytest.skip(why)
    a = cls(seed=2)
    img = skimage_data.astronaut()
    bits = np.random.default_rng(5).integers(0, 2, a.payload_bits).astype(np.uint8)
    marked = a.embed(img, bits)
    assert marked.shape == img.shape and marked.dtype == np.uint8
    assert np.array_equal(a.detect(marked).bits, bits)


def test_provmark_image_adapter_round_trip():
    ok, why = AD.ProvmarkImage.available()
    if not ok:
        pytest.skip(why)
    a = AD.ProvmarkImage(seed=0)
    img = skimage_data.astronaut()
    bits = np.random.default_rng(5).integers(0, 2, 64).astype(np.uint8)
    r = a.detect(a.embed(img, bits))
    assert r.found and np.array_equal(r.bits, bits) and r.p_value < 1e-6
    r0 = a.detect(img)
    assert not r0.found and r0.bits is None


def test_parse_audiowmark_output():
    # the format printed by `audiowmark get` (see its README)
    out = (
        "pattern  0:05 0123456789abcdef0011223344556677 1.324 0.005 CLIP-B\n"
        "pattern  0:57 0123456789abcdef0011223344556677 1.413 0.000 A\n"
        "pattern   all 0123456789abcdef0011223344556677 1.368 0.002\n"
    )
    assert AD.parse_audiowmark_get(out) == ("0123456789abcdef0011223344556677", 1.368)
    assert AD.parse_audiowmark_get(out.splitlines()[0]) == ("0123456789abcdef0011223344556677", 1.324)
    assert AD.parse_audiowmark_get("") is None


# ------------------------------------------------------------------------------------------ corpus


def test_folder_corpus_and_selection(corpus_dir):
    c = Corpus.from_folder(str(corpus_dir))
    assert sorted(it.id for it in c.items) == [
        "folder/a.png",
        "folder/broken.png",
        "folder/c.png",
        "folder/sub/b.jpg",
    ]
    s1 = [it.id for it in c.select("image", 2, seed=1)]
    assert s1 == [it.id for it in c.select("image", 2, seed=1)]  # reproducible
    assert {tuple(it.id for it in c.select("image", 4, seed=s)) for s in range(6)} != {tuple(s1)}
    with pytest.raises(UnreadableItem):
        next(it for it in c.items if it.id.endswith("broken.png")).load()
    img = next(it for it in c.items if it.id.endswith("a.png")).load(Limits(max_side=100))
    assert img.dtype == np.uint8 and max(img.shape[:2]) == 100
    with pytest.raises(ValueError):
        Corpus.from_folder(str(corpus_dir / "missing"))


def test_selection_round_robins_sources():
    from provmark.bench.corpus import Item

    items = [Item(id=f"big/{i:04d}", modality="audio", source="", group="big") for i in range(100)]
    items += [Item(id=f"small/{i}", modality="audio", source="", group="small") for i in range(2)]
    sel = Corpus(items).select("audio", 4, seed=0)
    assert sum(it.group == "small" for it in sel) == 2


def test_default_corpus_is_offline_real_media():
    c = Corpus.default()
    ids = {it.id for it in c.items}
    assert {"skimage/astronaut", "skimage/coffee", "skimage/camera"} <= ids
    img = next(it for it in c.items if it.id == "skimage/camera").load()
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    v = next(it for it in c.items if it.id == "photo-pan/coffee").load(Limits(max_frames=4, max_side=320))
    assert v.frames.shape == (4, 180, 320, 3)


def test_audio_file_loading(tmp_path):
    sr = 22050
    x = (0.3 * np.sin(2 * np.pi * 300 * np.arange(sr) / sr) * 32767).astype("<i2")
    p = tmp_path / "tone.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(x.tobytes())
    clip = load_audio_file(str(p))
    assert clip.sample_rate == sr and clip.samples.shape == (sr, 1) and clip.samples.dtype == np.float32
    assert np.allclose(clip.samples[:, 0], x / 32768.0, atol=1e-4)
    assert load_audio_file(str(p), Limits(max_seconds=0.5)).samples.shape[0] == sr // 2
    with pytest.raises(UnreadableItem):
        load_audio_file(str(p), Limits(min_seconds=2.0))
    assert os.path.getsize(p) > 0


def test_audio_and_video_paths_end_to_end(tmp_path):
    from provmark.bench.attacks import video as V
    from provmark.bench.corpus import synthetic_video_from_photo

    d = tmp_path / "media"
    d.mkdir()
    sr = 16000
    t = np.arange(3 * sr) / sr
    tone = (0.2 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t)) * 32767).astype("<i2")
    with wave.open(str(d / "tone.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(tone.tobytes())
    (d / "short.wav").write_bytes((d / "tone.wav").read_bytes()[:2000])  # 0.03 s: too short
    clip = synthetic_video_from_photo(skimage_data.coffee(), frames=8, size=(72, 128))
    (d / "pan.mkv").write_bytes(V.encode(clip.frames, clip.fps, "h264", 18))
    suite = _suite(
        tmp_path,
        textwrap.dedent("""
        [suite]
        fpr = 0.2
        [audio]
        min_seconds = 1.0
        attacks = ["identity()", "volume(gain=0.5)", "mp3(kbps=64)"]
        [video]
        max_frames = 6
        attacks = ["identity()", "frame_drop(frac=0.3)", "h264(crf=30)"]
        """),
    )
    cfg = RunConfig(
        suite=suite,
        corpus=Corpus.from_folder(str(d)),
        out_dir=str(tmp_path / "out"),
        methods=["lsb-baseline"],
        workers=1,
        progress=False,
        plots=False,
    )
    doc = run(cfg, log=lambda m: None)
    t = {(r["modality"], r["attack"]): r for r in doc["table"]}
    assert t[("audio", "identity()")]["exact_rate"] == 1.0
    assert t[("video", "identity()")]["exact_rate"] == 1.0
    assert t[("video", "frame_drop(frac=0.3)")]["exact_rate"] == 1.0  # LSB votes pool over surviving frames
    assert t[("audio", "mp3(kbps=64)")]["exact_rate"] == 0.0
    assert t[("video", "h264(crf=30)")]["exact_rate"] == 0.0
    assert doc["methods"]["audio/lsb-baseline"]["snr_mean"] > 60
    assert doc["methods"]["video/lsb-baseline"]["psnr_mean"] > 50
    assert [x["item"] for x in doc["meta"]["ineligible"]] == ["folder/short.wav"]
    assert doc["meta"]["skipped"] == []
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Audio" in md and "## Video" in md and "× real time" in md


def test_plot_series_keep_variants_apart():
    from provmark.bench import report

    assert report._series("resize(scale=0.5)", "image") == "resize"
    assert report._series("resize(scale=0.5,back=True)", "image") == "resize(back=True)"
    assert report._series("jpeg(q=30,subsampling='444')", "image") == "jpeg(subsampling='444')"
    assert report._series("speed(factor=1.05,pitch=False)", "audio") == "speed(pitch=False)"


def test_provmark_video_adapter_round_trip():
    ok, why = AD.ProvmarkVideo.available()
    if not ok:
        pytest.skip(why)
    from provmark.bench.corpus import synthetic_video_from_photo

    clip = synthetic_video_from_photo(skimage_data.astronaut(), frames=6, size=(180, 320))
    bits = np.random.default_rng(7).integers(0, 2, 64).astype(np.uint8)
    # A 6-frame 320x180 clip sits at the engine's limit (keys 0-15 decode it 13 times, keys 0-7 six times),
    # so the adapter is checked over 8 keys, none of which may report a wrong payload or flag the unmarked clip.
    exact = 0
    for seed in range(8):
        a = AD.ProvmarkVideo(seed=seed)
        marked = a.embed(clip, bits)
        assert marked.frames.shape == clip.frames.shape and marked.frames.dtype == np.uint8
        r = a.detect(marked)
        assert not r.found or np.array_equal(r.bits, bits), f"seed {seed}: wrong payload"
        exact += bool(r.found)
        assert not a.detect(clip).found
    assert exact >= 6, f"only {exact}/8 keys decoded the marked clip"
