"""Video watermarking: the image engine's luma watermark on every frame, marked in the frame's own YUV layout.

Public API::

    report = provmark.video.embed_file(src, dst, payload, key, *, codec=None, crf=None, preset=None,
                                       audio="mark", progress=True)
    det = provmark.video.detect_file(path, key, *, max_seconds=None)        # -> provmark.Detection
    emb = provmark.video.FrameEmbedder(width, height, payload, key)          # for frame generators
    out = emb.push(frame)        # numpy / torch RGB (uint8 or float) or grey, or a PyAV VideoFrame
    det = provmark.video.detect_frames(frames, key)

How it works (figures and commands in docs/video.md):

* Embedding: every frame gets the image watermark (``provmark.image``: tiled spread spectrum in luma, keyed
  by ``key`` and ``payload``) on its luma samples, in place in the decoded frame's own pixel format
  (yuv420p, yuvj*, yuv422p, yuv444p, nv12/nv21, p010, 9-16-bit planar, gray, packed yuyv/uyvy), without an
  RGB round trip; RGB-native frames (gbrp, rgb24, ...) get the same delta on R, G and B. All frames of one
  size go through one prepared ``provmark.image.LumaEmbedder`` (tables and tile built once; the informed
  step is off for video, see ``INFORMED``), so every frame carries the same pattern at the same place and
  costs one texture mask plus one pattern-and-add pass.
* Detection: because the pattern sits still while the picture moves, the luma of many frames is averaged
  (at the detector's working resolution) before the image detector runs on the average: the host averages
  towards a smooth picture while the pattern adds up coherently, so a mark that compression has reduced to a
  trace in each frame is found over seconds. Each second is also checked on its own (``details["segments"]``)
  so that a cut of marked and unmarked footage is localised. The overall decision tries the average of all
  frames, for decoded PyAV frames of mixed picture types an average that weighs intra frames more
  (``TYPE_WEIGHTS``: heavy compression leaves far more of the mark in I frames), the average of the
  seconds that showed the mark, and when the camera moved a motion-aligned average (``MOTION_FRAMES``: P
  frames carry the mark along with the picture); p-values are multiplied by the number of averages that
  could be tried (Bonferroni).
* Files: :func:`provmark.media.video_io.transcode` runs decode -> mark -> encode as a pipeline and keeps
  timestamps, rotation, colour metadata, audio (watermarked with ``provmark.audio`` when ``audio="mark"``),
  subtitles, chapters and tags; the output is written atomically and never replaces the input unless asked.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ._arrays import cuda_ndim, is_cuda_array
from .detection import Detection
from .image import _check_fpr, _check_strength  # shared argument checks (messages name the caller)
from .keys import Key
from .payload import Payload

__all__ = [
    "DEFAULT_FPR",
    "SEGMENT_FPR",
    "FrameEmbedder",
    "detect_file",
    "detect_frames",
    "embed_file",
]

DEFAULT_FPR = 1e-6  # false-positive rate per video for `found`
SEGMENT_FPR = 1e-4  # a second counts as "present" when its own p-value is at most this
WORK_SHORT_SIDE = 512  # frames are averaged at this short side (the image detector's working size)


def _image():
    from . import image

    return image


def _video_io():
    from .media import video_io

    return video_io


def _check_key(key: Any, fn: str) -> Key:
    if not isinstance(key, Key):
        raise TypeError(f"{fn}: key must be a provmark.Key, got {type(key).__name__}")
    return key


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "dim")


def _is_av_frame(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "av" and hasattr(x, "planes") and hasattr(x, "reformat")


# ----------------------------------------------------------------------------------------------------------
# Embedding: one frame operation, used by FrameEmbedder and embed_file
# ----------------------------------------------------------------------------------------------------------
INFORMED = "off"  # image.LumaEmbedder informed step for video: no gain after averaging (docs/video.md)
# Video strength profile: ``strength=1`` marks frames at this multiple of the image engine's amplitude
# (image.TARGET_RMS). 1.08 keeps the mark's luma PSNR above 42 dB on the benchmark footage (about 0.7 dB
# below the image default) and raises the payload's signal after heavy compression (docs/video.md).
STRENGTH_GAIN = 1.08
# The mark's RMS on flat pixels (texture mask at its floor) at strength 1, in grey levels: above it a static
# grain showed on mostly flat frames (a sky, a dark background); the energy taken from them goes to the
# textured pixels by their texture (image.LumaEmbedder flat_rms; measured in docs/video.md, "Imperceptibility").
FLAT_RMS = 0.7


class _LumaMarker:
    """Marks frames of one size with one (payload, key, strength) through one prepared
    :class:`provmark.image.LumaEmbedder`, shared by all frames. Thread-safe."""

    def __init__(self, width: int, height: int, payload: Payload, key: Key, strength: float) -> None:
        self.width, self.height = width, height
        self.payload, self.key, self.strength = payload, key, strength
        self._image = _image()
        self.gained = min(10.0, strength * STRENGTH_GAIN)  # image.LumaEmbedder takes strengths up to 10
        self.flat_rms = FLAT_RMS * strength
        self.embedder = self._image.LumaEmbedder(
            width, height, payload, key, self.gained, informed=INFORMED, flat_rms=self.flat_rms
        )

    # The single seam to the image engine: a luma plane in grey levels (uint8) or in [0, 1] (float32).
    def _mark_grey(self, y: np.ndarray) -> np.ndarray:
        return self.embedder.mark(np.ascontiguousarray(y))

    def mark_array(self, a: Any, fn: str) -> Any:
        """Mark a numpy / torch CPU picture of this size (the image engine's input forms); same form back."""
        ad = self._image._adapt(a, fn)
        return ad.restore(self.embedder.mark(ad.array))

    def mark_luma(self, lv: Any) -> None:
        """Mark a :class:`provmark.media.video_io.LumaView` in place."""
        y = lv.y
        if lv.bit_depth == 8 and lv.shift == 0 and y.dtype == np.uint8:
            y[...] = self._mark_grey(y)
            return
        vmax = float(lv.max_value)
        v = (y >> lv.shift) if lv.shift else y
        f = (v.astype(np.float32) / np.float32(vmax)).clip(0.0, 1.0)
        out = self._mark_grey(f)
        q = np.clip(np.rint(out * np.float32(vmax)), 0, vmax).astype(np.uint16)
        y[...] = (q << lv.shift) if lv.shift else q

    def mark_av_frame(self, frame: Any) -> Any:
        """Mark a PyAV VideoFrame: in place on its luma plane, or through RGB for RGB-native formats."""
        vio = _video_io()
        if frame.width != self.width or frame.height != self.height:
            raise ValueError(f"video: frame is {frame.width}x{frame.height}, expected {self.width}x{self.height}")
        if vio.has_luma_plane(frame.format.name):
            frame.make_writable()
            self.mark_luma(vio.luma_view(frame))
            return frame
        import av

        fmt = frame.format.name
        rgb = frame.to_ndarray(format="rgb24")
        marked = self.embedder.mark(rgb)
        out = av.VideoFrame.from_ndarray(marked, format="rgb24")
        if fmt != "rgb24":
            out = out.reformat(format=fmt)
        out.pts = frame.pts
        if frame.time_base is not None:
            out.time_base = frame.time_base
        for k in ("color_range", "colorspace"):
            with contextlib.suppress(AttributeError, ValueError):  # unusual enum values stay unset
                setattr(out, k, getattr(frame, k))
        return out


class FrameEmbedder:
    """Watermark the frames of a stream one by one (for generators that produce frames).

    ``push(frame)`` accepts, and returns in the same form:
      * numpy ``[H, W, 3]`` RGB, ``[H, W, 4]`` RGBA or ``[H, W]`` grey, uint8 or float in [0, 1];
      * a torch tensor ``[3, H, W]`` (or ``[H, W, 3]``), uint8 or float in [0, 1]; CUDA tensors and CuPy arrays
        are marked on their device by :class:`provmark.gpu.LumaEmbedder` (queued, no host copy);
      * a PyAV ``VideoFrame`` in any pixel format: YUV frames are marked on their luma plane in place (the
        frame is made writable first, so a decoder's reference frames are never touched).
    Every frame gets the same keyed pattern, so :func:`detect_frames` can average them.
    """

    def __init__(
        self, width: int, height: int, payload: Payload | bytes | int, key: Key, *, strength: float = 1.0
    ) -> None:
        for name, v in (("width", width), ("height", height)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"FrameEmbedder: {name} must be a positive int, got {v!r}")
        img = _image()
        lo = int(getattr(img, "MIN_EMBED_SIDE", 64))
        if min(width, height) < lo:
            raise ValueError(f"FrameEmbedder: frames must be at least {lo} px on each side, got {width}x{height}")
        self.width, self.height = int(width), int(height)
        self._marker = _LumaMarker(
            self.width,
            self.height,
            Payload.coerce(payload),
            _check_key(key, "FrameEmbedder"),
            _check_strength(strength, "FrameEmbedder"),
        )
        self.frames = 0
        self._lock = threading.Lock()
        self._gpu: Any = None  # provmark.gpu.LumaEmbedder, made for the first CUDA frame

    def _gpu_marker(self) -> Any:
        if self._gpu is None:
            from . import gpu

            m = self._marker
            self._gpu = gpu.LumaEmbedder(self.width, self.height, m.payload, m.key, m.gained, flat_rms=m.flat_rms)
        return self._gpu

    def push(self, frame: Any) -> Any:
        """Return ``frame`` watermarked (same type, layout and dtype; a PyAV frame is marked in place)."""
        if _is_av_frame(frame):
            out = self._marker.mark_av_frame(frame)
        elif _is_torch(frame) and frame.is_cuda:  # marked where it is, queued on torch's current stream
            out = self._gpu_marker().mark(frame)
        elif _is_torch(frame):
            out = self._push_torch(frame)
        elif isinstance(frame, np.ndarray):
            self._check_hw(frame.shape[:2], "numpy [H, W(, C)]")
            out = self._marker.mark_array(frame, "FrameEmbedder.push")
        elif is_cuda_array(frame):  # CuPy and other CUDA arrays
            out = self._gpu_marker().mark(frame)
        else:
            raise TypeError(
                f"FrameEmbedder.push: expected a numpy array, a torch tensor or an av.VideoFrame, "
                f"got {type(frame).__name__}"
            )
        with self._lock:
            self.frames += 1
        return out

    def _check_hw(self, hw: tuple[int, ...], layout: str) -> None:
        if tuple(hw) != (self.height, self.width):
            raise ValueError(
                f"FrameEmbedder.push: frame has (H, W) = {tuple(hw)} as {layout}, expected "
                f"({self.height}, {self.width})"
            )

    def _push_torch(self, t: Any) -> Any:
        m = self._marker
        if t.dim() == 3 and t.shape[0] in (1, 3, 4) and tuple(t.shape[1:]) == (self.height, self.width):
            return m.mark_array(t.detach(), "FrameEmbedder.push")
        if t.dim() in (2, 3) and tuple(t.shape[:2]) == (self.height, self.width):
            import torch

            out = m.mark_array(t.detach().numpy(), "FrameEmbedder.push")
            return torch.from_numpy(np.ascontiguousarray(out))
        raise ValueError(
            f"FrameEmbedder.push: tensor shape {tuple(t.shape)} is neither [C, {self.height}, "
            f"{self.width}] nor [{self.height}, {self.width}, C]"
        )


# ----------------------------------------------------------------------------------------------------------
# Detection: average luma over frames, per second and overall
# ----------------------------------------------------------------------------------------------------------
def _work_size(w: int, h: int) -> tuple[int, int]:
    short = min(w, h)
    if short <= WORK_SHORT_SIDE:
        return w, h
    s = WORK_SHORT_SIDE / short
    return max(1, round(w * s)), max(1, round(h * s))


def _area_axis0(y: np.ndarray, n_out: int) -> np.ndarray:
    """Area resample along axis 0: each output sample is the mean of the input span it covers (exact box
    integral through a cumulative sum, O(n))."""
    n_in = y.shape[0]
    cs = np.concatenate([np.zeros((1, *y.shape[1:])), np.cumsum(y, axis=0, dtype=np.float64)])
    edges = np.arange(n_out + 1) * (n_in / n_out)
    i = np.minimum(np.floor(edges).astype(np.int64), n_in - 1)
    frac = (edges - i)[:, None]
    c = cs[i] + frac * y[i]
    return ((c[1:] - c[:-1]) * (n_out / n_in)).astype(np.float32)


def _area_down(y: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Area downscale of [H, W] float32 (numpy / torch frames; PyAV frames use swscale's area filter)."""
    h, w = y.shape
    if (h, w) == (out_h, out_w):
        return y
    return _area_axis0(_area_axis0(y, out_h).T, out_w).T


def _av_frame_luma(frame: Any) -> np.ndarray:
    """Luma of a PyAV frame in grey levels (float32, 0..255 scale), at the working size."""
    vio = _video_io()
    ww, wh = _work_size(frame.width, frame.height)
    fmt = frame.format.name
    if not vio.has_luma_plane(fmt):
        rgb = frame.to_ndarray(format="rgb24", width=ww, height=wh, interpolation="AREA")
        return _rgb_luma(rgb)
    if (ww, wh) != (frame.width, frame.height):
        frame = frame.reformat(width=ww, height=wh, interpolation="AREA")
    lv = vio.luma_view(frame)
    y = lv.y
    if lv.shift:
        y = y >> lv.shift
    if lv.bit_depth == 8:
        return y.astype(np.float32)
    return y.astype(np.float32) * np.float32(255.0 / lv.max_value)


# Weights of the type-weighted average by picture type (I, P, B): under heavy compression intra frames keep
# far more of the mark than predicted ones (docs/video.md, "Frame types"). Other types count 1.
TYPE_WEIGHTS = {1: 16.0, 2: 2.0, 3: 1.0}
# Camera motion: an H.264/HEVC P frame carries the mark along with the moving picture, and at high CRF the
# fixed mark is not restored, so after each intra frame the mark travels with the content and fades
# (docs/video.md, "Camera motion"). The detector also tries the average of the MOTION_FRAMES frames from each
# intra frame (the first frame when types are unknown), each moved back by its global shift against that
# frame (phase correlation, Fourier shift), which puts the travelling mark back in place.
MOTION_FRAMES = 8
MOTION_MIN_SHIFT = 0.5  # px at the working size: below this the aligned average adds nothing to the plain one


def _frame_weight(frame: Any) -> float:
    """Weight of a decoded PyAV frame in the type-weighted average (1 when its type is unknown)."""
    try:
        return TYPE_WEIGHTS.get(int(frame.pict_type), 1.0)
    except (AttributeError, TypeError, ValueError):
        return 1.0


@functools.lru_cache(maxsize=4)
def _hann2(shape: tuple[int, int]) -> np.ndarray:
    return np.outer(np.hanning(shape[0]), np.hanning(shape[1])).astype(np.float32)


def _motion_spectrum(y: np.ndarray) -> np.ndarray:
    """Spectrum for _global_shift: the plane minus its mean, Hann-windowed (float32 FFT)."""
    from scipy import fft as sfft

    return sfft.rfft2((y - np.float32(y.mean())).astype(np.float32) * _hann2(y.shape))


def _global_shift(ref_spec: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(dy, dx) in pixels with y(p) ~ ref(p - (dy, dx)): phase correlation (ref_spec from _motion_spectrum of
    the reference), parabolic sub-pixel peak."""
    from scipy import fft as sfft

    h, w = y.shape
    cross = _motion_spectrum(y) * np.conj(ref_spec)
    cross /= np.abs(cross) + np.float32(1e-12)
    r = sfft.irfft2(cross, s=(h, w))
    iy, ix = np.unravel_index(int(np.argmax(r)), r.shape)

    def vertex(m: float, c: float, p: float) -> float:
        den = m - 2.0 * c + p
        return 0.5 * (m - p) / den if den != 0 else 0.0

    dy = iy + vertex(r[iy - 1, ix], r[iy, ix], r[(iy + 1) % h, ix])
    dx = ix + vertex(r[iy, ix - 1], r[iy, ix], r[iy, (ix + 1) % w])
    return float(dy - h if dy > h / 2 else dy), float(dx - w if dx > w / 2 else dx)


def _shift_ramp(shape: tuple[int, int], dy: float, dx: float) -> np.ndarray:
    """Multiplier of an rfft2 spectrum of ``shape`` that moves the plane by (dy, dx) pixels (cyclic)."""
    ry = np.exp(-2j * np.pi * np.fft.fftfreq(shape[0]) * dy).astype(np.complex64)
    rx = np.exp(-2j * np.pi * np.fft.rfftfreq(shape[1]) * dx).astype(np.complex64)
    return ry[:, None] * rx[None, :]  # separable: no exponential per element


def _rgb_luma(a: np.ndarray) -> np.ndarray:
    """[H, W] float32 grey levels (0..255) of uint8 / float [0, 1] grey or RGB(A) (BT.601 weights)."""
    scale = np.float32(255.0 if a.dtype != np.uint8 else 1.0)
    if a.ndim == 2:
        return a.astype(np.float32) * scale
    f = a[..., :3].astype(np.float32)
    return (f[..., 0] * np.float32(0.299) + f[..., 1] * np.float32(0.587) + f[..., 2] * np.float32(0.114)) * scale


def _array_luma(x: Any) -> np.ndarray:
    if _is_torch(x):
        t = x.detach().cpu()
        a = t.numpy()
        if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
            a = np.moveaxis(a, 0, -1)
    elif isinstance(x, np.ndarray):
        a = x
    else:
        raise TypeError(
            f"detect_frames: frames must be numpy arrays, torch tensors or av.VideoFrames, got {type(x).__name__}"
        )
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ValueError(f"detect_frames: a frame must be [H, W], [H, W, 3|4] or [3, H, W], got {a.shape}")
    if a.dtype not in (np.uint8, np.float32, np.float64):
        raise TypeError(f"detect_frames: frame dtype must be uint8 or float, got {a.dtype}")
    y = _rgb_luma(a)
    ww, wh = _work_size(y.shape[1], y.shape[0])
    return _area_down(y, wh, ww)


class _Accumulator:
    """Sums working-size luma per second and overall; runs the image detector on averages."""

    def __init__(self, key: Key, fpr: float, segment_fpr: float, segments: bool, motion: bool = True) -> None:
        self.key, self.fpr, self.segment_fpr, self.want_segments = key, fpr, segment_fpr, segments
        self.motion = motion  # the motion-aligned average (off for sampled frames: too sparse for the fade)
        self.shape: tuple[int, int] | None = None
        self.total: np.ndarray | None = None
        self.n = 0
        self.sec: int | None = None
        self.sec_sum: np.ndarray | None = None
        self.sec_n = 0
        self.sec_t0 = 0.0
        self.segments: list[dict[str, Any]] = []
        self.present_sum: np.ndarray | None = None
        self.present_n = 0
        self.best_segment: tuple[Detection, int] | None = None
        self.t_detect = 0.0
        self.wtotal: np.ndarray | None = None  # frame-type weighted sum (only when frame types vary)
        self.wsum = 0.0
        self.weights_seen: set[float] = set()
        # motion-aligned sum (MOTION_FRAMES): the intra frame's motion spectrum, frames left in its window, the
        # sum of the aligned frames' spectra
        self.mc_ref: np.ndarray | None = None
        self.mc_left = 0
        self.mc_sum: np.ndarray | None = None
        self.mc_n = 0
        self.mc_moved = False

    def _detect(self, mean: np.ndarray) -> Detection:
        t0 = time.perf_counter()
        a = np.clip(mean / np.float32(255.0), 0.0, 1.0).astype(np.float32)
        det = _image().detect(a, self.key, fpr=self.fpr)
        self.t_detect += time.perf_counter() - t0
        return det

    def add(self, t: float, y: np.ndarray, weight: float = 1.0) -> None:
        if self.shape is None:
            self.shape = y.shape
            self.total = np.zeros(y.shape, np.float64)
            self.wtotal = np.zeros(y.shape, np.float64)
        elif y.shape != self.shape:
            raise ValueError(f"detect: frame size changed within the video ({self.shape} -> {y.shape})")
        if self.motion:
            self._add_motion(y, self.n == 0 or weight == TYPE_WEIGHTS[1])
        self.total += y
        self.n += 1
        self.wtotal += y * weight if weight != 1.0 else y
        self.wsum += weight
        self.weights_seen.add(weight)
        if not self.want_segments:
            return
        s = math.floor(max(t, 0.0))
        if self.sec is not None and s != self.sec:
            self._close_second()
        if self.sec is None or s != self.sec:
            self.sec, self.sec_sum, self.sec_n, self.sec_t0 = s, np.zeros(y.shape, np.float64), 0, t
        self.sec_sum += y
        self.sec_n += 1

    def _add_motion(self, y: np.ndarray, intra: bool) -> None:
        """The motion-aligned sum: frames within MOTION_FRAMES of their intra frame, moved back onto it (summed
        as spectra: one inverse FFT at the end)."""
        from scipy import fft as sfft

        if y.shape[0] < 4 or y.shape[1] < 4:
            return
        if intra:
            self.mc_ref = _motion_spectrum(y)
            self.mc_left = MOTION_FRAMES
            spec = sfft.rfft2(y.astype(np.float32)).astype(np.complex128)
        elif self.mc_left > 0:
            dy, dx = _global_shift(self.mc_ref, y)
            self.mc_moved |= math.hypot(dy, dx) >= MOTION_MIN_SHIFT
            spec = sfft.rfft2(y.astype(np.float32)) * _shift_ramp(y.shape, -dy, -dx)
        else:
            return
        self.mc_sum = spec if self.mc_sum is None else self.mc_sum + spec
        self.mc_n += 1
        self.mc_left -= 1

    def _close_second(self) -> None:
        if self.sec is None or self.sec_n == 0:
            return
        mean = (self.sec_sum / self.sec_n).astype(np.float32)
        det = self._detect(mean)
        present = bool(det.found or det.p_value <= self.segment_fpr)
        self.segments.append(
            {
                "start": float(self.sec),
                "end": float(self.sec + 1),
                "frames": self.sec_n,
                "present": present,
                "score": float(det.score),
                "p_value": float(det.p_value),
                "payload": det.payload_hex,
            }
        )
        if present:
            self.present_sum = self.sec_sum.copy() if self.present_sum is None else self.present_sum + self.sec_sum
            self.present_n += self.sec_n
        if self.best_segment is None or det.score > self.best_segment[0].score:
            self.best_segment = (det, len(self.segments) - 1)
        self.sec, self.sec_sum, self.sec_n = None, None, 0

    def result(self, extra: dict[str, Any]) -> Detection:
        if self.n == 0:
            raise ValueError("detect: no frames to check")
        self._close_second()
        tries: list[tuple[str, Detection]] = [("all_frames", self._detect((self.total / self.n).astype(np.float32)))]
        weighted = len(self.weights_seen) > 1  # frame types known and mixed: the intra-weighted mean too
        if weighted and not tries[0][1].found:
            tries.append(("type_weighted", self._detect((self.wtotal / self.wsum).astype(np.float32))))
        if not any(d.found for _, d in tries) and 0 < self.present_n < self.n:
            tries.append(("present_seconds", self._detect((self.present_sum / self.present_n).astype(np.float32))))
        moved = self.mc_moved and self.mc_n > 1  # the camera moved: the motion-aligned average too
        if moved and not any(d.found for _, d in tries):
            mean = np.fft.irfft2(self.mc_sum / self.mc_n, s=self.shape)
            tries.append(("motion_aligned", self._detect(mean.astype(np.float32))))
        # every average that could have been tried counts (Bonferroni), whether or not an earlier one decoded
        n_tests = 1 + weighted + (0 < self.present_n < self.n) + moved + (len(self.segments) if self.segments else 0)
        if not any(d.found for _, d in tries) and self.best_segment is not None and self.best_segment[0].found:
            tries.append((f"segment_{self.best_segment[1]}", self.best_segment[0]))
        found = [(name, d) for name, d in tries if d.found]
        name, best = found[0] if found else max(tries, key=lambda nd: nd[1].score)
        p = min(1.0, best.p_value * n_tests)
        ok = bool(best.found and p <= self.fpr)
        details = dict(extra)
        details.update(
            {
                "frames": self.n,
                "work_size": [int(self.shape[1]), int(self.shape[0])] if self.shape else None,
                "decision": name,
                "averages_tried": n_tests,
                "image": best.details,
                "segments": self.segments,
                "detect_seconds": round(self.t_detect, 4),
            }
        )
        return Detection(
            found=ok, payload=best.payload if ok else None, p_value=float(p), score=float(best.score), details=details
        )


def detect_frames(
    frames: Iterable[Any],
    key: Key,
    *,
    fps: float | None = None,
    fpr: float = DEFAULT_FPR,
    segment_fpr: float = SEGMENT_FPR,
    segments: bool = True,
) -> Detection:
    """Look for the watermark of ``key`` in a sequence of frames (numpy / torch RGB or grey, PyAV frames).

    Frames are averaged (see the module doc). ``fps`` sets the time of numpy/torch frames for
    ``details["segments"]`` (default 30); PyAV frames use their own timestamps when they have them, and their
    picture types (``pict_type``) for the type-weighted average.
    ``found`` (with the payload) only when the CRC passes and the p-value is at most ``fpr``."""
    _check_key(key, "detect_frames")
    acc = _Accumulator(key, _check_fpr(fpr, "detect_frames"), _check_fpr(segment_fpr, "detect_frames"), segments)
    rate = 30.0 if fps is None else float(fps)
    if not rate > 0:
        raise ValueError(f"detect_frames: fps must be > 0, got {fps!r}")
    if is_cuda_array(frames) and cuda_ndim(frames) == 4:  # luma and resampling on the device, one launch
        from . import gpu

        for i, y in enumerate(gpu.work_luma(frames, batch=True)):
            acc.add(i / rate, y)
        frames = []
    elif (isinstance(frames, (np.ndarray,)) and frames.ndim == 4) or (_is_torch(frames) and frames.dim() == 4):
        frames = list(frames)
    for i, f in enumerate(frames):
        if _is_av_frame(f):
            t = float(f.pts * f.time_base) if f.pts is not None and f.time_base is not None else i / rate
            acc.add(t, _av_frame_luma(f), _frame_weight(f))
        elif is_cuda_array(f):
            from . import gpu

            acc.add(i / rate, gpu.work_luma(f, batch=False)[0])
        else:
            acc.add(i / rate, _array_luma(f))
    if acc.n == 0:
        raise ValueError("detect_frames: no frames given")
    return acc.result({"source": "frames"})


def detect_file(
    path: Any,
    key: Key,
    *,
    max_seconds: float | None = None,
    sample_fps: float | None = None,
    fpr: float = DEFAULT_FPR,
    segment_fpr: float = SEGMENT_FPR,
    segments: bool = True,
    fast: bool = False,
) -> Detection:
    """Decode the video file ``path`` and look for the watermark of ``key``.

    max_seconds: check only the first ``max_seconds`` of video; sample_fps: use at most this many frames per
    second (all by default; sampled frames also skip the motion-aligned average); fast: let the decoder skip
    non-reference frames. These bound the cost of checking long uploads. ``details["segments"]`` gives one
    entry per second: ``present``, ``score``, ``p_value`` and the payload the second decodes on its own (if
    any)."""
    _check_key(key, "detect_file")
    # sampled frames skip the motion-aligned average: the mark fades within about 40 frames of an intra frame
    # (docs/video.md, "Camera motion"), so a window of sampled frames would hold little of it
    acc = _Accumulator(
        key, _check_fpr(fpr, "detect_file"), _check_fpr(segment_fpr, "detect_file"), segments, sample_fps is None
    )
    vio = _video_io()
    t0 = time.perf_counter()
    t_dec = 0.0
    last_t = 0.0
    it = vio.iter_frames(path, max_seconds=max_seconds, sample_fps=sample_fps, skip_nonref=fast)
    while True:
        t1 = time.perf_counter()
        try:
            t, frame = next(it)
        except StopIteration:
            break
        t_dec += time.perf_counter() - t1
        acc.add(t, _av_frame_luma(frame), _frame_weight(frame))
        last_t = t
    return acc.result(
        {
            "source": os.fspath(path),
            "seconds_checked": round(last_t, 3),
            "decode_seconds": round(t_dec, 4),
            "wall_seconds": round(time.perf_counter() - t0, 4),
        }
    )


# ----------------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------------
class _AudioMarkOp:
    """Adapts provmark.audio.StreamEmbedder to video_io's AudioOp (clips decoder overshoot to [-1, 1])."""

    def __init__(self, emb: Any) -> None:
        self.emb = emb

    def push(self, samples: np.ndarray) -> np.ndarray:
        if samples.shape[1] == 0:
            return samples.astype(np.float32)
        return np.asarray(self.emb.push(np.clip(samples, -1.0, 1.0).astype(np.float32)), np.float32).reshape(
            samples.shape[0], -1
        )

    def flush(self) -> np.ndarray:
        return np.asarray(self.emb.flush(), np.float32).reshape(self.emb.channels, -1)


def _audio_op_factory(payload: Payload, key: Key, strength: float) -> Callable[[int, int], Any]:
    try:
        from . import audio as pm_audio
    except ImportError:  # pragma: no cover - the audio engine ships with provmark
        pm_audio = None

    def factory(rate: int, channels: int) -> Any:
        if pm_audio is None or rate not in getattr(pm_audio, "SUPPORTED_RATES", ()) or not 1 <= channels <= 16:
            return None
        return _AudioMarkOp(pm_audio.StreamEmbedder(rate, channels, payload, key, strength))

    return factory


def _progress_callback(progress: Any, label: str) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    if progress is None or progress is False:
        return None, lambda: None
    if callable(progress):
        return progress, lambda: None
    try:
        from tqdm import tqdm
    except ImportError:
        last = [0.0]

        def simple(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 1.0:
                last[0] = now
                print(f"\r{label}: {done}/{total or '?'} frames", end="", file=sys.stderr, flush=True)

        return simple, lambda: print(file=sys.stderr)
    bar = tqdm(total=None, unit="frame", desc=label, file=sys.stderr, leave=False)

    def cb(done: int, total: int) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return cb, bar.close


def embed_file(
    src: Any,
    dst: Any,
    payload: Payload | bytes | int,
    key: Key,
    *,
    codec: str | None = None,
    crf: int | None = None,
    preset: str | None = None,
    audio: str = "mark",
    progress: Any = True,
    strength: float = 1.0,
    overwrite: bool = False,
    workers: int | None = None,
) -> dict[str, Any]:
    """Watermark the video file ``src`` into ``dst``; returns a report (codec, frames, what happened to
    every stream, timings).

    codec/crf/preset: video encoder and quality (default: the source codec when PyAV can encode it, else
        H.264; CRF 18 for H.264, 20 for HEVC, 24 for VP9/AV1).
    audio: "mark" (watermark each audio stream with provmark.audio when its sample rate is supported, else
        copy it), "copy" (stream copy) or "drop".
    progress: True (a progress bar on stderr), False, or a callable(frames_done, frames_total).
    The output keeps resolution, frame rate and timestamps (VFR too), rotation, colour metadata, subtitles,
    chapters and tags; it is written atomically, and ``dst`` (or the input) is replaced only with
    ``overwrite=True``."""
    key = _check_key(key, "embed_file")
    pl = Payload.coerce(payload)
    s = _check_strength(strength, "embed_file")
    if audio not in ("mark", "copy", "drop"):
        raise ValueError(f"embed_file: audio must be 'mark', 'copy' or 'drop', got {audio!r}")
    vio = _video_io()
    info = vio.probe(src)
    lo = int(getattr(_image(), "MIN_EMBED_SIDE", 64))
    if min(info.width, info.height) < lo:
        raise ValueError(
            f"embed_file: {os.fspath(src)}: frames are {info.width}x{info.height}; the watermark "
            f"needs at least {lo} px on each side"
        )
    marker = _LumaMarker(info.width, info.height, pl, key, s)

    def op(frame: Any, index: int) -> Any:
        return marker.mark_av_frame(frame)

    cb, close = _progress_callback(progress, os.path.basename(os.fspath(src)))
    try:
        rep = vio.transcode(
            src,
            dst,
            op,
            codec=codec,
            crf=crf,
            preset=preset,
            audio=audio,
            audio_op=_audio_op_factory(pl, key, s) if audio == "mark" else None,
            overwrite=overwrite,
            progress=cb,
            workers=workers,
        )
    finally:
        close()
    out = rep.to_dict()
    out.update({"payload": pl.hex(), "key_id": key.id})
    return out
