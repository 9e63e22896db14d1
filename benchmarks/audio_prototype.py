"""Phase-1 prototype: compare two modulations for the audio mark on real music and speech.

  (a) patchwork (spread spectrum on log band energies): every cell's bins scaled by 10**(+-delta/20);
  (b) STDM (spread-transform dither modulation): groups of L adjacent bands in one time cell, zero-sum
      chips, the projection p = mean(chip * log energy) quantised (dithered, distortion-compensated) to the
      lattice of the bit; the detector's soft value is -cos(2 pi (p / step - dither)).

Both at the same measured SNR, with the block alignment known (this isolates the modulation; sync search is
measured by benchmarks/audio_robustness.py on the real engine). Prints the per-coded-bit soft-value quality
(mean / std of sign-corrected soft values, "q") and the exact-decode rate over 10 s windows.

Usage: python benchmarks/audio_prototype.py [--tracks 6] [--seconds 40]
Needs: apt-get install extremetuxracer-data klettres-data alsa-utils ffmpeg
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from audio_common import ffmpeg_roundtrip, music_tracks, snr_db, speech_tracks
from provmark import Payload, _core

KB = bytes(range(32))
PAYLOAD = Payload(0x0123456789ABCDEF)
CODED = PAYLOAD.encode().astype(np.int64)
NC = len(CODED)
CELL = 4  # hops per time cell


_FHI = float(os.environ.get("PM_FHI", 7000))
_RATIO = float(os.environ.get("PM_RATIO", 0.06))


def bands(rate, fhi=_FHI, ratio=_RATIO):
    step = 50.0
    e = [6]
    while True:
        w = max(1, round(e[-1] * ratio))
        if (e[-1] + w) * step > min(fhi, 0.45 * rate):
            break
        e.append(e[-1] + w)
    return np.array(e)


def stft_frames(x, n):
    h = n // 2
    m = x.shape[-1]
    nf = -(-m // h) + 1
    xp = np.zeros((*x.shape[:-1], (nf + 1) * h))
    xp[..., h : h + m] = x
    b = xp.reshape((*x.shape[:-1], nf + 1, h))
    return np.concatenate([b[..., :-1, :], b[..., 1:, :]], axis=-1), nf  # frame k = -1 .. nf-2


def synth(spec_delta, n, m, win):
    h = n // 2
    d = np.fft.irfft(spec_delta, n=n, axis=-1) * win
    c = d.shape[:-2]
    nf = d.shape[-2]
    out = np.zeros((*c, nf + 1, h))
    out[..., :-1, :] += d[..., :h]
    out[..., 1:, :] += d[..., h:]
    return out.reshape((*c, -1))[..., h : h + m]


def analysis_cells(x, rate, edges):
    """Log band energy per time cell [T, B] (cells = CELL frames starting at frame 0, Hann window)."""
    n = 2 * round(rate / 100)
    h = n // 2
    win = np.hanning(n + 1)[:n]
    xs = x if x.ndim == 2 else x[None]
    m = xs.shape[1]
    nfr = (m - n) // h + 1
    e = 0
    for c in range(xs.shape[0]):
        fr = xs[c, : (nfr + 1) * h].reshape(nfr + 1, h)
        fr = np.concatenate([fr[:-1], fr[1:]], axis=1)
        p = np.abs(np.fft.rfft(fr * win, axis=1)) ** 2
        cs = np.concatenate([np.zeros((nfr, 1)), np.cumsum(p, axis=1)], axis=1)
        e = e + cs[:, edges[1:]] - cs[:, edges[:-1]]
    t = nfr // CELL
    cell = e[: t * CELL].reshape(t, CELL, -1).sum(axis=1)
    return np.log(cell + 1e-9 * cell.mean() + 1e-30)


class StdmLayout:
    def __init__(self, rate, L, nb, t_block=64):
        self.L = L
        self.ng = nb // L
        self.T = t_block
        n_inst = self.T * self.ng
        rng_sign = _core.random_signs(KB, _core.Stream.TEST, self.T * self.ng * L).reshape(self.T, self.ng, L)
        base = np.array([1, -1] * (L // 2) + ([0] if L % 2 else []), dtype=float)
        perm = np.argsort(
            _core.random_uniform(KB, _core.Stream.TEST, self.T * self.ng * L, offset=10**6).reshape(self.T, self.ng, L),
            axis=2,
        )
        self.chips = base[perm] * np.sign(rng_sign.sum(axis=2, keepdims=True) + 0.5)
        self.dither = _core.random_uniform(KB, _core.Stream.TEST, n_inst, offset=2 * 10**6).reshape(self.T, self.ng)
        u = _core.random_uniform(KB, _core.Stream.TEST, n_inst, offset=3 * 10**6).reshape(self.T, self.ng)
        self.is_sync = u < 0.25
        order = np.argsort(_core.random_uniform(KB, _core.Stream.TEST, n_inst, offset=4 * 10**6))
        bit = np.empty(n_inst, dtype=np.int64)
        bit[order] = np.arange(n_inst) % NC
        self.bit = bit.reshape(self.T, self.ng)
        self.syncbit = (
            (_core.random_uniform(KB, _core.Stream.TEST, n_inst, offset=5 * 10**6) < 0.5)
            .reshape(self.T, self.ng)
            .astype(np.int64)
        )

    def bits(self):
        return np.where(self.is_sync, self.syncbit, CODED[self.bit])


def embed_stdm(x, rate, step, alpha, L, passes=2, gamma=0.0, cap=0.7):
    n = 2 * round(rate / 100)
    edges = bands(rate)
    nb = len(edges) - 1
    lay = StdmLayout(rate, L, nb)
    win = np.sin(np.pi * (np.arange(n) + 0.5) / n)
    frames, nf = stft_frames(x, n)
    spec = np.fft.rfft(frames * win, axis=-1)  # [C, K, bins]
    y = x.copy()
    gain_log = np.zeros((nf, nb))  # accumulated log-power change per frame/band
    for _ in range(passes):
        v = analysis_cells(y, rate, edges)  # [T, nb] starting at frame 0 (= embedding frame index 0)
        t = v.shape[0]
        vg = v[:, : lay.ng * L].reshape(t, lay.ng, L)
        tb = np.arange(t) % lay.T
        ch = lay.chips[tb]
        p = (ch * vg).sum(axis=2) / (ch * ch).sum(axis=2)
        bits = lay.bits()[tb]
        off = (lay.dither[tb] + 0.5 * bits) * step
        q = np.round((p - off) / step) * step + off
        dp = alpha * (q - p)
        # energy-weighted split: weaker cells of a group take a larger share of the log change (the SNR
        # counts change energy, which a loud cell makes expensive); capped at `cap` nats per pass
        wgt = np.exp(-gamma * (vg - vg.mean(axis=2, keepdims=True)))
        wgt = wgt * L / (ch * ch * wgt).sum(axis=2, keepdims=True)
        dv = np.clip(ch * wgt * dp[..., None], -cap, cap)  # per cell log-power change
        full = np.zeros((t, nb))
        full[:, : lay.ng * L] = dv.reshape(t, -1)
        # frames k = 0.. belong to cell k // CELL; frame index in `spec` is k + 1
        kk = np.arange(nf) - 1
        cell_of = kk // CELL
        ok = (kk >= 0) & (cell_of < t)
        gain_log[ok] += full[cell_of[ok]]
        g = np.ones((nf, spec.shape[-1]))
        for b in range(nb):
            g[:, edges[b] : edges[b + 1]] = np.exp(gain_log[:, b : b + 1] / 2)
        y = x + synth(spec * (g - 1), n, x.shape[-1], win)
    return y, lay, edges


def detect_stdm_soft(y, rate, lay, edges, step):
    v = analysis_cells(y, rate, edges)
    t = v.shape[0]
    L = lay.L
    vg = v[:, : lay.ng * L].reshape(t, lay.ng, L)
    tb = np.arange(t) % lay.T
    ch = lay.chips[tb]
    p = (ch * vg).sum(axis=2) / (ch * ch).sum(axis=2)
    e = p / step - lay.dither[tb]
    soft1 = -np.cos(2 * np.pi * e)  # > 0 favours bit 1
    return soft1, tb


def soft_quality(y, rate, lay, edges, step, t0, t1):
    s, tb = detect_stdm_soft(y, rate, lay, edges, step)
    s, tb = s[t0:t1], tb[t0:t1]
    data = ~lay.is_sync[tb]
    bits = lay.bit[tb][data]
    soft = np.bincount(bits, weights=s[data], minlength=NC)
    sgn = 2 * CODED - 1
    q = soft * sgn
    payload, _conf = _core.ecc_decode(soft.astype(np.float32), 64)
    return float(q.mean() / (q.std() + 1e-12)), payload == PAYLOAD.data


# ---- (a) patchwork: the first engine (v1), kept here so its figures stay reproducible ----------------------
import dataclasses  # noqa: E402
import math  # noqa: E402
from typing import Any  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Layout:
    """The audio watermark format (changing a field changes the format: embedder and detector must agree)."""

    frames_per_second: int = 25  # frame length N = rate / 25 (40 ms): 25 Hz bins at every rate, even N
    cell_hops: int = 4  # hops per cell (hop = N / 2 = 20 ms -> 80 ms cells)
    block_cells: int = 32  # cells per block in time (2.56 s)
    f_lo: float = 300.0  # lowest band edge, Hz
    f_hi: float = 7000.0  # highest band edge, Hz
    band_ratio: float = 0.06  # relative band width
    min_band_bins: int = 2  # narrowest band, bins
    nyquist_use: float = 0.45  # a band is used when its top edge is below nyquist_use * rate
    sync_fraction: float = 0.25  # fraction of the cells of a block that carry the sync pattern
    delta_db: float = 1.0  # patchwork step at strength 1, dB (each bin is scaled by 10**(+-delta/20))

    @property
    def block_hops(self) -> int:
        return self.cell_hops * self.block_cells

    def band_edges_bins(self) -> np.ndarray:
        """Band edges as bin indices on the 25 Hz grid, [n_bands + 1]."""
        step = float(self.frames_per_second)
        edges = [round(self.f_lo / step)]
        while True:
            lo = edges[-1]
            width = max(self.min_band_bins, round(lo * self.band_ratio))
            hi = lo + width
            if hi * step > self.f_hi:
                break
            edges.append(hi)
        return np.asarray(edges, dtype=np.int64)

    def n_bands(self) -> int:
        return len(self.band_edges_bins()) - 1

    def bands_for_rate(self, rate: int) -> int:
        """Number of bands (from the lowest) that a signal at `rate` carries."""
        edges = self.band_edges_bins() * self.frames_per_second
        return int(np.sum(edges[1:] <= self.nyquist_use * rate))


DEFAULT_LAYOUT = Layout()
PAYLOAD_BITS = 64
_EPS_REL = 1e-9  # floor of band energies relative to the mean band energy (silence -> constant log)


def frame_length(rate: int, layout: Layout = DEFAULT_LAYOUT) -> int:
    return rate // layout.frames_per_second


# ----------------------------------------------------------------------------------------------------------
# Keyed tables.
# ----------------------------------------------------------------------------------------------------------
def _core_mod():
    return _core


def _key_bytes(key: Any) -> bytes:
    if isinstance(key, (bytes, bytearray)):
        b = bytes(key)
    elif hasattr(key, "secret_bytes"):
        b = key.secret_bytes()
    else:
        raise TypeError(f"key must be a provmark.Key (or 32 bytes), got {type(key).__name__}")
    if len(b) != 32:
        raise ValueError(f"key must be 32 bytes, got {len(b)}")
    return b


@dataclasses.dataclass(frozen=True)
class _Tables:
    """Key-derived tables for one layout: [block_cells, n_bands] each."""

    is_sync: np.ndarray  # bool: the cell carries the sync pattern
    chip: np.ndarray  # float64 +-1: the cell's chip
    bit: np.ndarray  # int64: coded bit index of a payload cell (-1 for sync cells)
    n_coded: int


_TABLE_CACHE: dict[tuple[bytes, Layout, int], _Tables] = {}


def _tables(kb: bytes, layout: Layout, n_coded: int) -> _Tables:
    ck = (kb, layout, n_coded)
    t = _TABLE_CACHE.get(ck)
    if t is not None:
        return t
    c = _core_mod()
    T, B = layout.block_cells, layout.n_bands()
    n = T * B
    # Sync cells: a keyed permutation of the cells; the first sync_fraction of it is sync. Done per band so
    # every band (and so every rate, which drops high bands) keeps the same sync share.
    is_sync = np.zeros((T, B), dtype=bool)
    n_sync_per_band = round(layout.sync_fraction * T)
    perm_all = np.asarray(c.random_permutation(kb, c.Stream.AUDIO_SYNC, T * B), dtype=np.int64)
    for b in range(B):
        order = np.argsort(perm_all[b * T : (b + 1) * T], kind="stable")
        is_sync[order[:n_sync_per_band], b] = True
    chip = np.asarray(c.random_signs(kb, c.Stream.AUDIO_PAYLOAD, n), dtype=np.float64).reshape(T, B)
    # Payload cells -> coded bits: interleave low-to-high band so every rate spreads each bit over the
    # whole block; a keyed permutation of the coded bits is repeated round robin.
    bit = np.full((T, B), -1, dtype=np.int64)
    data_cells = [(t_, b_) for b_ in range(B) for t_ in range(T) if not is_sync[t_, b_]]
    bit_perm = np.asarray(c.random_permutation(kb, c.Stream.AUDIO_PERMUTE, n_coded), dtype=np.int64)
    cell_perm = np.asarray(c.random_permutation(kb, c.Stream.AUDIO_BINS, len(data_cells)), dtype=np.int64)
    # Cells are ordered by band (low first); within a band range they are shuffled by cell_perm restricted
    # to blocks of n_coded so that any prefix of bands holds every coded bit about equally often.
    order = np.arange(len(data_cells))
    for start in range(0, len(data_cells), n_coded):
        seg = order[start : start + n_coded]
        seg_keys = cell_perm[seg]
        order[start : start + n_coded] = seg[np.argsort(seg_keys, kind="stable")]
    for i, ci in enumerate(order):
        t_, b_ = data_cells[ci]
        bit[t_, b_] = bit_perm[i % n_coded]
    t = _Tables(is_sync=is_sync, chip=chip, bit=bit, n_coded=n_coded)
    if len(_TABLE_CACHE) > 64:
        _TABLE_CACHE.clear()
    _TABLE_CACHE[ck] = t
    return t


def _cell_signs(tables: _Tables, coded: np.ndarray) -> np.ndarray:
    """Patchwork sign per cell of a block, [block_cells, n_bands] float64 +-1."""
    s = tables.chip.copy()
    data = ~tables.is_sync
    s[data] *= 2.0 * coded[tables.bit[data]].astype(np.float64) - 1.0
    return s


# ----------------------------------------------------------------------------------------------------------
# Embedding core (numpy reference; see docs/audio.md for its speed).
# ----------------------------------------------------------------------------------------------------------
def _sine_window(n: int) -> np.ndarray:
    """sqrt of the periodic Hann window: w[i]**2 + w[i + n/2]**2 == 1, so analysis * synthesis is COLA."""
    return np.sin(np.pi * (np.arange(n) + 0.5) / n)


def _gain_table(tables: _Tables, coded: np.ndarray, layout: Layout, rate: int, strength: float) -> np.ndarray:
    """Per cell-time index, the complex-bin gain minus one: [block_cells, N/2 + 1] float64."""
    n = frame_length(rate, layout)
    nb = layout.bands_for_rate(rate)
    edges = layout.band_edges_bins()
    signs = _cell_signs(tables, coded)  # [T, B]
    delta = layout.delta_db * strength
    g = np.zeros((layout.block_cells, n // 2 + 1))
    for b in range(nb):
        g[:, edges[b] : edges[b + 1]] = (10.0 ** (delta * signs[:, b : b + 1] / 20.0)) - 1.0
    return g


def _embed_frames(
    xp: np.ndarray, k0: int, nframes: int, gains: np.ndarray, layout: Layout, win: np.ndarray
) -> np.ndarray:
    """Watermark signal of frames k0 .. k0+nframes-1 (frame k covers xp[(k-k0)*H : (k-k0)*H + N]).

    xp: [C, (nframes + 1) * H] samples starting at frame k0's first sample. Returns [C, (nframes + 1) * H],
    the overlap-added delta of those frames (its first and last hop lack the neighbouring frames' share).
    """
    c, _ = xp.shape
    n = win.shape[0]
    h = n // 2
    blocks = xp[:, : (nframes + 1) * h].reshape(c, nframes + 1, h)
    frames = np.concatenate([blocks[:, :-1], blocks[:, 1:]], axis=2)  # [C, K, N]
    spec = np.fft.rfft(frames * win, axis=2)
    tidx = (np.arange(k0, k0 + nframes) // layout.cell_hops) % layout.block_cells
    spec *= gains[tidx][None]
    d = np.fft.irfft(spec, n=n, axis=2) * win  # [C, K, N]
    out = np.zeros((c, nframes + 1, h))
    out[:, :-1] += d[:, :, :h]
    out[:, 1:] += d[:, :, h:]
    return out.reshape(c, -1)


class _EmbedState:
    """Frame-by-frame embedder shared by embed() and StreamEmbedder (so both give identical output).

    Frame k covers samples [k H, k H + N), k = -1, 0, 1, ...; sample block [j H, (j+1) H) is final once
    frames j-1 and j are done, i.e. when the input reaches (j + 2) H: the latency is one hop (20 ms).
    """

    _CHUNK_FRAMES = 1024

    def __init__(
        self, rate: int, channels: int, coded: np.ndarray, kb: bytes, strength: float, layout: Layout = DEFAULT_LAYOUT
    ) -> None:
        self.layout = layout
        self.n = frame_length(rate, layout)
        self.h = self.n // 2
        tables = _tables(kb, layout, len(coded))
        self.gains = _gain_table(tables, coded, layout, rate, strength)
        self.win = _sine_window(self.n)
        self.k_next = -1
        self.buf = np.zeros((channels, self.h))  # input from sample k_next * H (starts with H zeros)
        self.acc = np.zeros((channels, self.h))  # second half of the last frame's delta
        self.skip = self.h  # leading output samples that belong to negative time
        self.total_in = 0

    def _run(self, nframes: int) -> np.ndarray:
        h = self.h
        out = []
        done = 0
        while done < nframes:
            nf = min(self._CHUNK_FRAMES, nframes - done)
            seg = self.buf[:, done * h : (done + nf + 1) * h]
            d = _embed_frames(seg, self.k_next, nf, self.gains, self.layout, self.win)
            d[:, :h] += self.acc
            self.acc = d[:, nf * h :].copy()
            out.append(seg[:, : nf * h] + d[:, : nf * h])
            self.k_next += nf
            done += nf
        self.buf = self.buf[:, done * h :]
        y = np.concatenate(out, axis=1) if out else np.zeros((self.buf.shape[0], 0))
        if self.skip:
            k = min(self.skip, y.shape[1])
            y = y[:, k:]
            self.skip -= k
        return y

    def push(self, x: np.ndarray) -> np.ndarray:
        self.buf = np.concatenate([self.buf, x], axis=1)
        self.total_in += x.shape[1]
        nframes = max(0, (self.buf.shape[1] - self.h) // self.h)
        return self._run(nframes)

    def flush(self) -> np.ndarray:
        # frames up to the one starting at the last real sample's hop: pad with zeros like a longer input
        h = self.h
        real_end = self.total_in + h  # position in "buffer coordinates" measured from sample -H
        emitted_end = (self.k_next + 1) * h  # buffer coordinate where self.buf starts
        remaining = real_end - emitted_end  # real samples still in self.buf
        if remaining <= 0:
            return np.zeros((self.buf.shape[0], 0))
        need_frames = -(-remaining // h)
        pad = (need_frames + 1) * h - self.buf.shape[1]
        if pad > 0:
            self.buf = np.concatenate([self.buf, np.zeros((self.buf.shape[0], pad))], axis=1)
        y = self._run(need_frames)
        return y[:, : remaining - max(0, self.skip)] if y.shape[1] > remaining else y


def _embed_array(
    x: np.ndarray, rate: int, coded: np.ndarray, kb: bytes, strength: float, layout: Layout = DEFAULT_LAYOUT
) -> np.ndarray:
    """x: [C, n] float64 -> marked [C, n] float64 (not clipped)."""
    st = _EmbedState(rate, x.shape[0], coded, kb, strength, layout)
    y = st.push(x)
    y2 = st.flush()
    out = np.concatenate([y, y2], axis=1)
    return out[:, : x.shape[1]]


# ----------------------------------------------------------------------------------------------------------
# Detection core.
# ----------------------------------------------------------------------------------------------------------
def _power_frames(x: np.ndarray, rate: int, layout: Layout, chunk: int = 4096) -> np.ndarray:
    """Band energies of frames j (samples [jH, jH+N), Hann window), summed over channels.

    x: [n] or [C, n]. Returns [n_frames, n_bands_for_rate] float64. Summing powers (not mixing samples)
    keeps the mark of every channel: the embedder scales each channel's bins by the same gain, so the
    power sum carries the gain squared whatever the phase relation between channels (a mono mix would
    comb-filter two channels that differ by a delay).
    """
    if x.ndim == 2:
        out = _power_frames(x[0], rate, layout, chunk)
        for c in range(1, x.shape[0]):
            out += _power_frames(x[c], rate, layout, chunk)
        return out
    mono = x
    n = frame_length(rate, layout)
    h = n // 2
    nb = layout.bands_for_rate(rate)
    edges = layout.band_edges_bins()[: nb + 1]
    m = mono.shape[0]
    nfr = (m - n) // h + 1 if m >= n else 0
    out = np.zeros((nfr, nb))
    if nfr == 0:
        return out
    win = np.hanning(n + 1)[:n]
    hi = int(edges[-1])
    for s in range(0, nfr, chunk):
        e = min(nfr, s + chunk)
        blocks = mono[s * h : (e + 1) * h].reshape(e - s + 1, h)
        frames = np.concatenate([blocks[:-1], blocks[1:]], axis=1)
        spec = np.fft.rfft(frames * win, axis=1)[:, :hi]
        p = spec.real**2 + spec.imag**2
        cs = np.concatenate([np.zeros((e - s, 1)), np.cumsum(p, axis=1)], axis=1)
        out[s:e] = cs[:, edges[1:]] - cs[:, edges[:-1]]
    return out


def _resample_speed(e: np.ndarray, speed: float, layout: Layout, rate: int) -> np.ndarray:
    """Band energies as the unmodified signal would show them, for audio played `speed` times faster.

    Time: original hop k sits at observed position k / speed (linear interpolation between hops).
    Frequency is not re-binned: the 6 %-wide bands absorb the shift up to a few percent.
    """
    if speed == 1.0:
        return e
    nfr = e.shape[0]
    pos = np.arange(0.0, (nfr - 1) * speed + 1e-9, 1.0) / speed
    pos = pos[pos <= nfr - 1]
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, nfr - 1)
    f = (pos - i0)[:, None]
    return e[i0] * (1 - f) + e[i1] * f


def _whitened_cells(e: np.ndarray, layout: Layout) -> tuple[np.ndarray, int]:
    """Whitened log cell energies for every cell anchor j: W[j, b], anchors j = first .. first + len - 1.

    Cell (j, b) = log of the energy of band b over hops j .. j + cell_hops - 1. It is whitened by its four
    neighbours (same band one cell before and after, adjacent bands at the same time), then clipped at
    2 robust standard deviations so note onsets and near-silent cells cannot dominate (measured in
    benchmarks/audio_prototype.py: +10-30 % sync z on music, +50 % on speech, against time-only whitening).
    Any transform of W keeps the null distribution of the sync statistic (the chips are independent of W).
    Returns (W, first anchor index).
    """
    ch = layout.cell_hops
    nfr, nb = e.shape
    if nfr < 3 * ch or nb < 2:
        return np.zeros((0, nb)), 0
    floor = _EPS_REL * (float(np.mean(e)) + 1e-30)
    cs = np.concatenate([np.zeros((1, nb)), np.cumsum(e, axis=0)], axis=0)
    cell = cs[ch:] - cs[:-ch]  # anchors 0 .. nfr - ch
    lg = np.log(np.maximum(cell, 0.0) + floor)
    mid = lg[ch:-ch]
    nbr = lg[: -2 * ch] + lg[2 * ch :]
    fn = np.empty_like(mid)
    fn[:, 1:-1] = mid[:, :-2] + mid[:, 2:]
    fn[:, 0] = 2.0 * mid[:, 1]
    fn[:, -1] = 2.0 * mid[:, -2]
    w = mid - 0.25 * (nbr + fn)
    if w.size:
        s = 1.4826 * float(np.median(np.abs(w))) * 2.0
        if s > 0:
            np.clip(w, -s, s, out=w)
    return w, ch


def _fold(w: np.ndarray, first: int, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Sum anchors congruent modulo the block period: F[m, b] (anchor phase m), count[m]."""
    p = layout.block_hops
    nj = w.shape[0]
    f = np.zeros((p, w.shape[1]))
    cnt = np.zeros(p)
    if nj == 0:
        return f, cnt
    phase = (np.arange(nj) + first) % p
    full = nj // p
    # bulk: whole periods, starting at anchor index 0 (phase `first % p`)
    if full:
        blk = w[: full * p].reshape(full, p, -1).sum(axis=0)
        f[phase[:p]] += blk
        cnt[phase[:p]] += full
    rest = nj - full * p
    if rest:
        f[phase[full * p :]] += w[full * p :]
        cnt[phase[full * p :]] += 1
    return f, cnt


def _gather(f: np.ndarray, layout: Layout) -> np.ndarray:
    """G[m, t, b] = F[(m + cell_hops * t) mod P, b]: the block's cells for every block phase m."""
    p = layout.block_hops
    idx = (np.arange(p)[:, None] + layout.cell_hops * np.arange(layout.block_cells)[None, :]) % p
    return f[idx]


def _sync_scores(g: np.ndarray, tables: _Tables, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Sync statistic per phase: z[m] = sum(chip * G) / sqrt(sum G**2) over sync cells, and that norm."""
    mask = (tables.chip * tables.is_sync)[:, :nb]
    corr = np.einsum("mtb,tb->m", g, mask)
    norm = np.sqrt(np.einsum("mtb,tb->m", g * g, tables.is_sync[:, :nb].astype(np.float64)))
    z = np.where(norm > 0, corr / np.maximum(norm, 1e-300), 0.0)
    return z, norm


def _soft_bits(gm: np.ndarray, tables: _Tables, nb: int) -> np.ndarray:
    """Soft value per coded bit at one phase: sum of chip * cell over the bit's cells, / cell RMS."""
    data = ~tables.is_sync[:, :nb]
    v = (tables.chip[:, :nb] * gm)[data]
    bits = tables.bit[:, :nb][data]
    soft = np.bincount(bits, weights=v, minlength=tables.n_coded)
    rms = math.sqrt(float(np.mean(gm[data] ** 2))) if v.size else 0.0
    return soft / rms if rms > 0 else soft


class _PW:
    pass


A = _PW()
for _n in (
    "DEFAULT_LAYOUT",
    "_tables",
    "_embed_array",
    "_power_frames",
    "_whitened_cells",
    "_fold",
    "_gather",
    "_soft_bits",
    "frame_length",
):
    setattr(A, _n, globals()[_n])


def embed_patch(x, rate, delta_db):
    return A._embed_array(x, rate, CODED.astype(np.uint8), KB, delta_db / A.DEFAULT_LAYOUT.delta_db)


def patch_quality(y, rate, t0s, t1s):
    tables = A._tables(KB, A.DEFAULT_LAYOUT, NC)
    nb = A.DEFAULT_LAYOUT.bands_for_rate(rate)
    h = A.frame_length(rate) // 2
    e = A._power_frames(y[:, int(t0s * rate) // h * h : int(t1s * rate)], rate, A.DEFAULT_LAYOUT)
    w, first = A._whitened_cells(e, A.DEFAULT_LAYOUT)
    f, _ = A._fold(w, first + (int(t0s * rate) // h), A.DEFAULT_LAYOUT)
    g = A._gather(f, A.DEFAULT_LAYOUT)
    soft = A._soft_bits(g[0], tables, nb)
    q = soft * (2 * CODED - 1)
    payload, _ = _core.ecc_decode(soft.astype(np.float32), 64)
    return float(q.mean() / (q.std() + 1e-12)), payload == PAYLOAD.data


ATTACKS = {
    "clean": lambda v, sr: v,
    "mp3_64": lambda v, sr: ffmpeg_roundtrip(v, sr, ["-b:a", "64k"], "mp3"),
    "aac_64": lambda v, sr: ffmpeg_roundtrip(v, sr, ["-c:a", "aac", "-b:a", "64k"], "m4a"),
    "mp3_32": lambda v, sr: ffmpeg_roundtrip(v, sr, ["-b:a", "32k"], "mp3"),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracks", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--window", type=float, default=10)
    ap.add_argument("--configs", default="patch:1.0,stdm:0.6:0.7:4")
    args = ap.parse_args()
    tracks = music_tracks()[: args.tracks] + speech_tracks(2)
    for cfg in args.configs.split(","):
        parts = cfg.split(":")
        tot: dict[str, list] = {}
        snrs = []
        for _name, x, sr in tracks:
            x = x[:, : int(args.seconds * sr)].astype(np.float64)
            if parts[0] == "patch":
                y = embed_patch(x, sr, float(parts[1]))
            else:
                step, alpha, L = float(parts[1]), float(parts[2]), int(parts[3])
                gamma = float(parts[4]) if len(parts) > 4 else 0.0
                passes = int(parts[5]) if len(parts) > 5 else 2
                y, lay, edges = embed_stdm(x, sr, step, alpha, L, gamma=gamma, passes=passes)
            snrs.append(snr_db(x, y))
            for an, att in ATTACKS.items():
                if an not in os.environ.get("PM_ATTACKS", ",".join(ATTACKS)).split(","):
                    continue
                ya = att(y.astype(np.float32), sr)[:, : y.shape[1]].astype(np.float64)
                for w0 in np.arange(0, args.seconds - args.window + 1e-9, args.window / 2):
                    if parts[0] == "patch":
                        q, ok = patch_quality(ya, sr, w0, w0 + args.window)
                    else:
                        t0 = int(w0 * 25)  # time cells of 40 ms
                        q, ok = soft_quality(ya, sr, lay, edges, step, t0, t0 + int(args.window * 25))
                    tot.setdefault(an, []).append((q, ok))
        line = [f"{cfg:22s} snr med {np.median(snrs):.1f} min {np.min(snrs):.1f}"]
        for an, v in tot.items():
            qs = np.array([a for a, _ in v])
            oks = np.array([b for _, b in v])
            line.append(f"{an} q={np.median(qs):.2f} ok={oks.mean() * 100:.0f}%")
        print(" | ".join(line), flush=True)


if __name__ == "__main__":
    main()
