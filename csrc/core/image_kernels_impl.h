// Bodies of the per-ISA image row kernels (declared in image_kernels_isa.h); included by
// image_kernels_baseline.cpp and image_kernels_avx2.cpp with PROVMARK_ISA_NS set. Loops are written so the
// compiler maps them onto vectors (pixels inside, taps outside). Only raw pointers and static functions
// here: no shared inline or template symbol the linker could merge across ISA levels.
#ifndef PROVMARK_ISA_NS
#error "define PROVMARK_ISA_NS before including image_kernels_impl.h"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "core/image_common.h"
#include "core/image_kernels_isa.h"

namespace provmark::image {
namespace PROVMARK_ISA_NS {
namespace {

// Two separate selects (a nested ?: keeps GCC from vectorising the loop).
static inline float clampf(float v, float lo, float hi) {
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  return v;
}

// Sum of squares with 8 partial sums (a fixed order the compiler may vectorise without reassociating).
static float sum_squares(const float* d, std::size_t w) {
  float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  std::size_t x = 0;
  for (; x + 8 <= w; x += 8)
    for (int l = 0; l < 8; ++l) acc[l] += d[x + l] * d[x + l];
  float e = 0.0f;
  for (; x < w; ++x) e += d[x] * d[x];
  for (int l = 0; l < 8; ++l) e += acc[l];
  return e;
}

template <typename T>
static void luma_row_t(const T* s, int ps, std::size_t w, float scale, float* o) {
  if (ps == 1) {
    for (std::size_t x = 0; x < w; ++x) o[x] = static_cast<float>(s[x]) * scale;
  } else if (ps == 3) {
    for (std::size_t x = 0; x < w; ++x)
      o[x] = luma_of(static_cast<float>(s[3 * x]), static_cast<float>(s[3 * x + 1]),
                     static_cast<float>(s[3 * x + 2]), scale);
  } else {
    for (std::size_t x = 0; x < w; ++x)
      o[x] = luma_of(static_cast<float>(s[4 * x]), static_cast<float>(s[4 * x + 1]),
                     static_cast<float>(s[4 * x + 2]), scale);
  }
}

static void luma_row(const void* src, int type, int ps, std::size_t w, float* out) {
  switch (type) {
    case 0:
      luma_row_t(static_cast<const uint8_t*>(src), ps, w, 1.0f, out);
      break;
    case 1:
      luma_row_t(static_cast<const float*>(src), ps, w, 255.0f, out);
      break;
    default:
      luma_row_t(static_cast<const double*>(src), ps, w, 255.0f, out);
      break;
  }
}

static void box_row(const float* pp, std::size_t w, int radius, float* o) {
  const float inv = 1.0f / static_cast<float>(2 * radius + 1);
  if (radius == 1) {
    for (std::size_t x = 0; x < w; ++x) o[x] = ((pp[x] + pp[x + 1]) + pp[x + 2]) * inv;
    return;
  }
  if (radius == 3) {
    for (std::size_t x = 0; x < w; ++x)
      o[x] = (((((pp[x] + pp[x + 1]) + pp[x + 2]) + pp[x + 3]) + pp[x + 4]) + pp[x + 5] + pp[x + 6]) * inv;
    return;
  }
  for (std::size_t x = 0; x < w; ++x) o[x] = pp[x];
  for (int t = 1; t <= 2 * radius; ++t) {
    const float* q = pp + t;
    for (std::size_t x = 0; x < w; ++x) o[x] += q[x];
  }
  for (std::size_t x = 0; x < w; ++x) o[x] *= inv;
}

static void highpass_row(const float* y, const float* a, const float* b, const float* c, std::size_t w,
                         float* o) {
  const float inv3 = 1.0f / 3.0f;
  for (std::size_t x = 0; x < w; ++x) o[x] = std::fabs(y[x] - ((a[x] + b[x]) + c[x]) * inv3);
}

static void mask_row(const float* const* rows, int n, std::size_t w, float* m, uint16_t* q) {
  const float inv = 1.0f / static_cast<float>(n);
  if (n == 7) {
    const float *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3], *r4 = rows[4], *r5 = rows[5],
                *r6 = rows[6];
    for (std::size_t x = 0; x < w; ++x)
      m[x] = clampf((((((r0[x] + r1[x]) + r2[x]) + r3[x]) + r4[x]) + r5[x] + r6[x]) * inv, kMaskLo, kMaskHi);
  } else {
    for (std::size_t x = 0; x < w; ++x) m[x] = rows[0][x];
    for (int k = 1; k < n; ++k)
      for (std::size_t x = 0; x < w; ++x) m[x] += rows[k][x];
    for (std::size_t x = 0; x < w; ++x) m[x] = clampf(m[x] * inv, kMaskLo, kMaskHi);
  }
  if (q != nullptr)
    for (std::size_t x = 0; x < w; ++x)
      q[x] = static_cast<uint16_t>(static_cast<int>((m[x] - kMaskLo) * kMaskQ + 0.5f));
}

static void axpy_row(float wgt, const float* s, std::size_t w, float* acc) {
  for (std::size_t x = 0; x < w; ++x) acc[x] += wgt * s[x];
}

static float pattern_row(const uint16_t* q, const float* mf, const float* p0, const float* p1, float fr,
                         std::size_t w, float* d) {
  const float f0 = 1.0f - fr;
  const float iq = 1.0f / kMaskQ;
  if (q != nullptr) {
    for (std::size_t x = 0; x < w; ++x)
      d[x] = (kMaskLo + static_cast<float>(q[x]) * iq) * (f0 * p0[x] + fr * p1[x]);
  } else if (mf != nullptr) {
    for (std::size_t x = 0; x < w; ++x) d[x] = mf[x] * (f0 * p0[x] + fr * p1[x]);
  } else {
    for (std::size_t x = 0; x < w; ++x) d[x] = f0 * p0[x] + fr * p1[x];
  }
  return sum_squares(d, w);
}

// The flat limit's row pass (flat_gains in image_math.h): the row's sums of p^2, p^2 e, p^2 e^2 (p the
// pattern), p^2 on flat pixels and their count (e = q / kMaskQ, the mask's excess; flat: q == 0), each with 8
// partial sums (a fixed order the compiler may vectorise).
static void flat_sums_row(const uint16_t* q, const float* p0, const float* p1, float fr, std::size_t w,
                          float* sums) {
  const float f0 = 1.0f - fr;
  const float iq = 1.0f / kMaskQ;
  float a[8] = {}, b[8] = {}, c[8] = {}, f[8] = {}, n[8] = {};
  std::size_t x = 0;
#if defined(__AVX2__)
  // the same eight partial sums in vector lanes (GCC leaves the select and the uint16 conversion scalar)
  {
    const __m256 vf0 = _mm256_set1_ps(f0), vfr = _mm256_set1_ps(fr), viq = _mm256_set1_ps(iq);
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 va = _mm256_setzero_ps(), vb = va, vc = va, vf = va, vn = va;
    for (; x + 8 <= w; x += 8) {
      const __m256 pv = _mm256_add_ps(_mm256_mul_ps(vf0, _mm256_loadu_ps(p0 + x)),
                                      _mm256_mul_ps(vfr, _mm256_loadu_ps(p1 + x)));
      const __m256i q32 = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + x)));
      const __m256 e = _mm256_mul_ps(_mm256_cvtepi32_ps(q32), viq);
      const __m256 flat = _mm256_castsi256_ps(_mm256_cmpeq_epi32(q32, _mm256_setzero_si256()));
      const __m256 pp = _mm256_mul_ps(pv, pv), ppe = _mm256_mul_ps(pp, e);
      va = _mm256_add_ps(va, pp);
      vb = _mm256_add_ps(vb, ppe);
      vc = _mm256_add_ps(vc, _mm256_mul_ps(ppe, e));
      vf = _mm256_add_ps(vf, _mm256_and_ps(flat, pp));
      vn = _mm256_add_ps(vn, _mm256_and_ps(flat, one));
    }
    _mm256_storeu_ps(a, va);
    _mm256_storeu_ps(b, vb);
    _mm256_storeu_ps(c, vc);
    _mm256_storeu_ps(f, vf);
    _mm256_storeu_ps(n, vn);
  }
