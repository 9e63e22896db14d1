"""CUDA audio kernels (csrc/cuda/audio_cuda.cu) and provmark.gpu_audio against the CPU core.

Three parts:
- host threads (runs where g++ with C++20 is found): the kernel source itself, compiled for the host against a
  small emulation of the CUDA runtime (blocks one after another, each with blockDim real threads and a barrier
  for __syncthreads, __shared__ as statics, launches rewritten to a function call), against the CPU core.
- emulated (runs everywhere): the ``_core.cuda_audio_*`` entry points are replaced by numpy transcriptions of
  the kernels' algorithms (direct DFT restricted to the used bins with the same twiddle indexing, noise floors
  by exact ranks, fold in row order), device pointers resolved to host arrays through
  ``__cuda_array_interface__``; checks gpu_audio's orchestration (layouts, strides, padding, speeds x clips)
  and that those algorithms equal the CPU core's (FFT-based) results on music-like signals.
- marker ``cuda`` (skipped without a CUDA build, a device and torch with CUDA): the real kernels against
  ``_core.audio_analysis`` / ``audio_projections`` / ``audio_fold`` and the CPU detector's candidates.
"""

from __future__ import annotations

import ctypes
import dataclasses
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import provmark as pm
from cuda_host import RUNTIME_SHIM, host_launches
from provmark import _core, audio, gpu, gpu_audio
from test_cuda_emulated import Emu, _owner

RATE = 44100
CSRC = Path(__file__).resolve().parents[1] / "csrc"


