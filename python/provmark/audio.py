"""Audio watermarking: keyed spread-transform dither modulation (STDM) of log band energies in the STFT domain,
with repeated, synchronised payload blocks.

Public API::

    marked = provmark.audio.embed(samples, sample_rate, payload, key, strength=1.0)
    det = provmark.audio.detect(samples, sample_rate, key)           # -> provmark.Detection
    emb = provmark.audio.StreamEmbedder(sample_rate, channels, payload, key); emb.push(chunk); emb.flush()
    sd = provmark.audio.StreamDetector(sample_rate, channels, key); sd.push(chunk); sd.result()
    provmark.audio.embed_file(src, dst, payload, key) / detect_file(path, key)

How it works (figures in docs/audio.md; prototype and sweeps in benchmarks/audio_*.py):

* Time grid: hop H = rate / 100 (10 ms), frame N = 2 H (20 ms) at every rate, so bins are 50 Hz apart and a
  file resampled to another rate keeps the same time/frequency grid (22.05 kHz: H = 220, 0.2 % off).
* Bands: 250 Hz - 6.6 kHz cut into 24 bands about 12 % wide (at least 2 bins). Four adjacent bands form a
  group. The four lowest groups (250 Hz - 2.7 kHz, the "low tier") exist at every rate; the two upper
  groups are used where the rate carries them (top edge <= 0.45 * rate), by the embedder and the detector.
* A cell is one band during 4 hops (40 ms). For one group during one cell-time the feature is the
  projection p = sum(chip_i * v_i) / 4 of the four log band energies v_i onto keyed zero-sum chips (+1 +1 -1
  -1 in keyed order): a volume change adds the same constant to every v_i and cancels.
* Embedding quantises p onto the lattice step * (Z + dither + bit / 2) of its bit (dither keyed per
  group and cell-time): the host's own value is used, not fought (informed embedding), so the mark's
  reliability does not depend on the music. The move is split over the four bands with more of it on the
  weaker bands (the SNR counts change energy, which a loud band makes expensive), capped per band, and
  applied as a per-band gain on the 4 frames of the cell (sine-windowed STFT, overlap-add). A causal
  energy budget keeps the SNR of every prefix of the output >= 30.2 dB (see _budget_scale).
* A block is 120 cell-times (4.8 s) and repeats, anchored at sample 0. 15 % of the (group, cell-time)
  instances carry keyed sync bits, the rest the 306 coded bits of the payload (CRC-32C + K=7 rate-1/3
  convolutional code), the low tier holding every coded bit at least once.
* Streaming: a cell's gains depend only on that cell's own 4 frames (and the budget carried from earlier
  cells), so the embedder emits a sample once the cell holding it is complete: latency 5 hops = 50 ms, and
  the output equals the one-shot call.
* Detection: band energies per hop (powers summed over channels) -> log cell energies at every hop ->
  projections -> cos/sin of 2 pi p / step, folded modulo the block period -> for all 480 hop phases and a
  grid of playback speeds, the sync score sum(+-cos(2 pi (p / step - dither))) over sync instances -> soft
  payload values at the best phases -> Viterbi + CRC, then a sub-hop re-analysis unless that decoded
  cleanly. Under the null (unmarked audio, or another key) the dithers are uniform and
  independent of the audio, so each folded term is R cos(uniform angle), whose moment generating function
  I0(lambda R) <= exp(lambda**2 R**2 / 4): P(z >= t) <= exp(-t**2 / 2) for z = score / sqrt(sum(R**2) / 2),
  for any audio. The p-value multiplies that by the number of phases and speeds tried, and by
  (CRC-checked candidates) * 2**-32 when a payload decodes.

Implementation: the hot paths run in the C++ core (csrc/core/audio_*: _core.AudioEmbedCore, audio_analysis,
audio_projections, audio_fold); the NumPy functions here (_EmbedState._run_numpy, _Analysis, _projections,
_phase_terms) are the reference it is tested against (tests/test_audio_native.py) and stay selectable with
impl="numpy" in the private entry points (_embed, _embed_array, _detect, _EmbedState).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ._arrays import cuda_ndim, is_cuda_array
from .payload import LIST_SIZE

__all__ = [
    "SUPPORTED_RATES",
    "Layout",
    "StreamDetector",
    "StreamEmbedder",
    "detect",
    "detect_file",
    "embed",
    "embed_file",
]

SUPPORTED_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
PAYLOAD_BITS = 64


# ----------------------------------------------------------------------------------------------------------
# Layout: every constant of the watermark format in one frozen struct.
# ----------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Layout:
    """The audio watermark format (changing a field changes the format: embedder and detector must agree)."""

    hops_per_second: int = 100  # hop H = round(rate / 100) samples, frame N = 2 H
    cell_hops: int = 4  # hops per cell (40 ms)
    block_cells: int = 120  # cell-times per block (4.8 s)
    lo_bin: int = 5  # lowest band edge on the 50 Hz grid (250 Hz)
    hi_bin: int = 140  # no band above this bin (7 kHz)
    band_ratio: float = 0.12  # relative band width
    min_bins: int = 2  # narrowest band, bins (a 1-bin band's energy is mostly Hann leakage of its neighbours)
    group: int = 4  # bands per projection (even: zero-sum chips)
    low_tier_groups: int = 4  # groups carried at every rate (250 Hz - 2.7 kHz)
    nyquist_use: float = 0.45  # a group is used when its top edge is below nyquist_use * rate
    sync_fraction: float = 0.15  # fraction of instances that carry sync bits
    step: float = 0.7  # quantisation step of the projection, natural log of band power
    gamma: float = 1.0  # weaker bands take exp(-gamma * (v - mean v)) more of a group's move
    cap: float = 0.7  # largest change of one band's log power in one cell
    snr_db: float = 30.2  # energy budget of the mark: signal energy / 10**(snr_db / 10), spent causally
    local_snr_db: float = 24.0  # no cell-time's mark comes closer than this to its own energy
    bucket_leak: float = 0.96  # unused budget kept from one cell-time to the next (about 1 s time constant)
    floor: float = 1e-10  # energy floor per frame sample (about -100 dBFS): silence -> constant log

    @property
    def block_hops(self) -> int:
        return self.cell_hops * self.block_cells

    def band_edges(self) -> np.ndarray:
        """Band edges as bin indices on the 50 Hz grid, [n_bands + 1] (only whole groups are kept)."""
        edges = [self.lo_bin]
        while True:
            w = max(self.min_bins, round(edges[-1] * self.band_ratio))
            if edges[-1] + w > self.hi_bin:
                break
            edges.append(edges[-1] + w)
        nb = (len(edges) - 1) // self.group * self.group
        return np.asarray(edges[: nb + 1], dtype=np.int64)

    def n_groups(self) -> int:
        return (len(self.band_edges()) - 1) // self.group

    def groups_for_rate(self, rate: int) -> int:
        """Number of groups (from the lowest) that a signal at `rate` carries."""
        edges = self.band_edges()
        tops = edges[self.group :: self.group] * (rate / (2 * hop_length(rate, self)))
        return int(max(self.low_tier_groups, np.sum(tops <= self.nyquist_use * rate)))


DEFAULT_LAYOUT = Layout()


def hop_length(rate: int, layout: Layout = DEFAULT_LAYOUT) -> int:
    return round(rate / layout.hops_per_second)


def frame_length(rate: int, layout: Layout = DEFAULT_LAYOUT) -> int:
    return 2 * hop_length(rate, layout)


# ----------------------------------------------------------------------------------------------------------
# Keyed tables.
# ----------------------------------------------------------------------------------------------------------
def _core():
    from provmark import _core

    return _core


_IMPLS = ("native", "numpy")


def _check_impl(impl: str) -> str:
    """The engine implementation: "native" (csrc/core/audio_*, the default) or "numpy" (the reference)."""
    if impl not in _IMPLS:
        raise ValueError(f"impl must be one of {_IMPLS}, got {impl!r}")
    return impl


def _key_bytes(key: Any) -> bytes:
    from .keys import Key

    return Key.coerce(key, "audio").secret_bytes()


@dataclasses.dataclass(frozen=True)
class _Tables:
    """Key-derived tables of one layout. T = block_cells, G = n_groups, L = group."""

    chips: np.ndarray  # [G, L] float64 +-1, zero sum per group
    dither: np.ndarray  # [T, G] float64 in [0, 1)
    is_sync: np.ndarray  # [T, G] bool
    sync_bit: np.ndarray  # [T, G] int64 0/1 (meaningful where is_sync)
    bit: np.ndarray  # [T, G] int64 coded-bit index (-1 where is_sync)
    n_coded: int


_TABLE_CACHE: dict[tuple[bytes, Layout, int], _Tables] = {}


def _tables(kb: bytes, layout: Layout, n_coded: int) -> _Tables:
    ck = (kb, layout, n_coded)
    t = _TABLE_CACHE.get(ck)
    if t is not None:
        return t
    c = _core()
    S = c.Stream
    T, G, L = layout.block_cells, layout.n_groups(), layout.group
    base = np.array([1.0, -1.0] * (L // 2))
    order = np.argsort(
        np.asarray(c.random_uniform(kb, S.AUDIO_BINS, G * L), dtype=np.float64).reshape(G, L), axis=1, kind="stable"
    )
    chips = base[order]
    dither = np.asarray(c.random_uniform(kb, S.AUDIO_PAYLOAD, T * G), dtype=np.float64).reshape(T, G)
    u = np.asarray(c.random_uniform(kb, S.AUDIO_SYNC, 2 * T * G), dtype=np.float64)
    is_sync = (u[: T * G] < layout.sync_fraction).reshape(T, G)
    sync_bit = (u[T * G :] < 0.5).astype(np.int64).reshape(T, G)
    # Coded bits: low-tier data instances first, then the upper groups, each tier in keyed order; instance i
    # of that list carries coded bit perm[i % n_coded], so every rate holds every coded bit.
    lo = layout.low_tier_groups
    shuffle = np.asarray(c.random_uniform(kb, S.AUDIO_PERMUTE, T * G), dtype=np.float64).reshape(T, G)
    inst = []
    for tier in (slice(0, lo), slice(lo, G)):
        tt, gg = np.nonzero(~is_sync[:, tier])
        gg = gg + (tier.start or 0)
        k = np.argsort(shuffle[tt, gg], kind="stable")
        inst.append((tt[k], gg[k]))
    perm = np.asarray(c.random_permutation(kb, S.AUDIO_PERMUTE, n_coded), dtype=np.int64)
    bit = np.full((T, G), -1, dtype=np.int64)
    n_lo = len(inst[0][0])
    if n_lo < n_coded:
        raise ValueError(f"audio layout holds {n_lo} low-tier instances per block, fewer than {n_coded} coded bits")
    bit[inst[0]] = perm[np.arange(n_lo) % n_coded]
    bit[inst[1]] = perm[np.arange(len(inst[1][0])) % n_coded]
    t = _Tables(chips=chips, dither=dither, is_sync=is_sync, sync_bit=sync_bit, bit=bit, n_coded=n_coded)
    if len(_TABLE_CACHE) > 64:
        _TABLE_CACHE.clear()
    _TABLE_CACHE[ck] = t
    return t


def _instance_bits(tables: _Tables, coded: np.ndarray) -> np.ndarray:
    """The bit every (cell-time, group) instance of a block carries: [T, G] int64 0/1."""
    return np.where(tables.is_sync, tables.sync_bit, coded[np.maximum(tables.bit, 0)].astype(np.int64))


# ----------------------------------------------------------------------------------------------------------
# Shared analysis: band energies of Hann frames (the embedder measures the host exactly as the detector will).
# ----------------------------------------------------------------------------------------------------------
def _hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def _sine_window(n: int) -> np.ndarray:
    """sqrt of the periodic Hann window: w[i]**2 + w[i + n/2]**2 == 1 (analysis * synthesis is COLA)."""
    return np.sin(np.pi * (np.arange(n) + 0.5) / n)


def _frames(x: np.ndarray, h: int, nframes: int) -> np.ndarray:
    """[..., (nframes + 1) * h] -> [..., nframes, 2h] frames at hop h (a copy)."""
    blocks = x[..., : (nframes + 1) * h].reshape((*x.shape[:-1], nframes + 1, h))
    return np.concatenate([blocks[..., :-1, :], blocks[..., 1:, :]], axis=-1)


def _band_energy(frames: np.ndarray, edges: np.ndarray, win: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Band energies of frames [..., K, N] summed over leading axes: ([K, n_bands], full-band energy [K]).

    Both on the one-sided power spectrum |rfft(frame * win)|**2; the full-band energy comes from Parseval
    (N / 2 * sum((frame * win)**2), exact up to the DC and Nyquist bins, which hold no band).
    """
    n = frames.shape[-1]
    fw = frames * win
    spec = np.fft.rfft(fw, axis=-1)[..., : int(edges[-1])]
    p = spec.real**2 + spec.imag**2
    tot = 0.5 * n * np.einsum("...kn,...kn->...k", fw, fw)
    if p.ndim == 3:
        p = p.sum(axis=0)
        tot = tot.sum(axis=0)
    cs = np.cumsum(p, axis=-1)
    cs = np.concatenate([np.zeros((*cs.shape[:-1], 1)), cs], axis=-1)
    return cs[:, edges[1:]] - cs[:, edges[:-1]], tot


