"""Video attacks on :class:`VideoClip` ``(frames [T, H, W, 3] uint8, fps)``; codecs through PyAV's FFmpeg.

Codec round trips encode 4:2:0 (odd frame sizes are edge-padded for the encoder and cropped back), decode
with FFmpeg's decoders and return exactly as many frames as went in. Spatial and photometric attacks reuse
the image attacks frame by frame with one set of random choices for the whole clip (a crop or a logo stays
in place, as an editor would leave it).
"""

from __future__ import annotations

import fractions
import functools
import io
import os
from typing import Any

import numpy as np

from . import image as _img
from ._base import VideoClip, register, video_in
from ._base import checker as _checker
from ._base import need as _need
from ._base import number as _num

# ----------------------------------------------------------------------------------- codec round trip

_CODECS: dict[str, dict[str, Any]] = {
    "h264": {"encoder": "libx264", "options": {"preset": "veryfast"}},
    "hevc": {"encoder": "libx265", "options": {"preset": "veryfast", "x265-params": "log-level=error"}},
    "vp9": {
        "encoder": "libvpx-vp9",
        "options": {"b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"},
    },
    "av1": {"encoder": "libsvtav1", "options": {"preset": "10", "svtav1-params": "lp=2"}},
}


@functools.lru_cache(maxsize=1)
def _cpu_has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            return "avx512f" in fh.read(1 << 16)
    except OSError:
        return False


def _encoder_options(codec: str, crf: int) -> dict[str, str]:
    opts = dict(_CODECS[codec]["options"])
    opts["crf"] = str(int(crf))
    if codec == "h264" and _cpu_has_avx512():
        # libx264's AVX-512 kernels in PyAV's wheels gave run-to-run different bitstreams for identical
        # input (measured: 2-10 distinct outputs in 80 encodes); its AVX2 kernels are deterministic.
        opts["x264-params"] = "asm=avx2"
    return opts


@functools.cache
def _has_encoder(name: str) -> bool:
    try:
        import av

        av.codec.Codec(name, "w")
        return True
    except Exception:
        return False


def encode(frames: np.ndarray, fps: float, codec: str, crf: int) -> bytes:
    """Encode RGB ``frames`` [T, H, W, 3] (even H, W) with ``codec`` (h264, hevc, vp9, av1) at ``crf``."""
    import av

    spec = _CODECS[codec]
    rate = fractions.Fraction(fps).limit_denominator(1001)
    buf = io.BytesIO()
    opts = _encoder_options(codec, crf)
    if codec == "av1":
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner to stderr unless told otherwise
    with av.open(buf, "w", format="matroska") as c:
        s = c.add_stream(spec["encoder"], rate=rate, options=opts)
        s.width, s.height = frames.shape[2], frames.shape[1]
        s.pix_fmt = "yuv420p"
        s.codec_context.time_base = 1 / rate
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts = i
            vf.time_base = s.codec_context.time_base
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    """Decode the first video stream of ``data`` to RGB frames [T, H, W, 3] uint8."""
    import av

    out = []
    with av.open(io.BytesIO(data), "r") as c:
        if not c.streams.video:
            raise ValueError("encoded data has no video stream")
        for fr in c.decode(c.streams.video[0]):
            out.append(fr.to_ndarray(format="rgb24"))
    if not out:
        raise ValueError("decoder returned no frames")
    return np.stack(out)