def music(rng: np.random.Generator, seconds: float, channels: int = 2, rate: int = RATE) -> np.ndarray:
    """A music-like test signal: notes of harmonic tones with attack / decay envelopes, a little noise."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    y = np.zeros((channels, n))
    note_len = int(0.25 * rate)
    for start in range(0, n, note_len):
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        seg = t[start : start + note_len] - t[start]
        env = np.minimum(seg / 0.01, 1.0) * np.exp(-seg * rng.uniform(2, 8))
        for c in range(channels):
            tone = sum(
                rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * k * f0 * seg + rng.uniform(0, 6)) for k in range(1, 7)
            )
            y[c, start : start + note_len] += env * tone
    y += 0.003 * rng.standard_normal(y.shape)
    return 0.3 * y / np.abs(y).max()


# ---- numpy transcriptions of the kernels ----------------------------------------------------------------------
def _view(ptr: int, shape: tuple[int, ...], strides_el: tuple[int, ...], dtype: Any) -> np.ndarray:
    base, off = _owner(ptr)
    dt = np.dtype(dtype)
    return np.ndarray(shape, dt, buffer=base, offset=off, strides=tuple(s * dt.itemsize for s in strides_el))


def _dense(ptr: int, shape: tuple[int, ...]) -> np.ndarray:
    base, off = _owner(ptr)
    return np.ndarray(shape, np.float64, buffer=base, offset=off)


def _load(ptr: int, shape: tuple[int, ...], strides_el: tuple[int, ...], dtype: str) -> np.ndarray:
    """Samples as load_sample reads them: float64, int16 / 32768."""
    v = _view(ptr, shape, strides_el, dtype).astype(np.float64)
    return v / 32768.0 if dtype == "int16" else v


def _store(dst: np.ndarray, v: np.ndarray, clip: bool) -> None:
    """store_sample: int16 rounded half to even and saturated; floats clipped when `clip`, then cast."""
    if dst.dtype == np.int16:
        dst[...] = np.clip(np.round(v * 32768.0), -32768, 32767).astype(np.int16)
    else:
        dst[...] = (np.clip(v, -1.0, 1.0) if clip else v).astype(dst.dtype)


class AudioDevice:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def analysis(self, x, dtype, batch, channels, nsamples, sb, sc, st, hop, top, cs, stream=0) -> None:
        self.calls.append("analysis")
        xs = _load(x, (batch, channels, nsamples), (sb, sc, st), dtype)
        n = 2 * hop
        nfr = (nsamples - n) // hop + 1
        i = np.arange(n)
        win = 0.5 - 0.5 * np.cos(2.0 * np.pi * i / n)
        m = (np.arange(top)[:, None] * i[None, :]) % n  # the kernel's twiddle index k i mod n
        ct, stab = np.cos(2.0 * np.pi * np.arange(n) / n)[m], np.sin(2.0 * np.pi * np.arange(n) / n)[m]
        out = _dense(cs, (batch, nfr, top + 1))
        idx = np.arange(nfr)[:, None] * hop + i[None, :]
        for b in range(batch):
            pw = np.zeros((nfr, top))
            for c in range(channels):
                fr = xs[b, c][idx] * win
                re, im = fr @ ct.T, -(fr @ stab.T)
                pw += re * re + im * im
            out[b, :, 0] = 0.0
            out[b, :, 1:] = np.cumsum(pw, axis=1)

    def projections(
        self, cs, batch, nfr, top, edges, chips, ng, cell_hops, log_floor, speeds, w0, w1, rows, p, w, stream=0,
        per_clip=False,
    ) -> None:  # fmt: skip
        self.calls.append("projections")
        speeds = np.asarray(speeds, dtype=np.float64)
        S, L = speeds.shape[-1], chips.shape[1]
        assert speeds.ndim == (2 if per_clip else 1) and (not per_clip or speeds.shape[0] == batch)
        nb = ng * L
        csv = _dense(cs, (batch, nfr, top + 1))
        po, wo = _dense(p, (batch, S, rows, ng)), _dense(w, (batch, S, rows, ng))
        po[...] = 0.0
        wo[...] = 0.0
        for b in range(batch):
            for s, speed in enumerate(speeds[b] if per_clip else speeds):
                c = csv[b]
                if speed == 1.0:
                    e = c[:, edges[1:]] - c[:, edges[:-1]]
                else:
                    pos = np.minimum(edges * speed, top - 1e-9)
                    i0 = np.floor(pos).astype(np.int64)
                    f = pos - i0
                    ci = c[:, i0] * (1 - f) + c[:, i0 + 1] * f
                    e0 = ci[:, 1:] - ci[:, :-1]
                    ne = int(np.ceil((nfr - 1.0) * speed + 1e-9))
                    tpos = np.arange(ne) / speed
                    j0 = np.floor(tpos).astype(np.int64)
                    j1 = np.minimum(j0 + 1, nfr - 1)
                    ft = (tpos - j0)[:, None]
                    e = e0[j0] * (1 - ft) + e0[j1] * ft
                nj = e.shape[0] - cell_hops + 1
                if nj <= 0:
                    continue
                cum = np.concatenate([np.zeros((1, nb)), np.cumsum(e, axis=0)])
                v = np.log(np.maximum(cum[cell_hops:] - cum[:-cell_hops], 0.0) + log_floor)
                if nj >= 20:  # the kernel's order statistics (exact ranks), then numpy's linear interpolation
                    idx = (nj - 1) * 0.1
                    lo = int(np.floor(idx))
                    hi = min(lo + 1, nj - 1)
                    srt = np.sort(v, axis=0)  # rank r (values below + equal values before) = sorted position r
                    va, vb = srt[lo], srt[hi]
                    t = idx - lo
                    floor = np.where(t >= 0.5, vb - (vb - va) * (1 - t), va + (vb - va) * t)
                else:
                    floor = v.min(axis=0)
                vg = v.reshape(nj, ng, L)
                po[b, s, :nj] = np.einsum("jgl,gl->jg", vg, chips[:ng]) / L
                snr = (v - floor[None, :]).reshape(nj, ng, L).min(axis=2)
                wo[b, s, :nj] = np.clip((snr - w0) / w1, 0.0, 1.0)

    def fold(self, p, w, count, rows, nj, ng, dither, sign, step, cell_hops, fc, fs, z, stream=0) -> None:
        self.calls.append("fold")
        T = dither.shape[0]
        P = T * cell_hops
        pv, wv = _dense(p, (count, rows, ng)), _dense(w, (count, rows, ng))
        fco, fso, zo = _dense(fc, (count, P, ng)), _dense(fs, (count, P, ng)), _dense(z, (count, P))
        d = 2.0 * np.pi * dither[:, :ng]
        sg = sign[:, :ng]
        cd, sd = np.cos(d) * sg, np.sin(d) * sg
        r = (np.arange(P)[:, None] + cell_hops * np.arange(T)[None, :]) % P  # [P, T] rows read at each phase
        for c in range(count):
            n = int(nj[c])
            ang = 2.0 * np.pi * pv[c, :n] / step
            tc, ts = wv[c, :n] * np.cos(ang), wv[c, :n] * np.sin(ang)
            k = -(-n // P)  # rows j = m, m + P, ... summed in increasing j (zero rows past n add nothing)
            pad = np.zeros((k * P - n, ng))
            fco[c] = np.concatenate([tc, pad]).reshape(k, P, ng).sum(axis=0)
            fso[c] = np.concatenate([ts, pad]).reshape(k, P, ng).sum(axis=0)
            a, bb = fco[c][r], fso[c][r]  # [P, T, ng]
            score = np.sum(a * cd + bb * sd, axis=(1, 2))
            var = 0.5 * np.sum((a * a + bb * bb) * (sg != 0), axis=(1, 2))
            zo[c] = np.where(var > 0, score / np.sqrt(np.maximum(var, 1e-300)), 0.0)

    def embed(self, x, dtype, batch, channels, nsamples, sb, sc, st, out, out_dtype, osb, osc, ost, hop, cell_hops,
              edges, chips, dither, bits, ng, step, gamma, cap, alpha, snr_db, local_snr_db, leak, floor,
              stream=0, t0=0, bucket=0, acc=0, whole_cells=False) -> None:  # fmt: skip
        """The embedding kernels: direct DFT over the bands' bins, moves, budget scan, gains + inverse + OLA;
        with a carry (bucket, acc: device state of a stream) from cell t0, whole cells only when whole_cells."""
        self.calls.append("embed")
        carry = bucket != 0
        assert carry == (acc != 0) and (carry or (t0 == 0 and not whole_cells))
        xs = _load(x, (batch, channels, nsamples), (sb, sc, st), dtype)
        n, H, ch, L = 2 * hop, hop, cell_hops, chips.shape[1]
        nb, T = ng * L, dither.shape[0]
        ncells = (nsamples - H) // (ch * H) if whole_cells else -(-nsamples // (ch * H))
        assert ncells >= 1
        nout = ncells * ch * H if whole_cells else nsamples
        os_ = _view(out, (batch, channels, nout), (osb, osc, ost), out_dtype)
        bst = _dense(bucket, (batch,)) if carry else None
        ast = _dense(acc, (batch, channels, H)) if carry else None
        nfr = ncells * ch
        i = np.arange(n)
        hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * i / n)
        sine = np.sin(np.pi * (i + 0.5) / n)
        ctab, stab = np.cos(2.0 * np.pi * i / n), np.sin(2.0 * np.pi * i / n)
        lo, hi = int(edges[0]), int(edges[-1])
        k = np.arange(lo, hi)
        fwd = (k[:, None] * i[None, :]) % n  # [nk, n]
        band_of = np.searchsorted(edges, k, side="right") - 1
        budget = dataclasses.replace(audio.DEFAULT_LAYOUT, snr_db=snr_db, local_snr_db=local_snr_db, bucket_leak=leak)
        log_floor = floor * n * ch
        res = np.empty((batch, channels, nout))
        for b in range(batch):
            xp = np.zeros((channels, max(ncells * ch * H + H, nsamples)))
            xp[:, :nsamples] = xs[b]
            fr = xp[:, np.arange(nfr)[:, None] * H + i[None, :]]  # [C, nfr, n]
            fw = fr * hann
            pw = (fw @ ctab[fwd].T) ** 2 + (fw @ stab[fwd].T) ** 2  # [C, nfr, nk]
            band = np.stack([pw[..., edges[q] - lo : edges[q + 1] - lo].sum(-1) for q in range(nb)], axis=-1)
            ce = band.sum(axis=0).reshape(ncells, ch, nb).sum(axis=1)
            span = ch * H
            etot = (xp[:, : ncells * span].reshape(channels, ncells, span) ** 2).sum(axis=(0, 2))
            v = np.log(ce + log_floor).reshape(ncells, ng, L)
            tb = (t0 + np.arange(ncells)) % T
            p = np.einsum("cgl,gl->cg", v, chips[:ng]) / L
            off = (dither[tb, :ng] + 0.5 * bits[tb, :ng]) * step
            dp = alpha * (np.round((p - off) / step) * step + off - p)
            wgt = np.exp(-gamma * (v - v.mean(axis=2, keepdims=True)))
            wgt *= L / wgt.sum(axis=2, keepdims=True)
            dv = np.clip(chips[None, :ng] * wgt * dp[..., None], -cap, cap).reshape(ncells, nb)
            gb = np.expm1(0.5 * dv)  # [ncells, nb] wanted gains; the budget scales each cell's change
            fsw = fr * sine
            g = np.repeat(gb[:, band_of], ch, axis=0)  # [nfr, nk]
            yr, yi = g * (fsw @ ctab[fwd].T), g * -(fsw @ stab[fwd].T)
            inv = (k[:, None] * i[None, :]) % n  # [nk, n] index k m mod n
            d = sine * (2.0 * (yr @ ctab[inv] - yi @ stab[inv]) / n)  # [C, nfr, n]
            cell = np.zeros((channels, ncells, span + H))
            for f in range(nfr):
                cell[:, f // ch, (f % ch) * H : (f % ch) * H + n] += d[:, f]
            dist = (cell**2).sum(axis=(0, 2))
            scale, bk = audio._budget_scale(dist, etot, float(bst[b]) if carry and t0 > 0 else 0.0, budget)
            if carry:
                bst[b] = bk
            ola = np.zeros((channels, (ncells + 1) * span))
            for t in range(ncells):
                ola[:, t * span : t * span + span + H] += scale[t] * cell[:, t]
            if carry and t0 > 0:
                ola[:, :H] += ast[b]
            res[b] = xs[b, :, :nout] + ola[:, :nout]
            if carry:
                ast[b] = ola[:, nfr * H : nfr * H + H]
        _store(os_, res, True)

    def copy(self, x, dtype, batch, channels, nsamples, sb, sc, st, out, out_dtype, osb, osc, ost, stream=0) -> None:
        self.calls.append("copy")
        v = _load(x, (batch, channels, nsamples), (sb, sc, st), dtype)
        _store(_view(out, (batch, channels, nsamples), (osb, osc, ost), out_dtype), v, False)

    def copy_to_host(self, src: int, dst: np.ndarray, stream: int = 0) -> None:
        base, off = _owner(src)  # dst.nbytes bytes, as cudaMemcpy copies them
        dst.reshape(-1).view(np.uint8)[:] = base[off : off + dst.nbytes]


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> AudioDevice:
    dev = AudioDevice()
    monkeypatch.setattr(gpu, "_device_state", lambda: (1, None))
    for name, fn in (
        ("cuda_audio_analysis", dev.analysis),
        ("cuda_audio_projections", dev.projections),
        ("cuda_audio_fold", dev.fold),
        ("cuda_audio_embed", dev.embed),
        ("cuda_audio_copy", dev.copy),
        ("cuda_copy_to_host", dev.copy_to_host),
    ):
        monkeypatch.setattr(_core, name, fn)
    monkeypatch.setattr(gpu, "_empty", lambda like, shape, dtype: Emu(np.zeros(shape, dtype)))
    return dev


def cpu_scores(x: np.ndarray, key: Any, speeds: tuple[float, ...]) -> tuple[np.ndarray, list[int]]:
    """z [S, P] of one clip through the CPU core, as audio's detector computes it."""
    kb = audio._key_bytes(key)
    lay = audio.DEFAULT_LAYOUT
    tables = audio._tables(kb, lay, int(_core.ecc_coded_length(audio.PAYLOAD_BITS)))
    ng = lay.groups_for_rate(RATE)
    an = audio._NativeAnalysis(np.ascontiguousarray(x, dtype=np.float64), RATE, lay, max_scale=max(speeds) * 1.01)
    zs, rows = [], []
    for s in speeds:
        pw = an.projections(s, ng, tables)
        if pw is None:
            zs.append(np.zeros(lay.block_hops))
            rows.append(0)
            continue
        zs.append(an.scores(pw[0], pw[1], tables, ng)[0])
        rows.append(pw[0].shape[0])
    return np.array(zs), rows


SPEEDS = (0.98, 0.996, 1.0, 1.006, 1.02)


def test_emulated_scores_match_cpu(emu: AudioDevice) -> None:
    rng = np.random.default_rng(7)
    key = pm.Key.from_bytes(bytes([1]) * 32)
    clips = np.stack([music(rng, 8.0), music(rng, 8.0)])
    clips[1] = audio.embed(clips[1], RATE, 0x1234, key)  # one marked clip
    # a channels-last batch [B, n, C] seen as [B, C, n]: element strides (n C, 1, C)
    dev = Emu(np.ascontiguousarray(clips.transpose(0, 2, 1)).astype(np.float32))
    dev.a = dev.a.transpose(0, 2, 1)
    r = gpu_audio.scores(dev, RATE, key, speeds=SPEEDS)
    assert emu.calls == ["analysis", "projections", "fold"]
    assert r.z.shape == (2, len(SPEEDS), audio.DEFAULT_LAYOUT.block_hops)
    for b in range(2):
        z_cpu, rows = cpu_scores(clips[b].astype(np.float32), key, SPEEDS)
        assert list(r.rows) == rows
        np.testing.assert_allclose(r.z[b], z_cpu, rtol=0, atol=1e-6)
    # the marked clip stands out at speed 1, phase 0 (embedding starts a block at sample 0); the other does not
    s1 = SPEEDS.index(1.0)
    assert int(np.argmax(r.z[1, s1])) == 0 and r.z[1, s1, 0] > r.z[0].max() + 1
    assert r.terms(1, s1, 0).shape == (audio.DEFAULT_LAYOUT.block_cells, r.ng)


