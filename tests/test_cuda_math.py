"""The per-element math the CUDA image kernels use (csrc/core/image_math.h), compiled for the host, equals the
CPU image kernels and their numpy references. Runs without a GPU: a small C harness is built with the system
C++ compiler and loaded with ctypes (skipped when there is no compiler or no source tree)."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from numpy.ctypeslib import ndpointer
from skimage import data

import provmark as pm
from cuda_host import RUNTIME_SHIM, host_launches
from provmark import _core, image

CSRC = Path(__file__).resolve().parents[1] / "csrc"

HARNESS = r"""
#include <cstdint>
#include <vector>
#include "core/image_math.h"
using namespace provmark::image;
extern "C" {
void pattern(const float* tile, int h, int w, double chip, float* out) {
  for (int r = 0; r < h; ++r) {
    int rl; float rf; chip_coord(r, chip, &rl, &rf);
    for (int x = 0; x < w; ++x) {
      int cl; float cf; chip_coord(x, chip, &cl, &cf);
      out[r * w + x] = pattern_at(tile, rl, rf, cl, cf);
    }
  }
}
void fold(const float* wp, long long h, long long w, double period, double theta, long long side, double* out) {
  std::vector<double> s(side * side); std::vector<long long> c(side * side);
  const double sc = double(side) / period, ct = std::cos(theta) * sc, st = std::sin(theta) * sc;
  for (long long r = 0; r < h; ++r)
    for (long long x = 0; x < w; ++x) { long long b = fold_bin(r, x, ct, st, side); s[b] += wp[r * w + x]; c[b]++; }
  for (long long i = 0; i < side * side; ++i) out[i] = c[i] ? s[i] / c[i] : 0.0;
}
void resample(const float* in, long long h, long long w, long long oh, long long ow, float* out) {
  std::vector<float> mid(oh * w);
  for (long long o = 0; o < oh; ++o)
    for (long long x = 0; x < w; ++x) {
      long long f, n; area_span(o, h, oh, &f, &n); float m = 0;
      for (long long t = 0; t < n; ++t) m = add_rn(m, mul_rn(area_weight(o, f + t, h, oh), in[(f + t) * w + x]));
      mid[o * w + x] = m;
    }
  for (long long r = 0; r < oh; ++r)
    for (long long o = 0; o < ow; ++o) {
      long long f, n; area_span(o, w, ow, &f, &n); float a = 0;
      for (long long t = 0; t < n; ++t) a = add_rn(a, mul_rn(area_weight(o, f + t, w, ow), mid[r * w + f + t]));
      out[r * ow + o] = a;
    }
}
void luma(const float* rgb, long long n, float scale, float* out) {
  for (long long i = 0; i < n; ++i) out[i] = luma_rn(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], scale);
}
void apply8(const uint8_t* s, const float* dd, long long n, uint8_t* o) {
  for (long long i = 0; i < n; ++i) o[i] = apply_u8(s[i], dd[i]);
}
void applyf(const float* s, const float* dd, long long n, float* o) {
  for (long long i = 0; i < n; ++i) o[i] = apply_f32(s[i], dd[i]);
}
void applys(const float* s, const float* dd, long long n, float* o) {
  for (long long i = 0; i < n; ++i) o[i] = apply_f32_signed(s[i], dd[i]);
}
void apply16(const uint16_t* s, const float* dd, long long n, int shift, float vmax, uint16_t* o) {
  for (long long i = 0; i < n; ++i) o[i] = apply_u16(s[i], dd[i], shift, vmax);
}
}
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None or not (CSRC / "core" / "image_math.h").exists():
        pytest.skip("needs a C++ compiler and the source tree (csrc/)")
    d = tmp_path_factory.mktemp("image_math")
    (d / "h.cpp").write_text(HARNESS, encoding="utf-8")
    so = d / "libimage_math.so"
    subprocess.run([cxx, "-std=c++17", "-O2", "-shared", "-fPIC", f"-I{CSRC}", str(d / "h.cpp"), "-o", str(so)],
                   check=True, capture_output=True)  # fmt: skip
    lib = ctypes.CDLL(str(so))
    f32, f64, u8, u16 = (ndpointer(t, flags="C") for t in (np.float32, np.float64, np.uint8, np.uint16))
    ll, dbl = ctypes.c_longlong, ctypes.c_double
    lib.pattern.argtypes = [f32, ctypes.c_int, ctypes.c_int, dbl, f32]
    lib.fold.argtypes = [f32, ll, ll, dbl, dbl, ll, f64]
    lib.resample.argtypes = [f32, ll, ll, ll, ll, f32]
    lib.luma.argtypes = [f32, ll, ctypes.c_float, f32]
    lib.apply8.argtypes = [u8, f32, ll, u8]
    lib.applyf.argtypes = [f32, f32, ll, f32]
    lib.applys.argtypes = [f32, f32, ll, f32]
    lib.apply16.argtypes = [u16, f32, ll, ctypes.c_int, ctypes.c_float, u16]
    return lib


