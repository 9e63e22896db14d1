// Image watermark, detector stages at the working size: band-pass whitening with local normalisation, and
// folding of a whitened picture onto a (period, angle) lattice. CPU, threaded.
// numpy references: python/provmark/image.py (_ref_whiten, _ref_fold).
#pragma once

#include <cstddef>

#include "core/image_common.h"

namespace provmark::image {

// Gaussian blur (sigma px, kernel radius int(3 sigma + 0.5), "reflect" borders) of a [H, W] plane; sigma
// below 0.2 copies the input.
void gaussian_blur(const float* in, std::size_t height, std::size_t width, double sigma, float* out);

// w = (G(y, 0.15 c) - G(y, 0.5 c)) / den, minus its mean, where den = G(|band|, c) + 0.5 + 0.1 mean(G(|band|,
// c)) unless `den_in` is given (then it is used as is: the linear read-out the informed embedder needs). out
// and den_out are [H, W]; den_out may be null.
void whiten(const float* y, std::size_t height, std::size_t width, double chip, const float* den_in,
            float* out, float* den_out);

struct FoldParams {
  const float* w = nullptr;  // [H, W] whitened picture
  std::size_t height = 0, width = 0;
  double period = 0.0;       // lattice period in pixels (> 0)
  double theta = 0.0;        // lattice angle in radians
  int side = kTile * kBins;  // bins per tile side
  double* out = nullptr;     // [side, side] mean of the pixels falling in each bin (0 for empty bins)
};

// Pixel (row r, col x), centre (x + 0.5, r + 0.5), goes to bin
//   (floor(-s sin t * X + s cos t * Y) mod side, floor(s cos t * X + s sin t * Y) mod side), s = side /
//   period.
void fold(const FoldParams& p);

}  // namespace provmark::image
