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