@pytest.mark.parametrize("h,w", [(300, 451), (1080, 1920), (77, 45)])
def test_pattern_matches_reference(lib: ctypes.CDLL, rng: np.random.Generator, h: int, w: int) -> None:
    tile = rng.standard_normal((32, 32)).astype(np.float32)
    chip = image._chip_size(min(h, w))
    out = np.empty((h, w), np.float32)
    lib.pattern(tile, h, w, chip, out)
    np.testing.assert_allclose(out, image._ref_pattern(h, w, tile, chip), rtol=0, atol=2e-6)


def test_fold_bins_equal_cpu_fold(lib: ctypes.CDLL, rng: np.random.Generator) -> None:
    y = image._ref_luma(data.coffee())
    wv, _ = _core.image_whiten(y, 2.5)
    for period, theta, side in ((80.0, 0.0, 128), (85.333, 0.03, 128), (77.7, -0.1, 128), (61.0, 0.07, 100)):
        period *= 1 + 0.01 * rng.random()
        out = np.empty((side, side))
        lib.fold(wv, *wv.shape, period, theta, side, out)
        np.testing.assert_array_equal(out, _core.image_fold(wv, period, theta, side))


def test_resample_equals_cpu(lib: ctypes.CDLL) -> None:
    y = image._ref_luma(data.coffee())
    for oh, ow in ((200, 300), (400, 600), (137, 211), (1, 1)):
        out = np.empty((oh, ow), np.float32)
        lib.resample(y, *y.shape, oh, ow, out)
        np.testing.assert_array_equal(out, _core.image_resample(y, oh, ow))


def test_luma_equals_cpu(lib: ctypes.CDLL) -> None:
    for img, scale in ((data.astronaut(), 1.0), (data.chelsea().astype(np.float32) / 255, 255.0)):
        rgb = np.ascontiguousarray(img, dtype=np.float32)
        out = np.empty(img.shape[:2], np.float32)
        lib.luma(rgb, out.size, scale, out)
        np.testing.assert_array_equal(out, _core.image_luma(np.ascontiguousarray(img)))


def test_apply_matches_reference(lib: ctypes.CDLL, rng: np.random.Generator) -> None:
    n = 100_000
    dd = (rng.standard_normal(n) * 3).astype(np.float32)
    s = rng.integers(0, 256, n).astype(np.uint8)
    dd[:64], s[:64] = np.float32(0.5), 7  # rounding ties: the CPU rounds half up
    o = np.empty_like(s)
    lib.apply8(s, dd, n, o)
    ref = np.floor(np.clip(s.astype(np.float32) + dd, 0, 255) + np.float32(0.5)).astype(np.uint8)
    np.testing.assert_array_equal(o, ref)
    sf = rng.random(n).astype(np.float32)
    of = np.empty_like(sf)
    lib.applyf(sf, dd, n, of)
    np.testing.assert_array_equal(of, np.clip(sf + dd / np.float32(255), 0, 1))
    # 10-bit samples stored << 6 (p010), marked as image.LumaEmbedder.mark marks uint16 planes
    v = rng.integers(0, 1024, n).astype(np.uint16) << 6
    o16 = np.empty_like(v)
    lib.apply16(v, dd, n, 6, 1023.0, o16)
    f = ((v >> 6).astype(np.float32) / np.float32(1023)).clip(0, 1)
    ref16 = np.clip(np.rint(np.clip(f + dd / np.float32(255), 0, 1) * np.float32(1023)), 0, 1023).astype(np.uint16) << 6
    np.testing.assert_array_equal(o16, ref16)


