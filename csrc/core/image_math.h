// Image watermark: per-element math of the embedding and detection kernels written once as PROVMARK_HD
// inlines, for the CUDA twins (csrc/cuda/image_cuda.cu). They mirror, operation by operation and in the same
// order, what the CPU kernels (csrc/core/image_embed.cpp, image_detect.cpp) compute in their loops, so CUDA
// outputs equal the CPU's up to float rounding (embedded pixels within 1 LSB: tests/test_cuda_image.py).
//
// Device code must not let the compiler fuse a*b+c into one FMA where the CPU rounds twice (that moves a
// fold bin boundary or a rounding tie): the *_rn helpers below force separate roundings on the device.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/image_common.h"

namespace provmark::image {

// ---- rounding-exact arithmetic (no FMA contraction on the device; plain operators on the host) ----------
PROVMARK_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
PROVMARK_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
PROVMARK_HD double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
PROVMARK_HD double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

// std::min / std::max semantics (first argument returned on ties and NaN), usable on the device.
PROVMARK_HD float min_f(float a, float b) { return (b < a) ? b : a; }
PROVMARK_HD float max_f(float a, float b) { return (a < b) ? b : a; }
PROVMARK_HD double min_d(double a, double b) { return (b < a) ? b : a; }
PROVMARK_HD double max_d(double a, double b) { return (a < b) ? b : a; }

// Luma in grey levels of one RGB pixel, operation order of luma_of (image_common.h) without contraction.
PROVMARK_HD float luma_rn(float r, float g, float b, float scale) {
  return mul_rn(add_rn(add_rn(mul_rn(r, kLumaR), mul_rn(g, kLumaG)), mul_rn(b, kLumaB)), scale);
}

// Texture mask clip (image_embed.cpp texture_mask: min(kMaskHi, max(kMaskLo, v))).
PROVMARK_HD float mask_clip(float v) { return min_f(kMaskHi, max_f(kMaskLo, v)); }

// Tiled pattern at pixel (row r, col x) of a [kTile, kTile] tile: bilinear in the chip grid with the row
// weights applied first, as delta_row (image_embed.cpp) does: rowvec[k] = (1 - fr) t0[k] + fr t1[k], then
// (1 - fc) rowvec[j] + fc rowvec[j + 1] (cyclic).
PROVMARK_HD float pattern_at(const float* tile, int row_lo, float row_frac, int col_lo, float col_frac) {
  const float* t0 = tile + row_lo * kTile;
  const float* t1 = tile + ((row_lo + 1) % kTile) * kTile;
  const int j1 = (col_lo + 1) % kTile;
  const float wr0 = 1.0f - row_frac;
  const float a = add_rn(mul_rn(wr0, t0[col_lo]), mul_rn(row_frac, t1[col_lo]));
  const float b = add_rn(mul_rn(wr0, t0[j1]), mul_rn(row_frac, t1[j1]));
  return add_rn(mul_rn(1.0f - col_frac, a), mul_rn(col_frac, b));
}

// Gain that brings the delta's RMS to `target_rms` (embed_apply: rms > 1e-12 ? target / rms : 0).
PROVMARK_HD double embed_gain(double energy, double pixels, double target_rms) {
  const double rms = sqrt(energy / pixels);
  return rms > 1e-12 ? target_rms / rms : 0.0;
}

// The flat limit (flat_rms > 0; docs/video.md, "Imperceptibility"). The delta mask * pattern is split along
// the mask, m = kMaskLo + e: d = p (g_floor + g_excess e), so that the floor part, all that flat pixels
// carry, and the excess over it, which grows with the texture, get their own gains. Without the limit both
// are the plain gain g and d = g m p. It is continuous in the mask: pixels just above the floor get about
// g_floor.
//
// Flat pixels: the mask at its floor, i.e. quantised to 0 (kMaskQ; the fused CPU embedder's q == 0).
PROVMARK_HD bool mask_at_floor(float m) {
  return static_cast<int>(add_rn(mul_rn(m - kMaskLo, kMaskQ), 0.5f)) == 0;
}
// The excess e of a (float) mask over its floor: 0 on flat pixels.
PROVMARK_HD float mask_excess(float m) { return mask_at_floor(m) ? 0.0f : m - kMaskLo; }

// The limit raises the excess's gain at most this many times the plain gain.
constexpr double kFlatMoveMax = 2.0;

// Per-frame sums the gains need (p: the tiled pattern, e: the mask's excess), in this order.
enum FlatSum : int { kSumPP = 0, kSumPPE = 1, kSumPPEE = 2, kSumFlatPP = 3, kSumFlatN = 4, kFlatSums = 5 };

// Gains of the flat-limited embedding from the sums s[kFlatSums] over `pixels`: if the plain gain g
// (embed_gain of the energy sum (p (1 + e))^2) puts more than flat_rms grey levels RMS on the flat pixels,
// g_floor brings them to flat_rms and g_excess keeps the whole delta's RMS at target_rms (the positive root
// of a quadratic), within [g, kFlatMoveMax g]; otherwise both are g.
PROVMARK_HD void flat_gains(const double* s, double pixels, double target_rms, double flat_rms,
                            double* g_floor, double* g_excess) {
  const double a = s[kSumPP], b = s[kSumPPE], c = s[kSumPPEE], f = s[kSumFlatPP], n = s[kSumFlatN];
  const double g = embed_gain(a + 2.0 * b + c, pixels, target_rms);
  *g_floor = g;
  *g_excess = g;
  if (!(flat_rms > 0.0) || !(n > 0.0) || !(f > 0.0) || !(g > 0.0)) return;
  if (g * sqrt(f / n) <= flat_rms) return;
  const double gf = flat_rms * sqrt(n / f);
  *g_floor = gf;
  if (!(c > 0.0)) return;
  // c x^2 + 2 gf b x + gf^2 a = target^2 pixels
  const double disc = gf * gf * b * b - c * (gf * gf * a - target_rms * target_rms * pixels);
  const double gx = (sqrt(max_d(disc, 0.0)) - gf * b) / c;
  *g_excess = min_d(kFlatMoveMax * g, max_d(g, gx));
}

// Adding the luma delta `dd` (grey levels) to one sample (apply_rows in image_embed.cpp).
PROVMARK_HD uint8_t apply_u8(uint8_t s, float dd) {
  // round half up by truncating a positive value (the argument stays in [0.5, 255.5])
  const float v = add_rn(min_f(255.0f, max_f(0.0f, add_rn(static_cast<float>(s), dd))), 0.5f);
  return static_cast<uint8_t>(static_cast<int>(v));
}
PROVMARK_HD float apply_f32(float s, float dd) { return min_f(1.0f, max_f(0.0f, add_rn(s, dd / 255.0f))); }
PROVMARK_HD double apply_f64(double s, float dd) {
  return min_d(1.0, max_d(0.0, add_rn(s, static_cast<double>(dd) / 255.0)));
}
// Float samples in [-1, 1] (provmark.gpu's value_range=(-1, 1)): the same change as marking (s + 1) / 2 in
// [0, 1] and mapping back, i.e. 2 dd / 255 = dd / 127.5 in sample units, clipped to [-1, 1].
PROVMARK_HD float apply_f32_signed(float s, float dd) {
  return min_f(1.0f, max_f(-1.0f, add_rn(s, dd / 127.5f)));
}
PROVMARK_HD double apply_f64_signed(double s, float dd) {
  return min_d(1.0, max_d(-1.0, add_rn(s, static_cast<double>(dd) / 127.5)));
}

// High-bit-depth luma samples (image.LumaEmbedder.mark for uint16 planes, video's LumaView with a bit
// shift): the sample is v >> shift in [0, vmax]; it is marked as the float v / vmax in [0, 1] and written
// back as clip(rint(out * vmax), 0, vmax) << shift.
PROVMARK_HD float u16_unit(uint16_t s, int shift, float vmax) {
  const float f = static_cast<float>(s >> shift) / vmax;
  return min_f(1.0f, max_f(0.0f, f));
}
PROVMARK_HD uint16_t apply_u16(uint16_t s, float dd, int shift, float vmax) {
  const float o = apply_f32(u16_unit(s, shift, vmax), dd);
  const float q = min_f(vmax, max_f(0.0f, rintf(mul_rn(o, vmax))));
  return static_cast<uint16_t>(static_cast<unsigned>(q) << shift);
}

// Area resampling taps (resample_area in image_embed.cpp): output sample o of n_out covers input
// [o s, (o + 1) s), s = n_in / n_out; first input index and tap count.
PROVMARK_HD void area_span(long long o, long long n_in, long long n_out, long long* first, long long* count) {
  const double s = static_cast<double>(n_in) / static_cast<double>(n_out);
  const double a = static_cast<double>(o) * s, b = static_cast<double>(o + 1) * s;
  const long long i0 = static_cast<long long>(floor(a));
  long long i1 = static_cast<long long>(ceil(b));
  if (i1 > n_in) i1 = n_in;
  *first = i0;
  *count = i1 - i0;
}
// Weight of input sample i (first <= i < first + count) in output sample o.
PROVMARK_HD float area_weight(long long o, long long i, long long n_in, long long n_out) {
  const double s = static_cast<double>(n_in) / static_cast<double>(n_out);
  const double a = static_cast<double>(o) * s, b = static_cast<double>(o + 1) * s;
  const double wgt = min_d(b, static_cast<double>(i + 1)) - max_d(a, static_cast<double>(i));
  return static_cast<float>(wgt / s);
}

// Fold bin of pixel (row r, col x): u = ct X + st Y, v = -st X + ct Y with X = x + 0.5, Y = r + 0.5, binned
// as floor(.) mod side (fold in image_detect.cpp: u0 = st Y, v0 = ct Y, u = ct X + u0, v = -st X + v0).
// Returns the flat bin index v_bin * side + u_bin.
PROVMARK_HD long long fold_bin(long long r, long long x, double ct, double st, long long side) {
  const double Y = static_cast<double>(r) + 0.5, X = static_cast<double>(x) + 0.5;
  const double u = add_rn(mul_rn(ct, X), mul_rn(st, Y));
  const double v = add_rn(mul_rn(-st, X), mul_rn(ct, Y));
  long long iu, iv;
  if ((side & (side - 1)) == 0) {
    // the CPU's power-of-two path: (int64)(v + K) & (side - 1), K = side * 2^20
    const double shift = static_cast<double>(side) * 1048576.0;
    iu = static_cast<long long>(add_rn(u, shift)) & (side - 1);
    iv = static_cast<long long>(add_rn(v, shift)) & (side - 1);
  } else {
    iu = static_cast<long long>(floor(u)) % side;
    iv = static_cast<long long>(floor(v)) % side;
    if (iu < 0) iu += side;
    if (iv < 0) iv += side;
  }
  return iv * side + iu;
}

}  // namespace provmark::image
