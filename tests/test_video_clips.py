"""Small real-content test clips made with PyAV (shared by the video and batch tests), and their own checks.

Clips pan across scikit-image's bundled astronaut photo (real texture, camera motion), so a watermark sees
what it sees in footage; sizes stay at 64-160 px and 1-3 s to keep the suite fast. Other test files use
it as ``import test_video_clips as clips`` (tests/ is on pytest's pythonpath).
"""

from __future__ import annotations

import fractions
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

FORMATS = {".mp4": "mp4", ".mkv": "matroska", ".webm": "webm", ".mov": "mov", ".avi": "avi"}
ENCODERS = {
    "h264": "libx264",
    "hevc": "libx265",
    "vp9": "libvpx-vp9",
    "ffv1": "ffv1",
    "rawvideo": "rawvideo",
    "mpeg4": "mpeg4",
}
_PHOTO: np.ndarray | None = None


def photo() -> np.ndarray:
    global _PHOTO
    if _PHOTO is None:
        from skimage import data

        _PHOTO = np.ascontiguousarray(data.astronaut())  # 512 x 512 RGB
    return _PHOTO


def pan_frames(w: int, h: int, n: int, *, dx: int = 2, dy: int = 1, photo_rgb: np.ndarray | None = None) -> np.ndarray:
    """[n, h, w, 3] uint8: a window panning across the photo."""
    img = photo() if photo_rgb is None else photo_rgb
    H, W = img.shape[:2]
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        y0 = (40 + dy * i) % max(1, H - h)
        x0 = (60 + dx * i) % max(1, W - w)
        out[i] = img[y0 : y0 + h, x0 : x0 + w]
    return out


def tone(rate: int, seconds: float, channels: int = 2, seed: int = 0) -> np.ndarray:
    """[channels, n] float32: a chord with a little noise (audio the audio watermark can live in)."""
    t = np.arange(round(rate * seconds)) / rate
    rng = np.random.default_rng(seed)
    x = sum(0.08 * np.sin(2 * np.pi * f * t + p) for f, p in ((220, 0.0), (330, 1.0), (440, 2.0), (990, 0.5)))
    noise = np.convolve(rng.standard_normal(t.size), np.hanning(9) / np.hanning(9).sum(), "same")
    x = x + 0.5 * noise  # band-limited noise (below ~8 kHz, as in speech and music): room for an audio mark
    return np.clip(np.stack([x * (1.0 - 0.1 * c) for c in range(channels)]), -1, 1).astype(np.float32)


def make_clip(
    path: Any,
    *,
    w: int = 128,
    h: int = 96,
    seconds: float = 1.0,
    fps: int = 30,
    codec: str = "h264",
    pix_fmt: str = "yuv420p",
    audio: bool | str = False,
    audio_rate: int = 48000,
    channels: int = 2,
    rotation: float = 0.0,
    color_bt709: bool = False,
    tags: dict[str, str] | None = None,
    chapters: bool = False,
    vfr: bool = False,
    options: dict[str, str] | None = None,
    frames: np.ndarray | None = None,
) -> dict[str, Any]:
    """Write a clip and return what went in: frames (RGB), pts, time_base, audio samples."""
    path = os.fspath(path)
    fmt = FORMATS[os.path.splitext(path)[1].lower()]
    n = round(seconds * fps) if frames is None else len(frames)
    rgb = pan_frames(w, h, n) if frames is None else frames
    h, w = rgb.shape[1:3]
    enc = ENCODERS.get(codec, codec)
    opts = dict(options or {})
    if enc == "libx264":
        opts.setdefault("crf", "16")
        opts.setdefault("preset", "veryfast")
    elif enc == "libx265":
        opts.setdefault("crf", "18")
        opts.setdefault("preset", "ultrafast")
        opts.setdefault("x265-params", "log-level=error")
    elif enc == "libvpx-vp9":
        opts.update({"crf": opts.get("crf", "20"), "b": "0", "deadline": "realtime", "cpu-used": "8"})
    tb = fractions.Fraction(1, 1000) if vfr else fractions.Fraction(1, fps)
    pts = []
    with av.open(path, "w", format=fmt) as c:
        s = c.add_stream(enc, rate=fps, options=opts)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        s.codec_context.time_base = tb
        if enc == "mpeg4":
            s.codec_context.bit_rate = 2_000_000
        if rotation:
            s.set_display_rotation(rotation)
        if color_bt709:
            cc = s.codec_context
            cc.color_range, cc.colorspace, cc.color_primaries, cc.color_trc = 1, 1, 1, 1
        a = None
        if audio:
            acodec = {"webm": "libopus"}.get(fmt, "aac") if audio is True else audio
            a = c.add_stream(acodec, rate=audio_rate)
            a.layout = "mono" if channels == 1 else "stereo"
        c.metadata.update(tags or {})
        t_ms = 0
        rng = np.random.default_rng(1)
        for i in range(n):
            f = av.VideoFrame.from_ndarray(rgb[i], format="rgb24").reformat(format=pix_fmt)
            if color_bt709:
                f.color_range, f.colorspace = 1, 1
            if vfr:
                f.pts = t_ms
                t_ms += int(rng.choice([20, 33, 50]))
            else:
                f.pts = i
            f.time_base = tb
            pts.append(f.pts)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
        samples = None
        if a is not None:
            dur = (t_ms / 1000.0) if vfr else n / fps
            samples = tone(audio_rate, dur, channels)
            step = 960 if a.codec_context.name == "libopus" else 1024
            for k in range(0, samples.shape[1], step):
                chunk = np.ascontiguousarray(samples[:, k : k + step])
                fr = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=a.layout.name)
                fr.sample_rate, fr.pts = audio_rate, k
                for p in a.encode(fr):
                    c.mux(p)
            for p in a.encode(None):
                c.mux(p)
        if chapters:
            c.set_chapters(
                [
                    {
                        "id": 1,
                        "start": 0,
                        "end": 500,
                        "time_base": fractions.Fraction(1, 1000),
                        "metadata": {"title": "first"},
                    },
                    {
                        "id": 2,
                        "start": 500,
                        "end": 1000,
                        "time_base": fractions.Fraction(1, 1000),
                        "metadata": {"title": "second"},
                    },
                ]
            )
    return {"path": path, "rgb": rgb, "pts": pts, "time_base": tb, "audio": samples, "fps": fps}