#endif
  for (; x + 8 <= w; x += 8)
    for (int l = 0; l < 8; ++l) {
      const float pv = f0 * p0[x + l] + fr * p1[x + l];
      const float pp = pv * pv, e = static_cast<float>(q[x + l]) * iq, flat = q[x + l] == 0 ? 1.0f : 0.0f;
      a[l] += pp;
      b[l] += pp * e;
      c[l] += pp * e * e;
      f[l] += pp * flat;
      n[l] += flat;
    }
  float t[5] = {};
  for (; x < w; ++x) {
    const float pv = f0 * p0[x] + fr * p1[x];
    const float pp = pv * pv, e = static_cast<float>(q[x]) * iq, flat = q[x] == 0 ? 1.0f : 0.0f;
    t[0] += pp;
    t[1] += pp * e;
    t[2] += pp * e * e;
    t[3] += pp * flat;
    t[4] += flat;
  }
  for (int l = 0; l < 8; ++l) {
    t[0] += a[l];
    t[1] += b[l];
    t[2] += c[l];
    t[3] += f[l];
    t[4] += n[l];
  }
  for (int j = 0; j < 5; ++j) sums[j] = t[j];
}

// The flat limit's delta: d[x] = p (gf + gx e), p the pattern, e = q / kMaskQ.
static void split_row(const uint16_t* q, const float* p0, const float* p1, float fr, float gf, float gx,
                      std::size_t w, float* d) {
  const float f0 = 1.0f - fr;
  const float iq = 1.0f / kMaskQ;
  for (std::size_t x = 0; x < w; ++x)
    d[x] = (f0 * p0[x] + fr * p1[x]) * (gf + gx * (static_cast<float>(q[x]) * iq));
}

