// Image watermark, lattice search stages (see image_lattice.h).
#include "core/image_lattice.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/image_kernels_isa.h"
#include "core/parallel.h"

namespace provmark::image {
namespace {

constexpr std::size_t kRowGrain = 8;

std::vector<float> gaussian_taps(double sigma, double truncate) {
  const int radius = static_cast<int>(truncate * sigma + 0.5);
  std::vector<float> k(2 * radius + 1);
  double sum = 0.0;
  for (int i = -radius; i <= radius; ++i) sum += std::exp(-0.5 * (i * i) / (sigma * sigma));
  for (int i = -radius; i <= radius; ++i)
    k[i + radius] = static_cast<float>(std::exp(-0.5 * (i * i) / (sigma * sigma)) / sum);
  return k;
}

std::size_t wrap_index(long long i, std::size_t n) {
  const long long m = static_cast<long long>(n);
  long long r = i % m;
  if (r < 0) r += m;
  return static_cast<std::size_t>(r);
}

// Separable symmetric filter with periodic borders: kx along rows, then ky along columns, of in ([H, W]);
// out may be in.
void filter_wrap(const float* in, std::size_t h, std::size_t w, const std::vector<float>& ky,
                 const std::vector<float>& kx, float* out) {
  const int radius = static_cast<int>(kx.size() / 2);
  const int ry = static_cast<int>(ky.size() / 2);
  const ImageKernels& kern = image_kernels();
  std::vector<float> mid(h * w);
  parallel_for(h, kRowGrain, [&](std::size_t b, std::size_t e) {
    std::vector<float> padded(w + 2 * radius);
    for (std::size_t r = b; r < e; ++r) {
      const float* s = in + r * w;
      for (int x = -radius; x < 0; ++x) padded[x + radius] = s[wrap_index(x, w)];
      std::copy(s, s + w, padded.data() + radius);
      for (std::size_t x = w; x < w + radius; ++x)
        padded[x + radius] = s[wrap_index(static_cast<long long>(x), w)];
      kern.blur_h_row(padded.data(), kx.data(), radius, w, mid.data() + r * w);
    }
  });
  parallel_for(h, kRowGrain, [&](std::size_t b, std::size_t e) {
    std::vector<const float*> rows(2 * ry + 1);
    for (std::size_t r = b; r < e; ++r) {
      for (int t = -ry; t <= ry; ++t)
        rows[t + ry] = mid.data() + wrap_index(static_cast<long long>(r) + t, h) * w;
      kern.blur_v_row(rows.data(), ky.data(), ry, w, out + r * w);
    }
  });
}

// floor of a value well inside the range of long long (std::floor is a libm call without SSE4.1).
inline double floor_fast(double v) {
  const double t = static_cast<double>(static_cast<long long>(v));
  return t > v ? t - 1.0 : t;
}

// Periodic bilinear read of a [h, w] at (cy, cx); inv_h = 1 / h, inv_w = 1 / w.
inline float sample_wrap(const float* a, std::size_t h, std::size_t w, double inv_h, double inv_w, double cy,
                         double cx) {
  const double fh = static_cast<double>(h), fw = static_cast<double>(w);
  cy -= floor_fast(cy * inv_h) * fh;
  cx -= floor_fast(cx * inv_w) * fw;
  const double y0f = floor_fast(cy), x0f = floor_fast(cx);
  const float ty = static_cast<float>(cy - y0f), tx = static_cast<float>(cx - x0f);
  // the reduction above can land one period off by rounding; wrap the integer index (a tiny negative
  // coordinate reduces to exactly fh, which is row 0)
  long long y0 = static_cast<long long>(y0f), x0 = static_cast<long long>(x0f);
  const long long hh = static_cast<long long>(h), ww = static_cast<long long>(w);
  if (y0 >= hh) y0 -= hh;
  if (y0 < 0) y0 += hh;
  if (x0 >= ww) x0 -= ww;
  if (x0 < 0) x0 += ww;
  const long long y1 = y0 + 1 == hh ? 0 : y0 + 1, x1 = x0 + 1 == ww ? 0 : x0 + 1;
  const float* r0 = a + y0 * ww;
  const float* r1 = a + y1 * ww;
  return (1.0f - ty) * ((1.0f - tx) * r0[x0] + tx * r0[x1]) + ty * ((1.0f - tx) * r1[x0] + tx * r1[x1]);
}

// Bilinear read of the [n, n] window at (cy, cx), both in [0, n - 1).
inline float sample_window(const float* a, long long n, double cy, double cx) {
  const long long y0 = static_cast<long long>(cy), x0 = static_cast<long long>(cx);
  const float ty = static_cast<float>(cy - static_cast<double>(y0));
  const float tx = static_cast<float>(cx - static_cast<double>(x0));
  const float* r0 = a + y0 * n + x0;
  const float* r1 = r0 + n;
  return (1.0f - ty) * ((1.0f - tx) * r0[0] + tx * r0[1]) + ty * ((1.0f - tx) * r1[0] + tx * r1[1]);
}

}  // namespace

void flatten_spectrum(const float* p, std::size_t h, std::size_t w, double sigma_y, double sigma_x,
                      float* out) {
  if (p == nullptr || out == nullptr) throw InvalidArgument("image flatten_spectrum: null pointer");
  if (h == 0 || w == 0) throw InvalidArgument("image flatten_spectrum: empty array");
  if (!(sigma_y > 0.0 && sigma_x > 0.0) || !std::isfinite(sigma_y) || !std::isfinite(sigma_x))
    throw InvalidArgument("image flatten_spectrum: sigmas must be > 0");
  std::vector<float> smooth(h * w);
  filter_wrap(p, h, w, gaussian_taps(sigma_y, 4.0), gaussian_taps(sigma_x, 4.0), smooth.data());
  parallel_for(h, kRowGrain, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b * w; i < e * w; ++i) {
      float v = p[i] / (smooth[i] + 1e-20f) - 1.0f;
      v = v < -1.0f ? -1.0f : v;
      v = v > 8.0f ? 8.0f : v;
      out[i] = v;
    }
  });
}

