"""Audio watermarking on CUDA for batches of clips already on the GPU.

``detect_batch(x, sample_rate, key)`` detects B same-length clips at once: the device computes the
detector's hot paths for the whole batch (the per-hop power spectra, ``_core.cuda_audio_analysis``; the
projections and reliability weights at every speed hypothesis, ``cuda_audio_projections``; the fold over
every block phase with its sync statistic, ``cuda_audio_fold``), only the folded terms and sync statistics
come back, and the host runs ``audio.detect``'s own search on them (``audio._Search``: candidate ranking,
Viterbi decoding, the sub-hop re-analyses, which are device analyses of shifted views, p-value, presence
segments). ``scores`` returns the raw device scores; ``analysis`` the spectra.

``embed(x, sample_rate, payload, key)`` marks B clips on the device as ``audio.embed`` marks each clip (band
energies per cell, quantiser moves, wanted gains, inverse transform per frame, each cell's change energy,
the causal budget as a sequential scan per clip, the scaled overlap-add; ``_core.cuda_audio_embed``).
``StreamEmbedder`` marks a stream of device chunks, carrying the budget and the last hop's change between
calls on the device (the output equals ``embed`` on the whole).

Inputs: any CUDA array (torch, CuPy, ``__cuda_array_interface__``) of float32 / float64 samples in [-1, 1] or
int16 (value / 32768), shaped ``[C, n]`` (one clip; ``[n]``: mono) or ``[B, C, n]`` (a batch), any element
strides. Intake,
stream choice and allocation are ``provmark.gpu``'s. See docs/gpu.md, "Audio".
Status: compiled, never run on a GPU (no device was available when it was written).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core, audio
from . import gpu as _gpu
from ._arrays import is_torch

__all__ = ["AudioScores", "StreamEmbedder", "analysis", "detect_batch", "embed", "scores"]

_MAX_HOP = 1024  # csrc/cuda/audio_cuda.h kMaxHop
_MAX_SERIES = 65535  # (clip, speed) series per fold launch (grid y)
_DETECT_SLICE = 64  # clips per device pass of detect_batch (bounds the device and host score buffers)
_SAMPLE_TYPES = ("float32", "float64", "int16")


@dataclass(frozen=True)
class _Clips:
    arr: Any  # provmark.gpu._Array
    batch: int
    channels: int
    n: int
    strides: tuple[int, int, int]  # elements: clip, channel, sample

    def at(self, clip: int = 0, shift: int = 0) -> int:
        """Device address of sample ``shift`` of channel 0 of clip ``clip`` (a view: no copy)."""
        return self.arr.ptr + (clip * self.strides[0] + shift * self.strides[2]) * self.arr.itemsize

    def clips(self, start: int, count: int) -> _Clips:
        """Clips start .. start + count - 1 (a view: no copy)."""
        return dataclasses.replace(self, arr=dataclasses.replace(self.arr, ptr=self.at(start)), batch=count)


def _clips(x: Any, fn: str) -> _Clips:
    a = _gpu._cai(x, fn)
    if a.dtype not in _SAMPLE_TYPES:
        raise TypeError(f"{fn}: samples must be float32 or float64 in [-1, 1], or int16, got {a.dtype}")
    if len(a.shape) == 1:  # one mono clip
        (n,), (st,) = a.shape, a.strides
        b, c, sb, sc = 1, 1, 0, 0
    elif len(a.shape) == 2:
        (c, n), (sc, st) = a.shape, a.strides
        b, sb = 1, 0
    elif len(a.shape) == 3:
        (b, c, n), (sb, sc, st) = a.shape, a.strides
    else:
        raise ValueError(f"{fn}: expected [n], [C, n] or [B, C, n] samples, got shape {a.shape}")
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
    return _analysis(cl, h, top, _gpu._pick_stream(cl.arr, stream, fn))[0]


def _analysis(
    cl: _Clips, h: int, top: int, st: int, ptr: int | None = None, batch: int | None = None, n: int | None = None
) -> tuple[Any, int]:
    """Device spectra [batch, nfr, top + 1] of the clips at ``ptr`` (default: all of ``cl``; a shifted or
    single-clip view otherwise, same strides), and nfr."""
    ptr = cl.arr.ptr if ptr is None else ptr
    batch = cl.batch if batch is None else batch
    n = cl.n if n is None else n
    nfr = _frames(n, h)
    cs = _gpu._empty(cl.arr.obj, (batch, nfr, top + 1), "float64")  # callers ensure nfr >= 1
    sb, sc, s_t = cl.strides
    _core.cuda_audio_analysis(
        ptr, cl.arr.dtype, batch, cl.channels, n, sb, sc, s_t, h, top, _gpu._cai(cs, "cs").ptr, st
    )
    return cs, nfr


@dataclass(frozen=True)
class _Batch:
    """Device scores of a batch of clips: host z / fc / fs per (clip, speed), device p / w kept for presence."""

    speeds: np.ndarray  # [B, S] float64
    rows: np.ndarray  # [B, S] int64: projection rows (0: shorter than a cell at that speed)
    z: np.ndarray  # [B, S, P]
    fc: np.ndarray  # [B, S, P, ng]
    fs: np.ndarray  # [B, S, P, ng]
    p: Any  # device [B, S, R, ng] float64
    w: Any
    R: int
    ng: int
    stream: int
    spectra: tuple[Any, int, int]  # the device analysis [B, nfr, top + 1] (owner, address) and nfr
    edges: np.ndarray  # band edges of the rate (audio._NativeAnalysis's)
    top: int  # highest bin of the spectra


def _device_scores(
    cl: _Clips,
    rate: int,
    tables: Any,
    speeds: np.ndarray,
    per_clip: bool,
    st: int,
    max_scale: float,
    ptr: int | None = None,
    batch: int | None = None,
    n: int | None = None,
    spectra: tuple[Any, int, int] | None = None,
) -> _Batch:
    """Analysis, projections at every speed and fold of the clips at ``ptr`` (see _analysis); synchronises.

    speeds: [B, S] (per_clip: each clip its own S speeds) or [1, S] (the same S speeds for every clip).
    spectra: the analysis of the same clips from an earlier call (its ``_Batch.spectra``), not recomputed.
    """
    fn = "provmark.gpu_audio"
    lay = audio.DEFAULT_LAYOUT
    h, edges, top = _geometry(rate, max_scale)
    batch = cl.batch if batch is None else batch
    if spectra is None:
        cs, nfr = _analysis(cl, h, top, st, ptr, batch, n)
        spectra = (cs, _gpu._cai(cs, fn).ptr, nfr)
    nfr = spectra[2]
    ng = lay.groups_for_rate(rate)
    S, P = speeds.shape[1], lay.block_hops
    sp = speeds if per_clip else np.broadcast_to(speeds, (batch, S))
    rows = np.array([[_rows(nfr, lay.cell_hops, float(s)) for s in row] for row in sp], dtype=np.int64)
    R = max(int(rows.max()), 1)
    like = cl.arr.obj
    p = _gpu._empty(like, (batch, S, R, ng), "float64")
    w = _gpu._empty(like, (batch, S, R, ng), "float64")
    _core.cuda_audio_projections(
        spectra[1],
        batch,
        nfr,
        top,
        edges.astype(np.int32),
        np.ascontiguousarray(tables.chips, dtype=np.float64),
        ng,
        lay.cell_hops,
        lay.floor * 2 * h * lay.cell_hops,
        np.ascontiguousarray(speeds if per_clip else speeds[0], dtype=np.float64),
        audio._SNR_W0,
        audio._SNR_W1,
        R,
        _gpu._cai(p, fn).ptr,
        _gpu._cai(w, fn).ptr,
        st,
        per_clip=per_clip,
    )
    fc = _gpu._empty(like, (batch, S, P, ng), "float64")
    fs = _gpu._empty(like, (batch, S, P, ng), "float64")
    z = _gpu._empty(like, (batch, S, P), "float64")
    sign = np.where(tables.is_sync, 1.0 - 2.0 * tables.sync_bit, 0.0)
    _core.cuda_audio_fold(
        _gpu._cai(p, fn).ptr,
        _gpu._cai(w, fn).ptr,
        batch * S,
        R,
        rows.reshape(-1),
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
    for name, dev, shape in (("fc", fc, (batch, S, P, ng)), ("fs", fs, (batch, S, P, ng)), ("z", z, (batch, S, P))):
        host = np.empty(shape, np.float64)
        _core.cuda_copy_to_host(_gpu._cai(dev, fn).ptr, host, st)  # synchronises the stream
        out[name] = host
    return _Batch(
        np.array(sp, dtype=np.float64), rows, out["z"], out["fc"], out["fs"], p, w, R, ng, st, spectra, edges, top
    )


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
        return _terms(self.fc[b, s], self.fs[b, s], self.dither, self.ng, self.cell_hops, m)


def _terms(fc: np.ndarray, fs: np.ndarray, dither: np.ndarray, ng: int, cell_hops: int, m: int) -> np.ndarray:
    """audio._NativeAnalysis's term(m): the folded terms [T, ng] read at block phase m."""
    P, T = fc.shape[0], dither.shape[0]
    idx = (m + cell_hops * np.arange(T)) % P
    d = 2.0 * np.pi * dither[:, :ng]
    return fc[idx] * np.cos(d) + fs[idx] * np.sin(d)


