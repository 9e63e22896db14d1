"""provmark.batch: discovery, manifests, parallel runs, resume, failure isolation, reports, and the CLI."""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

import provmark as pm
import test_video_clips as clips  # shared clip helpers (tests/ is on pytest's pythonpath)
from provmark import batch
from provmark.media import video_io as vio


def invert_luma(job: batch.Job) -> dict:
    """A real per-file function: re-encode the video with inverted luma (atomic output via video_io)."""

    def op(frame, index):
        y = vio.luma_view(frame).y
        y[...] = 255 - y

    rep = vio.transcode(job.input, job.output, op, crf=10)
    return {"frames": rep.frames}


def mean_luma(job: batch.Job) -> dict:
    """A real per-file function without output: the mean luma of the first frame."""
    for _t, frame in vio.iter_frames(job.input, max_seconds=0.05):
        return {"mean": float(vio.luma_view(frame).y.mean())}
    raise AssertionError("unreachable")


def make_tree(root: Path) -> list[Path]:
    (root / "a" / "b").mkdir(parents=True)
    paths = [root / "one.mp4", root / "a" / "two.mkv", root / "a" / "b" / "three.mov"]
    for i, p in enumerate(paths):
        clips.make_clip(p, w=64, h=64, seconds=0.2 + 0.1 * i)
    (root / "notes.txt").write_text("not media")
    (root / "a" / ".hidden.mp4").write_bytes(b"")
    return paths


def test_discover_mirrors_folders(tmp_path):
    src = tmp_path / "in"
    paths = make_tree(src)
    jobs = batch.discover([str(src)], str(tmp_path / "out"), payload="00ff")
    assert sorted(j.input for j in jobs) == sorted(str(p) for p in paths)
    outs = {os.path.relpath(j.output, tmp_path / "out") for j in jobs}
    assert outs == {"one.mp4", os.path.join("a", "two.mkv"), os.path.join("a", "b", "three.mov")}
    assert {j.payload for j in jobs} == {"00ff"}
    only_mp4 = batch.discover([str(src)], None, exts={".mp4"})
    assert [os.path.basename(j.input) for j in only_mp4] == ["one.mp4"] and only_mp4[0].output is None
    with pytest.raises(FileNotFoundError):
        batch.discover([str(tmp_path / "nope")])


