// Image watermark, detector stages (see image_detect.h).
#include "core/image_detect.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/parallel.h"

namespace provmark::image {
namespace {

constexpr std::size_t kRowGrain = 8;
constexpr std::size_t kFoldBlocks = 16;  // fixed row blocks of the fold: deterministic reduction order

std::vector<float> gaussian_kernel(double sigma) {
  const int radius = static_cast<int>(kGaussTruncate * sigma + 0.5);
  std::vector<float> k(2 * radius + 1);
  double sum = 0.0;
  for (int i = -radius; i <= radius; ++i) {
    const double v = std::exp(-0.5 * (i * i) / (sigma * sigma));
    k[i + radius] = static_cast<float>(v);
    sum += v;
  }
  for (float& v : k) v = static_cast<float>(v / sum);
  return k;
}

}  // namespace

void gaussian_blur(const float* in, std::size_t height, std::size_t width, double sigma, float* out) {
  if (in == nullptr || out == nullptr) throw InvalidArgument("image gaussian_blur: null pointer");
  if (sigma < 0.2) {
    std::copy(in, in + height * width, out);
    return;
  }
  const std::vector<float> k = gaussian_kernel(sigma);
  const int radius = static_cast<int>(k.size() / 2);
  const int w = static_cast<int>(width), h = static_cast<int>(height);
  std::vector<float> mid(height * width);
  // horizontal
  parallel_for(height, kRowGrain, [&](std::size_t b, std::size_t e) {
    std::vector<float> padded(width + 2 * radius);
    for (std::size_t r = b; r < e; ++r) {
      const float* s = in + r * width;
      // reflect only the borders: reflect_index costs two integer divisions
      for (int x = -radius; x < 0; ++x) padded[x + radius] = s[reflect_index(x, w)];
      std::copy(s, s + w, padded.data() + radius);
      for (int x = w; x < w + radius; ++x) padded[x + radius] = s[reflect_index(x, w)];
      float* o = mid.data() + r * width;
      // taps outside, pixels inside: vectorises across x
      for (int x = 0; x < w; ++x) o[x] = k[0] * padded[x];
      for (int t = 1; t <= 2 * radius; ++t) {
        const float kt = k[t];
        const float* q = padded.data() + t;
        for (int x = 0; x < w; ++x) o[x] += kt * q[x];
      }
    }
  });
  // vertical
  parallel_for(height, kRowGrain, [&](std::size_t b, std::size_t e) {
    for (std::size_t r = b; r < e; ++r) {
      float* o = out + r * width;
      std::fill(o, o + width, 0.0f);
      for (int t = -radius; t <= radius; ++t) {
        const float wt = k[t + radius];
        const float* s =
            mid.data() + static_cast<std::size_t>(reflect_index(static_cast<int>(r) + t, h)) * width;
        for (std::size_t x = 0; x < width; ++x) o[x] += wt * s[x];
      }
    }
  });
}

void whiten(const float* y, std::size_t height, std::size_t width, double chip, const float* den_in,
            float* out, float* den_out) {
  if (y == nullptr || out == nullptr) throw InvalidArgument("image whiten: null pointer");
  if (height == 0 || width == 0) throw InvalidArgument("image whiten: empty picture");
  if (!(chip > 0.0) || !std::isfinite(chip)) throw InvalidArgument("image whiten: chip must be > 0");
  const std::size_t n = height * width;
  // out holds the fine blur, then the band; den_out (or a local buffer) holds the coarse blur, then den.
  std::vector<float> local;
  float* den = den_out;
  if (den == nullptr) {
    local.resize(n);
    den = local.data();
  }
  gaussian_blur(y, height, width, 0.15 * chip, out);
  gaussian_blur(y, height, width, 0.5 * chip, den);
  for (std::size_t i = 0; i < n; ++i) out[i] -= den[i];  // band-pass
  if (den_in == nullptr) {
    for (std::size_t i = 0; i < n; ++i) den[i] = std::fabs(out[i]);
    gaussian_blur(den, height, width, chip, den);  // in place: the blur buffers its input rows
    double sum = 0.0;
    for (std::size_t r = 0; r < height; ++r) {
      float rs = 0.0f;
      for (std::size_t x = 0; x < width; ++x) rs += den[r * width + x];
      sum += rs;
    }
    const float floor = 0.5f + 0.1f * static_cast<float>(sum / static_cast<double>(n));
    for (std::size_t i = 0; i < n; ++i) den[i] += floor;
  } else {
    std::copy(den_in, den_in + n, den);
  }
  double sum = 0.0;
  for (std::size_t r = 0; r < height; ++r) {
    float rs = 0.0f;
    float* o = out + r * width;
    const float* d = den + r * width;
    for (std::size_t x = 0; x < width; ++x) {
      o[x] /= d[x];
      rs += o[x];
    }
    sum += rs;
  }
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  for (std::size_t i = 0; i < n; ++i) out[i] -= mean;
}

void fold(const FoldParams& p) {
  if (p.w == nullptr || p.out == nullptr) throw InvalidArgument("image fold: null pointer");
  if (!(p.period > 0.0) || !std::isfinite(p.period) || !std::isfinite(p.theta))
    throw InvalidArgument("image fold: period must be > 0 and finite");
  if (p.side < 1) throw InvalidArgument("image fold: side must be >= 1");
  const std::size_t side = static_cast<std::size_t>(p.side), nb = side * side;
  const std::size_t blocks = std::max<std::size_t>(1, std::min(kFoldBlocks, p.height));
  std::vector<double> sums(blocks * nb, 0.0);
  std::vector<uint32_t> counts(blocks * nb, 0);
  const double s = static_cast<double>(p.side) / p.period;
  const double ct = std::cos(p.theta) * s, st = std::sin(p.theta) * s;
  // floor(v) mod side as (int64)(v + K) & (side - 1) for a power-of-two side, K a large multiple of side
  // that keeps the argument positive (|v| stays far below K for any picture the bindings accept).
  const bool pow2 = (side & (side - 1)) == 0;
  const double shift = static_cast<double>(side) * 1048576.0;
  const long long mask = static_cast<long long>(side) - 1;
  const long long m = static_cast<long long>(side);
  parallel_for(blocks, 1, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t blk = b0; blk < b1; ++blk) {
      const std::size_t r0 = p.height * blk / blocks, r1 = p.height * (blk + 1) / blocks;
      double* su = sums.data() + blk * nb;
      uint32_t* cn = counts.data() + blk * nb;
      for (std::size_t r = r0; r < r1; ++r) {
        const double Y = static_cast<double>(r) + 0.5;
        const double u0 = st * Y, v0 = ct * Y;
        const float* row = p.w + r * p.width;
        for (std::size_t x = 0; x < p.width; ++x) {
          const double X = static_cast<double>(x) + 0.5;
          const double u = ct * X + u0, v = -st * X + v0;
          long long iu, iv;
          if (pow2) {
            iu = static_cast<long long>(u + shift) & mask;
            iv = static_cast<long long>(v + shift) & mask;
          } else {
            iu = static_cast<long long>(std::floor(u)) % m;
            iv = static_cast<long long>(std::floor(v)) % m;
            if (iu < 0) iu += m;
            if (iv < 0) iv += m;
          }
          const std::size_t idx = static_cast<std::size_t>(iv) * side + static_cast<std::size_t>(iu);
          su[idx] += row[x];
          cn[idx] += 1;
        }
      }
    }
  });
  for (std::size_t i = 0; i < nb; ++i) {
    double su = 0.0;
    uint64_t cn = 0;
    for (std::size_t blk = 0; blk < blocks; ++blk) {
      su += sums[blk * nb + i];
      cn += counts[blk * nb + i];
    }
    p.out[i] = cn ? su / static_cast<double>(cn) : 0.0;
  }
}

}  // namespace provmark::image