def _log_cells(cell_energy: np.ndarray, n: int, layout: Layout) -> np.ndarray:
    return np.log(cell_energy + layout.floor * n * layout.cell_hops)


# ----------------------------------------------------------------------------------------------------------
# Embedding.
# ----------------------------------------------------------------------------------------------------------
def _cell_moves(
    v: np.ndarray, t_index: np.ndarray, tables: _Tables, bits: np.ndarray, ng: int, layout: Layout, alpha: float
) -> np.ndarray:
    """Wanted log-power change of every band of cells [C, n_bands] (cell-time indices t_index).

    v: host log cell energies [C, n_bands]; only the first ng groups move.
    """
    L = layout.group
    c = v.shape[0]
    vg = v[:, : ng * L].reshape(c, ng, L)
    chips = tables.chips[:ng]  # [ng, L]
    p = np.einsum("cgl,gl->cg", vg, chips) / L
    tb = t_index % layout.block_cells
    off = (tables.dither[tb, :ng] + 0.5 * bits[tb, :ng]) * layout.step
    q = np.round((p - off) / layout.step) * layout.step + off
    dp = alpha * (q - p)  # [C, ng]
    w = np.exp(-layout.gamma * (vg - vg.mean(axis=2, keepdims=True)))
    w *= L / w.sum(axis=2, keepdims=True)
    dv = np.clip(chips[None] * w * dp[..., None], -layout.cap, layout.cap).reshape(c, ng * L)
    out = np.zeros_like(v)
    out[:, : ng * L] = dv
    return out


def _budget_scale(dist: np.ndarray, etot: np.ndarray, bucket: float, layout: Layout) -> tuple[np.ndarray, float]:
    """Scale factors for the wanted moves of consecutive cell-times, and the new budget bucket.

    The mark's energy may use 10**(-snr_db / 10) of the signal energy, cell-time by cell-time; budget a cell
    does not use goes into a bucket (leaking with a 1 s time constant) that later cells may draw on, never
    beyond 10**(-local_snr_db / 10) of their own energy. `dist` is the energy of each cell's own change as
    synthesised (its frames overlap-added), `etot` the signal's energy over the cell's span, both in
    samples squared: so every prefix of the output, and the whole signal, has SNR >= snr_db up to the cross
    terms of adjacent cells' changes (they share one hop), and no 40 ms cell-time has its mark closer than
    local_snr_db to it (quiet passages stay quiet).
    Sequential by nature (the streaming embedder carries `bucket` between chunks).
    """
    k = 10.0 ** (-layout.snr_db / 10.0)
    k_loc = 10.0 ** (-layout.local_snr_db / 10.0)
    leak = layout.bucket_leak
    scale = np.ones_like(dist)
    for i in range(dist.shape[0]):
        allow = min(k * etot[i] + bucket, k_loc * etot[i])
        used = dist[i]
        if used > allow:
            scale[i] = math.sqrt(allow / used) if used > 0 else 1.0
            used = allow
        bucket = max(0.0, bucket + k * etot[i] - used) * leak
    return scale, bucket