def test_emulated_analysis_matches_cpu(emu: AudioDevice) -> None:
    rng = np.random.default_rng(3)
    for channels in (1, 2, 3):
        x = music(rng, 1.5, channels)
        cs = gpu_audio.analysis(Emu(x.copy()), RATE).a  # [C, n]: one clip
        ref = _core.audio_analysis(x, audio.hop_length(RATE), cs.shape[2] - 1)
        assert cs.shape == (1, *ref.shape)
        np.testing.assert_allclose(cs[0], ref, rtol=1e-10, atol=1e-12 * ref.max())


def test_emulated_embed_matches_cpu(emu: AudioDevice) -> None:
    rng = np.random.default_rng(2)
    key = pm.Key.from_bytes(bytes([2]) * 32)
    n = int(3.3 * RATE) + 17  # not a whole number of cells: the zero-padded tail
    clips = np.stack([music(rng, n / RATE) for _ in range(2)])[..., :n]
    ref = np.stack([audio.embed(c, RATE, 0xABCDEF, key) for c in clips])
    for dtype in (np.float64, np.float32):
        x = Emu(clips.astype(dtype))
        y = gpu_audio.embed(x, RATE, 0xABCDEF, key)
        assert y.a.dtype == dtype and y.a.shape == clips.shape
        want = ref if dtype == np.float64 else np.stack([audio.embed(c, RATE, 0xABCDEF, key) for c in x.a])
        np.testing.assert_allclose(y.a, want, rtol=0, atol=1e-12 if dtype == np.float64 else 1e-7)
        assert np.abs(y.a - x.a).max() > 1e-4  # it did mark
    # in place on a channels-last view, one clip [C, n]
    buf = np.ascontiguousarray(clips[0].T)
    v = Emu(buf)
    v.a = buf.T
    assert gpu_audio.embed(v, RATE, 0xABCDEF, key, out=v) is v
    np.testing.assert_allclose(buf.T, ref[0], rtol=0, atol=1e-12)
    assert emu.calls.count("embed") == 3


def test_argument_errors(emu: AudioDevice) -> None:
    key = pm.Key.generate()
    x = Emu(np.zeros((2, 44100), np.float32))
    with pytest.raises(TypeError, match="CUDA array"):
        gpu_audio.scores(np.zeros((2, 44100), np.float32), RATE, key)
    with pytest.raises(TypeError, match="float32 or float64"):
        gpu_audio.scores(Emu(np.zeros((2, 44100), np.uint16)), RATE, key)
    with pytest.raises(ValueError, match="channels"):
        gpu_audio.scores(Emu(np.zeros((44100, 2), np.float32)), RATE, key)
    with pytest.raises(ValueError, match="speeds"):
        gpu_audio.scores(x, RATE, key, speeds=(3.0,))
    with pytest.raises(ValueError, match="clips x speeds"):
        gpu_audio.scores(Emu(np.broadcast_to(np.zeros((1, 1, 2205), np.float32), (4000, 1, 2205))), RATE, key)
    with pytest.raises(ValueError, match="sample_rate"):
        gpu_audio.scores(x, 44000, key)
    with pytest.raises(ValueError, match="at least"):
        gpu_audio.scores(Emu(np.zeros((2, 1000), np.float32)), RATE, key)
    with pytest.raises(ValueError, match="at least one frame"):
        gpu_audio.embed(Emu(np.zeros((2, 800), np.float32)), RATE, 1, key)
    with pytest.raises(ValueError, match="at least one frame"):
        gpu_audio.analysis(Emu(np.zeros((1, 881), np.float32)), RATE)
    with pytest.raises(ValueError, match="shape"):
        gpu_audio.embed(x, RATE, 1, key, out=Emu(np.zeros((2, 44000), np.float32)))
    with pytest.raises(ValueError, match="overlaps"):
        gpu_audio.embed(x, RATE, 1, key, out=Emu(x.a[:, ::-1]))
    with pytest.raises(ValueError, match="strength"):
        gpu_audio.embed(x, RATE, 1, key, strength=2.0)


def test_no_device_raises_cuda_error() -> None:
    if gpu.is_available():
        pytest.skip("a CUDA device is present")
    key = pm.Key.generate()
    x = Emu(np.zeros((2, 44100), np.float32))
    with pytest.raises(pm.CudaError):
        gpu_audio.scores(x, RATE, key)
    with pytest.raises(pm.CudaError):
        gpu_audio.detect_batch(x, RATE, key)
    with pytest.raises(pm.CudaError):
        pm.audio.detect(x, RATE, key)
    with pytest.raises(pm.CudaError):
        pm.audio.StreamEmbedder(RATE, 2, 1, key).push(x)
    # the bindings themselves (argument conversion, then the device call): an error, never a crash
    ptr, lay = x.a.ctypes.data, audio.DEFAULT_LAYOUT
    args = (ptr, "float32", 1, 2, 44100, 0, 44100, 1)
    tab = audio._tables(audio._key_bytes(key), lay, int(_core.ecc_coded_length(audio.PAYLOAD_BITS)))
    edges = lay.band_edges()[: 6 * lay.group + 1].astype(np.int32)
    bits = np.zeros(tab.dither.shape, np.int8)
    for call in (
        lambda: _core.cuda_audio_analysis(*args, 441, 138, ptr),
        lambda: _core.cuda_audio_copy(*args, ptr, "int16", 0, 44100, 1),
        lambda: _core.cuda_audio_embed(
            *args,
            ptr,
            "int16",
            0,
            44100,
            1,
            441,
            4,
            edges,
            tab.chips,
            tab.dither,
            bits,
            6,
            0.6,
            1.0,
            0.7,
            1.0,
            30.5,
            24.0,
            0.96,
            1e-10,
        ),
        lambda: _core.cuda_audio_projections(
            ptr, 1, 98, 138, edges, tab.chips, 6, 4, 1e-6, np.ones((1, 1)), 0.0, 0.6, 95, ptr, ptr, 0, per_clip=True
        ),
    ):
        with pytest.raises(pm.CudaError):
            call()
    with pytest.raises(TypeError, match="int16"):
        _core.cuda_audio_copy(ptr, "uint8", 1, 2, 44100, 0, 44100, 1, ptr, "int16", 0, 44100, 1)


def _same_detection(got: Any, want: Any, z_tol: float = 1e-6) -> None:
    """A device detection equals the CPU's: decision, payload, geometry and search counts exactly; the scores
    (sync z, presence segments, p-value) within z_tol (the device DFT sums in another order than the FFT)."""
    assert got.found == want.found and got.payload == want.payload
    assert abs(got.score - want.score) <= z_tol
    assert got.p_value == pytest.approx(want.p_value, rel=1e-4, abs=1e-300)
    g, w = got.details, want.details
    for k in ("speed", "n_tests", "block_s", "confidence"):
        assert g[k] == w[k], k
    assert g["offset_s"] == pytest.approx(w["offset_s"], abs=1e-12)
    assert len(g["segments"]) == len(w["segments"])
    np.testing.assert_allclose(g["segments"], w["segments"], rtol=0, atol=z_tol)


def test_emulated_detect_batch_matches_cpu(emu: AudioDevice, monkeypatch: pytest.MonkeyPatch) -> None:
    """detect_batch = audio.detect per clip: a marked clip (found at speed 1), an unmarked one (every speed and
    all three sub-hop re-analyses), and a marked one cut 0.4 hop off the block grid (found after re-analysis)."""
    rng = np.random.default_rng(21)
    key = pm.Key.from_bytes(bytes([6]) * 32)
    h = audio.hop_length(RATE)
    n = int(8.0 * RATE)
    a = audio.embed(music(rng, 8.0), RATE, 0xFEED, key)
    b = music(rng, 8.0)
    c = audio.embed(music(np.random.default_rng(23), 9.0), RATE, 0xC0DE, key)[:, int(0.6 * RATE) + int(0.4 * h) :]
    c = c[:, :n]
    clips = np.stack([a, b, c])
    want = [audio.detect(x, RATE, key) for x in clips]
    assert want[0].found and not want[1].found and want[2].found  # the three cases this test is about
    assert audio._detect_core(c, RATE, audio._key_bytes(key), audio.SPEEDS_DEFAULT, fpr=1e-6)["best"].shift > 0
    got = gpu_audio.detect_batch(Emu(clips.copy()), RATE, key)
    assert len(got) == 3
    for g, w in zip(got, want, strict=True):
        _same_detection(g, w)
    assert int.from_bytes(got[0].payload, "big") == 0xFEED and int.from_bytes(got[2].payload, "big") == 0xC0DE
    # the unmarked clip was re-analysed at 3 sub-hop shifts: one projections call per shift after the first
    assert emu.calls.count("analysis") >= 4
    # one clip [C, n], float32 channels-last, and the public entry point routing a CUDA array to the device
    x32 = np.ascontiguousarray(c.T).astype(np.float32)
    v = Emu(x32)
    v.a = x32.T
    _same_detection(gpu_audio.detect_batch(v, RATE, key)[0], audio.detect(x32.T, RATE, key))
    _same_detection(pm.audio.detect(Emu(a.copy()), RATE, key), want[0])
    mono = np.ascontiguousarray(a[0])
    _same_detection(pm.audio.detect(Emu(mono.copy()), RATE, key), audio.detect(mono, RATE, key))
    # in slices of 2 clips (the device pass of a long batch): the same answers
    monkeypatch.setattr(gpu_audio, "_DETECT_SLICE", 2)
    for g, w in zip(gpu_audio.detect_batch(Emu(clips.copy()), RATE, key), want, strict=True):
        _same_detection(g, w)
    with pytest.raises(ValueError, match="fpr"):
        gpu_audio.detect_batch(Emu(clips[:1].copy()), RATE, key, fpr=0.0)
    with pytest.raises(ValueError, match="axes"):
        pm.audio.detect(Emu(clips.copy()), RATE, key)