void lattice_scores(const LatticeScoreParams& p) {
  if (p.a == nullptr || p.out == nullptr || p.periods == nullptr || p.thetas == nullptr)
    throw InvalidArgument("image lattice_scores: null pointer");
  if (p.height == 0 || p.width == 0) throw InvalidArgument("image lattice_scores: empty array");
  for (std::size_t i = 0; i < p.n_periods; ++i)
    if (!(p.periods[i] > 0.0 && p.periods[i] < 1e9))
      throw InvalidArgument("image lattice_scores: periods must be in (0, 1e9)");
  for (std::size_t j = 0; j < p.n_thetas; ++j)
    if (!std::isfinite(p.thetas[j])) throw InvalidArgument("image lattice_scores: thetas must be finite");
  const std::size_t h = p.height, w = p.width;
  std::vector<double> cos_t(p.n_thetas), sin_t(p.n_thetas);
  double reach =
      0.0;  // max over angles of |cos| + |sin|: every lattice vector's coordinates are <= period * reach
  for (std::size_t j = 0; j < p.n_thetas; ++j) {
    cos_t[j] = std::cos(p.thetas[j]);
    sin_t[j] = std::sin(p.thetas[j]);
    reach = std::max(reach, std::fabs(cos_t[j]) + std::fabs(sin_t[j]));
  }
  double pmax = 0.0;
  for (std::size_t i = 0; i < p.n_periods; ++i) pmax = std::max(pmax, p.periods[i]);
  const std::vector<float> box7(7, 1.0f / 7.0f);
  static const int kVec[4][2] = {{1, 0}, {0, 1}, {1, 1}, {1, -1}};
  // Only lags up to `reach * pmax` (+1 for the bilinear read) are read, and the 7x7 box needs 3 more: when
  // that window around lag (0, 0) is smaller than the array, it is cut out (periodically) and filtered alone.
  const long long span = static_cast<long long>(std::ceil(reach * pmax)) + 1 + 3;
  const std::size_t nw = static_cast<std::size_t>(2 * span + 1);
  const bool window = nw < h && nw < w;
  std::vector<float> src;
  const float* in = p.a;
  std::size_t bh = h, bw = w;
  if (window) {
    src.resize(nw * nw);
    for (std::size_t i = 0; i < nw; ++i) {
      const float* row = p.a + wrap_index(static_cast<long long>(i) - span, h) * w;
      for (std::size_t j = 0; j < nw; ++j)
        src[i * nw + j] = row[wrap_index(static_cast<long long>(j) - span, w)];
    }
    in = src.data();
    bh = bw = nw;
  }
  // a' = a - box7(a)
  std::vector<float> box(bh * bw);
  filter_wrap(in, bh, bw, box7, box7, box.data());
  parallel_for(bh, kRowGrain, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b * bw; i < e * bw; ++i) box[i] = in[i] - box[i];
  });
  const float* a = box.data();
  const double inv_h = 1.0 / static_cast<double>(h), inv_w = 1.0 / static_cast<double>(w);
  const double centre = static_cast<double>(span);
  const long long nwl = static_cast<long long>(nw);
  parallel_for(p.n_periods, 4, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) {
      const double period = p.periods[i];
      for (std::size_t j = 0; j < p.n_thetas; ++j) {
        const double c = cos_t[j], s = sin_t[j];
        double full = 0.0, half = 0.0;
        for (const auto& v : kVec) {
          const double dx = period * (v[0] * c - v[1] * s), dy = period * (v[0] * s + v[1] * c);
          if (window) {
            full += sample_window(a, nwl, centre + dy, centre + dx);
            half += sample_window(a, nwl, centre + 0.5 * dy, centre + 0.5 * dx);
          } else {
            full += sample_wrap(a, h, w, inv_h, inv_w, dy, dx);
            half += sample_wrap(a, h, w, inv_h, inv_w, 0.5 * dy, 0.5 * dx);
          }
        }
        p.out[i * p.n_thetas + j] = full - std::max(half, 0.0);
      }
    }
  });
}

}  // namespace provmark::image