def _check_speeds(speeds: Sequence[float], fn: str) -> tuple[float, ...]:
    try:
        sp = tuple(float(s) for s in speeds)
    except TypeError:
        raise TypeError(f"{fn}: speeds must be a sequence of numbers, got {type(speeds).__name__}") from None
    if not sp or not all(0.5 <= s <= 2.0 for s in sp):
        raise ValueError(f"{fn}: speeds must be a non-empty sequence of values in [0.5, 2], got {speeds!r}")
    return sp


def _detect_clips(x: Any, sample_rate: int, fn: str) -> tuple[int, _Clips]:
    rate = audio._check_rate(sample_rate)
    cl = _clips(x, fn)
    lay = audio.DEFAULT_LAYOUT
    h = audio.hop_length(rate, lay)
    need = 2 * h + (lay.cell_hops - 1) * h
    if cl.n < need:
        raise ValueError(f"{fn}: need at least {need} samples ({need / rate:.3f} s) at {rate} Hz, got {cl.n}")
    return rate, cl


def scores(
    x: Any,
    sample_rate: int,
    key: Any,
    *,
    speeds: Sequence[float] = audio.SPEEDS_DEFAULT,
    stream: int | None = None,
) -> AudioScores:
    """Sync statistics of every (clip, speed, block phase) of a batch on the device; synchronises the stream.

    ``x``: CUDA float32 / float64 / int16 ``[C, n]`` or ``[B, C, n]``; ``speeds``: the playback speed
    hypotheses (each in [0.5, 2]; default ``audio.SPEEDS_DEFAULT``, +-2 % in 0.2 % steps).
    """
    fn = "provmark.gpu_audio.scores"
    audio._check_rate(sample_rate)
    sp = _check_speeds(speeds, fn)
    kb = audio._key_bytes(key)
    rate, cl = _detect_clips(x, sample_rate, fn)
    _geometry(rate, 1.0)
    _gpu._require_cuda(fn)
    st = _gpu._pick_stream(cl.arr, stream, fn)
    if cl.batch * len(sp) > _MAX_SERIES:
        raise ValueError(f"{fn}: clips x speeds must be at most {_MAX_SERIES}, got {cl.batch} x {len(sp)}")
    lay = audio.DEFAULT_LAYOUT
    tables = audio._tables(kb, lay, int(_core.ecc_coded_length(audio.PAYLOAD_BITS)))
    r = _device_scores(cl, rate, tables, np.array([sp], dtype=np.float64), False, st, max(sp) * 1.01)
    return AudioScores(
        speeds=sp,
        z=r.z,
        fc=r.fc,
        fs=r.fs,
        rows=r.rows[0],
        dither=np.array(tables.dither),
        ng=r.ng,
        cell_hops=lay.cell_hops,
    )