def test_apply_signed_range(lib: ctypes.CDLL, rng: np.random.Generator) -> None:
    """Float samples in [-1, 1] (value_range=(-1, 1)) get the change of marking (s + 1) / 2 in [0, 1]."""
    n = 100_000
    dd = (rng.standard_normal(n) * 3).astype(np.float32)
    s = (rng.random(n) * 2 - 1).astype(np.float32)
    o = np.empty_like(s)
    lib.applys(s, dd, n, o)
    np.testing.assert_array_equal(o, np.clip(s + dd / np.float32(127.5), -1, 1))
    u = np.clip((s + np.float32(1)) / np.float32(2) + dd / np.float32(255), 0, 1) * np.float32(2) - np.float32(1)
    np.testing.assert_allclose(o, u, rtol=0, atol=3e-7)


# ---- the kernel source of csrc/cuda/image_cuda.cu on host threads ---------------------------------------------------

HALF_SHIM = r"""#pragma once
#include <cstdint>
#include <cstring>
struct __half { _Float16 v; };
inline float __half2float(__half h) { return static_cast<float>(h.v); }
inline __half __float2half_rn(float f) { return __half{static_cast<_Float16>(f)}; }
struct __nv_bfloat16 { std::uint16_t b; };
inline float __bfloat162float(__nv_bfloat16 h) {
  const std::uint32_t u = static_cast<std::uint32_t>(h.b) << 16; float f; std::memcpy(&f, &u, 4); return f; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  std::uint32_t u; std::memcpy(&u, &f, 4); u += 0x7FFFu + ((u >> 16) & 1u);
  return __nv_bfloat16{static_cast<std::uint16_t>(u >> 16)}; }
"""