def add_subtitles(src: str, dst: str, tmp_path: Path) -> None:
    """Mux an SRT subtitle track into a copy of src with the system ffmpeg (mov_text for MP4)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("the system ffmpeg is needed to add a subtitle track")
    srt = tmp_path / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,500\nhello\n\n2\n00:00:00,500 --> 00:00:00,900\nworld\n")
    scodec = "mov_text" if dst.endswith((".mp4", ".mov")) else "srt"
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-y",
            "-i",
            src,
            "-i",
            str(srt),
            "-map",
            "0",
            "-map",
            "1",
            "-c",
            "copy",
            "-c:s",
            scodec,
            "-metadata:s:s:0",
            "language=fra",
            dst,
        ],
        check=True,
    )


def y_plane(frame) -> np.ndarray:
    """[h, w] float32 luma samples of a decoded frame on the 8-bit scale, in the frame's own range (read from
    plane 0 of an 8-bit planar 4:4:4 copy, so limited-range video is not stretched to full range)."""
    full = frame.format.name.startswith("yuvj")
    f = frame.reformat(format="yuvj444p" if full else "yuv444p")
    h, w = f.height, f.width
    plane = np.frombuffer(f.planes[0], np.uint8)[: f.planes[0].line_size * h].reshape(h, -1)
    return plane[:, :w].astype(np.float32)


def decode_y(path: Any) -> tuple[np.ndarray, list[int]]:
    """[n, h, w] luma (8-bit scale, float32) of every frame, and the frames' pts."""
    ys, pts = [], []
    with av.open(os.fspath(path)) as c:
        for f in c.decode(c.streams.video[0]):
            ys.append(y_plane(f))
            pts.append(f.pts)
    return np.stack(ys), pts


def decode_audio(path: Any, index: int = 0) -> np.ndarray:
    """[channels, n] float64 in [-1, 1] of an audio stream (integer sample formats scaled)."""
    with av.open(os.fspath(path)) as c:
        st = c.streams.audio[index]
        ch = st.codec_context.channels
        parts = []
        for f in c.decode(st):
            a = f.to_ndarray()
            a = a.reshape(ch, -1) if f.format.is_planar else a.reshape(-1, ch).T
            if np.issubdtype(a.dtype, np.integer):
                a = a / float(-np.iinfo(a.dtype).min)
            parts.append(a.astype(np.float64))
    return np.concatenate(parts, axis=1)


# ---- checks of the helpers themselves ------------------------------------------------------------------------
def test_make_clip_writes_what_it_reports(tmp_path):
    info = make_clip(tmp_path / "c.mkv", w=96, h=64, seconds=0.5, audio=True, chapters=True, vfr=True)
    y, pts = decode_y(info["path"])
    assert y.shape == (15, 64, 96)
    assert pts == info["pts"]
    with av.open(info["path"]) as c:
        assert [ch["metadata"]["title"] for ch in c.chapters()] == ["first", "second"]
        assert c.streams.audio[0].codec_context.sample_rate == 48000


def test_pan_frames_move():
    f = pan_frames(64, 48, 3)
    assert f.shape == (3, 48, 64, 3)
    assert not np.array_equal(f[0], f[1])