def test_emulated_noise_model_reads_device_spectra(emu: AudioDevice, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last second-chance decoding (audio._noise_model) reads band energies: on the device path they come
    from the clip's device spectra (_DeviceAnalysis.band_energy) and equal the host's, candidate by candidate."""
    rng = np.random.default_rng(27)
    key = pm.Key.from_bytes(bytes([8]) * 32)
    x = music(rng, 6.0)  # unmarked: nothing decodes, so every second-chance pass runs
    seen: dict[str, list[tuple[float, np.ndarray]]] = {}
    real = audio._noise_model

    def spy(an: Any, speed: float, ng: int, tables: Any, layout: Any, **kw: Any) -> Any:
        seen.setdefault("device" if isinstance(an, gpu_audio._DeviceAnalysis) else "host", []).append(
            (speed, an.band_energy(speed))
        )
        return real(an, speed, ng, tables, layout, **kw)

    monkeypatch.setattr(audio, "_noise_model", spy)
    want = audio.detect(x, RATE, key)
    got = gpu_audio.detect_batch(Emu(x[None].copy()), RATE, key)[0]
    _same_detection(got, want)
    assert len(seen["host"]) == len(seen["device"]) >= 1
    for (sh, eh), (sd, ed) in zip(seen["host"], seen["device"], strict=True):
        assert sh == sd and eh.shape == ed.shape
        np.testing.assert_allclose(ed, eh, rtol=1e-9, atol=1e-12 * eh.max())


def test_emulated_echo_pass(emu: AudioDevice) -> None:
    """The echo pass (audio._echo_pass) on the device path reads host copies of the clip and then searches on
    the host: the same detection as audio.detect. The copies follow any sample stride and convert int16."""
    from test_audio import KEY, PAYLOAD_BYTES, _with_echo, music_like

    x = music_like(RATE, 12.0, seed=1)
    y = _with_echo(audio.embed(x, RATE, PAYLOAD_BYTES, KEY), RATE, 0.1, 0.3).astype(np.float32)
    want = audio.detect(y, RATE, KEY)
    assert want.found and want.payload == PAYLOAD_BYTES and "echo" in want.details  # decoded by the echo pass
    got = gpu_audio.detect_batch(Emu(y[None].copy()), RATE, KEY)[0]
    _same_detection(got, want)
    assert got.details["echo"] == want.details["echo"]
    yl = np.ascontiguousarray(y.T)  # channels last: sample stride 2
    v = Emu(yl)
    v.a = yl.T
    np.testing.assert_array_equal(gpu_audio._host_clip(gpu_audio._clips(v, "t"), 0, 1000, 0), y[:, :1000])
    i16 = np.round(y * 32767).astype(np.int16)
    got16 = gpu_audio._host_clip(gpu_audio._clips(Emu(i16[None].copy()), "t"), 0, 500, 0)
    np.testing.assert_array_equal(got16, i16[:, :500] / 32768.0)


def test_emulated_speed_search_matches_cpu(emu: AudioDevice) -> None:
    """speed_search=True (51 speeds, one device call for all): an unmarked clip searches every speed and the
    three sub-hop re-analyses, a marked one stops at speed 1; both as on the CPU."""
    rng = np.random.default_rng(22)
    key = pm.Key.from_bytes(bytes([7]) * 32)
    clips = np.stack([music(rng, 9.0), audio.embed(music(rng, 9.0), RATE, 0xABBA, key)])
    got = gpu_audio.detect_batch(Emu(clips.copy()), RATE, key, speed_search=True)
    for g, x in zip(got, clips, strict=True):
        _same_detection(g, audio.detect(x, RATE, key, speed_search=True))
    assert not got[0].found and got[0].details["n_tests"] >= (len(audio.SPEEDS_SEARCH) + 3) * 480  # re-analysed
    assert got[1].found and got[1].details["speed"] == 1.0


def test_emulated_int16(emu: AudioDevice) -> None:
    """int16 device samples: parsed ('<i2'), marked as audio.embed marks int16 (rounded, saturated), detected."""
    rng = np.random.default_rng(23)
    key = pm.Key.from_bytes(bytes([8]) * 32)
    x = np.round(music(rng, 9.0) * 32767).astype(np.int16)
    assert gpu._cai(Emu(x), "t").dtype == "int16"
    y = gpu_audio.embed(Emu(x.copy()), RATE, 0x1616, key)
    want = audio.embed(x, RATE, 0x1616, key)
    assert y.a.dtype == np.int16
    diff = np.abs(y.a.astype(np.int32) - want.astype(np.int32))
    assert diff.max() <= 1 and np.mean(diff != 0) < 1e-4  # a rounding tie may fall the other way (1e-12 apart)
    assert np.abs(want.astype(np.int32) - x).max() > 10  # it did mark
    # float32 output of int16 input, and int16 output of float64 input
    out = Emu(np.zeros(x.shape, np.float32))
    gpu_audio.embed(Emu(x.copy()), RATE, 0x1616, key, out=out)
    ref = audio.embed(x.astype(np.float64) / 32768.0, RATE, 0x1616, key)
    np.testing.assert_allclose(out.a, ref.astype(np.float32), rtol=0, atol=1e-7)
    out16 = Emu(np.zeros(x.shape, np.int16))
    gpu_audio.embed(Emu(x.astype(np.float64) / 32768.0), RATE, 0x1616, key, out=out16)
    assert np.abs(out16.a.astype(np.int32) - want.astype(np.int32)).max() <= 1
    _same_detection(pm.audio.detect(Emu(want.copy()), RATE, key), audio.detect(want, RATE, key))
    assert pm.audio.detect(Emu(want.copy()), RATE, key).found


def _chunks(rng: np.random.Generator, n: int) -> list[int]:
    """Random chunk lengths from 1 sample to 1 s (log-uniform), 0-length ones included, summing to n."""
    out, used = [], 0
    while used < n:
        k = min(n - used, int(np.exp(rng.uniform(0, np.log(RATE)))))
        out += [k, 0] if rng.random() < 0.1 else [k]
        used += k
    return out


def test_emulated_stream_embedder_matches_embed(emu: AudioDevice) -> None:
    """Device chunks through pm.audio.StreamEmbedder: the same samples as one-shot embed, with the CPU
    StreamEmbedder's latency (the same output count after every push)."""
    rng = np.random.default_rng(24)
    key = pm.Key.from_bytes(bytes([9]) * 32)
    n = int(2.1 * RATE) + 7
    x = music(rng, n / RATE)[:, :n]
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-7), (np.int16, 1)):
        xs = np.round(x * 32767).astype(np.int16) if dtype == np.int16 else x.astype(dtype)
        want = audio.embed(xs, RATE, 0x5157, key)
        dev = pm.audio.StreamEmbedder(RATE, 2, 0x5157, key)
        cpu = pm.audio.StreamEmbedder(RATE, 2, 0x5157, key)
        outs, pos = [], 0
        for k in _chunks(rng, n):
            ch = xs[:, pos : pos + k]
            pos += k
            y = dev.push(Emu(np.asfortranarray(ch) if k % 2 else ch.copy()))  # strided chunks too
            assert isinstance(y, Emu) and y.a.dtype == dtype
            assert y.a.shape[1] == cpu.push(ch.copy()).shape[1]  # the CPU's latency, push for push
            outs.append(y.a)
        last = dev.flush()
        assert last.a.shape[1] == cpu.flush().shape[1]
        got = np.concatenate([*outs, last.a], axis=1)
        assert got.shape == xs.shape
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        assert diff.max() <= tol, (dtype, diff.max())
        assert dev.latency_s == pytest.approx(0.05)
    # mono (n,) chunks give (n,) outputs; the one-shot device embed agrees too
    m = x[0].copy()
    st = gpu_audio.StreamEmbedder(RATE, 1, 0x5157, key)
    parts = [st.push(Emu(m[i : i + 20000].copy())).a for i in range(0, m.size, 20000)] + [st.flush().a]
    assert all(p.ndim == 1 for p in parts)
    one = gpu_audio.embed(Emu(m[None].copy()), RATE, 0x5157, key).a[0]
    np.testing.assert_allclose(np.concatenate(parts), one, rtol=0, atol=1e-12)
    np.testing.assert_allclose(one, audio.embed(m, RATE, 0x5157, key), rtol=0, atol=1e-12)
    # a stream is host or device, not both; bad chunks
    mixed = pm.audio.StreamEmbedder(RATE, 2, 1, key)
    mixed.push(Emu(x[:, :100].copy()))
    with pytest.raises(ValueError, match="CUDA chunks"):
        mixed.push(x[:, :100].copy())
    host_first = pm.audio.StreamEmbedder(RATE, 2, 1, key)
    host_first.push(x[:, :100].copy())
    with pytest.raises(ValueError, match="host chunks"):
        host_first.push(Emu(x[:, :100].copy()))
    with pytest.raises(ValueError, match="channels"):
        gpu_audio.StreamEmbedder(RATE, 2, 1, key).push(Emu(x[:1].copy()))
    with pytest.raises(TypeError, match="int16"):
        gpu_audio.StreamEmbedder(RATE, 2, 1, key).push(Emu(x.astype(np.uint8)))
    done = gpu_audio.StreamEmbedder(RATE, 2, 1, key)
    done.push(Emu(x[:, :5000].copy()))
    done.flush()
    with pytest.raises(RuntimeError):
        done.push(Emu(x[:, :10].copy()))


