// Image watermark: format constants and per-element math shared by the embedder and the detector
// (csrc/core/image_embed.*, csrc/core/image_detect.*). The Python layer (python/provmark/image.py) holds
// the same constants and a numpy reference of every kernel; tests/test_image_native.py checks parity.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/common.h"

namespace provmark::image {

constexpr int kTile = 32;  // chips per tile side
constexpr int kBins = 4;   // folding bins per chip
constexpr float kLumaR = 0.299f, kLumaG = 0.587f, kLumaB = 0.114f;
constexpr float kMaskLo = 1.0f, kMaskHi = 4.0f;  // texture mask clip (grey levels)
// Quantisation of the texture mask (values in [kMaskLo, kMaskHi] = [1, 4]) to uint16 between the two
// full-resolution passes of the fused embedder: q = round((m - 1) * kMaskQ), m = 1 + q / kMaskQ
// (3 * 21845 = 65535, so the whole range is used; step 4.6e-5 grey levels).
constexpr float kMaskQ = 21845.0f;
constexpr int kMaskInner = 1;           // box radius of the local mean the mask subtracts (3x3)
constexpr int kMaskOuter = 3;           // box radius of the mask's averaging window (7x7)
constexpr double kGaussTruncate = 3.0;  // Gaussian kernels end at 3 sigma (as scipy's truncate=3)

// Pixel element types the kernels accept.
enum class PixelType : int { kU8 = 0, kF32 = 1, kF64 = 2 };

// Luma in grey levels (0..255) of one RGB pixel; `scale` is 1 for uint8 and 255 for float input.
PROVMARK_HD float luma_of(float r, float g, float b, float scale) {
  return (r * kLumaR + g * kLumaG + b * kLumaB) * scale;
}

// Bilinear position of pixel centre `i` on the chip grid (chip k centred at k + 0.5, chip size c px):
// the lower chip index (cyclic in [0, kTile)) and the weight of the upper one.
PROVMARK_HD void chip_coord(int i, double c, int* lo, float* frac) {
  const double u = (static_cast<double>(i) + 0.5) / c - 0.5;
  const double fl = std::floor(u);
  long long k = static_cast<long long>(fl) % kTile;
  if (k < 0) k += kTile;
  *lo = static_cast<int>(k);
  *frac = static_cast<float>(u - fl);
}

// Half-sample symmetric index (scipy mode "reflect": d c b a | a b c d | d c b a).
PROVMARK_HD int reflect_index(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * n;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - 1 - i;
}

}  // namespace provmark::image
