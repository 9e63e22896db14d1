// Per-ISA row kernels of the image engine (see simd.h for the dispatch pattern): the bodies live in
// image_kernels_impl.h, compiled once for the x86-64 baseline (image_kernels_baseline.cpp) and once with
// AVX2 + FMA (image_kernels_avx2.cpp). Callers take the table of the level in use from image_kernels().
// Every kernel works on raw rows: no allocation, no threads (the callers in image_fused.cpp and
// image_detect.cpp own both).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/image_common.h"

namespace provmark::image {

// The mask quantisation kMaskQ is in image_common.h.
struct ImageKernels {
  // out[x] = luma of pixel x (grey levels) of one row of `type` pixels (0 u8, 1 f32, 2 f64) with `ps`
  // interleaved channels (1: grey; 3/4: R, G, B(, A)).
  void (*luma_row)(const void* src, int type, int ps, std::size_t w, float* out);
  // o[x] = (pp[x] + pp[x+1] + ... + pp[x+2r]) / (2r+1) (pp: a row padded by r on each side).
  void (*box_row)(const float* pp, std::size_t w, int radius, float* o);
  // o[x] = |y[x] - (a[x] + b[x] + c[x]) / 3|
  void (*highpass_row)(const float* y, const float* a, const float* b, const float* c, std::size_t w,
                       float* o);
  // m[x] = clip((rows[0][x] + ... + rows[n-1][x]) / n, 1, 4); q[x] = its uint16 quantisation (q may be null).
  void (*mask_row)(const float* const* rows, int n, std::size_t w, float* m, uint16_t* q);
  // acc[x] += wgt * s[x]
  void (*axpy_row)(float wgt, const float* s, std::size_t w, float* acc);
  // d[x] = m[x] * ((1 - fr) * p0[x] + fr * p1[x]) with m from the quantised mask q, the float mask mf, or 1
  // (both null); returns the sum of d[x]^2.
  float (*pattern_row)(const uint16_t* q, const float* mf, const float* p0, const float* p1, float fr,
                       std::size_t w, float* d);
  // The flat limit (flat_gains in image_math.h), pass 1: sums[0..4] = the row's sums of p^2, p^2 e, p^2 e^2,
  // p^2 on flat pixels (q == 0) and their count, with p = (1 - fr) p0[x] + fr p1[x] the pattern and
  // e = q[x] / kMaskQ the mask's excess over its floor.
  void (*flat_sums_row)(const uint16_t* q, const float* p0, const float* p1, float fr, std::size_t w,
                        float* sums);
  // The flat limit, pass 2: d[x] = p (gf + gx e), p and e as above.
  void (*split_row)(const uint16_t* q, const float* p0, const float* p1, float fr, float gf, float gx,
                    std::size_t w, float* d);
  // dst = clip(src + g * d) on the colour channels of one row (u8: rounded; float: src + g*d/255 in [0, 1]);
  // a 4th channel is copied. scratch: at least 4 * w floats.
  void (*apply_row)(const void* src, void* dst, int type, int ps, const float* d, float g, std::size_t w,
                    float* scratch);
  // Gaussian taps k[0..2r] (symmetric): o[x] = sum_t k[t] * pp[x + t] (pp padded by r on each side).
  void (*blur_h_row)(const float* pp, const float* k, int radius, std::size_t w, float* o);
  // o[x] = sum_t k[t] * rows[t][x], t = 0..2r.
  void (*blur_v_row)(const float* const* rows, const float* k, int radius, std::size_t w, float* o);
  // o[x] = sum_{t < taps} wts[t * out_w + x] * in[first[x] + t] (in readable up to max first + taps).
  void (*resample_h_row)(const float* in, const int32_t* first, const float* wts, int taps, std::size_t out_w,
                         float* o);
};

namespace isa_baseline {
const ImageKernels& image_kernels_table();
}  // namespace isa_baseline
namespace isa_avx2 {
const ImageKernels& image_kernels_table();
}  // namespace isa_avx2

// The table for the SIMD level in use (simd_level()).
const ImageKernels& image_kernels();

}  // namespace provmark::image
