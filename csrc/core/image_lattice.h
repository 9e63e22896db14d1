// Image watermark, lattice search stages of the detector (the FFTs stay in numpy/scipy): flattening of the
// power spectrum of the whitened picture, and scoring of (period, angle) lattice hypotheses on the
// autocorrelation. numpy references: python/provmark/image.py (_ref_flatten_spectrum, _ref_lattice_scores).
#pragma once

#include <cstddef>

#include "core/image_common.h"

namespace provmark::image {

// out = clip(p / (G(p) + 1e-20) - 1, -1, 8), G a Gaussian blur with sigma `sigma_y` bins along rows and
// `sigma_x` along columns, kernel radius int(4 sigma + 0.5) (scipy's default truncate) and periodic ("wrap")
// borders. p, out: [H, W]; out may be p.
void flatten_spectrum(const float* p, std::size_t height, std::size_t width, double sigma_y, double sigma_x,
                      float* out);

struct LatticeScoreParams {
  const float* a = nullptr;  // [H, W] autocorrelation (lag (0, 0) at [0, 0], periodic)
  std::size_t height = 0, width = 0;
  const double* periods = nullptr;  // [n_periods] lattice periods in pixels
  std::size_t n_periods = 0;
  const double* thetas = nullptr;  // [n_thetas] lattice angles in radians
  std::size_t n_thetas = 0;
  double* out = nullptr;  // [n_periods, n_thetas] scores
};

// With a' = a - box7(a) (7 x 7 periodic box mean) and L_k(P, t) the four lattice vectors (1, 0), (0, 1),
// (1, 1), (1, -1) of period P rotated by t: out = sum_k a'(L_k) - max(0, sum_k a'(L_k / 2)), a' read by
// periodic bilinear interpolation at (row, col) = (dy mod H, dx mod W). Only a window of lags around (0, 0)
// is filtered when the longest lattice vector is well inside the array.
void lattice_scores(const LatticeScoreParams& p);

}  // namespace provmark::image