class _DeviceAnalysis:
    """One clip of a device batch, as audio's detector reads an analysis (audio._Search, audio._presence):
    ``speed_scores`` from the batch's z and folded terms, ``projections`` copied back for one speed."""

    def __init__(self, batch: _Batch, b: int, rate: int) -> None:
        lay = audio.DEFAULT_LAYOUT
        self.layout, self.rate = lay, rate
        self.h = audio.hop_length(rate, lay)
        self.n = 2 * self.h
        self._batch, self._b = batch, b
        self._index = {float(s): i for i, s in enumerate(batch.speeds[b])}
        self._cs: tuple[Any, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.edges, self.top = batch.edges, batch.top
        self._spectra: np.ndarray | None = None

    def _speed(self, speed: float) -> int | None:
        s = self._index.get(float(speed))
        if s is None:
            raise AssertionError(f"speed {speed} was not scored on the device")  # the search asks for its own
        return s if self._batch.rows[self._b, s] > 0 else None

    def speed_scores(self, speed: float, ng: int, tables: Any) -> tuple[np.ndarray, Any] | None:
        s = self._speed(speed)
        if s is None:
            return None
        r = self._batch
        fc, fs = r.fc[self._b, s], r.fs[self._b, s]
        if self._cs is None or self._cs[0] is not tables:  # cos / sin of the dithers, once per analysis
            d = 2.0 * np.pi * tables.dither[:, :ng]
            self._cs = (tables, np.cos(d), np.sin(d), self.layout.cell_hops * np.arange(d.shape[0]))
        _, cd, sd, steps = self._cs
        P = fc.shape[0]

        def term(m: int) -> np.ndarray:  # audio._NativeAnalysis's term(m)
            idx = (m + steps) % P
            return fc[idx] * cd + fs[idx] * sd

        return r.z[self._b, s], term

    def projections(self, speed: float, ng: int, tables: Any) -> tuple[np.ndarray, np.ndarray] | None:
        s = self._speed(speed)
        if s is None:
            return None
        r = self._batch
        rows = int(r.rows[self._b, s])
        off = (self._b * r.speeds.shape[1] + s) * r.R * r.ng * 8
        out = []
        for dev in (r.p, r.w):
            host = np.empty((rows, r.ng), np.float64)
            _core.cuda_copy_to_host(_gpu._cai(dev, "provmark.gpu_audio").ptr + off, host, r.stream)
            out.append(host)
        return out[0], out[1]

    def scores(self, p: np.ndarray, w: np.ndarray, tables: Any, ng: int) -> tuple[np.ndarray, Any]:
        return audio._NativeAnalysis.scores(self, p, w, tables, ng)  # type: ignore[arg-type]

    def band_energy(self, speed: float) -> np.ndarray:
        """Band energies per hop at ``speed`` from this clip's device spectra, copied back once (only the
        last second-chance decoding of audio._Search reads them: audio._noise_model)."""
        if self._spectra is None:
            _owner, addr, nfr = self._batch.spectra
            host = np.empty((nfr, self.top + 1), np.float64)
            if nfr:
                _core.cuda_copy_to_host(addr + self._b * nfr * (self.top + 1) * 8, host, self._batch.stream)
            self._spectra = host
        return audio._band_energy_at(self._spectra, self.edges, self.top, speed)


def detect_batch(
    x: Any,
    sample_rate: int,
    key: Any,
    *,
    fpr: float = audio.DEFAULT_FPR,
    speed_search: bool = False,
    stream: int | None = None,
) -> list[Any]:
    """Look for a watermark of ``key`` in every clip of ``x``; one ``provmark.Detection`` per clip.

    ``x``: CUDA float32 / float64 in [-1, 1] or int16, ``[C, n]`` (one clip) or ``[B, C, n]``. The same
    search as ``audio.detect`` (speeds +-2 %, +-5 % with ``speed_search``, every 10 ms block phase, the
    sub-hop re-analyses), with the spectra, projections and folds of all clips and speeds computed on the
    device; the host decodes. Synchronises the stream.
    """
    fn = "provmark.gpu_audio.detect_batch"
    if isinstance(fpr, bool) or not isinstance(fpr, (int, float)) or not (0 < fpr < 1):
        raise ValueError(f"{fn}: fpr must be in (0, 1), got {fpr!r}")
    kb = audio._key_bytes(key)
    rate, cl = _detect_clips(x, sample_rate, fn)
    _geometry(rate, 1.0)
    _gpu._require_cuda(fn)
    st = _gpu._pick_stream(cl.arr, stream, fn)
    speeds = audio.SPEEDS_SEARCH if speed_search else audio.SPEEDS_DEFAULT
    step = max(1, min(_DETECT_SLICE, _MAX_SERIES // len(speeds)))
    out = []
    for b0 in range(0, cl.batch, step):
        out += _detect_slice(cl.clips(b0, min(step, cl.batch - b0)), rate, kb, speeds, fpr, st)
    return out


def _detect_slice(cl: _Clips, rate: int, kb: bytes, speeds: tuple[float, ...], fpr: float, st: int) -> list[Any]:
    """detect_batch on the clips of ``cl`` (at most _MAX_SERIES // len(speeds) of them)."""
    max_scale = max(speeds) * 1.01
    B = cl.batch
    runs = [audio._Search(rate, kb, speeds, fpr=fpr) for _ in range(B)]
    tables = runs[0].tables
    base = _device_scores(cl, rate, tables, np.array([speeds], dtype=np.float64), False, st, max_scale)
    an0 = [_DeviceAnalysis(base, b, rate) for b in range(B)]
    for b in range(B):
        runs[b].search(an0[b], 0, speeds)
    # The sub-hop re-analyses, in lockstep: each step re-analyses the clips whose search asks for one, each at
    # the (shift, speed) it asks for; clips asking for the same shift share one batched call over the shifted
    # view (per-clip speeds) when they are at least half of the batch, else get one call each. The spectra of a
    # shifted view are kept for the next step at the same shift (another speed): only projections and folds
    # run again.
    spectra: dict[tuple[int, int], tuple[Any, int, int]] = {}  # (shift, clip or -1: all) -> _Batch.spectra
    steps = {b: runs[b].refinement(cl.n) for b in range(B)}
    while active := {b: req for b, req in steps.items() if req is not None}:
        for shift in sorted({req[0] for req in active.values()}):
            group = [b for b, req in active.items() if req[0] == shift]
            ans: dict[int, _DeviceAnalysis] = {}
            if 2 * len(group) >= B:
                sp = np.ones((B, 1))
                for b in group:
                    sp[b, 0] = active[b][1]
                r = _device_scores(
                    cl,
                    rate,
                    tables,
                    sp,
                    True,
                    st,
                    max_scale,
                    cl.at(0, shift),
                    B,
                    cl.n - shift,
                    spectra.get((shift, -1)),
                )
                spectra[(shift, -1)] = r.spectra
                ans = {b: _DeviceAnalysis(r, b, rate) for b in group}
            else:
                for b in group:
                    sp = np.array([[active[b][1]]])
                    cached = spectra.get((shift, b))
                    if cached is None and (shift, -1) in spectra:  # clip b's rows of the batch's spectra
                        owner, ptr, nfr = spectra[(shift, -1)]
                        top = _geometry(rate, max_scale)[2]
                        cached = (owner, ptr + b * nfr * (top + 1) * 8, nfr)
                    r = _device_scores(
                        cl, rate, tables, sp, False, st, max_scale, cl.at(b, shift), 1, cl.n - shift, cached
                    )
                    spectra[(shift, b)] = r.spectra
                    ans[b] = _DeviceAnalysis(r, 0, rate)
            for b in group:
                runs[b].search(ans[b], shift, (active[b][1],))
        steps = {b: runs[b].refinement(cl.n) for b in active}
    out = []
    for b in range(B):
        # the echo pass (audio._echo_pass) reads host copies of the clip and searches on the host
        r = audio._echo_pass(
            runs[b].result(an0[b]),
            rate,
            fpr,
            lambda b=b: _host_clip(cl, b, min(cl.n, int(audio.ECHO_SECONDS * rate)), st),
            lambda b=b: _host_clip(cl, b, cl.n, st),
            lambda y, sp: audio._detect_core(y, rate, kb, sp, fpr=fpr),
        )
        out.append(audio._detection(r, rate, fpr))
    return out


def _host_clip(cl: _Clips, b: int, n: int, st: int) -> np.ndarray:
    """The first ``n`` samples of clip ``b`` copied to the host, float64 [C, n] in [-1, 1] (any sample stride)."""
    dt = np.dtype(cl.arr.dtype)
    _, sc, ss = cl.strides
    out = np.empty((cl.channels, n), np.float64)
    buf = np.empty((n - 1) * abs(ss) + 1, dt)
    for c in range(cl.channels):
        start = cl.at(b) + c * sc * dt.itemsize
        _core.cuda_copy_to_host(start + min(0, (n - 1) * ss) * dt.itemsize, buf, st)  # the channel's span
        out[c] = buf[::ss] if ss else buf[0]
    return out / 32768.0 if dt == np.int16 else out


def _embed_tables(rate: int, payload: Any, key: Any, strength: float) -> dict[str, Any]:
    """The embedder's keyword arguments of _core.cuda_audio_embed after the samples (as AudioEmbedCore's)."""
    kb = audio._key_bytes(key)
    _, coded = audio._payload_bits(payload)
    alpha = audio._check_strength(strength)
    lay = audio.DEFAULT_LAYOUT
    h, _, _ = _geometry(rate, 1.0)
    tables = audio._tables(kb, lay, len(coded))
    bits = audio._instance_bits(tables, coded)
    ng = lay.groups_for_rate(rate)
    edges = lay.band_edges()[: ng * lay.group + 1]
    return {
        "hop": h,
        "cell_hops": lay.cell_hops,
        "edges": edges.astype(np.int32),
        "chips": np.ascontiguousarray(tables.chips, dtype=np.float64),
        "dither": np.ascontiguousarray(tables.dither, dtype=np.float64),
        "bits": np.ascontiguousarray(bits, dtype=np.int8),
        "ng": ng,
        "step": lay.step,
        "gamma": lay.gamma,
        "cap": lay.cap,
        "alpha": alpha,
        "snr_db": lay.snr_db,
        "local_snr_db": lay.local_snr_db,
        "leak": lay.bucket_leak,
        "floor": lay.floor,
    }


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
    """Mark every clip of ``x`` (CUDA float32 / float64 / int16, ``[C, n]`` or ``[B, C, n]``) with ``payload``.

    The device twin of ``audio.embed`` applied to each clip (float output clipped to [-1, 1], int16 output
    rounded half to even and saturated, as the CPU core writes it). Returns a new array like ``x`` (torch /
    CuPy inputs), or writes into ``out`` (same shape, float32 / float64 / int16, any strides; ``out=x`` marks
    in place) and returns it. Queued on the stream, not synchronised.
    """
    fn = "provmark.gpu_audio.embed"
    rate = audio._check_rate(sample_rate)
    cl = _clips(x, fn)
    if cl.n < audio.frame_length(rate):
        raise ValueError(f"{fn}: need at least one frame ({audio.frame_length(rate)} samples at {rate} Hz), got {cl.n}")
    args = _embed_tables(rate, payload, key, strength)
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
    _core.cuda_audio_embed(
        cl.arr.ptr, cl.arr.dtype, cl.batch, cl.channels, cl.n, *cl.strides,
        oc.arr.ptr, oc.arr.dtype, *oc.strides, stream=st, **args,
    )  # fmt: skip
    return out


def _shape(x: Any) -> tuple[int, ...]:
    if is_torch(x):
        return tuple(int(s) for s in x.shape)
    return tuple(int(s) for s in x.__cuda_array_interface__["shape"])


class StreamEmbedder:
    """Chunked embedder for device chunks: ``push(chunk)`` -> the marked samples so far (a device array like
    the chunk), ``flush()`` -> the rest. The concatenated outputs equal ``embed`` of the whole signal.

    The device twin of ``audio.StreamEmbedder``, with the same latency (a sample comes out once the input
    reaches 5 hops, 50 ms, past the start of its 40 ms cell: ``latency_s``). Chunks: CUDA float32 / float64
    in [-1, 1] or int16, shape ``(n,)`` (mono) or ``(channels, n)``, any strides, any length (0 included).
    The output has the first chunk's dtype and number of axes. State (the unprocessed input, up to one cell
    plus one hop, kept as float64; the budget bucket; the change of the last hop) stays on the device, so no
    call synchronises; each call queues on its chunk's stream (``stream=`` overrides), and chunks given on
    different streams must be ordered by the caller.
    """

    def __init__(self, sample_rate: int, channels: int, payload: Any, key: Any, strength: float = 1.0) -> None:
        self.sample_rate = audio._check_rate(sample_rate)
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or not 1 <= channels <= 16:
            raise ValueError(f"StreamEmbedder: channels must be an int in [1, 16], got {channels!r}")
        self.channels = int(channels)
        self._args = _embed_tables(self.sample_rate, payload, key, strength)
        self._h = int(self._args["hop"])
        self._span = self._args["cell_hops"] * self._h
        self.latency_s = (self._args["cell_hops"] + 1) * self._h / self.sample_rate
        self._buf: Any = None  # device [C, cap] float64: input from sample t * span
        self._spare: Any = None  # the same size, for the carry-over
        self._cap = 0
        self._len = 0  # samples held in _buf
        self._t = 0  # cells done
        self._bucket: Any = None  # device [1] float64
        self._acc: Any = None  # device [1, C, hop] float64
        self._dtype: str | None = None  # output dtype (the first chunk's)
        self._ndim = 0
        self._like: Any = None  # the first chunk (allocations of flush's output)
        self._closed = False

    def _ptr(self, a: Any) -> int:
        return _gpu._cai(a, "StreamEmbedder").ptr

    def _copy(self, src: int, dtype: str, strides: tuple[int, int], n: int, dst: int, offset: int, st: int) -> None:
        """n samples per channel from src (element strides per channel / sample) into _buf-shaped dst at offset."""
        _core.cuda_audio_copy(
            src, dtype, 1, self.channels, n, 0, strides[0], strides[1],
            dst + offset * 8, "float64", 0, self._cap, 1, st,
        )  # fmt: skip

    def _out(self, like: Any, n: int) -> Any:
        shape = (n,) if self._ndim == 1 else (self.channels, n)
        return _gpu._empty(like, shape, self._dtype or "float32")

    def push(self, chunk: Any, *, stream: int | None = None) -> Any:
        fn = "StreamEmbedder.push"
        if self._closed:
            raise RuntimeError("StreamEmbedder: push() after flush()")
        if not _gpu.is_cuda_array(chunk):
            raise TypeError(f"{fn}: expected a CUDA array, got {type(chunk).__name__}")
        shape = _shape(chunk)
        if (
            len(shape) not in (1, 2)
            or (len(shape) == 2 and shape[0] != self.channels)
            or (len(shape) == 1 and self.channels != 1)
        ):
            raise ValueError(
                f"{fn}: expected {self.channels} channels as (channels, n) (or (n,) for mono), got {shape}"
            )
        dt = str(chunk.dtype).removeprefix("torch.") if is_torch(chunk) else None
        if dt is None:
            dt = _gpu._TYPESTR.get(chunk.__cuda_array_interface__.get("typestr"), "unknown")
        if dt not in _SAMPLE_TYPES:
            raise TypeError(f"{fn}: samples must be float32 or float64 in [-1, 1], or int16, got {dt}")
        if self._dtype is None:  # the first chunk sets the output's dtype and axes (as audio.StreamEmbedder)
            self._dtype, self._ndim, self._like = dt, len(shape), chunk
        k = shape[-1]
        if k == 0:
            return self._out(chunk, 0)
        a = _gpu._cai(chunk, fn)
        _gpu._require_cuda(fn)
        st = _gpu._pick_stream(a, stream, fn)
        strides = (0, a.strides[0]) if len(shape) == 1 else (a.strides[0], a.strides[1])
        need = self._len + k
        if need > self._cap:  # grow (both buffers), keeping what _buf holds
            cap = max(need, 2 * self._cap, self._span + self._h)
            old, old_cap = self._buf, self._cap
            self._buf = _gpu._empty(chunk, (self.channels, cap), "float64")
            self._spare = _gpu._empty(chunk, (self.channels, cap), "float64")
            self._cap = cap
            if self._len:
                self._copy(self._ptr(old), "float64", (old_cap, 1), self._len, self._ptr(self._buf), 0, st)
        if self._bucket is None:
            self._bucket = _gpu._empty(chunk, (1,), "float64")
            self._acc = _gpu._empty(chunk, (1, self.channels, self._h), "float64")
        self._copy(a.ptr, a.dtype, strides, k, self._ptr(self._buf), self._len, st)
        self._len = need
        ncells = max(0, (self._len - self._h) // self._span)
        out = self._out(chunk, ncells * self._span)
        if ncells == 0:
            return out
        o = _gpu._cai(out, fn)
        ost = (0, o.strides[0]) if self._ndim == 1 else (o.strides[0], o.strides[1])
        self._run(self._len, o.ptr, o.dtype, ost, True, st)
        self._t += ncells
        rest = self._len - ncells * self._span  # >= one hop: the next cell's first frame starts there
        buf = self._ptr(self._buf)
        self._copy(buf + ncells * self._span * 8, "float64", (self._cap, 1), rest, self._ptr(self._spare), 0, st)
        self._buf, self._spare = self._spare, self._buf
        self._len = rest
        return out

    def _run(self, n: int, optr: int, odtype: str, ostrides: tuple[int, int], whole: bool, st: int) -> None:
        _core.cuda_audio_embed(
            self._ptr(self._buf), "float64", 1, self.channels, n, 0, self._cap, 1,
            optr, odtype, 0, ostrides[0], ostrides[1], stream=st, t0=self._t,
            bucket=self._ptr(self._bucket), acc=self._ptr(self._acc), whole_cells=whole, **self._args,
        )  # fmt: skip

    def flush(self, *, stream: int | None = None) -> Any:
        """The rest of the marked signal (the zero-padded last cell, as ``embed`` pads the tail)."""
        if self._closed:
            raise RuntimeError("StreamEmbedder: flush() called twice")
        if self._like is None:
            raise RuntimeError("StreamEmbedder: flush() before any push (no device array to allocate like)")
        self._closed = True
        out = self._out(self._like, self._len)
        if self._len == 0:
            return out
        fn = "StreamEmbedder.flush"
        o = _gpu._cai(out, fn)
        st = _gpu._pick_stream(_gpu._cai(self._buf, fn), stream, fn)
        ost = (0, o.strides[0]) if self._ndim == 1 else (o.strides[0], o.strides[1])
        self._run(self._len, o.ptr, o.dtype, ost, False, st)
        self._t += -(-self._len // self._span)
        return out