KERNEL_HARNESS = r"""
using namespace provmark::image;
extern "C" {
int emu_fold_many(const std::uint64_t* planes, const double* periods, const double* thetas, long long k, long long h,
                  long long w, double* out) {
  std::vector<cuda::FoldHypothesis> hyps(k);
  for (long long i = 0; i < k; ++i)
    hyps[i] = cuda::FoldHypothesis{reinterpret_cast<const float*>(planes[i]), periods[i], thetas[i]};
  cuda::FoldBatch b; b.hyps_host = hyps.data(); b.n_hyp = k; b.height = h; b.width = w; b.out = out;
  cuda::fold_batch(b, 0); return 0;
}
int emu_reliability(const float* wv, const float* den, long long n, long long h, long long w, double floor,
                    float* out) {
  cuda::reliability(wv, den, n, h, w, floor, out, 0); return 0;
}
int emu_sync(const double* tiles, long long n, const float* spectra, double* out) {
  cuda::SyncBatch b; b.tiles = tiles; b.n = n; b.spectra = spectra; b.out = out;
  cuda::sync_batch(b, 0); return 0;
}
int emu_lattice(const float* wv, long long h, long long w, long long fh, long long fw, double sy, double sx,
                const std::uint8_t* rows, const std::uint8_t* cols, const double* periods, long long np_,
                const double* thetas, long long nt, double* out) {
  cuda::LatticeParams p; p.w = wv; p.height = h; p.width = w; p.fft_h = fh; p.fft_w = fw; p.sigma_y = sy;
  p.sigma_x = sx; p.notch_rows_host = rows; p.notch_cols_host = cols; p.periods_host = periods; p.n_periods = np_;
  p.thetas_host = thetas; p.n_thetas = nt; p.out_host = out;
  cuda::lattice_scores(p, 0); return 0;
}
int emu_whiten(const float* y, long long n, long long h, long long w, double chip, float* out, float* den) {
  cuda::whiten(y, n, h, w, chip, nullptr, out, den, 0); return 0;
}
static cuda::FrameView view(void* p, int type, long long n, long long h, long long w, float scale, float lo) {
  cuda::FrameView v; v.data = p; v.type = static_cast<cuda::SampleType>(type); v.n = n; v.height = h; v.width = w;
  v.channels = 3; v.stride_n = h * w * 3; v.stride_y = w * 3; v.stride_x = 3; v.stride_c = 1; v.scale = scale;
  v.lo = lo; return v;
}
int emu_resample(void* rgb, int type, long long n, long long h, long long w, float scale, float lo, long long oh,
                 long long ow, float* out) {
  cuda::resample_area(view(rgb, type, n, h, w, scale, lo), out, oh, ow, 0); return 0;
}
int emu_embed(void* in, void* out, int type, long long n, long long h, long long w, float scale, float lo,
              const float* tiles, double chip, double target, double flat) {
  cuda::EmbedParams p; p.in = view(in, type, n, h, w, scale, lo); p.out = view(out, type, n, h, w, scale, lo);
  p.tiles_host = tiles; p.chip = chip; p.target_rms = target; p.flat_rms = flat;
  cuda::embed(p, 0); return 0;
}
}
"""


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    cxx = shutil.which("g++")
    cu = CSRC / "cuda" / "image_cuda.cu"
    if cxx is None or not cu.exists():
        pytest.skip("needs g++ and the source tree (csrc/)")
    d = tmp_path_factory.mktemp("image_cuda_host")
    probe = "#include <barrier>\n#include <atomic>\nint main() { std::barrier<> b(1); double x = 0;"
    probe += " std::atomic_ref<double>(x).fetch_add(1.0); _Float16 h = 1; return int(h) - 1; }\n"
    (d / "probe.cpp").write_text(probe)
    if subprocess.run([cxx, "-std=c++20", "-pthread", str(d / "probe.cpp"), "-o", str(d / "probe")]).returncode:
        pytest.skip("g++ without C++20 <barrier> / atomic_ref<double> / _Float16")
    (d / "inc").mkdir()
    (d / "inc" / "cuda_runtime.h").write_text(RUNTIME_SHIM)
    (d / "inc" / "cuda_fp16.h").write_text(HALF_SHIM)
    (d / "inc" / "cuda_bf16.h").write_text("#pragma once\n#include <cuda_fp16.h>\n")
    (d / "all.cpp").write_text(host_launches(cu.read_text()) + KERNEL_HARNESS)
    # the FFT line kernels with 32 threads per block (256 on a device): the kernels are written for any
    # power-of-two block, and host threads pay per barrier
    cmd = [cxx, "-std=c++20", "-O2", "-ffp-contract=off", "-pthread", "-shared", "-fPIC"]
    cmd += ["-DPROVMARK_LATTICE_THREADS=32"]
    cmd += ["-I", str(d / "inc"), "-I", str(CSRC), str(d / "all.cpp"), "-o", str(d / "k.so")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    lib = ctypes.CDLL(str(d / "k.so"))
    f32, f64, u64 = (ndpointer(t, flags="C") for t in (np.float32, np.float64, np.uint64))
    ll, dbl, fl, vp = ctypes.c_longlong, ctypes.c_double, ctypes.c_float, ctypes.c_void_p
    lib.emu_fold_many.argtypes = [u64, f64, f64, ll, ll, ll, f64]
    lib.emu_reliability.argtypes = [f32, f32, ll, ll, ll, dbl, f32]
    lib.emu_whiten.argtypes = [f32, ll, ll, ll, dbl, f32, f32]
    lib.emu_sync.argtypes = [f64, ll, f32, f64]
    u8 = ndpointer(np.uint8, flags="C")
    lib.emu_lattice.argtypes = [f32, ll, ll, ll, ll, dbl, dbl, u8, u8, f64, ll, f64, ll, f64]
    lib.emu_resample.argtypes = [vp, ctypes.c_int, ll, ll, ll, fl, fl, ll, ll, f32]
    lib.emu_embed.argtypes = [vp, vp, ctypes.c_int, ll, ll, ll, fl, fl, f32, dbl, dbl, dbl]
    return lib


def test_kernels_on_host_threads_fold_many_and_reliability(kernels: ctypes.CDLL) -> None:
    """fold_batch (many hypotheses over two planes in one launch) and reliability, run from the kernel source on
    host threads, against the CPU kernels and the host engine's reliability weights."""
    y = _core.image_luma(np.ascontiguousarray(data.chelsea()[100:196, 150:278]))  # 96 x 128
    h, w = y.shape
    host = image._HostPlanes(y)
    planes = [host.whiten(c) for c in (1.6, 3.2)]
    hyps = [(0, 51.2, 0.0), (1, 102.4, 0.0), (0, 53.0, 0.04), (1, 99.0, -0.12), (0, 40.0, 0.0)]
    ptrs = np.array([planes[p][0].ctypes.data for p, _, _ in hyps], np.uint64)
    periods = np.array([x[1] for x in hyps])
    thetas = np.array([x[2] for x in hyps])
    out = np.full((len(hyps), 128, 128), np.nan)
    kernels.emu_fold_many(ptrs, periods, thetas, len(hyps), h, w, out)
    for k, (p, period, theta) in enumerate(hyps):
        # the same bins as the CPU fold; double sums in another order (atomics)
        np.testing.assert_allclose(out[k], _core.image_fold(planes[p][0], period, theta), rtol=1e-12, atol=1e-12)
    wv, den = planes[1]
    got = np.empty_like(wv)
    kernels.emu_reliability(wv, den, 1, h, w, image.RELIABILITY_FLOOR, got)
    np.testing.assert_allclose(got, host.reliability(planes[1])[0], rtol=2e-6, atol=1e-6)
    # two planes in one call: each gets its own means
    two_w, two_d = np.stack([planes[0][0], wv]), np.stack([planes[0][1], den])
    got2 = np.empty_like(two_w)
    kernels.emu_reliability(two_w, two_d, 2, h, w, image.RELIABILITY_FLOOR, got2)
    np.testing.assert_allclose(got2[1], got, rtol=0, atol=0)
    np.testing.assert_allclose(got2[0], host.reliability(planes[0])[0], rtol=2e-6, atol=1e-6)
    # whitening from the kernel source against the CPU's
    wk, dk = np.empty_like(y), np.empty_like(y)
    kernels.emu_whiten(y, 1, h, w, 3.2, wk, dk)
    np.testing.assert_allclose(dk, den, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(wk, wv, rtol=0, atol=1e-4 * float(np.abs(wv).max()))


def test_kernels_on_host_threads_signed_float_range(kernels: ctypes.CDLL, rng: np.random.Generator) -> None:
    """value_range=(-1, 1) in the kernels: luma (resampled) and the marked pixels of float32 [-1, 1] frames equal
    those of the same frames scaled to [0, 1], scaled back."""
    img = np.ascontiguousarray(data.coffee()[:80, :112])
    unit = (img / 255.0).astype(np.float32)
    signed = np.ascontiguousarray(unit * np.float32(2) - np.float32(1))
    h, w = unit.shape[:2]
    outs = [np.empty((1, 40, 56), np.float32) for _ in range(2)]
    kernels.emu_resample(unit.ctypes.data, 2, 1, h, w, 255.0, 0.0, 40, 56, outs[0])
    kernels.emu_resample(signed.ctypes.data, 2, 1, h, w, 127.5, -1.0, 40, 56, outs[1])
    np.testing.assert_allclose(outs[1], outs[0], rtol=0, atol=2e-4)
    np.testing.assert_allclose(outs[0][0], _core.image_resample(_core.image_luma(unit), 40, 56), rtol=0, atol=2e-4)
    tiles = rng.standard_normal((1, 32, 32)).astype(np.float32)
    mu, ms = np.empty_like(unit), np.empty_like(signed)
    kernels.emu_embed(unit.ctypes.data, mu.ctypes.data, 2, 1, h, w, 255.0, 0.0, tiles, 2.0, 1.75, 0.0)
    kernels.emu_embed(signed.ctypes.data, ms.ctypes.data, 2, 1, h, w, 127.5, -1.0, tiles, 2.0, 1.75, 0.0)
    assert np.abs(mu - unit).max() > 1e-3  # marked
    np.testing.assert_allclose(ms, mu * 2 - 1, rtol=0, atol=2e-6)
    assert ms.min() >= -1.0 and ms.max() <= 1.0
    # in place takes the stored-mask pass: same pixels
    inplace = signed.copy()
    kernels.emu_embed(inplace.ctypes.data, inplace.ctypes.data, 2, 1, h, w, 127.5, -1.0, tiles, 2.0, 1.75, 0.0)
    np.testing.assert_array_equal(inplace, ms)


def test_kernels_on_host_threads_flat_limit(kernels: ctypes.CDLL) -> None:
    """flat_rms in the tile kernels (the flat_gains sums per tile, two gains per frame: the mask's floor and its
    excess) equals the CPU's fused embedder, out of place and in place; two frames with their own gains."""
    grey = (data.moon()[:160, :224].astype(np.float32) * np.float32(0.8) + np.float32(20)) / np.float32(255)
    moon = np.repeat(grey[..., None], 3, axis=-1)
    frames = np.ascontiguousarray(np.stack([moon, moon[::-1, ::-1] * np.float32(0.9)]))  # [2, H, W, 3] float32
    n, h, w = frames.shape[:3]
    tiles = np.random.default_rng(4).standard_normal((n, 32, 32)).astype(np.float32)
    out = np.empty_like(frames)
    kernels.emu_embed(frames.ctypes.data, out.ctypes.data, 2, n, h, w, 255.0, 0.0, tiles, 2.3, 1.75, 0.7)
    inplace = frames.copy()
    kernels.emu_embed(inplace.ctypes.data, inplace.ctypes.data, 2, n, h, w, 255.0, 0.0, tiles, 2.3, 1.75, 0.7)
    for i in range(n):
        q = _core.image_embed_analyse(frames[i])[0]
        cpu = _core.image_embed_fused(frames[i], q, tiles[i], 2.3, 1.75, 0.7)
        plain = _core.image_embed_fused(frames[i], q, tiles[i], 2.3, 1.75)
        for got in (out[i], inplace[i]):
            # float rounding of the mask and of the sums; a pixel on the floor's edge may take the other gain
            off = np.abs(got - cpu).max(axis=-1) > 2e-5
            assert off.mean() < 1e-4
        flat = q == 0
        d_cpu, d_plain = (cpu - frames[i])[..., 0] * 255, (plain - frames[i])[..., 0] * 255
        assert np.sqrt(np.mean(d_cpu[flat] ** 2)) == pytest.approx(0.7, rel=1e-3)
        assert np.sqrt(np.mean(d_plain[flat] ** 2)) > 1.0  # the limit did bind


def _sync_cases() -> list[tuple[str, np.ndarray, list[tuple[float, float]]]]:
    """Working-size lumas of real photos (marked, mirrored after marking, cropped to 25 %, unmarked) and the
    hypotheses to score: the nominal lattice and the geometry the host engine's detection settles on."""
    key = pm.Key.from_bytes(bytes(range(3, 35)))
    cases = []
    for name, photo in (("astronaut", data.astronaut()), ("coffee", data.coffee()), ("chelsea", data.chelsea())):
        m = image.embed(photo, 0x0123456789ABCDEF, key)
        h, w = m.shape[:2]
        for label, x in ((name, m), (f"{name}-crop25", m[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2]),
                         (f"{name}-unmarked", photo)):  # fmt: skip
            cases.append((label, np.ascontiguousarray(x)))
    cases.append(("astronaut-mirrored", np.ascontiguousarray(cases[0][1][:, ::-1])))
    out = []
    for label, x in cases:
        h, w = x.shape[:2]
        hw, ww, s = image._work_shape(h, w)
        y = _core.image_luma_work(x, hw, ww)
        det = image._detect_work(image._HostPlanes(y), h, w, key.secret_bytes(), 64, image.DEFAULT_FPR, False)
        nominal = image.TILE * image._chip_size(min(h, w)) * s
        found = det.details["period_px"] * s, float(np.radians(det.details["rotation_deg"]))
        out.append((label, y, [(nominal, 0.0), found, (nominal * 1.37, 0.05)]))
    return out


def test_kernels_on_host_threads_sync_statistic(kernels: ctypes.CDLL) -> None:
    """The device sync statistic (cuda::sync_batch: the float32 radix-2 FFTs written in image_cuda.cu, run on host
    threads) against image._Search.evaluate (scipy's float32 FFTs) on real photos' folded tiles: the same best
    shift and flip, z within 1e-6 (relative; measured 1.5e-7), and the spectra layout of provmark.gpu._sync_spectra."""
    from provmark import gpu

    key = pm.Key.from_bytes(bytes(range(3, 35)))
    tabs = image._tables(key.secret_bytes(), 64)
    spectra = gpu._sync_spectra(key.secret_bytes(), 64)
    tiles, ref, labels = [], [], []
    for label, y, hyps in _sync_cases():
        search = image._Search(y, tabs)
        for period, theta in hyps:
            z, shift, flip, f = search.evaluate(period, theta)
            tiles.append(f)
            ref.append((z, *shift, float(flip)))
            labels.append(f"{label} {period:.2f} {theta:.3f}")
    got = np.full((len(tiles), 4), np.nan)
    kernels.emu_sync(np.ascontiguousarray(np.stack(tiles)), len(tiles), spectra, got)
    ref_a = np.array(ref)
    rel = np.abs(got[:, 0] - ref_a[:, 0]) / np.abs(ref_a[:, 0])
    print(f"sync z: max relative difference {rel.max():.2e}, max absolute {np.abs(got[:, 0] - ref_a[:, 0]).max():.2e}")
    for i, label in enumerate(labels):
        assert got[i, 1:].tolist() == ref_a[i, 1:].tolist(), (label, got[i], ref_a[i])
        assert got[i, 0] == pytest.approx(ref_a[i, 0], rel=1e-6), label
    assert ref_a[:, 3].any() and not ref_a[:, 3].all()  # both flips occur
    assert (ref_a[:, 0] > 8).sum() >= 6 and (ref_a[:, 0] < 6).sum() >= 6  # marked peaks and noise maxima


def _lattice_cases() -> list[tuple[str, np.ndarray, float]]:
    """Whitened working pictures the lattice search reads (the nominal chip size, as image._detect_work asks):
    astronaut, coffee and chelsea marked, cropped to 25 %, rotated 3 degrees and unmarked, two 2x upscales, and a
    panorama whose FFT rows are longer than the kernel's shared-memory line (global scratch)."""
    from skimage import transform

    key = pm.Key.from_bytes(bytes(range(3, 35)))
    pics = []
    for name, photo in (("astronaut", data.astronaut()), ("coffee", data.coffee()), ("chelsea", data.chelsea())):
        m = image.embed(photo, 0x0123456789ABCDEF, key)
        h, w = m.shape[:2]
        pics += [(name, m), (f"{name}-crop25", m[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2]),
                 (f"{name}-rot3", transform.rotate(m, 3.0, mode="reflect").astype(np.float32)),
                 (f"{name}-unmarked", photo)]  # fmt: skip
    for name, x in (("coffee-2x", pics[4][1]), ("chelsea-unmarked-2x", pics[11][1])):
        pics.append((name, np.repeat(np.repeat(x, 2, axis=0), 2, axis=1)))
    pics.append(("astronaut-panorama", np.concatenate([pics[0][1]] * 4, axis=1)))
    out = []
    for label, x in pics:
        x = np.ascontiguousarray(x)
        h, w = x.shape[:2]
        hw, ww, s = image._work_shape(h, w)
        y = _core.image_luma_work(x, hw, ww)
        prior = image.TILE * image._chip_size(min(h, w)) * s
        out.append((label, image._Search(y, None).whitened(prior / image.TILE), s))  # type: ignore[arg-type]
    return out


def test_kernels_on_host_threads_lattice_candidates(kernels: ctypes.CDLL) -> None:
    """The device lattice search (cuda::lattice_scores: the mixed-radix float32 FFTs written in image_cuda.cu at
    the host's sizes, the flattening, the inverse FFT, the box and the scores; run on host threads) against
    image._lattice_candidates (scipy's float32 FFTs and the C++ flattening and scoring) on real photos: the same
    8 candidates (period, angle), and scores within 1e-4 of the largest."""
    worst = 0.0
    for label, wv, s in _lattice_cases():
        fh, fw, sigma, rows, cols, pgrid, tgrid = image._lattice_plan(*wv.shape, s)  # type: ignore[misc]
        got = np.full((len(pgrid), len(tgrid)), np.nan)
        kernels.emu_lattice(wv, *wv.shape, fh, fw, *sigma, rows.astype(np.uint8), cols.astype(np.uint8), pgrid,
                            len(pgrid), tgrid, len(tgrid), got)  # fmt: skip
        ref = image._lattice_candidates(wv, image.N_CANDIDATES, s)
        assert len(ref) == image.N_CANDIDATES
        sc = image._lattice_scores(wv, fh, fw, sigma, rows, cols, pgrid, tgrid)  # the host's, for the tolerance
        diff = float(np.abs(got - sc).max() / np.abs(sc).max())
        worst = max(worst, diff)
        print(f"{label}: {wv.shape} -> FFT {fh} x {fw}, scores within {diff:.1e} of the largest")
        assert diff < 1e-4, label
        assert image._lattice_pick(got, pgrid, tgrid, image.N_CANDIDATES) == ref, label
    print(f"lattice scores: worst relative difference {worst:.1e}")