def _roundtrip(clip, codec: str, crf: int) -> VideoClip:
    frames, fps = video_in(clip)
    t, h, w = frames.shape[:3]
    ph, pw = h + (h & 1), w + (w & 1)
    src = frames
    if (ph, pw) != (h, w):
        src = np.pad(frames, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    out = decode(encode(src, fps, codec, crf))[:, :h, :w]
    if out.shape[0] != t:  # encoders keep every frame at constant rate; guard against container quirks
        idx = np.minimum(np.arange(t), out.shape[0] - 1)
        out = out[idx]
    return VideoClip(np.ascontiguousarray(out), fps)


def _check_crf(crf):
    _need(
        isinstance(crf, int) and not isinstance(crf, bool) and 0 <= crf <= 63,
        f"crf must be an int in 0..63, got {crf!r}",
    )


def _codec_family(codec: str, doc: str):
    def fn(clip, rng, crf):
        return _roundtrip(clip, codec, crf)

    fn.__name__ = codec
    fn.__doc__ = doc
    fn = register("video", codec, strength="crf", available=lambda: _has_encoder(_CODECS[codec]["encoder"]))(fn)
    fn.check = _check_crf
    return fn


h264 = _codec_family("h264", "H.264 (libx264, preset veryfast) re-encode at constant rate factor ``crf``.")
hevc = _codec_family("hevc", "HEVC (libx265, preset veryfast) re-encode at ``crf``.")
vp9 = _codec_family("vp9", "VP9 (libvpx, realtime, constant quality) re-encode at ``crf``.")
av1 = _codec_family("av1", "AV1 (SVT-AV1, preset 10) re-encode at ``crf``.")


# ----------------------------------------------------------------------------------- per-frame helpers


def _per_frame(frames: np.ndarray, fn) -> np.ndarray:
    return np.stack([fn(f) for f in frames])


@register("video")
def identity(clip, rng):
    """No change."""
    frames, fps = video_in(clip)
    return VideoClip(frames.copy(), fps)


def _check_height(height):
    _need(
        isinstance(height, int) and not isinstance(height, bool) and 16 <= height <= 8640,
        f"height must be an int in 16..8640, got {height!r}",
    )


@_checker(_check_height)
@register("video", strength="height")
def downscale(clip, rng, height):
    """Bicubic downscale to ``height`` lines (aspect kept, width even); kept at the new size. No-op if
    taller."""
    frames, fps = video_in(clip)
    h, w = frames.shape[1:3]
    if height >= h:
        return VideoClip(frames.copy(), fps)
    nw = max(2, round(w * height / h / 2) * 2)
    return VideoClip(_per_frame(frames, lambda f: _img._resize_u8(f, height, nw)), fps)


def _check_fps(target):
    v = _num(target, "target")
    _need(1 <= v <= 240, f"target must be in 1..240 fps, got {target}")


@_checker(_check_fps)
@register("video", strength="target")
def fps(clip, rng, target):
    """Frame-rate conversion to ``target`` fps by dropping or repeating frames (nearest earlier frame)."""
    frames, rate = video_in(clip)
    t = frames.shape[0]
    n = max(1, round(t * target / rate))
    idx = np.minimum((np.arange(n) * rate / target + 1e-9).astype(np.int64), t - 1)
    return VideoClip(frames[idx].copy(), float(target))


def _check_tc(seconds, offset="random"):
    v = _num(seconds, "seconds")
    _need(0 < v <= 86400, f"seconds must be in (0, 86400], got {seconds}")
    if isinstance(offset, str):
        _need(
            offset in ("random", "start", "center"),
            f"offset must be 'random', 'start', 'center' or a fraction, got {offset!r}",
        )
    else:
        _need(0 <= _num(offset, "offset") <= 1, f"offset fraction must be in 0..1, got {offset}")


@_checker(_check_tc)
@register("video", strength="seconds")
def temporal_crop(clip, rng, seconds, offset="random"):
    """Keep ``seconds`` of the clip (whole frames) from a random, initial, centred or given (fraction)
    offset."""
    frames, rate = video_in(clip)
    t = frames.shape[0]
    n = min(t, max(1, round(seconds * rate)))
    free = t - n
    if offset == "random":
        s = int(rng.integers(0, free + 1))
    elif offset == "start":
        s = 0
    elif offset == "center":
        s = free // 2
    else:
        s = round(free * float(offset))
    return VideoClip(frames[s : s + n].copy(), rate)


def _check_frac(frac):
    v = _num(frac, "frac")
    _need(0 <= v < 1, f"frac must be in 0..1 (exclusive), got {frac}")


@_checker(_check_frac)
@register("video", strength="frac")
def frame_drop(clip, rng, frac):
    """Drop a random ``frac`` of the frames (at least one frame kept); the frame rate is unchanged."""
    frames, rate = video_in(clip)
    t = frames.shape[0]
    k = min(t - 1, round(t * frac))
    drop = rng.choice(t, size=k, replace=False) if k else np.array([], np.int64)
    keep = np.setdiff1d(np.arange(t), drop)
    return VideoClip(frames[keep].copy(), rate)


@_checker(_check_frac)
@register("video", strength="frac")
def frame_dup(clip, rng, frac):
    """Duplicate a random ``frac`` of the frames in place (each chosen frame shown twice)."""
    frames, rate = video_in(clip)
    t = frames.shape[0]
    k = round(t * frac)
    dup = np.zeros(t, np.int64)
    if k:
        dup[rng.choice(t, size=k, replace=False)] = 1
    idx = np.repeat(np.arange(t), 1 + dup)
    return VideoClip(frames[idx].copy(), rate)


@_checker(_check_frac)
@register("video", strength="frac")
def frame_swap(clip, rng, frac):
    """Swap random disjoint pairs of neighbouring frames, touching about ``frac`` of the frames."""
    frames, rate = video_in(clip)
    t = frames.shape[0]
    pairs = t // 2
    k = min(pairs, round(t * frac / 2))
    idx = np.arange(t)
    for p in rng.choice(pairs, size=k, replace=False) if k else []:
        a = 2 * int(p)
        idx[a], idx[a + 1] = idx[a + 1], idx[a]
    return VideoClip(frames[idx].copy(), rate)


@_checker(_img._check_crop)
@register("video", strength="area")
def crop(clip, rng, area, offset="random"):
    """Spatial crop keeping ``area`` of each frame (aspect kept), at one offset for the whole clip."""
    frames, rate = video_in(clip)
    state = int(rng.integers(0, 2**63 - 1))
    return VideoClip(_per_frame(frames, lambda f: _img.crop(f, np.random.default_rng(state), area, offset)), rate)


@_checker(_img._check_factor)
@register("video", strength="factor")
def brightness(clip, rng, factor):
    """Multiply intensities by ``factor`` (as the image attack), every frame."""
    frames, rate = video_in(clip)
    return VideoClip(_per_frame(frames, lambda f: _img.brightness(f, rng, factor)), rate)


@_checker(_img._check_factor)
@register("video", strength="factor")
def contrast(clip, rng, factor):
    """Blend each frame with its mean grey by ``factor`` (as the image attack)."""
    frames, rate = video_in(clip)
    return VideoClip(_per_frame(frames, lambda f: _img.contrast(f, rng, factor)), rate)


@_checker(_img._check_axis)
@register("video")
def flip(clip, rng, axis="h"):
    """Mirror every frame left-right (``h``) or top-bottom (``v``)."""
    frames, rate = video_in(clip)
    return VideoClip(np.ascontiguousarray(frames[:, :, ::-1] if axis == "h" else frames[:, ::-1]), rate)


@_checker(_img._check_overlay)
@register("video", strength="size")
def overlay_logo(clip, rng, size, opacity=0.8):
    """A static logo of side ``size`` x short side with ``opacity``, at one random place for the whole
    clip."""
    frames, rate = video_in(clip)
    state = int(rng.integers(0, 2**63 - 1))
    return VideoClip(
        _per_frame(frames, lambda f: _img.overlay_logo(f, np.random.default_rng(state), size, opacity)), rate
    )


def _check_combo(crf=30, side=0.71, factor=0.5):
    _check_crf(crf)
    _need(0 < _num(side, "side") <= 1, f"side must be in (0, 1], got {side}")
    _img._check_factor(factor)


@_checker(_check_combo)
@register("video", available=lambda: _has_encoder("libx264"))
def h264_crop_brightness(clip, rng, crf=30, side=0.71, factor=0.5):
    """VideoSeal-style combination: crop keeping ``side`` of each side (0.71 ≈ half the area), brightness
    ``factor``, then H.264 at ``crf``."""
    out = crop(clip, rng, side * side, "random")
    out = brightness(out, rng, factor)
    return _roundtrip(out, "h264", crf)
