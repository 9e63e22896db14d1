"""provmark.media.audio_io and provmark.audio.embed_file / detect_file: formats, tags, safety."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

import provmark.audio as A  # noqa: E402
from provmark import Key  # noqa: E402
from provmark.media import audio_io  # noqa: E402

KEY = Key.from_bytes(bytes(range(32)))
PAYLOAD = 0xFEEDFACE12345678

# extension -> (encoder, sample format fed, bit rate or 0, rate, options)
FORMATS = {
    "wav": ("pcm_s16le", "s16", 0, 44100, {}),
    "flac": ("flac", "s16", 0, 22050, {}),
    "mp3": ("libmp3lame", "fltp", 128000, 44100, {}),
    "ogg": ("vorbis", "fltp", 128000, 44100, {"strict": "experimental"}),
    "opus": ("libopus", "flt", 96000, 48000, {}),
    "m4a": ("aac", "fltp", 128000, 44100, {}),
}
CONTAINER = {"wav": "wav", "flac": "flac", "mp3": "mp3", "ogg": "ogg", "opus": "ogg", "m4a": "ipod"}


def _tone_mix(rate: int, seconds: float, channels: int) -> np.ndarray:
    rng = np.random.default_rng(rate)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    x = np.zeros((channels, n))
    pos = 0
    while pos < n:
        dur = int(rng.uniform(0.2, 0.5) * rate)
        seg = slice(pos, min(n, pos + dur))
        tt = t[seg] - t[pos]
        f0 = 110 * 2 ** (rng.integers(0, 30) / 12)
        env = (1 - np.exp(-tt * 60)) * np.exp(-tt * 3)
        for k in range(8):
            if f0 * (k + 1) < 0.45 * rate:
                x[:, seg] += 0.2 * env * np.sin(2 * np.pi * f0 * (k + 1) * tt) / (k + 1)
        pos += dur
    beat = int(0.25 * rate)
    x += np.diff(rng.normal(0, 1, (channels, n + 1)), axis=1) * 0.04 * np.exp(-(np.arange(n) % beat) / (0.03 * rate))
    return (0.7 * x / np.abs(x).max()).astype(np.float32)


def _write(path: str, ext: str, seconds: float = 12.0, channels: int = 2) -> None:
    enc, fmt, br, rate, opts = FORMATS[ext]
    layout = "stereo" if channels == 2 else "mono"
    x = _tone_mix(rate, seconds, channels)
    with av.open(path, "w", format=CONTAINER[ext]) as out:
        out.metadata["title"] = "provmark test"
        st = out.add_stream(enc, rate=rate, layout=layout, options=opts)
        if br:
            st.bit_rate = br
        res = av.AudioResampler(format=fmt, layout=layout, rate=rate, frame_size=st.codec_context.frame_size or None)
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(x), format="fltp", layout=layout)
        fr.sample_rate = rate
        fr.pts = 0
        for f in res.resample(fr) + res.resample(None):
            for pkt in st.encode(f):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)


@pytest.mark.parametrize("ext", list(FORMATS))
def test_embed_file_keeps_format_and_detects(tmp_path, ext):
    src = str(tmp_path / f"in.{ext}")
    dst = str(tmp_path / f"out.{ext}")
    # PyAV's FFmpeg has no libvorbis: OGG is re-encoded by FFmpeg's native Vorbis encoder, which blurs the
    # mark more than libvorbis does (docs/audio.md), so that file is longer.
    _write(src, ext, seconds=24.0 if ext == "ogg" else 12.0)
    a = audio_io.read_audio(src)
    A.embed_file(src, dst, PAYLOAD, KEY)
    b = audio_io.read_audio(dst)
    assert b.sample_rate == a.sample_rate
    assert b.samples.shape[0] == a.samples.shape[0]
    assert b.codec == a.codec
    if ext in ("mp3", "ogg", "opus", "m4a"):
        assert b.bit_rate >= 0.9 * a.bit_rate  # re-encoded at the source bit rate or higher (VBR wobble)
    tags_a = {k.lower(): v for k, v in {**a.tags, **a.stream_tags}.items()}
    tags_b = {k.lower(): v for k, v in {**b.tags, **b.stream_tags}.items()}
    assert tags_b.get("title") == tags_a.get("title") == "provmark test"
    det = A.detect_file(dst, KEY)
    assert det.found and det.payload == PAYLOAD.to_bytes(8, "big")
    assert not A.detect_file(src, KEY).found
    assert sorted(os.listdir(tmp_path)) == sorted([f"in.{ext}", f"out.{ext}"])  # no temp file left


def test_never_overwrites_without_permission(tmp_path):
    src = str(tmp_path / "in.wav")
    _write(src, "wav", seconds=6.0)
    before = Path(src).read_bytes()
    with pytest.raises(FileExistsError, match="input"):
        A.embed_file(src, src, PAYLOAD, KEY)
    dst = str(tmp_path / "out.wav")
    Path(dst).write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        A.embed_file(src, dst, PAYLOAD, KEY)
    assert Path(dst).read_bytes() == b"keep me"
    assert Path(src).read_bytes() == before
    A.embed_file(src, dst, PAYLOAD, KEY, overwrite=True)
    assert A.detect_file(dst, KEY).payload == PAYLOAD.to_bytes(8, "big")
    A.embed_file(src, src, PAYLOAD, KEY, overwrite=True)  # in place only when asked
    assert A.detect_file(src, KEY).found


def test_bad_files_raise_and_leave_nothing(tmp_path):
    txt = tmp_path / "notes.wav"
    txt.write_text("this is not audio\n" * 100)
    with pytest.raises(ValueError):
        audio_io.read_audio(str(txt))
    with pytest.raises(ValueError):
        A.embed_file(str(txt), str(tmp_path / "o1.wav"), PAYLOAD, KEY)
    with pytest.raises(FileNotFoundError):
        A.detect_file(str(tmp_path / "missing.mp3"), KEY)
    good = str(tmp_path / "good.mp3")
    _write(good, "mp3", seconds=4.0)
    trunc = tmp_path / "trunc.mp3"
    trunc.write_bytes(Path(good).read_bytes()[:300])
    with pytest.raises(ValueError):
        A.embed_file(str(trunc), str(tmp_path / "o2.mp3"), PAYLOAD, KEY)
    # unknown output extension: refused before anything is written
    with pytest.raises(ValueError, match="extension"):
        A.embed_file(good, str(tmp_path / "o3.xyz"), PAYLOAD, KEY)
    left = sorted(os.listdir(tmp_path))
    assert left == ["good.mp3", "notes.wav", "trunc.mp3"], left


def test_too_short_file(tmp_path):
    src = str(tmp_path / "short.wav")
    with av.open(src, "w", format="wav") as out:
        st = out.add_stream("pcm_s16le", rate=16000, layout="mono")
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 50), dtype=np.int16), format="s16", layout="mono")
        fr.sample_rate = 16000
        for pkt in st.encode(fr):
            out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    with pytest.raises(ValueError):
        A.embed_file(src, str(tmp_path / "o.wav"), PAYLOAD, KEY)
    assert sorted(os.listdir(tmp_path)) == ["short.wav"]