# ---- the kernel source on host threads ----------------------------------------------------------------------------

HARNESS = r"""#include "cuda/audio_cuda.h"
namespace provmark::image::cuda { int pointer_device(const void*) { return 0; } }
using namespace provmark::audio;
extern "C" {
int emu_analysis(const void* x, int f32, long long B, long long C, long long n, long long sb, long long sc,
                 long long st, int hop, int top, double* cs) {
  cuda::ClipView v; v.data = x; v.type = f32 ? SampleType::kF32 : SampleType::kF64; v.batch = B; v.channels = C;
  v.nsamples = n; v.stride_b = sb; v.stride_c = sc; v.stride_t = st;
  cuda::analysis(v, hop, top, cs, 0); return 0;
}
int emu_projections(const double* cs, long long B, long long nfr, int top, const int32_t* edges, const double* chips,
                    int ng, int L, int cell_hops, double log_floor, const double* speeds, int S, double w0, double w1,
                    long long rows, double* p, double* w) {
  cuda::ProjectBatch b; b.cs = cs; b.batch = B; b.nfr = nfr; b.top = top; b.edges = edges; b.ng = ng; b.group = L;
  b.chips = chips; b.cell_hops = cell_hops; b.log_floor = log_floor; b.speeds = speeds; b.nspeeds = S; b.w0 = w0;
  b.w1 = w1; b.rows = rows; b.p = p; b.w = w;
  cuda::projections(b, 0); return 0;
}
int emu_fold(const double* p, const double* w, long long count, long long rows, const long long* nj, int ng, int G,
             int T, int cell_hops, double step, const double* dither, const double* sign, double* fc, double* fs,
             double* z) {
  cuda::FoldBatch b; b.p = p; b.w = w; b.count = count; b.rows = rows; b.nj = nj; b.ng = ng; b.n_groups = G;
  b.block_cells = T; b.cell_hops = cell_hops; b.step = step; b.dither = dither; b.sign = sign; b.fc = fc; b.fs = fs;
  b.z = z;
  cuda::fold(b, 0); return 0;
}
int emu_embed(const double* x, float* out, long long B, long long C, long long n, int hop, int cell_hops,
              const int32_t* edges, const double* chips, const double* dither, const int8_t* bits, int ng, int G,
              int L, int T, double step, double gamma, double cap, double alpha, double snr_db, double local_snr_db,
              double leak, double floor) {
  EmbedParams p; p.channels = C; p.hop = hop; p.cell_hops = cell_hops; p.group = L; p.ng = ng; p.n_groups = G;
  p.block_cells = T; p.edges = edges; p.chips = chips; p.dither = dither; p.bits = bits; p.step = step;
  p.gamma = gamma; p.cap = cap; p.alpha = alpha; p.k_global = std::pow(10.0, -snr_db / 10.0);
  p.k_local = std::pow(10.0, -local_snr_db / 10.0); p.leak = leak; p.log_floor = floor * 2.0 * hop * cell_hops;
  cuda::ClipView v; v.data = x; v.type = SampleType::kF64; v.batch = B; v.channels = C; v.nsamples = n;
  v.stride_b = C * n; v.stride_c = 1; v.stride_t = C;  // x channels-last [B, n, C]
  cuda::ClipOut o; o.data = out; o.type = SampleType::kF32; o.stride_b = C * n; o.stride_c = n; o.stride_t = 1;
  cuda::embed(p, v, o, 0); return 0;
}

// The _core.cuda_audio_* entry points' arguments, pointers as integers (tests' `host_device` fixture).
static cuda::ClipView hx_view(std::uintptr_t x, int t, long long B, long long C, long long n, long long sb,
                              long long sc, long long st) {
  cuda::ClipView v; v.data = reinterpret_cast<const void*>(x); v.type = static_cast<SampleType>(t); v.batch = B;
  v.channels = C; v.nsamples = n; v.stride_b = sb; v.stride_c = sc; v.stride_t = st; return v;
}
static cuda::ClipOut hx_out(std::uintptr_t x, int t, long long sb, long long sc, long long st) {
  cuda::ClipOut o; o.data = reinterpret_cast<void*>(x); o.type = static_cast<SampleType>(t); o.stride_b = sb;
  o.stride_c = sc; o.stride_t = st; return o;
}
int hx_analysis(std::uintptr_t x, int t, long long B, long long C, long long n, long long sb, long long sc,
                long long st, int hop, int top, std::uintptr_t cs) try {
  cuda::analysis(hx_view(x, t, B, C, n, sb, sc, st), hop, top, reinterpret_cast<double*>(cs), 0); return 0;
} catch (...) { return 1; }
int hx_projections(std::uintptr_t cs, long long B, long long nfr, int top, const int32_t* edges, const double* chips,
                   int ng, int L, int cell_hops, double log_floor, const double* speeds, int S, int per_clip,
                   double w0, double w1, long long rows, std::uintptr_t p, std::uintptr_t w) try {
  cuda::ProjectBatch b; b.cs = reinterpret_cast<const double*>(cs); b.batch = B; b.nfr = nfr; b.top = top;
  b.edges = edges; b.ng = ng; b.group = L; b.chips = chips; b.cell_hops = cell_hops; b.log_floor = log_floor;
  b.speeds = speeds; b.nspeeds = S; b.per_clip = per_clip != 0; b.w0 = w0; b.w1 = w1; b.rows = rows;
  b.p = reinterpret_cast<double*>(p); b.w = reinterpret_cast<double*>(w);
  cuda::projections(b, 0); return 0;
} catch (...) { return 1; }
int hx_fold(std::uintptr_t p, std::uintptr_t w, long long count, long long rows, const long long* nj, int ng, int G,
            int T, int cell_hops, double step, const double* dither, const double* sign, std::uintptr_t fc,
            std::uintptr_t fs, std::uintptr_t z) try {
  cuda::FoldBatch b; b.p = reinterpret_cast<const double*>(p); b.w = reinterpret_cast<const double*>(w);
  b.count = count; b.rows = rows; b.nj = nj; b.ng = ng; b.n_groups = G; b.block_cells = T; b.cell_hops = cell_hops;
  b.step = step; b.dither = dither; b.sign = sign; b.fc = reinterpret_cast<double*>(fc);
  b.fs = reinterpret_cast<double*>(fs); b.z = reinterpret_cast<double*>(z);
  cuda::fold(b, 0); return 0;
} catch (...) { return 1; }
int hx_embed(std::uintptr_t x, int xt, long long B, long long C, long long n, long long sb, long long sc, long long st,
             std::uintptr_t out, int ot, long long osb, long long osc, long long ost, int hop, int cell_hops,
             const int32_t* edges, const double* chips, const double* dither, const int8_t* bits, int ng, int G, int L,
             int T, double step, double gamma, double cap, double alpha, double snr_db, double local_snr_db,
             double leak, double floor, long long t0, std::uintptr_t bucket, std::uintptr_t acc, int whole) try {
  EmbedParams p; p.channels = C; p.hop = hop; p.cell_hops = cell_hops; p.group = L; p.ng = ng; p.n_groups = G;
  p.block_cells = T; p.edges = edges; p.chips = chips; p.dither = dither; p.bits = bits; p.step = step;
  p.gamma = gamma; p.cap = cap; p.alpha = alpha; p.k_global = std::pow(10.0, -snr_db / 10.0);
  p.k_local = std::pow(10.0, -local_snr_db / 10.0); p.leak = leak; p.log_floor = floor * 2.0 * hop * cell_hops;
  cuda::EmbedCarry c; c.t0 = t0; c.bucket = reinterpret_cast<double*>(bucket);
  c.acc = reinterpret_cast<double*>(acc); c.whole_cells = whole != 0;
  cuda::embed(p, hx_view(x, xt, B, C, n, sb, sc, st), hx_out(out, ot, osb, osc, ost), 0, bucket ? &c : nullptr);
  return 0;
} catch (...) { return 1; }
int hx_copy(std::uintptr_t x, int xt, long long B, long long C, long long n, long long sb, long long sc, long long st,
            std::uintptr_t out, int ot, long long osb, long long osc, long long ost) try {
  cuda::copy(hx_view(x, xt, B, C, n, sb, sc, st), hx_out(out, ot, osb, osc, ost), 0); return 0;
} catch (...) { return 1; }
}
"""