def test_manifests_jsonl_and_csv(tmp_path):
    (tmp_path / "m.jsonl").write_text(
        '{"input": "x.mp4", "output": "out/x.mp4", "payload": "0102030405060708"}\n'
        "\n# a comment\n"
        '{"input": "/abs/y.mp4", "crf": 20}\n'
    )
    jobs = batch.read_manifest(str(tmp_path / "m.jsonl"))
    assert jobs[0] == batch.Job(str(tmp_path / "x.mp4"), str(tmp_path / "out" / "x.mp4"), "0102030405060708")
    assert jobs[1].input == "/abs/y.mp4" and jobs[1].output is None and jobs[1].options == {"crf": 20}
    with open(tmp_path / "m.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["input", "output", "payload", "preset"])
        w.writerow(["v/a.mkv", "o/a.mkv", "aa" * 8, "fast"])
        w.writerow(["v/b.mkv", "", "", ""])
    jobs = batch.read_manifest(str(tmp_path / "m.csv"))
    assert jobs[0].output == str(tmp_path / "o" / "a.mkv") and jobs[0].options == {"preset": "fast"}
    assert jobs[1].output is None and jobs[1].payload is None
    (tmp_path / "bad.jsonl").write_text('{"input": "a"}\n{oops\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        batch.read_manifest(str(tmp_path / "bad.jsonl"))
    (tmp_path / "noinput.csv").write_text("file,output\na,b\n")
    with pytest.raises(ValueError, match="input"):
        batch.read_manifest(str(tmp_path / "noinput.csv"))
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(ValueError, match="manifest"):
        batch.read_manifest(str(tmp_path / "m.txt"))


def test_run_isolates_failures_and_reports(tmp_path):
    src = tmp_path / "in"
    make_tree(src)
    (src / "broken.mp4").write_bytes(os.urandom(4000))
    (src / "cut.mkv").write_bytes((src / "a" / "two.mkv").read_bytes()[:300])
    out = tmp_path / "out"
    jobs = batch.discover([str(src)], str(out))
    report = batch.run(jobs, invert_luma, workers=2, progress=False)
    status = {os.path.basename(r.job.input): r.status for r in report.results}
    assert status == {
        "one.mp4": "done",
        "two.mkv": "done",
        "three.mov": "done",
        "broken.mp4": "failed",
        "cut.mkv": "failed",
    }
    assert all("ValueError" in r.error for r in report.failed)
    # outputs are complete, inverted videos; nothing at all for the failed ones, and no temp files anywhere
    y_in, _ = clips.decode_y(src / "one.mp4")
    y_out, _ = clips.decode_y(out / "one.mp4")
    assert abs(float(np.mean(y_in + y_out)) - 255) < 2
    written = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)
    assert written == sorted(["one.mp4", os.path.join("a", "two.mkv"), os.path.join("a", "b", "three.mov")])
    d = report.to_dict()
    assert (d["jobs"], d["done"], d["failed"], d["skipped"]) == (5, 3, 2, 0)
    assert "2 failed" in report.summary() and "broken.mp4" in report.summary()
    report.write_json(str(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text())["failed"] == 2


def test_resume_skips_finished_and_cleans_stale_temps(tmp_path):
    src = tmp_path / "in"
    make_tree(src)
    out = tmp_path / "out"
    jobs = batch.discover([str(src)], str(out))
    first = batch.run(jobs, invert_luma, workers=2, progress=False)
    assert first.count("done") == 3
    mtime = (out / "one.mp4").stat().st_mtime_ns
    os.unlink(out / "a" / "two.mkv")
    # leftovers of a killed run (a pid that does not exist) and of a live process (this one)
    dead = out / "a" / ".provmark-999999999-abc.mkv"
    dead.write_bytes(b"partial")
    alive = out / f".provmark-{os.getpid()}-xyz.mp4"
    alive.write_bytes(b"in progress")
    ran = []

    def counting(job):
        ran.append(job.input)
        return invert_luma(job)

    second = batch.run(jobs, counting, workers=2, progress=False)
    assert ran == [str(src / "a" / "two.mkv")]
    assert second.count("skipped") == 2 and second.count("done") == 1
    assert (out / "one.mp4").stat().st_mtime_ns == mtime
    assert not dead.exists() and alive.exists()
    third = batch.run(jobs, counting, workers=1, progress=False, resume=False)
    assert third.count("done") == 3 or third.count("failed") == 3  # outputs exist: transcode refuses


def test_journal_resumes_jobs_without_outputs(tmp_path):
    src = tmp_path / "in"
    make_tree(src)
    jobs = batch.discover([str(src)])
    journal = tmp_path / "j.jsonl"
    calls = []

    def fn(job):
        calls.append(job.input)
        if job.input.endswith("three.mov") and len(calls) < 4:
            raise KeyboardInterrupt  # the user presses Ctrl-C during the last file
        return mean_luma(job)

    r1 = batch.run(jobs, fn, workers=1, progress=False, journal=str(journal))
    assert r1.interrupted and r1.count("done") == 2 and r1.count("pending") == 1
    r2 = batch.run(jobs, fn, workers=1, progress=False, journal=str(journal))
    assert not r2.interrupted and r2.count("skipped") == 2 and r2.count("done") == 1
    assert calls[-1].endswith("three.mov") and len(calls) == 4
    skipped = [r for r in r2.results if r.status == "skipped"]
    assert all("mean" in r.result for r in skipped)  # results come back from the journal


CRASHER = """
import os
from provmark.media import video_io as vio

def crash_on_two(job):
    if "two" in os.path.basename(job.input):
        os._exit(3)  # a decoder crash takes the whole worker process down
    for _t, frame in vio.iter_frames(job.input, max_seconds=0.05):
        return {"mean": float(vio.luma_view(frame).y.mean())}
"""


def test_process_executor_survives_a_crashing_worker(tmp_path, monkeypatch):
    # the per-file function lives in an importable module, as it must for any start method (fork/spawn)
    (tmp_path / "pm_crasher.py").write_text(CRASHER)
    monkeypatch.syspath_prepend(str(tmp_path))
    import pm_crasher

    src = tmp_path / "in"
    make_tree(src)
    jobs = batch.discover([str(src)])
    report = batch.run(jobs, pm_crasher.crash_on_two, workers=2, progress=False, executor="process")
    status = {os.path.basename(r.job.input): r.status for r in report.results}
    assert status == {"one.mp4": "done", "two.mkv": "failed", "three.mov": "done"}
    assert "crashed" in report.failed[0].error
    assert all("mean" in r.result for r in report.results if r.status == "done")


def test_run_validates(tmp_path):
    with pytest.raises(ValueError, match="same output"):
        batch.run([batch.Job("a", "o"), batch.Job("b", "o")], mean_luma, progress=False)
    with pytest.raises(ValueError, match="input itself"):
        batch.run([batch.Job("a", "a")], mean_luma, progress=False)
    with pytest.raises(ValueError, match="workers"):
        batch.run([], mean_luma, workers=0)


def _cli(argv):
    parser = argparse.ArgumentParser(prog="provmark")
    sub = parser.add_subparsers(dest="command", required=True)
    batch.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def fixed_key() -> pm.Key:
    import hashlib

    return pm.Key.from_bytes(hashlib.sha256(b"provmark batch tests").digest())  # reproducible (see test_video)


def test_cli_embed_detect_folders(tmp_path, capsys):
    key = fixed_key()
    key.save(tmp_path / "k.key")
    src = tmp_path / "in"
    src.mkdir()
    clips.make_clip(src / "clip.mp4", frames=clips.pan_frames(256, 192, 12, dx=0, dy=0))
    clips.make_clip(src / "clip2.mkv", frames=clips.pan_frames(256, 192, 12, dx=0, dy=0), codec="vp9")
    (src / "upload.mp4").write_bytes(os.urandom(2000))  # corrupt upload
    out = tmp_path / "out"
    argv = [
        "embed",
        str(src),
        "-o",
        str(out),
        "--key",
        str(tmp_path / "k.key"),
        "--payload",
        "0123456789abcdef",
        "--crf",
        "12",
        "-q",
        "--json",
        str(tmp_path / "embed.json"),
    ]
    assert _cli(argv) == 1  # one file failed
    rep = json.loads((tmp_path / "embed.json").read_text())
    assert (rep["done"], rep["failed"]) == (2, 1)
    assert not (tmp_path / "embed.json.journal.jsonl").exists()
    assert sorted(os.listdir(out)) == ["clip.mp4", "clip2.mkv"]
    err = capsys.readouterr().err
    assert "FAILED" in err and "upload.mp4" in err
    # again: finished outputs are skipped, the corrupt one fails again
    assert _cli(argv) == 1
    rep = json.loads((tmp_path / "embed.json").read_text())
    assert (rep["skipped"], rep["failed"]) == (2, 1)
    # detect the outputs
    code = _cli(["detect", str(out), "--key", str(tmp_path / "k.key"), "-q", "--json", str(tmp_path / "d.json")])
    assert code == 0
    det = json.loads((tmp_path / "d.json").read_text())
    assert [r["result"]["found"] for r in det["results"]] == [True, True]
    assert {r["result"]["payload"] for r in det["results"]} == {"0123456789abcdef"}
    assert "found payload 0123456789abcdef" in capsys.readouterr().out
    assert _cli(["detect", str(src / "clip.mp4"), "--key", str(tmp_path / "k.key"), "-q"]) == batch.EXIT_NOT_FOUND


def test_cli_manifest_and_single_file_forms(tmp_path):
    key = fixed_key()
    key.save(tmp_path / "k.key")
    clips.make_clip(tmp_path / "a.mp4", frames=clips.pan_frames(256, 192, 8, dx=0, dy=0))
    from PIL import Image
    from skimage import data

    Image.fromarray(data.astronaut()).save(tmp_path / "photo.png")
    import av

    with av.open(str(tmp_path / "voice.wav"), "w") as c:  # 12 s of 16-bit PCM
        a = c.add_stream("pcm_s16le", rate=48000)
        a.layout = "stereo"
        fr = av.AudioFrame.from_ndarray(clips.tone(48000, 12.0), format="fltp", layout="stereo")
        fr.sample_rate, fr.pts = 48000, 0
        for p in a.encode(fr):
            c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    (tmp_path / "jobs.jsonl").write_text(
        '{"input": "a.mp4", "output": "m/a.mp4", "payload": "1111111111111111", "crf": "12"}\n'
        '{"input": "photo.png", "output": "m/photo.png", "payload": "2222222222222222"}\n'
        '{"input": "voice.wav", "output": "m/voice.wav", "payload": "4444444444444444"}\n'
    )
    assert _cli(["embed", "--manifest", str(tmp_path / "jobs.jsonl"), "--key", str(tmp_path / "k.key"), "-q"]) == 0
    assert pm.video.detect_file(tmp_path / "m" / "a.mp4", key).payload == bytes.fromhex("11" * 8)
    assert pm.image.detect_file(tmp_path / "m" / "photo.png", key).payload == bytes.fromhex("22" * 8)
    x = clips.decode_audio(tmp_path / "voice.wav")
    y = clips.decode_audio(tmp_path / "m" / "voice.wav")
    assert y.shape == x.shape and np.abs(y - x).max() > 1e-3  # the audio engine's embed_file ran
    # `embed IN OUT` (the single-file form)
    assert (
        _cli(
            [
                "embed",
                str(tmp_path / "a.mp4"),
                str(tmp_path / "single.mkv"),
                "--key",
                str(tmp_path / "k.key"),
                "--payload",
                "3333333333333333",
                "--crf",
                "12",
                "-q",
            ]
        )
        == 0
    )
    assert pm.video.detect_file(tmp_path / "single.mkv", key).payload == bytes.fromhex("33" * 8)
    # missing payload: a clear per-file failure
    assert (
        _cli(["embed", str(tmp_path / "a.mp4"), str(tmp_path / "x.mp4"), "--key", str(tmp_path / "k.key"), "-q"]) == 1
    )
    assert not (tmp_path / "x.mp4").exists()
