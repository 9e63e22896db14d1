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
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import provmark as pm
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


class AudioDevice:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def analysis(self, x, dtype, batch, channels, nsamples, sb, sc, st, hop, top, cs, stream=0) -> None:
        self.calls.append("analysis")
        xs = _view(x, (batch, channels, nsamples), (sb, sc, st), dtype).astype(np.float64)
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
        self, cs, batch, nfr, top, edges, chips, ng, cell_hops, log_floor, speeds, w0, w1, rows, p, w, stream=0
    ) -> None:
        self.calls.append("projections")
        S, L = len(speeds), chips.shape[1]
        nb = ng * L
        csv = _dense(cs, (batch, nfr, top + 1))
        po, wo = _dense(p, (batch, S, rows, ng)), _dense(w, (batch, S, rows, ng))
        po[...] = 0.0
        wo[...] = 0.0
        for b in range(batch):
            for s, speed in enumerate(speeds):
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
                if nj >= 20:  # the kernel's exact ranks (ties by row), then numpy's linear interpolation
                    idx = (nj - 1) * 0.1
                    lo = int(np.floor(idx))
                    hi = min(lo + 1, nj - 1)
                    rank = (v[None, :, :] < v[:, None, :]).sum(axis=1) + np.array(
                        [[np.sum(v[:j, q] == v[j, q]) for q in range(nb)] for j in range(nj)]
                    )
                    va = np.array([v[rank[:, q] == lo, q][0] for q in range(nb)])
                    vb = np.array([v[rank[:, q] == hi, q][0] for q in range(nb)]) if hi != lo else va
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
        for c in range(count):
            n = int(nj[c])
            ang = 2.0 * np.pi * pv[c, :n] / step
            tc, ts = wv[c, :n] * np.cos(ang), wv[c, :n] * np.sin(ang)
            fco[c] = 0.0
            fso[c] = 0.0
            for m in range(P):
                fco[c, m] = tc[m::P].sum(axis=0)
                fso[c, m] = ts[m::P].sum(axis=0)
            for ph in range(P):
                r = (ph + cell_hops * np.arange(T)) % P
                a, bb = fco[c, r], fso[c, r]
                score = np.sum(a * cd + bb * sd)
                var = 0.5 * np.sum((a * a + bb * bb) * (sg != 0))
                zo[c, ph] = score / np.sqrt(max(var, 1e-300)) if var > 0 else 0.0

    def embed(self, x, dtype, batch, channels, nsamples, sb, sc, st, out, out_dtype, osb, osc, ost, hop, cell_hops,
              edges, chips, dither, bits, ng, step, gamma, cap, alpha, snr_db, local_snr_db, leak, floor,
              stream=0) -> None:  # fmt: skip
        """The four embedding kernels: direct DFT over the bands' bins, moves, budget scan, gains + inverse + OLA."""
        self.calls.append("embed")
        xs = _view(x, (batch, channels, nsamples), (sb, sc, st), dtype).astype(np.float64)
        os_ = _view(out, (batch, channels, nsamples), (osb, osc, ost), out_dtype)
        n, H, ch, L = 2 * hop, hop, cell_hops, chips.shape[1]
        nb, T = ng * L, dither.shape[0]
        ncells = -(-nsamples // (ch * H))
        nfr = ncells * ch
        i = np.arange(n)
        hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * i / n)
        sine = np.sin(np.pi * (i + 0.5) / n)
        ctab, stab = np.cos(2.0 * np.pi * i / n), np.sin(2.0 * np.pi * i / n)
        lo, hi = int(edges[0]), int(edges[-1])
        k = np.arange(lo, hi)
        fwd = (k[:, None] * i[None, :]) % n  # [nk, n]
        band_of = np.searchsorted(edges, k, side="right") - 1
        kg, kl = 10.0 ** (-snr_db / 10.0), 10.0 ** (-local_snr_db / 10.0)
        log_floor = floor * n * ch
        res = np.empty((batch, channels, nsamples))
        for b in range(batch):
            xp = np.zeros((channels, ncells * ch * H + H))
            xp[:, :nsamples] = xs[b]
            fr = xp[:, np.arange(nfr)[:, None] * H + i[None, :]]  # [C, nfr, n]
            fw = fr * hann
            pw = (fw @ ctab[fwd].T) ** 2 + (fw @ stab[fwd].T) ** 2  # [C, nfr, nk]
            band = np.stack([pw[..., edges[q] - lo : edges[q + 1] - lo].sum(-1) for q in range(nb)], axis=-1)
            ce = band.sum(axis=0).reshape(ncells, ch, nb).sum(axis=1)
            etot = 0.5 * n * (fw * fw).sum(axis=(0, 2)).reshape(ncells, ch).sum(axis=1)
            v = np.log(ce + log_floor).reshape(ncells, ng, L)
            tb = np.arange(ncells) % T
            p = np.einsum("cgl,gl->cg", v, chips[:ng]) / L
            off = (dither[tb, :ng] + 0.5 * bits[tb, :ng]) * step
            dp = alpha * (np.round((p - off) / step) * step + off - p)
            wgt = np.exp(-gamma * (v - v.mean(axis=2, keepdims=True)))
            wgt *= L / wgt.sum(axis=2, keepdims=True)
            dv = np.clip(chips[None, :ng] * wgt * dp[..., None], -cap, cap).reshape(ncells, nb)
            dist = np.sum(ce * np.expm1(0.5 * dv) ** 2, axis=1)
            scale, bucket = np.ones(ncells), 0.0
            for t in range(ncells):
                allow = min(kg * etot[t] + bucket, kl * etot[t])
                used = dist[t]
                if used > allow:
                    scale[t] = np.sqrt(allow / used) if used > 0 else 1.0
                    used = allow
                bucket = max(0.0, bucket + kg * etot[t] - used) * leak
            gb = np.exp(0.5 * (dv * scale[:, None])) - 1.0  # [ncells, nb]
            fsw = fr * sine
            g = np.repeat(gb[:, band_of], ch, axis=0)  # [nfr, nk]
            yr, yi = g * (fsw @ ctab[fwd].T), g * -(fsw @ stab[fwd].T)
            inv = (k[:, None] * i[None, :]) % n  # [nk, n] index k m mod n
            d = sine * (2.0 * (yr @ ctab[inv] - yi @ stab[inv]) / n)  # [C, nfr, n]
            ola = np.zeros((channels, (nfr + 1) * H))
            for f in range(nfr):
                ola[:, f * H : f * H + n] += d[:, f]
            res[b] = xs[b] + ola[:, :nsamples]
        os_[...] = np.clip(res, -1.0, 1.0).astype(os_.dtype)

    def copy_to_host(self, src: int, dst: np.ndarray, stream: int = 0) -> None:
        dst[...] = _dense(src, dst.shape).astype(dst.dtype)


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> AudioDevice:
    dev = AudioDevice()
    monkeypatch.setattr(gpu, "_device_state", lambda: (1, None))
    for name, fn in (
        ("cuda_audio_analysis", dev.analysis),
        ("cuda_audio_projections", dev.projections),
        ("cuda_audio_fold", dev.fold),
        ("cuda_audio_embed", dev.embed),
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
    with pytest.raises(pm.CudaError):
        gpu_audio.scores(Emu(np.zeros((2, 44100), np.float32)), RATE, pm.Key.generate())


# ---- the kernel source on host threads ----------------------------------------------------------------------------
SHIM = r"""// Host emulation of the few CUDA runtime pieces audio_cuda.cu uses: blocks run one after another, each with
// blockDim real threads and a barrier for __syncthreads; __shared__ variables are statics (one block at a time).
#pragma once
#include <barrier>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>
#define __global__
#define __device__
#define __host__
#define __shared__ static
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline std::barrier<>* g_bar = nullptr;
inline void __syncthreads() { g_bar->arrive_and_wait(); }
alignas(64) inline double g_dyn_shared[1 << 14];
typedef int cudaError_t;
constexpr cudaError_t cudaSuccess = 0;
struct CUstream_st;
typedef CUstream_st* cudaStream_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost };
inline cudaError_t cudaMallocAsync(void** p, std::size_t n, cudaStream_t) { *p = std::calloc(n, 1); return 0; }
inline cudaError_t cudaFreeAsync(void* p, cudaStream_t) { std::free(p); return 0; }
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, std::size_t n, cudaMemcpyKind, cudaStream_t) {
  std::memcpy(d, s, n); return 0; }
inline cudaError_t cudaGetDevice(int* d) { *d = 0; return 0; }
inline cudaError_t cudaSetDevice(int) { return 0; }
inline cudaError_t cudaGetLastError() { return 0; }
inline const char* cudaGetErrorString(cudaError_t) { return "emulated"; }
template <class... P, class... A>
void launch(void (*k)(P...), dim3 grid, dim3 block, std::size_t shmem, cudaStream_t, A... args) {
  if (shmem > sizeof(g_dyn_shared)) std::abort();
  blockDim = block;
  gridDim = grid;
  const unsigned nt = block.x * block.y * block.z;
  std::barrier<> bar(nt);
  g_bar = &bar;
  std::vector<std::thread> th;
  for (unsigned t = 0; t < nt; ++t)
    th.emplace_back([&, t] {
      threadIdx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
      for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
          for (unsigned bx = 0; bx < grid.x; ++bx) {
            blockIdx = dim3(bx, by, bz);
            k(args...);
            bar.arrive_and_wait();  // the block is done before the next one reuses the statics
          }
    });
  for (auto& x : th) x.join();
}
"""

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
}
"""


def _host_source(cu: str) -> str:
    """audio_cuda.cu with `kernel<<<grid, block, shmem, stream>>>(args)` rewritten to launch(kernel, ...)."""
    cu = cu.replace("extern __shared__ double sh[];", "double* sh = g_dyn_shared;")
    out, i = [], 0
    while (j := cu.find("<<<", i)) >= 0:
        m = re.search(r"([A-Za-z_][A-Za-z_0-9]*)\s*$", cu[i:j])
        assert m is not None
        out.append(cu[i : i + m.start(1)])
        k = cu.index(">>>", j)
        p = q = cu.index("(", k)
        depth = 0
        while True:
            depth += {"(": 1, ")": -1}.get(cu[q], 0)
            if depth == 0:
                break
            q += 1
        out.append(f"launch({m.group(1)}, {cu[j + 3 : k]}, {cu[p + 1 : q]})")
        i = q + 1
    out.append(cu[i:])
    return "".join(out)


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
    (d / "inc" / "cuda_runtime.h").write_text(SHIM)
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
    return lib


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