// n contiguous uint8 samples: o = round-half-up(clip(s + dd, 0, 255)), clipped after truncation (the same
// result: a value below 0 truncates to <= 0, one above 255 to >= 255).
static void add_u8(const uint8_t* s, const float* dd, std::size_t n, uint8_t* o) {
  for (std::size_t i = 0; i < n; ++i) {
    int v = static_cast<int>(static_cast<float>(s[i]) + dd[i] + 0.5f);
    v = v < 0 ? 0 : v;
    v = v > 255 ? 255 : v;
    o[i] = static_cast<uint8_t>(v);
  }
}

template <typename T>
static void add_float(const T* s, const float* dd, std::size_t n, T* o) {
  for (std::size_t i = 0; i < n; ++i) {
    T v = s[i] + static_cast<T>(dd[i]) / static_cast<T>(255);
    v = v < T(0) ? T(0) : v;
    v = v > T(1) ? T(1) : v;
    o[i] = v;
  }
}

template <typename T>
static void apply_t(const T* s, T* o, int ps, const float* d, float g, std::size_t w, float* scratch) {
  float* dd = scratch;
  if (ps == 1) {
    for (std::size_t x = 0; x < w; ++x) dd[x] = g * d[x];
  } else if (ps == 3) {
    for (std::size_t x = 0; x < w; ++x) {
      const float v = g * d[x];
      dd[3 * x] = v;
      dd[3 * x + 1] = v;
      dd[3 * x + 2] = v;
    }
  } else {
    for (std::size_t x = 0; x < w; ++x) {
      const float v = g * d[x];
      dd[4 * x] = v;
      dd[4 * x + 1] = v;
      dd[4 * x + 2] = v;
      dd[4 * x + 3] = 0.0f;
    }
  }
  const std::size_t n = w * static_cast<std::size_t>(ps);
  if constexpr (sizeof(T) == 1) {
    add_u8(s, dd, n, o);
  } else {
    add_float(s, dd, n, o);
  }
  if (ps == 4)
    for (std::size_t x = 0; x < w; ++x) o[4 * x + 3] = s[4 * x + 3];  // alpha exactly as given
}

static void apply_row(const void* src, void* dst, int type, int ps, const float* d, float g, std::size_t w,
                      float* scratch) {
  switch (type) {
    case 0:
      apply_t(static_cast<const uint8_t*>(src), static_cast<uint8_t*>(dst), ps, d, g, w, scratch);
      break;
    case 1:
      apply_t(static_cast<const float*>(src), static_cast<float*>(dst), ps, d, g, w, scratch);
      break;
    default:
      apply_t(static_cast<const double*>(src), static_cast<double*>(dst), ps, d, g, w, scratch);
      break;
  }
}

