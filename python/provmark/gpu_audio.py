"""Audio watermark detection scores on CUDA for batches of clips already on the GPU.

``scores(x, sample_rate, key)`` runs the detector's hot paths for B same-length clips at once on the device:
the per-hop power spectra (``_core.cuda_audio_analysis``), the projections and reliability weights at every
speed hypothesis (``cuda_audio_projections``) and the fold over every block phase, i.e. every time offset of
the 4.8 s block, with its sync statistic (``cuda_audio_fold``). These are the device twins of the CPU core's
``audio_analysis``, ``audio_projections`` and ``audio_fold`` (the functions ``provmark.audio`` detection runs
per clip and per speed); only the folded terms and the sync statistics come back to the host.

Inputs: any CUDA array (torch, CuPy, ``__cuda_array_interface__``) of float32 / float64 samples in [-1, 1],
shaped ``[C, n]`` (one clip) or ``[B, C, n]`` (a batch), any element strides. Intake, stream choice and
allocation are ``provmark.gpu``'s.

``embed(x, sample_rate, payload, key)`` marks B clips on the device as ``audio.embed`` marks each clip (band
energies per cell, quantiser moves, the causal budget as a sequential scan per clip, gains, inverse transform
and overlap-add; ``_core.cuda_audio_embed``).

Not here yet: payload decoding, p-values and the sub-hop refinement of ``audio.detect`` (the host can run
them from the returned terms: ``AudioScores.terms``). See docs/gpu.md, "Audio".
Status: compiled, never run on a GPU (no device was available when it was written).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core, audio
from . import gpu as _gpu

__all__ = ["AudioScores", "analysis", "embed", "scores"]

_MAX_HOP = 1024  # csrc/cuda/audio_cuda.h kMaxHop


@dataclass(frozen=True)
class _Clips:
    arr: Any  # provmark.gpu._Array
    batch: int
    channels: int
    n: int
    strides: tuple[int, int, int]  # elements: clip, channel, sample


def _clips(x: Any, fn: str) -> _Clips:
    a = _gpu._cai(x, fn)
    if a.dtype not in ("float32", "float64"):
        raise TypeError(f"{fn}: samples must be float32 or float64 in [-1, 1], got {a.dtype}")
    if len(a.shape) == 2:
        (c, n), (sc, st) = a.shape, a.strides
        b, sb = 1, 0
    elif len(a.shape) == 3:
        (b, c, n), (sb, sc, st) = a.shape, a.strides
    else:
        raise ValueError(f"{fn}: expected [C, n] or [B, C, n] samples, got shape {a.shape}")
    if not 1 <= c <= 16:
        raise ValueError(f"{fn}: channels must be in [1, 16], got {c} (shape {a.shape}: channels before samples)")
    if b > 65535:
        raise ValueError(f"{fn}: at most 65535 clips per call, got {b}")
    return _Clips(a, b, c, n, (sb, sc, st))


def _geometry(rate: int, max_scale: float) -> tuple[int, np.ndarray, int]:
    """hop, band edges, top: what audio._NativeAnalysis uses for this rate."""
    lay = audio.DEFAULT_LAYOUT
    h = audio.hop_length(rate, lay)
    if h > _MAX_HOP:
        raise ValueError(f"provmark.gpu_audio: hop {h} is above the device limit {_MAX_HOP}")
    edges = lay.band_edges()[: lay.groups_for_rate(rate) * lay.group + 1]
    top = min(h + 1, math.ceil(edges[-1] * max_scale) + 2)
    return h, edges, top


def _frames(n: int, h: int) -> int:
    return (n - 2 * h) // h + 1 if n >= 2 * h else 0


def _rows(nfr: int, cell_hops: int, speed: float) -> int:
    """Projection rows at one speed (the core's projection_rows)."""
    if nfr == 0:
        return 0
    ne = nfr if speed == 1.0 else math.ceil((nfr - 1.0) * speed + 1e-9)
    return ne - cell_hops + 1 if ne >= cell_hops else 0


def analysis(x: Any, sample_rate: int, *, max_scale: float = 1.06, stream: int | None = None) -> Any:
    """Cumulated Hann power spectra of every hop of every clip: a device array [B, nfr, top + 1] float64.

    The device twin of ``_core.audio_analysis`` (per clip: ``[C, n]`` input gives ``B = 1``); queued on the
    stream, not synchronised. ``top`` covers the bands at speeds up to ``max_scale``.
    """
    fn = "provmark.gpu_audio.analysis"
    rate = audio._check_rate(sample_rate)
    if isinstance(max_scale, bool) or not isinstance(max_scale, (int, float)) or not 1.0 <= max_scale <= 2.1:
        raise ValueError(f"{fn}: max_scale must be in [1, 2.1], got {max_scale!r}")
    cl = _clips(x, fn)
    h, _, top = _geometry(rate, float(max_scale))
    if cl.n < 2 * h:
        raise ValueError(f"{fn}: need at least one frame ({2 * h} samples at {rate} Hz), got {cl.n}")
    _gpu._require_cuda(fn)
    return _analysis(cl, h, top, _gpu._pick_stream(cl.arr, stream, fn))


def _analysis(cl: _Clips, h: int, top: int, st: int) -> Any:
    nfr = _frames(cl.n, h)
    cs = _gpu._empty(cl.arr.obj, (cl.batch, nfr, top + 1), "float64")  # callers ensure nfr >= 1
    sb, sc, s_t = cl.strides
    _core.cuda_audio_analysis(
        cl.arr.ptr, cl.arr.dtype, cl.batch, cl.channels, cl.n, sb, sc, s_t, h, top, _gpu._cai(cs, "cs").ptr, st
    )
    return cs


@dataclass(frozen=True)
class AudioScores:
    """Detection scores of B clips x S speeds x P block phases (host arrays).

    ``z[b, s, m]``: sync statistic of clip b at speed ``speeds[s]`` and block phase m (hops; offset
    ``m * hop / speed`` samples), as ``audio.detect`` ranks candidates. ``fc``, ``fs`` [B, S, P, ng]: folded
    weighted cos / sin terms; ``rows[s]``: projection rows at speed s (0: too short, z is 0).
    """

    speeds: tuple[float, ...]
    z: np.ndarray
    fc: np.ndarray
    fs: np.ndarray
    rows: np.ndarray
    dither: np.ndarray  # [T, G] the key's dither table (for terms())
    ng: int
    cell_hops: int

    def terms(self, b: int, s: int, m: int) -> np.ndarray:
        """Folded terms [T, ng] of clip b, speed index s, phase m (what audio's decoder reads)."""
        P = self.z.shape[2]
        T = self.dither.shape[0]
        idx = (m + self.cell_hops * np.arange(T)) % P
        d = 2.0 * np.pi * self.dither[:, : self.ng]
        return self.fc[b, s][idx] * np.cos(d) + self.fs[b, s][idx] * np.sin(d)


def scores(
    x: Any,
    sample_rate: int,
    key: Any,
    *,
    speeds: Sequence[float] = audio.SPEEDS_DEFAULT,
    stream: int | None = None,
) -> AudioScores:
    """Sync statistics of every (clip, speed, block phase) of a batch on the device; synchronises the stream.

    ``x``: CUDA float32 / float64 ``[C, n]`` or ``[B, C, n]``; ``speeds``: the playback speed hypotheses
    (each in [0.5, 2]; default ``audio.SPEEDS_DEFAULT``, +-2 % in 0.2 % steps).
    """
    fn = "provmark.gpu_audio.scores"
    rate = audio._check_rate(sample_rate)
    try:
        sp = tuple(float(s) for s in speeds)
    except TypeError:
        raise TypeError(f"{fn}: speeds must be a sequence of numbers, got {type(speeds).__name__}") from None
    if not sp or not all(0.5 <= s <= 2.0 for s in sp):
        raise ValueError(f"{fn}: speeds must be a non-empty sequence of values in [0.5, 2], got {speeds!r}")
    kb = audio._key_bytes(key)
    cl = _clips(x, fn)
    lay = audio.DEFAULT_LAYOUT
    h, edges, top = _geometry(rate, max(sp) * 1.01)
    need = 2 * h + (lay.cell_hops - 1) * h
    if cl.n < need:
        raise ValueError(f"{fn}: need at least {need} samples ({need / rate:.3f} s) at {rate} Hz, got {cl.n}")
    _gpu._require_cuda(fn)
    st = _gpu._pick_stream(cl.arr, stream, fn)
    tables = audio._tables(kb, lay, int(_core.ecc_coded_length(audio.PAYLOAD_BITS)))
    ng = lay.groups_for_rate(rate)
    S, B, P = len(sp), cl.batch, lay.block_hops
    cs = _analysis(cl, h, top, st)
    nfr = _frames(cl.n, h)
    rows = np.array([_rows(nfr, lay.cell_hops, s) for s in sp], dtype=np.int64)
    R = max(int(rows.max()), 1)
    like = cl.arr.obj
    p = _gpu._empty(like, (B, S, R, ng), "float64")
    w = _gpu._empty(like, (B, S, R, ng), "float64")
    _core.cuda_audio_projections(
        _gpu._cai(cs, fn).ptr,
        B,
        nfr,
        top,
        edges.astype(np.int32),
        np.ascontiguousarray(tables.chips, dtype=np.float64),
        ng,
        lay.cell_hops,
        lay.floor * 2 * h * lay.cell_hops,
        np.asarray(sp, dtype=np.float64),
        audio._SNR_W0,
        audio._SNR_W1,
        R,
        _gpu._cai(p, fn).ptr,
        _gpu._cai(w, fn).ptr,
        st,
    )
    fc = _gpu._empty(like, (B, S, P, ng), "float64")
    fs = _gpu._empty(like, (B, S, P, ng), "float64")
    z = _gpu._empty(like, (B, S, P), "float64")
    sign = np.where(tables.is_sync, 1.0 - 2.0 * tables.sync_bit, 0.0)
    _core.cuda_audio_fold(
        _gpu._cai(p, fn).ptr,
        _gpu._cai(w, fn).ptr,
        B * S,
        R,
        np.tile(rows, B),
        ng,
        np.ascontiguousarray(tables.dither, dtype=np.float64),
        np.ascontiguousarray(sign, dtype=np.float64),
        lay.step,
        lay.cell_hops,
        _gpu._cai(fc, fn).ptr,
        _gpu._cai(fs, fn).ptr,
        _gpu._cai(z, fn).ptr,
        st,
    )
    out = {}
    for name, dev, shape in (("fc", fc, (B, S, P, ng)), ("fs", fs, (B, S, P, ng)), ("z", z, (B, S, P))):
        host = np.empty(shape, np.float64)
        _core.cuda_copy_to_host(_gpu._cai(dev, fn).ptr, host, st)  # synchronises the stream
        out[name] = host
    return AudioScores(
        speeds=sp,
        z=out["z"],
        fc=out["fc"],
        fs=out["fs"],
        rows=rows,
        dither=np.array(tables.dither),
        ng=ng,
        cell_hops=lay.cell_hops,
    )


def embed(
    x: Any,
    sample_rate: int,
    payload: Any,
    key: Any,
    strength: float = 1.0,
    *,
    out: Any = None,
    stream: int | None = None,
) -> Any:
    """Mark every clip of ``x`` (CUDA float32 / float64, ``[C, n]`` or ``[B, C, n]``) with ``payload`` under ``key``.

    The device twin of ``audio.embed`` applied to each clip (output clipped to [-1, 1]). Returns a new array
    like ``x`` (torch / CuPy inputs), or writes into ``out`` (same shape, float32 / float64, any strides;
    ``out=x`` marks in place) and returns it. Queued on the stream, not synchronised.
    """
    fn = "provmark.gpu_audio.embed"
    rate = audio._check_rate(sample_rate)
    cl = _clips(x, fn)
    if cl.n < audio.frame_length(rate):
        raise ValueError(f"{fn}: need at least one frame ({audio.frame_length(rate)} samples at {rate} Hz), got {cl.n}")
    kb = audio._key_bytes(key)
    _, coded = audio._payload_bits(payload)
    alpha = audio._check_strength(strength)
    lay = audio.DEFAULT_LAYOUT
    h, _, _ = _geometry(rate, 1.0)
    _gpu._require_cuda(fn)
    st = _gpu._pick_stream(cl.arr, stream, fn)
    if out is None:
        out = _gpu._empty(cl.arr.obj, cl.arr.shape, cl.arr.dtype)
    oc = _clips(out, fn)
    if oc.arr.readonly:
        raise ValueError(f"{fn}: out is read-only")
    if oc.arr.shape != cl.arr.shape:
        raise ValueError(f"{fn}: out must have the shape of x {cl.arr.shape}, got {oc.arr.shape}")
    same = oc.arr.ptr == cl.arr.ptr and oc.strides == cl.strides and oc.arr.dtype == cl.arr.dtype
    if not same and _gpu._overlaps(cl.arr, oc.arr):
        raise ValueError(f"{fn}: out overlaps x without being x")
    tables = audio._tables(kb, lay, len(coded))
    bits = audio._instance_bits(tables, coded)
    ng = lay.groups_for_rate(rate)
    edges = lay.band_edges()[: ng * lay.group + 1]
    _core.cuda_audio_embed(
        cl.arr.ptr,
        cl.arr.dtype,
        cl.batch,
        cl.channels,
        cl.n,
        *cl.strides,
        oc.arr.ptr,
        oc.arr.dtype,
        *oc.strides,
        h,
        lay.cell_hops,
        edges.astype(np.int32),
        np.ascontiguousarray(tables.chips, dtype=np.float64),
        np.ascontiguousarray(tables.dither, dtype=np.float64),
        np.ascontiguousarray(bits, dtype=np.int8),
        ng,
        lay.step,
        lay.gamma,
        lay.cap,
        alpha,
        lay.snr_db,
        lay.local_snr_db,
        lay.bucket_leak,
        lay.floor,
        st,
    )
    return out