def _host_source(cu: str) -> str:
    """audio_cuda.cu ready for the host emulation (dynamic shared memory as a static buffer, launches rewritten)."""
    return host_launches(cu.replace("extern __shared__ double sh[];", "double* sh = g_dyn_shared;"))


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    cxx = shutil.which("g++")
    cu = CSRC / "cuda" / "audio_cuda.cu"
    if cxx is None or not cu.exists():
        pytest.skip("needs g++ and the source tree")
    d = tmp_path_factory.mktemp("audio_cuda_host")
    (d / "probe.cpp").write_text("#include <barrier>\nint main() { std::barrier<> b(1); }\n")
    if subprocess.run([cxx, "-std=c++20", "-pthread", str(d / "probe.cpp"), "-o", str(d / "probe")]).returncode:
        pytest.skip("g++ without C++20 <barrier>")
    (d / "inc").mkdir()
    (d / "inc" / "cuda_runtime.h").write_text(RUNTIME_SHIM)
    (d / "all.cpp").write_text(_host_source(cu.read_text()) + HARNESS)
    cmd = [cxx, "-std=c++20", "-O2", "-ffp-contract=off", "-pthread", "-shared", "-fPIC"]
    cmd += ["-I", str(d / "inc"), "-I", str(CSRC), str(d / "all.cpp"), "-o", str(d / "k.so")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    lib = ctypes.CDLL(str(d / "k.so"))
    D = np.ctypeslib.ndpointer(np.float64, flags="C")
    I32 = np.ctypeslib.ndpointer(np.int32, flags="C")
    I64 = np.ctypeslib.ndpointer(np.int64, flags="C")
    I8 = np.ctypeslib.ndpointer(np.int8, flags="C")
    LL, IN, DB = ctypes.c_longlong, ctypes.c_int, ctypes.c_double
    lib.emu_analysis.argtypes = [ctypes.c_void_p, IN, LL, LL, LL, LL, LL, LL, IN, IN, D]
    lib.emu_projections.argtypes = [D, LL, LL, IN, I32, D, IN, IN, IN, DB, D, IN, DB, DB, LL, D, D]
    lib.emu_fold.argtypes = [D, D, LL, LL, I64, IN, IN, IN, IN, DB, D, D, D, D, D]
    lib.emu_embed.argtypes = [
        D,
        np.ctypeslib.ndpointer(np.float32, flags="C"),
        LL,
        LL,
        LL,
        IN,
        IN,
        I32,
        D,
        D,
        I8,
        IN,
        IN,
        IN,
        IN,
    ] + [DB] * 8
    U = ctypes.c_size_t
    lib.hx_analysis.argtypes = [U, IN, LL, LL, LL, LL, LL, LL, IN, IN, U]
    lib.hx_projections.argtypes = [U, LL, LL, IN, I32, D, IN, IN, IN, DB, D, IN, IN, DB, DB, LL, U, U]
    lib.hx_fold.argtypes = [U, U, LL, LL, I64, IN, IN, IN, IN, DB, D, D, U, U, U]
    lib.hx_embed.argtypes = [U, IN, LL, LL, LL, LL, LL, LL, U, IN, LL, LL, LL, IN, IN, I32, D, D, I8, IN, IN, IN, IN]
    lib.hx_embed.argtypes += [DB] * 8 + [LL, U, U, IN]
    lib.hx_copy.argtypes = [U, IN, LL, LL, LL, LL, LL, LL, U, IN, LL, LL, LL]
    return lib


_TYPE_CODE = {"float64": 0, "float32": 1, "int16": 2}  # audio_common.h SampleType


@pytest.fixture
def host_device(host_kernels: ctypes.CDLL, emu: AudioDevice, monkeypatch: pytest.MonkeyPatch) -> AudioDevice:
    """The _core.cuda_audio_* entry points on the kernel source compiled for host threads (Emu arrays are host
    memory, so their interface pointers are the kernels' pointers): gpu_audio end to end on the real kernels."""
    lib = host_kernels
    c64 = np.ascontiguousarray

    def analysis(x, dtype, batch, channels, nsamples, sb, sc, st, hop, top, cs, stream=0):
        emu.calls.append("analysis")
        assert lib.hx_analysis(x, _TYPE_CODE[dtype], batch, channels, nsamples, sb, sc, st, hop, top, cs) == 0

    def projections(cs, batch, nfr, top, edges, chips, ng, cell_hops, log_floor, speeds, w0, w1, rows, p, w,
                    stream=0, per_clip=False):  # fmt: skip
        emu.calls.append("projections")
        sp = c64(speeds, dtype=np.float64)
        rc = lib.hx_projections(cs, batch, nfr, top, c64(edges, dtype=np.int32), c64(chips, dtype=np.float64), ng,
                                chips.shape[1], cell_hops, log_floor, sp.reshape(-1), sp.shape[-1], int(per_clip),
                                w0, w1, rows, p, w)  # fmt: skip
        assert rc == 0

    def fold(p, w, count, rows, nj, ng, dither, sign, step, cell_hops, fc, fs, z, stream=0):
        emu.calls.append("fold")
        d = c64(dither, dtype=np.float64)
        rc = lib.hx_fold(p, w, count, rows, c64(nj, dtype=np.int64), ng, d.shape[1], d.shape[0], cell_hops, step, d,
                         c64(sign, dtype=np.float64), fc, fs, z)  # fmt: skip
        assert rc == 0

    def embed(x, dtype, batch, channels, nsamples, sb, sc, st, out, out_dtype, osb, osc, ost, hop, cell_hops, edges,
              chips, dither, bits, ng, step, gamma, cap, alpha, snr_db, local_snr_db, leak, floor, stream=0, t0=0,
              bucket=0, acc=0, whole_cells=False):  # fmt: skip
        emu.calls.append("embed")
        rc = lib.hx_embed(x, _TYPE_CODE[dtype], batch, channels, nsamples, sb, sc, st, out, _TYPE_CODE[out_dtype],
                          osb, osc, ost, hop, cell_hops, edges, chips, dither, bits, ng, chips.shape[0], chips.shape[1],
                          dither.shape[0], step, gamma, cap, alpha, snr_db, local_snr_db, leak, floor, t0, bucket, acc,
                          int(whole_cells))  # fmt: skip
        assert rc == 0

    def copy(x, dtype, batch, channels, nsamples, sb, sc, st, out, out_dtype, osb, osc, ost, stream=0):
        emu.calls.append("copy")
        rc = lib.hx_copy(x, _TYPE_CODE[dtype], batch, channels, nsamples, sb, sc, st, out, _TYPE_CODE[out_dtype], osb,
                         osc, ost)  # fmt: skip
        assert rc == 0

    for name, fn in (("cuda_audio_analysis", analysis), ("cuda_audio_projections", projections),
                     ("cuda_audio_fold", fold), ("cuda_audio_embed", embed), ("cuda_audio_copy", copy)):  # fmt: skip
        monkeypatch.setattr(_core, name, fn)
    return emu


def test_kernel_source_on_host_threads(host_kernels: ctypes.CDLL) -> None:
    lib = host_kernels
    rng = np.random.default_rng(1)
    key = pm.Key.from_bytes(bytes([4]) * 32)
    lay = audio.DEFAULT_LAYOUT
    h, ch = audio.hop_length(RATE), lay.cell_hops
    tables = audio._tables(audio._key_bytes(key), lay, int(_core.ecc_coded_length(audio.PAYLOAD_BITS)))
    ng, L, T = lay.groups_for_rate(RATE), lay.group, lay.block_cells
    G = tables.chips.shape[0]
    edges = lay.band_edges()[: ng * L + 1].astype(np.int32)
    chips = np.ascontiguousarray(tables.chips, dtype=np.float64)
    dither = np.ascontiguousarray(tables.dither, dtype=np.float64)
    top = 138
    # analysis: 2 clips x 2 channels
    xa = np.stack([music(rng, 0.5), music(rng, 0.5)])
    m = xa.shape[2]
    nfr = (m - 2 * h) // h + 1
    cs = np.zeros((2, nfr, top + 1))
    lib.emu_analysis(xa.ctypes.data, 0, 2, 2, m, 2 * m, m, 1, h, top, cs)
    for b in range(2):
        ref = _core.audio_analysis(xa[b], h, top)
        np.testing.assert_allclose(cs[b], ref, rtol=0, atol=1e-13 * ref.max())
    x32 = np.ascontiguousarray(xa.transpose(0, 2, 1), dtype=np.float32)  # float32 channels-last [B, n, C]
    lib.emu_analysis(x32.ctypes.data, 1, 2, 2, m, 2 * m, 1, 2, h, top, cs)
    for b in range(2):
        ref = _core.audio_analysis(np.ascontiguousarray(x32[b].T, dtype=np.float64), h, top)
        np.testing.assert_allclose(cs[b], ref, rtol=0, atol=1e-13 * ref.max())
    # projections at 3 speeds on the CPU's analysis of two 7 s clips (one marked), then the fold
    clips = np.stack([music(rng, 7.0), music(rng, 7.0)])
    clips[1] = audio.embed(clips[1], RATE, 0x77, key)
    css = np.stack([_core.audio_analysis(c, h, top) for c in clips])
    speeds = np.array([0.98, 1.0, 1.013])
    fl = lay.floor * 2 * h * ch
    refs = [
        [_core.audio_projections(css[b], edges, chips, ng, ch, fl, s, audio._SNR_W0, audio._SNR_W1) for s in speeds]
        for b in range(2)
    ]
    R = max(r[0].shape[0] for rr in refs for r in rr)
    p, w = np.full((2, 3, R, ng), np.nan), np.full((2, 3, R, ng), np.nan)
    lib.emu_projections(css, 2, css.shape[1], top, edges, chips, ng, L, ch, fl, speeds, 3, 0.0, 0.6, R, p, w)
    assert audio._SNR_W0 == 0.0 and audio._SNR_W1 == 0.6
    for b in range(2):
        for s in range(3):
            pr, wr = refs[b][s]
            n = pr.shape[0]
            np.testing.assert_allclose(p[b, s, :n], pr, rtol=0, atol=1e-13)
            np.testing.assert_allclose(w[b, s, :n], wr, rtol=0, atol=1e-13)
            assert not p[b, s, n:].any() and not w[b, s, n:].any()
    # ties: a clip whose first second is digital silence (every silent cell has the same log energy, so the
    # 10th percentile falls among equal values; the radix selection counts them as numpy's sort orders them)
    quiet = music(rng, 3.0)
    quiet[:, :RATE] = 0.0
    cq = _core.audio_analysis(quiet, h, top)[None]
    for sp in (1.0, 1.013):
        pr, wr = _core.audio_projections(cq[0], edges, chips, ng, ch, fl, sp, audio._SNR_W0, audio._SNR_W1)
        pq, wq = np.zeros((1, 1, pr.shape[0], ng)), np.zeros((1, 1, pr.shape[0], ng))
        lib.emu_projections(cq, 1, cq.shape[1], top, edges, chips, ng, L, ch, fl, np.array([sp]), 1, 0.0, 0.6,
                            pr.shape[0], pq, wq)  # fmt: skip
        np.testing.assert_allclose(pq[0, 0], pr, rtol=0, atol=1e-13)
        np.testing.assert_allclose(wq[0, 0], wr, rtol=0, atol=1e-13)
        assert (wr == 0).any() and (wr == 1).any()  # floor = the silent cells' (tied) value: weight 0 there
    sign = np.where(tables.is_sync, 1.0 - 2.0 * tables.sync_bit, 0.0)
    nj = np.array([refs[b][s][0].shape[0] for b in range(2) for s in range(3)], dtype=np.int64)
    P = T * ch
    fc, fs, z = np.zeros((6, P, ng)), np.zeros((6, P, ng)), np.zeros((6, P))
    lib.emu_fold(p.reshape(6, R, ng), w.reshape(6, R, ng), 6, R, nj, ng, G, T, ch, lay.step, dither, sign, fc, fs, z)
    for c in range(6):
        pr, wr = refs[c // 3][c % 3]
        f1, f2, zr = _core.audio_fold(pr, wr, tables.dither, sign, lay.step, ch)
        np.testing.assert_allclose(fc[c], f1, rtol=0, atol=1e-11)
        np.testing.assert_allclose(fs[c], f2, rtol=0, atol=1e-11)
        np.testing.assert_allclose(z[c], zr, rtol=0, atol=1e-11)
    assert int(np.argmax(z[4])) == 0 and z[4, 0] > z[:3].max() + 1  # marked clip, speed 1, phase 0
    # embedding: 2 clips of 0.5 s + 13 samples (a partial last cell)
    n = int(0.5 * RATE) + 13
    xe = np.stack([music(rng, 0.6)[:, :n], music(rng, 0.6)[:, :n]])
    _, coded = audio._payload_bits(0x1234)
    bits = np.ascontiguousarray(audio._instance_bits(tables, coded), dtype=np.int8)
    out = np.zeros(xe.shape, np.float32)  # float32 output from channels-last float64 input
    xcl = np.ascontiguousarray(xe.transpose(0, 2, 1))
    lib.emu_embed(xcl, out, 2, 2, n, h, ch, edges, chips, dither, bits, ng, G, L, T, lay.step, lay.gamma, lay.cap,
                  1.0, lay.snr_db, lay.local_snr_db, lay.bucket_leak, lay.floor)  # fmt: skip
    for b in range(2):
        ref = audio.embed(xe[b], RATE, 0x1234, key)
        np.testing.assert_allclose(out[b], np.clip(ref, -1, 1).astype(np.float32), rtol=0, atol=1e-7)
        assert np.abs(ref - xe[b]).max() > 1e-3


def test_gpu_audio_on_host_kernels(host_device: AudioDevice) -> None:
    """gpu_audio end to end on the kernel source (host threads; short clips, as every block of a launch is
    256 OS threads here): detect_batch equals audio.detect (two mono clips, one marked, through every speed and
    the three sub-hop re-analyses with per-clip speeds), int16 embedding equals audio.embed, and a device
    stream (carry of bucket and last hop, whole cells, the zero-padded flush, int16 chunks through the copy
    kernel) equals one-shot embedding."""
    rng = np.random.default_rng(31)
    key = pm.Key.from_bytes(bytes([10]) * 32)
    clips = np.stack([audio.embed(music(rng, 1.2, 1), RATE, 0x4242, key), music(rng, 1.2, 1)])
    got = gpu_audio.detect_batch(Emu(clips.copy()), RATE, key)
    for g, x in zip(got, clips, strict=True):
        _same_detection(g, audio.detect(x, RATE, key))
    assert all(g.details["n_tests"] >= (len(audio.SPEEDS_DEFAULT) + 3) * 480 for g in got)  # re-analysed
    # one analysis per shift (0 and the three sub-hop shifts), reused when a shift is searched at a second speed
    assert host_device.calls.count("analysis") == 4 and host_device.calls.count("projections") >= 4
    # int16 in, int16 out, and a stream of int16 chunks
    n = int(0.5 * RATE) + 11
    x16 = np.round(music(rng, 0.6)[:, :n] * 32767).astype(np.int16)
    want = audio.embed(x16, RATE, 0x4242, key)
    y = gpu_audio.embed(Emu(x16.copy()), RATE, 0x4242, key).a
    assert y.dtype == np.int16 and np.abs(y.astype(np.int32) - want).max() <= 1
    st = gpu_audio.StreamEmbedder(RATE, 2, 0x4242, key)
    outs, pos = [], 0
    for k in _chunks(rng, n):
        outs.append(st.push(Emu(x16[:, pos : pos + k].copy())).a)
        pos += k
    got16 = np.concatenate([*outs, st.flush().a], axis=1)
    assert got16.shape == x16.shape and np.abs(got16.astype(np.int32) - want).max() <= 1
    assert host_device.calls.count("copy") >= len(outs)


# ---- on a GPU --------------------------------------------------------------------------------------------------
@pytest.mark.cuda
def test_device_kernels_match_cpu() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    key = pm.Key.generate()
    lay = audio.DEFAULT_LAYOUT
    h = audio.hop_length(RATE)
    clips = np.stack([music(rng, 8.0), music(rng, 8.0)])
    clips[0] = audio.embed(clips[0], RATE, 0xBEEF, key)
    xd = torch.from_numpy(clips).cuda()
    # analysis: per clip against the CPU core
    cs = gpu_audio.analysis(xd, RATE, max_scale=max(SPEEDS) * 1.01)
    torch.cuda.synchronize()
    cs_h = cs.cpu().numpy()
    for b in range(2):
        ref = _core.audio_analysis(clips[b], h, cs_h.shape[2] - 1)
        np.testing.assert_allclose(cs_h[b], ref, rtol=1e-10, atol=1e-12 * ref.max())
    # projections and fold fed with the CPU's own inputs (isolates each kernel)
    tables = audio._tables(audio._key_bytes(key), lay, int(_core.ecc_coded_length(audio.PAYLOAD_BITS)))
    ng = lay.groups_for_rate(RATE)
    edges = lay.band_edges()[: ng * lay.group + 1].astype(np.int32)
    ref_cs = _core.audio_analysis(clips[0], h, cs_h.shape[2] - 1)
    top = ref_cs.shape[1] - 1
    chips = np.ascontiguousarray(tables.chips, dtype=np.float64)
    floor = lay.floor * 2 * h * lay.cell_hops
    refs = [
        _core.audio_projections(ref_cs, edges, chips, ng, lay.cell_hops, floor, s, audio._SNR_W0, audio._SNR_W1)
        for s in SPEEDS
    ]
    R = max(p.shape[0] for p, _ in refs)
    csd = torch.from_numpy(ref_cs[None]).cuda()
    pd = torch.empty((1, len(SPEEDS), R, ng), dtype=torch.float64, device="cuda")
    wd = torch.empty_like(pd)
    _core.cuda_audio_projections(
        csd.data_ptr(),
        1,
        ref_cs.shape[0],
        top,
        edges,
        chips,
        ng,
        lay.cell_hops,
        floor,
        np.array(SPEEDS),
        audio._SNR_W0,
        audio._SNR_W1,
        R,
        pd.data_ptr(),
        wd.data_ptr(),
        0,
    )
    torch.cuda.synchronize()
    for s, (p_ref, w_ref) in enumerate(refs):
        n = p_ref.shape[0]
        np.testing.assert_allclose(pd[0, s, :n].cpu().numpy(), p_ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(wd[0, s, :n].cpu().numpy(), w_ref, rtol=0, atol=1e-9)
        assert not pd[0, s, n:].any()
    sign = np.where(tables.is_sync, 1.0 - 2.0 * tables.sync_bit, 0.0)
    P = lay.block_hops
    p_ref, w_ref = refs[SPEEDS.index(1.0)]
    fc_ref, fs_ref, z_ref = _core.audio_fold(p_ref, w_ref, tables.dither, sign, lay.step, lay.cell_hops)
    pdev, wdev = torch.from_numpy(p_ref).cuda(), torch.from_numpy(w_ref).cuda()
    fc = torch.empty((1, P, ng), dtype=torch.float64, device="cuda")
    fs, z = torch.empty_like(fc), torch.empty((1, P), dtype=torch.float64, device="cuda")
    _core.cuda_audio_fold(
        pdev.data_ptr(),
        wdev.data_ptr(),
        1,
        p_ref.shape[0],
        np.array([p_ref.shape[0]]),
        ng,
        tables.dither,
        sign,
        lay.step,
        lay.cell_hops,
        fc.data_ptr(),
        fs.data_ptr(),
        z.data_ptr(),
        0,
    )
    torch.cuda.synchronize()
    np.testing.assert_allclose(fc[0].cpu().numpy(), fc_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fs[0].cpu().numpy(), fs_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(z[0].cpu().numpy(), z_ref, rtol=0, atol=1e-9)


@pytest.mark.cuda
def test_device_scores_match_cpu_detector() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    key = pm.Key.from_bytes(bytes([1]) * 32)
    clips = np.stack([music(rng, 10.0) for _ in range(3)])
    clips[2] = audio.embed(clips[2], RATE, 0xC0FFEE, key)
    for dtype in (torch.float64, torch.float32):
        xd = torch.from_numpy(clips).to(dtype).cuda()
        r = gpu_audio.scores(xd, RATE, key, speeds=SPEEDS)
        for b in range(3):
            z_cpu, rows = cpu_scores(clips[b].astype(np.float32 if dtype == torch.float32 else np.float64), key, SPEEDS)
            assert list(r.rows) == rows
            np.testing.assert_allclose(r.z[b], z_cpu, rtol=0, atol=1e-6)
            assert np.argmax(r.z[b], axis=1).tolist() == np.argmax(z_cpu, axis=1).tolist()
        s1 = SPEEDS.index(1.0)
        assert int(np.argmax(r.z[2, s1])) == 0 and r.z[2, s1, 0] > r.z[:2].max() + 1


@pytest.mark.cuda
def test_device_embed_matches_cpu() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    key = pm.Key.from_bytes(bytes([3]) * 32)
    n = int(6.1 * RATE) + 5
    clips = np.stack([music(rng, n / RATE)[..., :n] for _ in range(3)])
    ref = np.stack([audio.embed(c, RATE, 0x5EED, key) for c in clips])
    y = gpu_audio.embed(torch.from_numpy(clips).cuda(), RATE, 0x5EED, key)
    torch.cuda.synchronize()
    np.testing.assert_allclose(y.cpu().numpy(), ref, rtol=0, atol=1e-9)
    # float32, in place on a channels-last view
    x32 = torch.from_numpy(np.ascontiguousarray(clips.transpose(0, 2, 1)).astype(np.float32)).cuda()
    view = x32.transpose(1, 2)
    want = np.stack([audio.embed(c, RATE, 0x5EED, key) for c in view.cpu().numpy()])
    assert gpu_audio.embed(view, RATE, 0x5EED, key, out=view) is view
    torch.cuda.synchronize()
    np.testing.assert_allclose(view.cpu().numpy(), want, rtol=0, atol=2e-7)
    det = audio.detect(y[1].cpu().numpy(), RATE, key)
    assert det.found and int.from_bytes(det.payload, "big") == 0x5EED


@pytest.mark.cuda
def test_device_detect_batch_matches_cpu() -> None:
    """detect_batch on the device = audio.detect per clip (marked, unmarked, marked off the hop grid), float32
    and float64; pm.audio.detect routes a CUDA tensor there."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(21)
    key = pm.Key.from_bytes(bytes([6]) * 32)
    h, n = audio.hop_length(RATE), int(8.0 * RATE)
    a = audio.embed(music(rng, 8.0), RATE, 0xFEED, key)
    b = music(rng, 8.0)
    c = audio.embed(music(np.random.default_rng(23), 9.0), RATE, 0xC0DE, key)[:, int(0.6 * RATE) + int(0.4 * h) :]
    clips = np.stack([a, b, c[:, :n]])
    for dtype in (torch.float64, torch.float32):
        xd = torch.from_numpy(clips).to(dtype).cuda()
        got = gpu_audio.detect_batch(xd, RATE, key)
        for g, x in zip(got, xd.cpu().numpy(), strict=True):
            _same_detection(g, audio.detect(x, RATE, key), z_tol=1e-5)
        assert got[0].found and not got[1].found and got[2].found
    _same_detection(pm.audio.detect(torch.from_numpy(a).cuda(), RATE, key), audio.detect(a, RATE, key), z_tol=1e-5)


@pytest.mark.cuda
def test_device_int16_and_stream() -> None:
    """int16 device clips (embed rounds as the CPU core; detect), and a device stream of random chunks (1 sample
    to 1 s) through pm.audio.StreamEmbedder equal to one-shot embedding."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(24)
    key = pm.Key.from_bytes(bytes([9]) * 32)
    n = int(9.1 * RATE) + 7
    x = music(rng, n / RATE)[:, :n]
    x16 = np.round(x * 32767).astype(np.int16)
    want16 = audio.embed(x16, RATE, 0x5157, key)
    y16 = gpu_audio.embed(torch.from_numpy(x16).cuda(), RATE, 0x5157, key).cpu().numpy()
    assert y16.dtype == np.int16 and np.abs(y16.astype(np.int32) - want16).max() <= 1
    det = pm.audio.detect(torch.from_numpy(want16).cuda(), RATE, key)
    _same_detection(det, audio.detect(want16, RATE, key), z_tol=1e-5)
    for xs, tol in ((x, 1e-9), (x.astype(np.float32), 2e-7), (x16, 1)):
        want = audio.embed(xs, RATE, 0x5157, key)
        st = pm.audio.StreamEmbedder(RATE, 2, 0x5157, key)
        outs, pos = [], 0
        for k in _chunks(rng, n):
            outs.append(st.push(torch.from_numpy(np.ascontiguousarray(xs[:, pos : pos + k])).cuda()))
            pos += k
        outs.append(st.flush())
        assert all(o.is_cuda for o in outs)
        got = torch.cat(outs, dim=1).cpu().numpy()
        assert got.dtype == xs.dtype and got.shape == xs.shape
        assert np.abs(got.astype(np.float64) - want.astype(np.float64)).max() <= tol


def test_public_embed_dispatches_cuda_arrays(emu: AudioDevice) -> None:
    """pm.audio.embed hands a CUDA array to the device engine and returns a CUDA array, marked as on the CPU."""
    rng = np.random.default_rng(5)
    key = pm.Key.from_bytes(bytes([5]) * 32)
    clip = music(rng, 3.0)
    y = pm.audio.embed(Emu(clip.copy()), RATE, 0x1234, key)
    assert isinstance(y, Emu) and emu.calls.count("embed") == 1
    np.testing.assert_allclose(y.a, audio.embed(clip, RATE, 0x1234, key), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="axes"):
        pm.audio.embed(Emu(np.zeros((1, 2, RATE))), RATE, 0x1234, key)