// Symmetric taps (k[t] == k[2r - t]): pairs share one multiply. The AVX2 build of the horizontal pass keeps
// 32 outputs in registers across all taps (one load per tap input, no load/store of the output per tap);
// each output gets the same products in the same order as the scalar loop (o = kc c, then
// o = fma(kt, a + b, o) tap by tap): bit-identical results (checked against the loop it replaced).
#if defined(__AVX2__)
static inline void blur_taps_avx2(const float* pp, const float* k, int radius, std::size_t w, float* o,
                                  std::size_t& x0) {
  const __m256 kc = _mm256_set1_ps(k[radius]);
  std::size_t x = 0;
  for (; x + 32 <= w; x += 32) {
    const float* c = (pp + radius) + x;
    __m256 a0 = _mm256_mul_ps(kc, _mm256_loadu_ps(c)), a1 = _mm256_mul_ps(kc, _mm256_loadu_ps(c + 8));
    __m256 a2 = _mm256_mul_ps(kc, _mm256_loadu_ps(c + 16)), a3 = _mm256_mul_ps(kc, _mm256_loadu_ps(c + 24));
    for (int t = 0; t < radius; ++t) {
      const __m256 kt = _mm256_set1_ps(k[t]);
      const float* a = (pp + t) + x;
      const float* b = (pp + 2 * radius - t) + x;
      a0 = _mm256_fmadd_ps(kt, _mm256_add_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b)), a0);
      a1 = _mm256_fmadd_ps(kt, _mm256_add_ps(_mm256_loadu_ps(a + 8), _mm256_loadu_ps(b + 8)), a1);
      a2 = _mm256_fmadd_ps(kt, _mm256_add_ps(_mm256_loadu_ps(a + 16), _mm256_loadu_ps(b + 16)), a2);
      a3 = _mm256_fmadd_ps(kt, _mm256_add_ps(_mm256_loadu_ps(a + 24), _mm256_loadu_ps(b + 24)), a3);
    }
    _mm256_storeu_ps(o + x, a0);
    _mm256_storeu_ps(o + x + 8, a1);
    _mm256_storeu_ps(o + x + 16, a2);
    _mm256_storeu_ps(o + x + 24, a3);
  }
  for (; x + 8 <= w; x += 8) {
    __m256 a0 = _mm256_mul_ps(kc, _mm256_loadu_ps((pp + radius) + x));
    for (int t = 0; t < radius; ++t)
      a0 = _mm256_fmadd_ps(
          _mm256_set1_ps(k[t]),
          _mm256_add_ps(_mm256_loadu_ps((pp + t) + x), _mm256_loadu_ps((pp + 2 * radius - t) + x)), a0);
    _mm256_storeu_ps(o + x, a0);
  }
  x0 = x;
}
#endif

static void blur_h_row(const float* pp, const float* k, int radius, std::size_t w, float* o) {
  std::size_t x0 = 0;
#if defined(__AVX2__)
  blur_taps_avx2(pp, k, radius, w, o, x0);
#endif
  const float kc = k[radius];
  const float* c = pp + radius;
  for (std::size_t x = x0; x < w; ++x) o[x] = kc * c[x];
  for (int t = 0; t < radius; ++t) {
    const float kt = k[t];
    const float* a = pp + t;
    const float* b = pp + 2 * radius - t;
    for (std::size_t x = x0; x < w; ++x) o[x] += kt * (a[x] + b[x]);
  }
}

// (Register blocking as in blur_h_row was measured 5-10 % slower here: a block of 32 outputs reads 2r + 1
// rows at once, too many streams for the prefetcher; tap by tap, each pass streams two rows.)
static void blur_v_row(const float* const* rows, const float* k, int radius, std::size_t w, float* o) {
  const float kc = k[radius];
  const float* c = rows[radius];
  for (std::size_t x = 0; x < w; ++x) o[x] = kc * c[x];
  for (int t = 0; t < radius; ++t) {
    const float kt = k[t];
    const float* a = rows[t];
    const float* b = rows[2 * radius - t];
    for (std::size_t x = 0; x < w; ++x) o[x] += kt * (a[x] + b[x]);
  }
}

static void resample_h_row(const float* in, const int32_t* first, const float* wts, int taps,
                           std::size_t out_w, float* o) {
  std::size_t x = 0;
#if defined(__AVX2__)
  // eight outputs at a time, one gather per tap (the same products and order as the scalar loop)
  for (; x + 8 <= out_w; x += 8) {
    const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(first + x));
    __m256 acc = _mm256_setzero_ps();
    for (int t = 0; t < taps; ++t) {
      const __m256 v = _mm256_i32gather_ps(in + t, idx, 4);
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(wts + static_cast<std::size_t>(t) * out_w + x), v, acc);
    }
    _mm256_storeu_ps(o + x, acc);
  }
#endif
  for (; x < out_w; ++x) {
    float acc = 0.0f;
    for (int t = 0; t < taps; ++t) acc += wts[static_cast<std::size_t>(t) * out_w + x] * in[first[x] + t];
    o[x] = acc;
  }
}

}  // namespace

const ImageKernels& image_kernels_table() {
  static const ImageKernels table = {luma_row,  box_row,     highpass_row,  mask_row,
                                     axpy_row,  pattern_row, flat_sums_row, split_row,
                                     apply_row, blur_h_row,  blur_v_row,    resample_h_row};
  return table;
}

}  // namespace PROVMARK_ISA_NS
}  // namespace provmark::image