class _EmbedState:
    """Cell-by-cell embedder shared by embed() and StreamEmbedder (so both give identical output).

    Frame k covers samples [k H, k H + 2H), k = 0, 1, ...; cell t holds frames 4t .. 4t+3, and its gains
    depend only on those frames (Hann-window band energies of the input). Output sample s is final once
    the cells of the frames covering it are done: the input must reach the end of the cell plus one hop,
    5 hops (50 ms) after the cell's first sample.
    """

    _CHUNK_CELLS = 256

    def __init__(
        self,
        rate: int,
        channels: int,
        coded: np.ndarray,
        kb: bytes,
        strength: float,
        layout: Layout = DEFAULT_LAYOUT,
        impl: str = "native",
    ) -> None:
        self.layout = layout
        self.h = hop_length(rate, layout)
        self.n = 2 * self.h
        self.channels = channels
        self.tables = _tables(kb, layout, len(coded))
        self.bits = _instance_bits(self.tables, coded)
        self.ng = layout.groups_for_rate(rate)
        self.edges = layout.band_edges()[: self.ng * layout.group + 1]
        self.hann = _hann(self.n)
        self.sine = _sine_window(self.n)
        self.alpha = strength
        self.t_next = 0  # next cell to embed
        self.bucket = 0.0  # unused mark energy budget (see _budget_scale)
        self.buf = np.zeros((channels, 0))  # input from sample t_next * 4H
        self.acc = np.zeros((channels, self.h))  # tail (last hop) of the previous cells' delta
        self.total_in = 0
        self.impl = _check_impl(impl)
        self.native = None
        if self.impl == "native":
            self.native = _core().AudioEmbedCore(
                channels,
                self.h,
                layout.cell_hops,
                self.edges.astype(np.int32),
                np.ascontiguousarray(self.tables.chips, dtype=np.float64),
                np.ascontiguousarray(self.tables.dither, dtype=np.float64),
                np.ascontiguousarray(self.bits, dtype=np.int8),
                self.ng,
                layout.step,
                layout.gamma,
                layout.cap,
                strength,
                layout.snr_db,
                layout.local_snr_db,
                layout.bucket_leak,
                layout.floor,
            )

    def _run(self, ncells: int) -> np.ndarray:
        """Embed cells t_next .. t_next + ncells - 1 (buf must hold (4 ncells + 1) H samples)."""
        if self.native is not None:
            if ncells == 0:
                return np.zeros((self.channels, 0))
            y = self.native.run(self.buf, ncells)
            self.t_next += ncells
            self.buf = self.buf[:, ncells * self.layout.cell_hops * self.h :]
            return y
        return self._run_numpy(ncells)

    def _run_numpy(self, ncells: int) -> np.ndarray:
        """NumPy reference of AudioEmbedCore.run (csrc/core/audio_cpu.cpp CellEmbedder::run).

        Each cell's change is synthesised with its wanted gains first; the budget then sees its real energy
        (the overlap-added samples of the cell's own frames) against the signal's energy over the cell, and
        scales the change linearly (gain * scale), so the scaled change is the synthesised one times scale.
        """
        lay, h, ch = self.layout, self.h, self.layout.cell_hops
        span = ch * h
        outs = []
        done = 0
        while done < ncells:
            nc = min(self._CHUNK_CELLS, ncells - done)
            nfr = nc * ch
            seg = self.buf[:, done * span : done * span + nfr * h + h]
            fr = _frames(seg, h, nfr)  # [C, nfr, N]
            e, _ = _band_energy(fr, self.edges, self.hann)  # [nfr, nb]
            ce = e.reshape(nc, ch, -1).sum(axis=1)
            v = _log_cells(ce, self.n, lay)
            t_index = np.arange(self.t_next, self.t_next + nc)
            dv = _cell_moves(v, t_index, self.tables, self.bits, self.ng, lay, self.alpha)
            gain = np.expm1(0.5 * dv)  # wanted amplitude gain - 1 per cell and band
            g = np.zeros((nc, self.n // 2 + 1))
            for b in range(len(self.edges) - 1):
                g[:, self.edges[b] : self.edges[b + 1]] = gain[:, b : b + 1]
            spec = np.fft.rfft(fr * self.sine, axis=-1).reshape(self.channels, nc, ch, -1)
            spec *= g[None, :, None, :]
            d = np.fft.irfft(spec, n=self.n, axis=-1) * self.sine  # [C, nc, ch, N]
            cell = np.zeros((self.channels, nc, span + h))  # each cell's own change, overlap-added
            for i in range(ch):
                cell[:, :, i * h : i * h + self.n] += d[:, :, i]
            used = np.einsum("cts,cts->t", cell, cell)
            xs = seg[:, : nc * span].reshape(self.channels, nc, span)
            etot = np.einsum("cts,cts->t", xs, xs)
            scale, self.bucket = _budget_scale(used, etot, self.bucket, lay)
            cell *= scale[None, :, None]
            out = np.zeros((self.channels, nc + 1, span))
            out[:, :nc] += cell[:, :, :span]
            out[:, 1:, :h] += cell[:, :, span:]
            out = out.reshape(self.channels, -1)
            out[:, :h] += self.acc
            self.acc = out[:, nc * span : nc * span + h].copy()
            outs.append(seg[:, : nc * span] + out[:, : nc * span])
            self.t_next += nc
            done += nc
        self.buf = self.buf[:, done * span :]
        return np.concatenate(outs, axis=1) if outs else np.zeros((self.channels, 0))

    def push(self, x: np.ndarray) -> np.ndarray:
        """x: [C, k] float64, owned by the caller's _to_array copy (kept without another copy)."""
        self.buf = np.concatenate([self.buf, x], axis=1) if self.buf.shape[1] else x
        self.total_in += x.shape[1]
        span = self.layout.cell_hops * self.h
        ncells = max(0, (self.buf.shape[1] - self.h) // span)
        return self._run(ncells)

    def push_native(self, x: np.ndarray, out_dtype: np.dtype) -> np.ndarray:
        """push() for the native core in the caller's dtypes: x [C, k] float32/float64/int16 (C order) ->
        output samples in out_dtype, clipped (int16 rounded) by the core, as embed() writes them."""
        if self.buf.shape[1] == 0:
            self.buf = x
        elif self.buf.dtype == x.dtype:
            self.buf = np.concatenate([self.buf, x], axis=1)
        else:  # mixed dtypes: continue in float64 (int16 is value / 32768)
            self.buf = np.concatenate([_as_float64(self.buf), _as_float64(x)], axis=1)
        self.total_in += x.shape[1]
        span = self.layout.cell_hops * self.h
        ncells = max(0, (self.buf.shape[1] - self.h) // span)
        out = np.empty((self.channels, ncells * span), dtype=out_dtype)
        if ncells:
            self.native.run(self.buf, ncells, out, True)
            self.t_next += ncells
            self.buf = self.buf[:, ncells * span :]
        return out

    def flush_native(self, out_dtype: np.dtype) -> np.ndarray:
        span = self.layout.cell_hops * self.h
        remaining = self.buf.shape[1]
        if remaining == 0:
            return np.zeros((self.channels, 0), dtype=out_dtype)
        ncells = -(-remaining // span)
        tail = np.zeros((self.channels, ncells * span + self.h), dtype=self.buf.dtype)
        tail[:, :remaining] = self.buf
        out = np.empty((self.channels, ncells * span), dtype=out_dtype)
        self.native.run(tail, ncells, out, True)
        self.t_next += ncells
        self.buf = self.buf[:, remaining:]
        return out[:, :remaining]

    def flush(self) -> np.ndarray:
        span = self.layout.cell_hops * self.h
        remaining = self.buf.shape[1]
        if remaining == 0:
            return np.zeros((self.channels, 0))
        ncells = -(-remaining // span)
        pad = ncells * span + self.h - remaining
        self.buf = np.concatenate([self.buf, np.zeros((self.channels, pad))], axis=1)
        y = self._run(ncells)
        return y[:, :remaining]


def _as_float64(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) / 32768.0 if x.dtype == np.int16 else x.astype(np.float64)


def _embed_array(
    x: np.ndarray,
    rate: int,
    coded: np.ndarray,
    kb: bytes,
    strength: float,
    layout: Layout = DEFAULT_LAYOUT,
    impl: str = "native",
) -> np.ndarray:
    """x: [C, n] float64 -> marked [C, n] float64 (not clipped). impl: "native" (C++ core) or "numpy"."""
    st = _EmbedState(rate, x.shape[0], coded, kb, strength, layout, impl)
    if st.native is not None:
        # One shot without the streaming buffer's copies: the whole cells straight from x into y, then the
        # zero-padded tail exactly as flush() pads it.
        h, span, n = st.h, layout.cell_hops * st.h, x.shape[1]
        x = np.ascontiguousarray(x)
        y = np.empty_like(x)
        full = max(0, (n - h) // span)
        if full:
            st.native.run(x, full, y)
        rest = n - full * span
        if rest:
            nc = -(-rest // span)
            tail = np.zeros((x.shape[0], nc * span + h))
            tail[:, :rest] = x[:, full * span :]
            y[:, full * span :] = st.native.run(tail, nc)[:, :rest]
        return y
    y = st.push(x)
    return np.concatenate([y, st.flush()], axis=1)[:, : x.shape[1]]


# ----------------------------------------------------------------------------------------------------------
# Detection.
# ----------------------------------------------------------------------------------------------------------
_CRC_FALSE_PASS = 2.0**-32  # CRC-32C: chance that a random codeword passes
SPEEDS_DEFAULT = tuple(round(1.0 + 0.002 * i, 4) for i in range(-10, 11))  # +-2 % in 0.2 % steps
SPEEDS_SEARCH = tuple(round(1.0 + 0.002 * i, 4) for i in range(-25, 26))  # +-5 %


class _Analysis:
    """Per-hop power spectra cumulated over frequency, shared by every speed hypothesis."""

    def _grid(self, rate: int, layout: Layout, max_scale: float) -> None:
        """Hop, frame, band edges and the highest bin any speed hypothesis up to ``max_scale`` reads."""
        self.layout = layout
        self.rate = rate
        self.h = hop_length(rate, layout)
        self.n = 2 * self.h
        self.edges = layout.band_edges()[: layout.groups_for_rate(rate) * layout.group + 1]
        self.top = min(self.n // 2 + 1, math.ceil(self.edges[-1] * max_scale) + 2)

    def __init__(self, x: np.ndarray, rate: int, layout: Layout, max_scale: float = 1.06) -> None:
        self._grid(rate, layout, max_scale)
        m = x.shape[1]
        self.nfr = (m - self.n) // self.h + 1 if m >= self.n else 0
        self.cs = np.zeros((self.nfr, self.top + 1), dtype=np.float64)
        win = _hann(self.n)
        step = 4096
        for s in range(0, self.nfr, step):
            e = min(self.nfr, s + step)
            fr = _frames(x[:, s * self.h : (e + 1) * self.h], self.h, e - s)
            spec = np.fft.rfft(fr * win, axis=-1)[..., : self.top]
            p = (spec.real**2 + spec.imag**2).sum(axis=0)
            self.cs[s:e, 1:] = np.cumsum(p, axis=-1)
        self.e1 = self.cs[:, self.edges[1:]] - self.cs[:, self.edges[:-1]] if self.nfr else np.zeros((0, 1))

    def projections(self, speed: float, ng: int, tables: _Tables) -> tuple[np.ndarray, np.ndarray] | None:
        """(p, w) of _projections at `speed`, or None when the audio holds less than one cell."""
        e = self.band_energy(speed)
        if e.shape[0] < self.layout.cell_hops:
            return None
        return _projections(e, ng, tables, self.n, self.layout)

    def scores(self, p: np.ndarray, w: np.ndarray, tables: _Tables, ng: int) -> tuple[np.ndarray, Any]:
        """Sync z of every block phase [P], and a function phase -> folded terms [T, ng]."""
        lay = self.layout
        sync = tables.is_sync[:, :ng]
        sign = np.where(sync, 1.0 - 2.0 * tables.sync_bit[:, :ng], 0.0)  # bit 0 -> +cos
        term, r2 = _phase_terms(p, w, tables, ng, lay)  # [P, T, ng]
        score = np.einsum("mtg,tg->m", term, sign)
        var = 0.5 * np.einsum("mtg,tg->m", r2, sync.astype(np.float64))
        z = np.where(var > 0, score / np.sqrt(np.maximum(var, 1e-300)), 0.0)
        return z, lambda m: term[m]

    def band_energy(self, speed: float) -> np.ndarray:
        """Band energies per hop as the unmodified signal would show them, for audio played `speed` x faster
        (see _band_energy_at)."""
        return self.e1 if speed == 1.0 else _band_energy_at(self.cs, self.edges, self.top, speed)


def _band_energy_at(cs: np.ndarray, edges: np.ndarray, top: int, speed: float) -> np.ndarray:
    """Band energies per hop from cumulated spectra cs [nfr, top + 1], for audio played `speed` x faster.

    Frequencies scale by `speed` (fractional band edges, linear interpolation of the cumulated power);
    original hop k sits at observed hop k / speed (linear interpolation between hops).
    """
    if speed == 1.0:
        return cs[:, edges[1:]] - cs[:, edges[:-1]]
    pos = np.minimum(edges * speed, top - 1e-9)
    i0 = np.floor(pos).astype(np.int64)
    f = pos - i0
    c = cs[:, i0] * (1 - f) + cs[:, i0 + 1] * f
    e = c[:, 1:] - c[:, :-1]
    nfr = e.shape[0]
    tpos = np.arange(0.0, (nfr - 1) * speed + 1e-9, 1.0) / speed
    j0 = np.floor(tpos).astype(np.int64)
    j1 = np.minimum(j0 + 1, nfr - 1)
    ft = (tpos - j0)[:, None]
    return e[j0] * (1 - ft) + e[j1] * ft


class _NativeAnalysis:
    """_Analysis on the C++ core (audio_analysis / audio_projections / audio_fold): same attributes."""

    def __init__(self, x: np.ndarray, rate: int, layout: Layout, max_scale: float = 1.06) -> None:
        _Analysis._grid(self, rate, layout, max_scale)
        if x.strides[-1] != x.itemsize:  # the core reads contiguous rows (row views like x[:, shift:] are fine)
            x = np.ascontiguousarray(x)
        self.cs = _core().audio_analysis(x, self.h, self.top)
        self.nfr = self.cs.shape[0]
        self._edges32 = self.edges.astype(np.int32)

    def band_energy(self, speed: float) -> np.ndarray:
        """As _Analysis.band_energy (the noise-model decoding of _Search._second_chance reads it)."""
        return _band_energy_at(self.cs, self.edges, self.top, speed)

    def projections(self, speed: float, ng: int, tables: _Tables) -> tuple[np.ndarray, np.ndarray] | None:
        lay = self.layout
        p, w = _core().audio_projections(
            self.cs,
            self._edges32,
            np.ascontiguousarray(tables.chips, dtype=np.float64),
            ng,
            lay.cell_hops,
            lay.floor * self.n * lay.cell_hops,
            float(speed),
            _SNR_W0,
            _SNR_W1,
        )
        return (p, w) if p.shape[0] else None

    def scores(self, p: np.ndarray, w: np.ndarray, tables: _Tables, ng: int) -> tuple[np.ndarray, Any]:
        lay = self.layout
        sign = np.where(tables.is_sync, 1.0 - 2.0 * tables.sync_bit, 0.0)
        fc, fs, z = _core().audio_fold(p, w, tables.dither, sign, lay.step, lay.cell_hops)
        P, ch, T = lay.block_hops, lay.cell_hops, lay.block_cells
        d = 2.0 * np.pi * tables.dither[:, :ng]
        cd, sd = np.cos(d), np.sin(d)
        steps = ch * np.arange(T)

        def term(m: int) -> np.ndarray:
            idx = (m + steps) % P
            return fc[idx] * cd + fs[idx] * sd

        return z, term


def _projections(e: np.ndarray, ng: int, tables: _Tables, n: int, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Projections p[j, g] of the cells anchored at every hop j, and their reliability weights [j, g]."""
    ch, L = layout.cell_hops, layout.group
    cs = np.concatenate([np.zeros((1, e.shape[1])), np.cumsum(e, axis=0)], axis=0)
    ce = cs[ch:] - cs[:-ch]  # [nJ, nb]
    v = _log_cells(np.maximum(ce, 0.0), n, layout)
    vg = v[:, : ng * L].reshape(v.shape[0], ng, L)
    p = np.einsum("jgl,gl->jg", vg, tables.chips[:ng]) / L
    # Reliability weights (functions of the audio only, never of the key, so the null bound still holds):
    # a group whose weakest band sits within a few dB of that band's noise floor (its 10th percentile over
    # the analysed audio: added noise, a codec's or a filter's stop band) carries little but noise.
    floor = np.percentile(v, 10.0, axis=0) if v.shape[0] >= 20 else v.min(axis=0)
    snr = (v - floor[None, :])[:, : ng * L].reshape(v.shape[0], ng, L).min(axis=2)
    w = np.clip((snr - _SNR_W0) / _SNR_W1, 0.0, 1.0)
    return p, w


def _noise_model(
    an: Any,
    speed: float,
    ng: int,
    tables: _Tables,
    layout: Layout,
    sigma0: float | None = None,
    subtract: bool = True,
    w: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Projections and weights for audio in added white noise (the last second-chance decoding).

    A flat noise density, read off the quietest hops (10th percentile of every band's energy, the smallest
    per bin, times each band's width), is subtracted from the band energies before the projections; each
    instance is then weighted by the mean / variance of cos(residual angle) under the log-energy noise that
    noise leaves: a band with signal energy E and noise N per cell has log noise about (N / E) / sqrt(dof)
    (dof = bins x 4 frames), the projection averages 4 bands, and the angle's variance is
    sigma0**2 + (2 pi / step)**2 var(p) (sigma0: _NOISE_SIGMA0 unless given). Functions of the audio only,
    never of the key (the null bound holds); benchmarks/audio_detect_lab.py measures variants (``var<sigma0>``,
    ``subtract=False``; docs/audio.md section 7).
    """
    e = an.band_energy(speed)
    if e.shape[0] < layout.cell_hops:
        return None
    if w is None:  # the projections' reliability weights, unless the search kept them
        pw = an.projections(speed, ng, tables)
        if pw is None:
            return None
        w = pw[1]
    ch, L = layout.cell_hops, layout.group
    width = np.diff(an.edges * speed).astype(np.float64)
    floor = (np.percentile(e, 10.0, axis=0) / width).min() * width  # noise energy per hop and band
    e2 = np.maximum(e - floor[None, :], 0.05 * e) if subtract else e
    cs = np.concatenate([np.zeros((1, e2.shape[1])), np.cumsum(e2, axis=0)])
    sig = cs[ch:] - cs[:-ch]  # signal energy per cell
    vg = _log_cells(sig[:, : ng * L], an.n, layout).reshape(sig.shape[0], ng, L)
    p = np.einsum("jgl,gl->jg", vg, tables.chips[:ng]) / L  # _projections' p of the noise-subtracted energies
    dof = np.maximum(width * ch, 1.0)
    vv = (ch * floor[None, :] / np.maximum(sig, 1e-30)) ** 2 / dof[None, :]
    vp = vv[:, : ng * L].reshape(-1, ng, L).sum(axis=2) / (L * L)
    s0 = _NOISE_SIGMA0 if sigma0 is None else sigma0
    s2 = s0**2 + (2.0 * np.pi / layout.step) ** 2 * vp
    rel = np.exp(-s2 / 2.0) / ((1.0 - np.exp(-2.0 * s2)) / 2.0 + 1e-3)
    nj = min(p.shape[0], w.shape[0], rel.shape[0])
    return np.ascontiguousarray(p[:nj]), np.ascontiguousarray(w[:nj] * rel[:nj])


def _phase_term(p: np.ndarray, w: np.ndarray, m: int, tables: _Tables, ng: int, layout: Layout) -> np.ndarray:
    """Folded w cos(2 pi (p / step - dither)) of block phase m alone, [T, ng]: what a fold's term(m) gives,
    without folding the other phases."""
    ch, T, P = layout.cell_hops, layout.block_cells, layout.block_hops
    rows = p.shape[0]
    k = np.arange(-(-rows // P))
    j = ((m + ch * np.arange(T)) % P)[:, None] + P * k[None, :]  # [T, K] hops of each cell-time at phase m
    ok = j < rows
    jj = np.where(ok, j, 0)
    ang = 2.0 * np.pi * (p[jj] / layout.step - tables.dither[:T, None, :ng])  # [T, K, ng]
    return np.sum(np.where(ok[..., None], w[jj] * np.cos(ang), 0.0), axis=1)


_NOISE_SIGMA0 = 0.3  # spread of the residual angle without the noise (benchmarks/audio_detect_lab.py var0.3)


_SNR_W0 = 0.0  # reliability weight 0 at the band's noise floor ...
_SNR_W1 = 0.6  # ... and 1 from 0.6 (natural log, 2.6 dB) above it (benchmarks/audio_sweep.py)


@dataclasses.dataclass
class _Candidate:
    speed: float
    phase: int
    z: float
    payload: bytes | None
    confidence: float
    shift: int = 0  # samples skipped before the analysis (sub-hop refinement)
    analysis: Any = None  # the _Analysis / _NativeAnalysis the phase refers to


def _phase_terms(p: np.ndarray, w: np.ndarray, tables: _Tables, ng: int, layout: Layout) -> np.ndarray:
    """Folded cos(2 pi (p / step - dither)) for every block phase m: [P, T, ng] (weighted)."""
    P, ch, T = layout.block_hops, layout.cell_hops, layout.block_cells
    a = 2.0 * np.pi * p / layout.step
    cc = w * np.cos(a)
    ss = w * np.sin(a)
    nj = p.shape[0]
    fc = np.zeros((P, ng))
    fs = np.zeros((P, ng))
    full = nj // P
    if full:
        fc += cc[: full * P].reshape(full, P, ng).sum(axis=0)
        fs += ss[: full * P].reshape(full, P, ng).sum(axis=0)
    rest = nj - full * P
    if rest:
        fc[:rest] += cc[full * P :]
        fs[:rest] += ss[full * P :]
    idx = (np.arange(P)[:, None] + ch * np.arange(T)[None, :]) % P  # [P, T]
    d = 2.0 * np.pi * tables.dither[:, :ng]
    return fc[idx] * np.cos(d)[None] + fs[idx] * np.sin(d)[None], fc[idx] ** 2 + fs[idx] ** 2


_GW_T = 3.0  # sync t-statistic at which a group's soft values count fully (benchmarks/audio_robustness.py)


def _group_reliability(term: np.ndarray, sync_sign: np.ndarray) -> np.ndarray:
    """Per-group soft-value weights in [0, 1] from the candidate's own sync instances: [ng].

    At the candidate phase, sign * term over a group's sync instances measures that group's mark in this
    very file: mean mu, spread var, t = mu / sqrt(var / n). A group that a low-pass, a codec's band limit
    or noise destroyed reads t ~ 0 and would only add noise to the payload's soft values; its weight is
    clip(t / _GW_T, 0, 1), so groups with clear evidence keep weight 1 (as without weights). Detection
    only: the sync statistic and the p-value are unchanged (the CRC bound holds for any decoding).
    """
    sync = sync_sign != 0
    v = (term * sync_sign)[:, : term.shape[1]]
    n = np.maximum(sync.sum(axis=0), 1)
    mu = (v * sync).sum(axis=0) / n
    var = (((v - mu[None, :]) ** 2) * sync).sum(axis=0) / np.maximum(n - 1, 1)
    t = mu / np.sqrt(np.maximum(var, 1e-300) / n)  # evidence that the group carries the mark here
    w = np.clip(t / _GW_T, 0.0, 1.0)
    return w if w.max() > 0 else np.ones_like(w)


def _better(cand: _Candidate, best: _Candidate | None) -> bool:
    """A decoded payload beats no payload; otherwise the higher sync statistic wins."""
    if best is None:
        return True
    if (cand.payload is not None) != (best.payload is not None):
        return cand.payload is not None
    return cand.z > best.z


class _HostAnalyses:
    """The analyses the detector asks for, on the host: the clip from sample ``shift`` on (0, then the sub-hop
    re-analyses), as _Analysis (impl "numpy") or _NativeAnalysis (the C++ core)."""

    def __init__(self, x: np.ndarray, rate: int, layout: Layout, max_scale: float, impl: str) -> None:
        self.x, self.rate, self.layout, self.max_scale = x, rate, layout, max_scale
        self.cls = _NativeAnalysis if _check_impl(impl) == "native" else _Analysis
        self.nsamples = x.shape[1]

    def __call__(self, shift: int) -> Any:
        return self.cls(self.x[:, shift:], self.rate, self.layout, max_scale=self.max_scale)


def _speed_scores(
    an: Any, speed: float, ng: int, tables: _Tables, lo_tables: _Tables | None = None
) -> tuple[np.ndarray, Any, np.ndarray | None, np.ndarray | None] | None:
    """(sync z of every block phase, phase -> folded terms, low-tier sync z or None, the projections'
    reliability weights or None where they stayed on the device) at one speed hypothesis, or None when the
    audio holds less than one cell at that speed. An analysis that has every speed's scores already (the
    device scores of provmark.gpu_audio) answers through its own ``speed_scores``.

    lo_tables: tables whose sync instances are the low tier's only (_Search.lo_tables); the third element is
    then the sync z of those instances alone, from the same projections."""
    own = getattr(an, "speed_scores", None)
    if own is not None:
        r = own(speed, ng, tables)
        if r is None or lo_tables is None:
            return None if r is None else (r[0], r[1], None, None)
        pw = an.projections(speed, ng, tables)  # the device's projections, copied back for the second family
        return r[0], r[1], an.scores(pw[0], pw[1], lo_tables, ng)[0], pw[1]
    pw = an.projections(speed, ng, tables)
    if pw is None:
        return None
    z, term = an.scores(pw[0], pw[1], tables, ng)
    return z, term, (None if lo_tables is None else an.scores(pw[0], pw[1], lo_tables, ng)[0]), pw[1]


class _Search:
    """The detector's search over one clip, in steps: ``search`` ranks speeds x block phases of one analysis
    and decodes the best candidates; ``refinement`` names the next sub-hop re-analysis (shift, speed) or None;
    ``result`` gathers what detect() reports. _detect_core runs the steps in turn for one clip on the host;
    provmark.gpu_audio.detect_batch runs them for a batch of clips in lockstep on device scores."""

    def __init__(
        self,
        rate: int,
        kb: bytes,
        speeds: tuple[float, ...],
        n_candidates: int = 3,
        layout: Layout = DEFAULT_LAYOUT,
        bits: int = PAYLOAD_BITS,
        fpr: float | None = None,
    ) -> None:
        self.rate, self.speeds, self.n_candidates, self.layout, self.bits, self.fpr = (
            rate,
            speeds,
            n_candidates,
            layout,
            bits,
            fpr,
        )
        self.n_coded = int(_core().ecc_coded_length(bits))
        self.tables = _tables(kb, layout, self.n_coded)
        self.ng = layout.groups_for_rate(rate)
        ng, tables = self.ng, self.tables
        self.data = ~tables.is_sync[:, :ng]
        self.bit_idx = tables.bit[:, :ng][self.data]
        self.sync_sign = np.where(tables.is_sync[:, :ng], 1.0 - 2.0 * tables.sync_bit[:, :ng], 0.0)
        # A second family of sync statistics: the low-tier groups' sync instances alone. A low-pass or a codec's
        # band limit that kills the upper groups, or turns their projections by a constant, drowns the full
        # statistic while the low tier's evidence stands (docs/audio.md section 8). Each family's statistics
        # count in n_tests (the same sub-Gaussian bound holds for any subset of instances).
        self.lo_tables: _Tables | None = None
        lo = layout.low_tier_groups
        if ng > lo:
            mask = tables.is_sync.copy()
            mask[:, lo:] = False
            self.lo_tables = dataclasses.replace(tables, is_sync=mask)
        self.n_tests = 0
        self.tried = 0
        self.best: _Candidate | None = None
        self._fracs = [0.5, 0.25, 0.75]
        self._pending: list[float] = []  # speeds still to re-analyse at the shift of _fracs[0]
        # decoded: z, speed, phase, shift, term function, analysis, full family, reliability weights (or None)
        self._seen: list[tuple[float, float, int, int, Any, Any, bool, np.ndarray | None]] = []
        self._second_done = False

    def search(self, an: Any, shift: int, speed_list: tuple[float, ...]) -> None:
        ng, tables = self.ng, self.tables
        # (z, speed, phase, phase -> terms, full family, reliability weights or None)
        cands: list[tuple[float, float, int, Any, bool, np.ndarray | None]] = []
        decoded: dict[tuple[float, int], tuple[bytes | None, float]] = {}
        # speeds nearest 1 first: a strong mark found at speed 1 ends the search early
        for s in sorted(speed_list, key=lambda v: abs(v - 1.0)):
            zt = _speed_scores(an, s, ng, tables, self.lo_tables)
            if zt is None:
                continue
            z, term, z_lo, w = zt
            families = [z] if z_lo is None else [z, z_lo]
            for fam, zf in enumerate(families):
                self.n_tests += zf.shape[0]
                for m in np.argsort(-zf, kind="stable")[: self.n_candidates]:
                    cands.append((float(zf[m]), s, int(m), term, fam == 0, w))  # terms read only when decoded
            # decode the best candidates so far now, so a clear detection can stop the search
            cands.sort(key=lambda t_: -t_[0])
            del cands[self.n_candidates * len(families) :]
            for zc, sc, mc, term_of, full, wc in cands:
                res = decoded.get((sc, mc))
                if res is None:  # a phase ranked by both families is decoded once
                    self._seen.append((zc, sc, mc, shift, term_of, an, full, wc))
                    self._seen.sort(key=lambda t_: -t_[0])  # only the best few are decoded again (_second_chance)
                    del self._seen[self.n_candidates :]
                    res = decoded[(sc, mc)] = self._decode(term_of(mc), True)
                self._offer(_Candidate(sc, mc, zc, res[0], res[1], shift, an), full)
            b = self.best
            if (
                self.fpr is not None
                and b is not None
                and b.payload is not None
                and _p_value(b.z, self.n_tests, True, self.tried) < self.fpr * 1e-6
            ):
                return  # overwhelming evidence: further speeds cannot change the answer

    def _decode(self, tm: np.ndarray, group_weights: bool, list_size: int = 1) -> tuple[bytes | None, float]:
        """Viterbi + CRC of one candidate's folded terms [T, ng]; with list_size > 1 the CRC-aided list decoder
        (docs/ecc.md). Every CRC check counts in ``tried`` (the p-value's 2**-32 term)."""
        if group_weights:
            tm = tm * _group_reliability(tm, self.sync_sign)[None, :]
        soft = -np.bincount(self.bit_idx, weights=tm[self.data], minlength=self.n_coded).astype(np.float32)
        if list_size > 1:
            payload, conf, checked, _rank = _core().ecc_decode_list(soft, self.bits, list_size)
            self.tried += checked
        else:
            payload, conf = _core().ecc_decode(soft, self.bits)
            self.tried += 1
        return payload, float(conf)

    def _offer(self, cand: _Candidate, full: bool) -> None:
        """Keep cand if it beats the best so far. A candidate ranked by the low-tier family alone counts only
        once it decodes: undecoded, its z would steer the sub-hop re-analyses (at the best candidate's speed)
        towards that family's null maxima (measured: 2 speed-changed windows lost of 60 + 60)."""
        if (full or cand.payload is not None) and _better(cand, self.best):
            self.best = cand

    def refinement(self, nsamples: int) -> tuple[int, float] | None:
        """The next sub-hop re-analysis as (shift in samples, speed), or None when the search is over.

        The phase search moves in whole hops (10 ms), and a cell read half a hop off its position loses much
        of its mark; unless the payload already decoded cleanly, the audio shifted by 1/2, 1/4 and 3/4 hop is
        re-analysed (in that order) at the nominal speed and at the best speed found, when that differs (two
        steps with the same shift). The nominal speed is always tried: when the mark is weak, the best z at
        shift 0 is often a wrong speed's (the null's maximum over the speed grid) while the true phase, read
        half a hop closer, ranks first at speed 1 (benchmarks/audio_detect_lab.py, docs/audio.md section 8).
        """
        lay = self.layout
        h = hop_length(self.rate, lay)
        while self._fracs:
            b = self.best
            shift = round(self._fracs[0] * h)
            if (b is not None and b.payload is not None and b.confidence >= 0.95) or (
                nsamples - shift < 2 * h + lay.cell_hops * h
            ):
                break
            if not self._pending:
                self._pending = list(dict.fromkeys((1.0, b.speed if b is not None else 1.0)))
            speed = self._pending.pop(0)
            if not self._pending:
                del self._fracs[0]
            return shift, speed
        self._fracs.clear()
        self._pending.clear()
        self._second_chance()
        return None

    def _second_chance(self) -> None:
        """When nothing decoded, decode the best candidates seen (by sync z) once more without the per-group
        sync-evidence weights: where every group is about equally hurt (codecs at low rates), the weights
        only add estimation noise (docs/audio.md section 8); then with the list decoder; last with the soft
        values of a white-noise model (_noise_model), list-decoded. Each CRC check counts
        in ``tried``, so the CRC term of the p-value stays valid; the sync statistic is untouched."""
        if self._second_done:
            return
        self._second_done = True
        if self.best is None or self.best.payload is not None:
            return
        for zc, sc, mc, shift, term_of, an, full, _w in self._seen:
            payload, conf = self._decode(term_of(mc), False)
            self._offer(_Candidate(sc, mc, zc, payload, conf, shift, an), full)
            if self.best.payload is not None:
                return
        # then the CRC-aided list decoder on the same candidates, with and without the group weights: only here,
        # where nothing decoded, because it costs up to LIST_SIZE + 1 CRC checks (and about 1 ms) per decoding
        for zc, sc, mc, shift, term_of, an, full, _w in self._seen:
            for weights in (True, False):
                payload, conf = self._decode(term_of(mc), weights, LIST_SIZE)
                self._offer(_Candidate(sc, mc, zc, payload, conf, shift, an), full)
                if self.best.payload is not None:
                    return
        # last, soft values for audio in added white noise (_noise_model), with the list decoder
        models: dict[tuple[int, float], Any] = {}
        for zc, sc, mc, shift, _term_of, an, full, w in self._seen:
            key = (id(an), sc)
            if key not in models:
                models[key] = _noise_model(an, sc, self.ng, self.tables, self.layout, w=w)
            if models[key] is None:
                continue
            p, w = models[key]
            payload, conf = self._decode(_phase_term(p, w, mc, self.tables, self.ng, self.layout), True, LIST_SIZE)
            self._offer(_Candidate(sc, mc, zc, payload, conf, shift, an), full)
            if self.best.payload is not None:
                return

    def result(self, an0: Any) -> dict[str, Any]:
        """The raw results _detect_core returns (an0: the analysis at shift 0)."""
        self._second_chance()
        best = self.best if self.best is not None else _Candidate(1.0, 0, 0.0, None, 0.0, 0, an0)
        return {
            "best": best,
            "n_tests": max(self.n_tests, 1),
            "tried": max(self.tried, 1),
            "tables": self.tables,
            "ng": self.ng,
            "analysis": best.analysis,
        }


def _detect_core(
    x: np.ndarray | None,
    rate: int,
    kb: bytes,
    speeds: tuple[float, ...],
    n_candidates: int = 3,
    layout: Layout = DEFAULT_LAYOUT,
    bits: int = PAYLOAD_BITS,
    fpr: float | None = None,
    impl: str = "native",
    analyses: Any = None,
) -> dict[str, Any]:
    """Search speeds x block phases, decode the best sync phases. Returns a dict of raw results.

    analyses: where the analyses come from (``analyses(shift)`` -> an analysis of the clip from sample
    ``shift`` on, ``analyses.nsamples``); default: the host's, of ``x`` (impl "native" or "numpy").
    """
    if analyses is None:
        analyses = _HostAnalyses(x, rate, layout, max(speeds) * 1.01, impl)
    run = _Search(rate, kb, speeds, n_candidates, layout, bits, fpr)
    an = analyses(0)
    run.search(an, 0, speeds)
    last = (0, an)  # the refinement asks for each shift at up to two speeds in a row: analyse it once
    while (step := run.refinement(analyses.nsamples)) is not None:
        if step[0] != last[0]:
            last = (step[0], analyses(step[0]))
        run.search(last[1], step[0], (step[1],))
    return run.result(an)


def _p_value(z: float, n_tests: int, decoded: bool, tried: int) -> float:
    """Sub-Gaussian bound for the best of n_tests sync statistics; times tried * 2**-32 with a valid CRC."""
    if not math.isfinite(z) or z <= 0:
        return 1.0
    log_p = -0.5 * z * z + math.log(max(n_tests, 1))
    if decoded:
        log_p += math.log(max(tried, 1) * _CRC_FALSE_PASS)
    return float(math.exp(log_p)) if log_p < 0 else 1.0


def _presence(
    an: Any, speed: float, phase: int, tables: _Tables, inst_bits: np.ndarray | None, ng: int, layout: Layout
) -> list[float]:
    """Presence z per second: sum of +-cos(2 pi (p / step - dither)) of the aligned instances / sqrt(n / 2)."""
    pw = an.projections(speed, ng, tables)
    if pw is None:
        return []
    p, w = pw
    ch, P = layout.cell_hops, layout.block_hops
    j = np.arange(p.shape[0])
    sel = ((j - phase) % ch) == 0
    js = j[sel]
    t = ((js - phase) % P) // ch
    val = np.cos(2.0 * np.pi * (p[sel] / layout.step - tables.dither[t, :ng]))
    if inst_bits is None:
        use = tables.is_sync[t, :ng]
        sgn = 1.0 - 2.0 * tables.sync_bit[t, :ng]
    else:
        use = np.ones_like(val, dtype=bool)
        sgn = 1.0 - 2.0 * inst_bits[t, :ng]
    ww = w[sel] * use
    contrib = np.sum(ww * sgn * val, axis=1)
    var = 0.5 * np.sum(ww * ww, axis=1)
    sec = np.floor((js + ch / 2.0) * an.h / speed / an.rate).astype(np.int64)
    nsec = int(sec.max()) + 1 if sec.size else 0
    num = np.bincount(sec, weights=contrib, minlength=nsec)
    den = np.bincount(sec, weights=var, minlength=nsec)
    return [float(v) for v in np.where(den > 0, num / np.sqrt(np.maximum(den, 1e-300)), 0.0)]


# ---- echo: estimated from the cepstrum, undone before a last detection pass ---------------------------------
ECHO_DELAY_S = (0.02, 0.35)  # delays of the single echo the last pass undoes
ECHO_MIN_DECAY = 0.15  # weaker echoes are left alone
ECHO_SECONDS = 4.0  # audio read for the estimate
_ECHO_MAX_DECAY = 0.9  # the inverse filter's feedback gain is capped (stable, and a wrong estimate stays mild)


def _echo_estimate(x: np.ndarray, rate: int) -> tuple[int, float] | None:
    """(delay in samples, decay) of the strongest single echo in ``x`` [C, n], or None below ECHO_MIN_DECAY.

    An echo y = s + a s(t - d) multiplies the spectrum by 1 + a exp(-i w d), whose log magnitude is
    a cos(w d) - a^2 / 2 cos(2 w d) + ...: in the power cepstrum (the inverse FFT of the log magnitude spectrum)
    a peak of a / 2 at quefrency d and a dip of -a^2 / 4 at 2 d, whatever the music. The log spectra of
    Hann-windowed segments (four times the longest delay, half-overlapped) of the channel mean over the first
    ECHO_SECONDS are averaged, so the signal's own cepstrum averages down while the echo's is the same in every
    segment. Music repeating at its beat also makes peaks (0.21-0.34 s on the ETR tracks, up to 0.26), but
    without the dip: of the 3 largest peaks c, the first whose values at 2 d +- 1 sample reach down to between
    -2.5 c^2 and -0.5 c^2 and nowhere above +0.5 c^2 counts (echoes: -0.78 to -1.94 c^2; beats: positive, or
    swinging between -3 and +10.5 c^2; benchmarks/audio_echo_estimate.py). Within one segment the echo term is
    weighted by the window's overlap with itself d later, so the decay is 2 c over that overlap.
    """
    m = x[:, : int(ECHO_SECONDS * rate)].mean(axis=0)
    lo, hi = int(ECHO_DELAY_S[0] * rate), int(ECHO_DELAY_S[1] * rate)
    seg = 1 << math.ceil(math.log2(4 * hi + 1))
    if m.size < seg:
        return None
    starts = range(0, m.size - seg + 1, seg // 2)
    win = np.hanning(seg)
    logmag = np.zeros(seg // 2 + 1)
    for s0 in starts:
        logmag += np.log(np.abs(np.fft.rfft(m[s0 : s0 + seg] * win)) + 1e-12)
    cep = np.fft.irfft(logmag / len(starts), n=seg)
    band = cep[lo : hi + 1].copy()
    for _ in range(3):
        k = int(np.argmax(band))
        c1 = float(band[k])
        if not 2.0 * c1 >= ECHO_MIN_DECAY:
            return None
        d = lo + k
        dip = cep[2 * d - 1 : 2 * d + 2] / (c1 * c1)  # an echo: about -1 at 2 d, 0 beside it
        if dip.min() <= -0.5 and dip.min() >= -2.5 and dip.max() <= 0.5:
            # within one window the echo term is weighted by the window's overlap with itself d later
            overlap = float(np.dot(win[d:], win[:-d]) / np.dot(win, win))
            return d, min(2.0 * c1 / overlap, _ECHO_MAX_DECAY)
        band[max(0, k - 2) : k + 3] = -np.inf  # the next peak
    return None


def _deecho(x: np.ndarray, delay: int, decay: float) -> np.ndarray:
    """Undo one echo: y[t] = x[t] - decay * y[t - delay] (the inverse of x = s + decay * s(t - delay)),
    computed a delay-long block at a time."""
    y = np.array(x, dtype=np.float64)
    n = y.shape[1]
    for s0 in range(delay, n, delay):
        s1 = min(n, s0 + delay)
        y[:, s0:s1] -= decay * y[:, s0 - delay : s1 - delay]
    return y


def _echo_pass(r: dict[str, Any], rate: int, fpr: float, head: Any, clip: Any, run: Any) -> dict[str, Any]:
    """When the search found nothing (no payload, or one without enough sync evidence for ``fpr``) and the
    audio holds a clear echo, search its de-echoed copy at the nominal speed and keep that result if it is
    found. An echo smears each cell's energy into the cells it is delayed into; on quiet, want-limited passages
    that hides the mark (docs/audio.md section 3), and undoing the estimated echo takes it back.

    head() -> at least the first ECHO_SECONDS of the audio [C, n] (the estimate reads only those); clip() -> the
    whole audio, float64 [C, n]; run(y, speeds) -> _detect_core's results on y. Both searches' tests and CRC
    checks count in the returned n_tests and tried (a union bound over the two passes).
    """
    b = r["best"]
    if b.payload is not None and _p_value(b.z, r["n_tests"], True, r["tried"]) < fpr:
        return r
    est = _echo_estimate(head(), rate)
    if est is None:
        return r
    r2 = run(_deecho(clip(), *est), (1.0,))
    counts = {"n_tests": r["n_tests"] + r2["n_tests"], "tried": r["tried"] + r2["tried"]}
    b2 = r2["best"]
    if b2.payload is not None and _p_value(b2.z, counts["n_tests"], True, counts["tried"]) < fpr:
        return {**r2, **counts, "echo": est}
    return {**r, **counts}


# ----------------------------------------------------------------------------------------------------------
# Public API.
# ----------------------------------------------------------------------------------------------------------
DEFAULT_FPR = 1e-6
_MAX_FLOAT_PEAK = 1.5  # lossy decoders overshoot full scale a little; beyond this the input is mis-scaled


def _check_rate(sample_rate: Any) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise TypeError(f"sample_rate must be an int, got {type(sample_rate).__name__}")
    r = int(sample_rate)
    if r not in SUPPORTED_RATES:
        raise ValueError(f"sample_rate must be one of {SUPPORTED_RATES}, got {r}")
    return r


def _to_array(samples: Any, fn: str, convert: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """Any accepted input -> ([C, n] float64, info to restore the caller's type, dtype and shape).

    convert=False: the validated samples as [C, n] in their own dtype (float32, float64 or int16; int16
    means value / 32768), C-contiguous, for the native core, which converts as it reads.
    """
    info: dict[str, Any] = {"torch": False}
    if type(samples).__module__.startswith("torch"):
        if getattr(samples, "device", None) is not None and samples.device.type != "cpu":
            raise ValueError(f"{fn}: samples must be a CPU tensor, got device {samples.device}")
        info["torch"] = True
        info["torch_dtype"] = samples.dtype
        samples = samples.detach().numpy()
    if not isinstance(samples, np.ndarray):
        raise TypeError(f"{fn}: samples must be a numpy array or a torch CPU tensor, got {type(samples).__name__}")
    if samples.dtype not in (np.float32, np.float64, np.int16):
        raise TypeError(f"{fn}: samples must have dtype float32, float64 or int16, got {samples.dtype}")
    if samples.ndim not in (1, 2):
        raise ValueError(f"{fn}: samples must have shape (n,) or (channels, n), got {samples.shape}")
    info["dtype"] = samples.dtype
    info["ndim"] = samples.ndim
    x = samples[None] if samples.ndim == 1 else samples
    if x.shape[0] < 1 or x.shape[0] > 16:
        raise ValueError(f"{fn}: samples must have 1 to 16 channels (shape (channels, n)), got shape {samples.shape}")
    if x.shape[1] == 0:
        raise ValueError(f"{fn}: samples are empty (shape {samples.shape})")
    if samples.dtype == np.int16:
        if not convert:
            return np.ascontiguousarray(x), info
        xf = x.astype(np.float64, order="C") / 32768.0
    else:
        hi, lo = float(x.max()), float(x.min())  # NaN propagates; two passes, no temporary array
        if not (math.isfinite(hi) and math.isfinite(lo)):
            raise ValueError(f"{fn}: samples contain NaN or infinite values")
        peak = max(hi, -lo)
        if peak > _MAX_FLOAT_PEAK:
            raise ValueError(
                f"{fn}: float samples must lie in [-1, 1] (decoder overshoot up to "
                f"{_MAX_FLOAT_PEAK} is tolerated), got a peak of {peak:.4g}; int-scaled audio "
                "should be passed as int16 or divided by 32768"
            )
        if not convert:
            return np.ascontiguousarray(x), info
        xf = x.astype(np.float64, order="C")  # C order: the native core reads rows
    return xf, info


def _from_array(y: np.ndarray, info: dict[str, Any]) -> Any:
    dt = info["dtype"]
    if dt == np.int16:
        out = np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)
    else:
        out = np.clip(y, -1.0, 1.0, out=y).astype(dt, copy=False)  # y is the engine's own array
    return _restore(out, info)


def _restore(out: np.ndarray, info: dict[str, Any]) -> Any:
    """[C, n] in the caller's dtype -> the caller's shape and type (numpy or torch)."""
    if info["ndim"] == 1:
        out = out[0]
    if info["torch"]:
        import torch

        return torch.from_numpy(np.ascontiguousarray(out))
    return out


def _payload_bits(payload: Any) -> tuple[bytes, np.ndarray]:
    from provmark.payload import Payload

    p = payload if isinstance(payload, Payload) else Payload(payload, bits=PAYLOAD_BITS)
    if p.bits != PAYLOAD_BITS:
        raise ValueError(f"audio payloads are {PAYLOAD_BITS} bits, got {p.bits}")
    return p.data, np.asarray(p.encode(), dtype=np.uint8)


def _check_strength(strength: Any) -> float:
    """strength = the fraction of the distance to the lattice point that the embedder moves (1 = all of it).

    The quantisation step is part of the format (the detector must know it), so strength cannot raise it:
    lower values trade robustness for a higher SNR (see docs/audio.md).
    """
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.integer, np.floating)):
        raise TypeError(f"strength must be a number, got {type(strength).__name__}")
    s = float(strength)
    if not math.isfinite(s) or s <= 0 or s > 1:
        raise ValueError(f"strength must be in (0, 1], got {strength!r}")
    return s


def embed(samples: Any, sample_rate: int, payload: Any, key: Any, strength: float = 1.0) -> Any:
    """Watermark `samples` with a 64-bit `payload` under `key`. Returns the same type, dtype and shape.

    samples: float32/float64 in [-1, 1] or int16, shape (n,) or (channels, n), numpy or torch CPU tensor.
    The output is clipped to the input's range (float: [-1, 1]; int16: its full range). CUDA arrays (torch
    CUDA tensors, CuPy; float32/float64) are marked on their device by :func:`provmark.gpu_audio.embed`,
    queued on their stream, and come back on it.
    """
    if is_cuda_array(samples):
        from . import gpu_audio

        nd = cuda_ndim(samples)
        if nd not in (1, 2):
            raise ValueError(f"embed: samples must have shape (n,) or (channels, n), got {nd} axes")
        return gpu_audio.embed(samples, sample_rate, payload, key, strength)  # (n,): one mono clip
    return _embed(samples, sample_rate, payload, key, strength)


def _embed(samples: Any, sample_rate: int, payload: Any, key: Any, strength: float = 1.0, impl: str = "native"):
    """embed() with a choice of implementation ("native" or the NumPy reference "numpy")."""
    rate = _check_rate(sample_rate)
    native = _check_impl(impl) == "native"
    x, info = _to_array(samples, "embed", convert=not native)
    if x.shape[1] < frame_length(rate):
        raise ValueError(
            f"embed: need at least one frame ({frame_length(rate)} samples at {rate} Hz), got {x.shape[1]}"
        )
    kb = _key_bytes(key)
    _, coded = _payload_bits(payload)
    strength = _check_strength(strength)
    if native:
        return _restore(_embed_native(x, rate, coded, kb, strength), info)
    y = _embed_array(x, rate, coded, kb, strength, impl=impl)
    return _from_array(y, info)


def _embed_native(x: np.ndarray, rate: int, coded: np.ndarray, kb: bytes, strength: float) -> np.ndarray:
    """x: [C, n] float32/float64/int16 -> marked [C, n] of the same dtype, clipped (int16: rounded), with
    the native core reading and writing the caller's dtype directly (no float64 copies)."""
    st = _EmbedState(rate, x.shape[0], coded, kb, strength, DEFAULT_LAYOUT, "native")
    h, span, n = st.h, DEFAULT_LAYOUT.cell_hops * st.h, x.shape[1]
    y = np.empty_like(x)
    full = max(0, (n - h) // span)
    if full:
        st.native.run(x, full, y, True)
    rest = n - full * span
    if rest:  # the zero-padded tail, exactly as _EmbedState.flush() pads it
        nc = -(-rest // span)
        tail = np.zeros((x.shape[0], nc * span + h), dtype=x.dtype)
        tail[:, :rest] = x[:, full * span :]
        y[:, full * span :] = st.native.run(tail, nc, np.empty((x.shape[0], nc * span), dtype=x.dtype), True)[:, :rest]
    return y


def detect(samples: Any, sample_rate: int, key: Any, *, fpr: float = DEFAULT_FPR, speed_search: bool = False):
    """Look for a watermark of `key`. Returns provmark.Detection.

    Searches every block phase (10 ms steps) and playback speeds within +-2 % (+-5 % with speed_search=True,
    0.2 % steps). details: "offset_s" (where a payload block starts in `samples`, modulo "block_s"),
    "speed", "sync_z", "confidence" (Viterbi agreement), "segments" (presence z per second of input: about
    0 where unmarked, several units where marked), "n_tests" (phases x speeds searched). When nothing is found
    and the audio holds a clear echo (20-350 ms, decay >= 0.15, estimated from its cepstrum), the de-echoed audio
    is searched again at the nominal speed; details["echo"] = {"delay_s", "decay"} when that found the mark.
    CUDA arrays (torch CUDA tensors, CuPy; float32 / float64 / int16) are scored on their device by
    :func:`provmark.gpu_audio.detect_batch` (the same search and decoding, on the device's scores).
    """
    if is_cuda_array(samples):
        from . import gpu_audio

        nd = cuda_ndim(samples)
        if nd not in (1, 2):
            raise ValueError(f"detect: samples must have shape (n,) or (channels, n), got {nd} axes")
        return gpu_audio.detect_batch(samples, sample_rate, key, fpr=fpr, speed_search=speed_search)[0]
    return _detect(samples, sample_rate, key, fpr=fpr, speed_search=speed_search)


def _detect(samples: Any, sample_rate: int, key: Any, *, fpr: float, speed_search: bool, impl: str = "native"):
    """detect() with a choice of implementation ("native" or the NumPy reference "numpy")."""
    rate = _check_rate(sample_rate)
    x, _ = _to_array(samples, "detect")
    if isinstance(fpr, bool) or not isinstance(fpr, (int, float)) or not (0 < fpr < 1):
        raise ValueError(f"detect: fpr must be in (0, 1), got {fpr!r}")
    kb = _key_bytes(key)
    layout = DEFAULT_LAYOUT
    need = frame_length(rate) + (layout.cell_hops - 1) * hop_length(rate)
    if x.shape[1] < need:
        raise ValueError(f"detect: need at least {need} samples ({need / rate:.3f} s) at {rate} Hz, got {x.shape[1]}")
    speeds = SPEEDS_SEARCH if speed_search else SPEEDS_DEFAULT
    r = _detect_core(x, rate, kb, speeds, layout=layout, fpr=fpr, impl=impl)
    r = _echo_pass(
        r, rate, fpr, lambda: x, lambda: x, lambda y, s: _detect_core(y, rate, kb, s, layout=layout, fpr=fpr, impl=impl)
    )
    return _detection(r, rate, fpr, layout)


def _detection(r: dict[str, Any], rate: int, fpr: float, layout: Layout = DEFAULT_LAYOUT):
    """detect()'s answer from _detect_core's raw results: p-value, decision, presence segments, details."""
    from provmark.detection import Detection

    best: _Candidate = r["best"]
    decoded = best.payload is not None
    p = _p_value(best.z, r["n_tests"], decoded, r["tried"])
    found = decoded and p < fpr
    h = hop_length(rate)
    tables = r["tables"]
    inst_bits = None
    if found:
        inst_bits = _instance_bits(tables, np.asarray(_core().ecc_encode(best.payload), dtype=np.int64))
    segments = _presence(r["analysis"], best.speed, best.phase, tables, inst_bits, r["ng"], layout)
    details = {
        "offset_s": ((best.shift + best.phase * h / best.speed) / rate) % (layout.block_hops * h / best.speed / rate),
        "block_s": layout.block_hops * h / best.speed / rate,
        "speed": best.speed,
        "sync_z": best.z,
        "confidence": best.confidence,
        "segments": segments,
        "n_tests": r["n_tests"],
    }
    if "echo" in r:  # decoded after undoing an echo (_echo_pass)
        details["echo"] = {"delay_s": r["echo"][0] / rate, "decay": r["echo"][1]}
    return Detection(
        found=bool(found), payload=best.payload if found else None, p_value=p, score=float(best.z), details=details
    )


class StreamEmbedder:
    """Chunked embedder: push(chunk) -> marked samples so far; flush() -> the rest.

    Concatenated outputs equal embed() on the whole signal. Latency: a sample is returned once the input
    reaches 5 hops (50 ms) past the start of its 40 ms cell (latency_s), whatever the chunk sizes.
    Chunks: shape (n,) for mono or (channels, n), float32/float64 in [-1, 1] or int16 (as embed()).
    CUDA chunks (torch CUDA tensors, CuPy) are marked on their device by :class:`provmark.gpu_audio.StreamEmbedder`
    (the state stays on the device; outputs are CUDA arrays); one stream takes host or CUDA chunks, not both.
    """

    def __init__(self, sample_rate: int, channels: int, payload: Any, key: Any, strength: float = 1.0) -> None:
        self.sample_rate = _check_rate(sample_rate)
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or not 1 <= channels <= 16:
            raise ValueError(f"StreamEmbedder: channels must be an int in [1, 16], got {channels!r}")
        self.channels = int(channels)
        _, coded = _payload_bits(payload)
        kb, strength = _key_bytes(key), _check_strength(strength)
        self._state = _EmbedState(self.sample_rate, self.channels, coded, kb, strength)
        self._spec = (payload, kb, strength)  # for the device twin, made at the first CUDA chunk
        self._device: Any = None
        self._info: dict[str, Any] | None = None
        self._closed = False
        self.latency_s = (DEFAULT_LAYOUT.cell_hops + 1) * hop_length(self.sample_rate) / self.sample_rate

    def push(self, chunk: Any) -> Any:
        if self._closed:
            raise RuntimeError("StreamEmbedder: push() after flush()")
        if is_cuda_array(chunk) or self._device is not None:
            return self._push_device(chunk)
        native = self._state.native is not None
        if (
            isinstance(chunk, np.ndarray)
            and chunk.size == 0
            and chunk.ndim in (1, 2)
            and chunk.dtype in (np.float32, np.float64, np.int16)
        ):
            dt = chunk.dtype if native else np.float64
            x, info = np.zeros((self.channels, 0), dtype=dt), {"dtype": chunk.dtype, "ndim": chunk.ndim, "torch": False}
        else:
            x, info = _to_array(chunk, "StreamEmbedder.push", convert=not native)
        if x.shape[0] != self.channels:
            raise ValueError(f"StreamEmbedder.push: expected {self.channels} channels, got shape {tuple(chunk.shape)}")
        if self._info is None:
            self._info = info
        if native:  # the core reads and writes the caller's dtypes (no float64 copies), as embed() does
            return _restore(self._state.push_native(x, self._info["dtype"]), self._info)
        return _from_array(self._state.push(x), self._info)

    def _push_device(self, chunk: Any) -> Any:
        if not is_cuda_array(chunk):
            raise ValueError(
                "StreamEmbedder.push: this stream takes CUDA chunks (its first chunk was one), got a host array"
            )
        if self._device is None:
            if self._info is not None:
                raise ValueError(
                    "StreamEmbedder.push: this stream takes host chunks (its first chunk was one), got a CUDA array"
                )
            from . import gpu_audio

            payload, kb, strength = self._spec
            self._device = gpu_audio.StreamEmbedder(self.sample_rate, self.channels, payload, kb, strength)
        return self._device.push(chunk)

    def flush(self) -> Any:
        if self._closed:
            raise RuntimeError("StreamEmbedder: flush() called twice")
        if self._device is not None:
            self._closed = True
            return self._device.flush()
        self._closed = True
        info = self._info or {"dtype": np.dtype(np.float32), "ndim": 2 if self.channels > 1 else 1, "torch": False}
        if self._state.native is not None:
            return _restore(self._state.flush_native(info["dtype"]), info)
        return _from_array(self._state.flush(), info)


class StreamDetector:
    """Live monitoring: push(chunk) keeps the last `window_s` seconds; result() runs detect() on them."""

    def __init__(
        self, sample_rate: int, channels: int, key: Any, *, window_s: float = 20.0, fpr: float = DEFAULT_FPR
    ) -> None:
        self.sample_rate = _check_rate(sample_rate)
        self.channels = int(channels)
        if not 1 <= self.channels <= 16:
            raise ValueError(f"StreamDetector: channels must be in [1, 16], got {channels!r}")
        if not window_s > 0:
            raise ValueError(f"StreamDetector: window_s must be > 0, got {window_s!r}")
        self._kb = _key_bytes(key)
        self._key = key
        self._fpr = fpr
        self._max = int(window_s * self.sample_rate)
        self._buf = np.zeros((self.channels, 0))

    def push(self, chunk: Any) -> None:
        x, _ = _to_array(chunk, "StreamDetector.push")
        if x.shape[0] != self.channels:
            raise ValueError(f"StreamDetector.push: expected {self.channels} channels, got shape {tuple(chunk.shape)}")
        self._buf = np.concatenate([self._buf, x], axis=1)[:, -self._max :]

    def result(self):
        return detect(self._buf, self.sample_rate, self._kb, fpr=self._fpr)


def embed_file(src: Any, dst: Any, payload: Any, key: Any, *, strength: float = 1.0, overwrite: bool = False) -> None:
    """Watermark an audio file (WAV, FLAC, MP3, OGG/Vorbis, Opus, M4A/AAC) into dst, keeping its format."""
    from provmark.media import audio_io

    audio = audio_io.read_audio(src)
    if audio.sample_rate not in SUPPORTED_RATES:
        raise ValueError(f"embed_file: {src}: sample rate {audio.sample_rate} Hz is not supported ({SUPPORTED_RATES})")
    marked = embed(audio.samples, audio.sample_rate, payload, key, strength=strength)
    audio_io.write_audio(dst, marked, audio, overwrite=overwrite)


def detect_file(path: Any, key: Any, *, fpr: float = DEFAULT_FPR, speed_search: bool = False):
    """detect() on a decoded audio file."""
    from provmark.media import audio_io

    audio = audio_io.read_audio(path)
    return detect(audio.samples, audio.sample_rate, key, fpr=fpr, speed_search=speed_search)
