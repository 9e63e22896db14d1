// Image watermark, detector stages (see image_detect.h).
#include "core/image_detect.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/image_kernels_isa.h"
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

namespace {

// Sum of a row with 8 float partial sums (vectorisable in a fixed order).
double row_sum8(const float* v, std::size_t w) {
  float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  std::size_t x = 0;
  for (; x + 8 <= w; x += 8)
    for (int l = 0; l < 8; ++l) acc[l] += v[x + l];
  double s = 0.0;
  for (; x < w; ++x) s += v[x];
  for (int l = 0; l < 8; ++l) s += acc[l];
  return s;
}

// Horizontal pass of a Gaussian blur: rows [b, e) of `in` into `mid` (reflect borders), `padded` a scratch
// row of at least width + 2 radius floats.
void blur_rows_h(const ImageKernels& kern, const float* in, std::size_t width, const std::vector<float>& k,
                 std::size_t b, std::size_t e, float* padded, float* mid) {
  const int radius = static_cast<int>(k.size() / 2);
  const int w = static_cast<int>(width);
  for (std::size_t r = b; r < e; ++r) {
    const float* s = in + r * width;
    // reflect only the borders: reflect_index costs two integer divisions
    for (int x = -radius; x < 0; ++x) padded[x + radius] = s[reflect_index(x, w)];
    std::copy(s, s + w, padded + radius);
    for (int x = w; x < w + radius; ++x) padded[x + radius] = s[reflect_index(x, w)];
    kern.blur_h_row(padded, k.data(), radius, width, mid + r * width);
  }
}

// Vertical pass: row r of the blur of `mid` into out_row.
void blur_row_v(const ImageKernels& kern, const float* mid, std::size_t height, std::size_t width,
                const std::vector<float>& k, std::size_t r, const float** rows, float* out_row) {
  const int radius = static_cast<int>(k.size() / 2);
  const int h = static_cast<int>(height);
  for (int t = -radius; t <= radius; ++t)
    rows[t + radius] = mid + static_cast<std::size_t>(reflect_index(static_cast<int>(r) + t, h)) * width;
  kern.blur_v_row(rows, k.data(), radius, width, out_row);
}

std::unique_ptr<float[]> plane(std::size_t n) { return std::unique_ptr<float[]>(new float[n]); }

}  // namespace

void gaussian_blur(const float* in, std::size_t height, std::size_t width, double sigma, float* out) {
  if (in == nullptr || out == nullptr) throw InvalidArgument("image gaussian_blur: null pointer");
  if (sigma < 0.2) {
    std::copy(in, in + height * width, out);
    return;
  }
  const std::vector<float> k = gaussian_kernel(sigma);
  const ImageKernels& kern = image_kernels();
  auto mid = plane(height * width);
  parallel_for(height, kRowGrain, [&](std::size_t b, std::size_t e) {
    std::vector<float> padded(width + k.size());
    blur_rows_h(kern, in, width, k, b, e, padded.data(), mid.get());
  });
  parallel_for(height, kRowGrain, [&](std::size_t b, std::size_t e) {
    std::vector<const float*> rows(k.size());
    for (std::size_t r = b; r < e; ++r)
      blur_row_v(kern, mid.get(), height, width, k, r, rows.data(), out + r * width);
  });
}

void whiten(const float* y, std::size_t height, std::size_t width, double chip, const float* den_in,
            float* out, float* den_out) {
  if (y == nullptr || out == nullptr) throw InvalidArgument("image whiten: null pointer");
  if (height == 0 || width == 0) throw InvalidArgument("image whiten: empty picture");
  if (!(chip > 0.0) || !std::isfinite(chip)) throw InvalidArgument("image whiten: chip must be > 0");
  const std::size_t n = height * width;
  const ImageKernels& kern = image_kernels();
  // den_out (or a local plane) holds |band|, then den; with den_in and no den_out, den_in is used as is
  std::unique_ptr<float[]> local;
  float* den = den_out;
  if (den == nullptr && den_in == nullptr) {
    local = plane(n);
    den = local.get();
  }
  // band = G(y, 0.15 c) - G(y, 0.5 c): both horizontal passes in one sweep, then both vertical passes and the
  // difference row by row (a sigma under 0.2 is the identity, as gaussian_blur)
  const double s_fine = 0.15 * chip, s_coarse = 0.5 * chip;
  const std::vector<float> kf = s_fine < 0.2 ? std::vector<float>{1.0f} : gaussian_kernel(s_fine);
  const std::vector<float> kc = s_coarse < 0.2 ? std::vector<float>{1.0f} : gaussian_kernel(s_coarse);
  auto mid_f = plane(n), mid_c = plane(n);
  parallel_for(height, kRowGrain, [&](std::size_t b, std::size_t e) {
    std::vector<float> padded(width + std::max(kf.size(), kc.size()));
    blur_rows_h(kern, y, width, kf, b, e, padded.data(), mid_f.get());
    blur_rows_h(kern, y, width, kc, b, e, padded.data(), mid_c.get());
  });
  const bool need_abs = den_in == nullptr;
  parallel_for(height, kRowGrain, [&](std::size_t b, std::size_t e) {
    std::vector<const float*> rows(std::max(kf.size(), kc.size()));
    std::vector<float> coarse(width);
    for (std::size_t r = b; r < e; ++r) {
      float* o = out + r * width;
      blur_row_v(kern, mid_f.get(), height, width, kf, r, rows.data(), o);
      blur_row_v(kern, mid_c.get(), height, width, kc, r, rows.data(), coarse.data());
      for (std::size_t x = 0; x < width; ++x) o[x] -= coarse[x];  // band-pass
      if (need_abs) {
        float* d = den + r * width;
        for (std::size_t x = 0; x < width; ++x) d[x] = std::fabs(o[x]);
      }
    }
  });
  mid_f.reset();
  std::vector<double> row_sum(height);
  float floor = 0.0f;
  const float* den_div = den;  // what the band is divided by (before `floor` is added)
  if (den_in == nullptr) {
    // den = G(|band|, c): horizontal pass into the coarse mid plane, vertical pass back into den with the row
    // sums of the result (for the floor), row by row while the row is in cache
    const std::vector<float> kd = chip < 0.2 ? std::vector<float>{1.0f} : gaussian_kernel(chip);
    parallel_for(height, kRowGrain, [&](std::size_t b, std::size_t e) {
      std::vector<float> padded(width + kd.size());
      blur_rows_h(kern, den, width, kd, b, e, padded.data(), mid_c.get());
    });
    parallel_for(height, kRowGrain, [&](std::size_t b, std::size_t e) {
      std::vector<const float*> rows(kd.size());
      for (std::size_t r = b; r < e; ++r) {
        blur_row_v(kern, mid_c.get(), height, width, kd, r, rows.data(), den + r * width);
        row_sum[r] = row_sum8(den + r * width, width);
      }
    });
    double sum = 0.0;
    for (double v : row_sum) sum += v;
    floor = 0.5f + 0.1f * static_cast<float>(sum / static_cast<double>(n));
  } else if (den_out != nullptr) {
    std::copy(den_in, den_in + n, den);
  } else {
    den_div = den_in;  // no copy needed
  }
  mid_c.reset();
  // den += floor (kept in den for the caller), band /= den, and the row sums of the result
  parallel_for(height, kRowGrain, [&](std::size_t b, std::size_t e) {
    for (std::size_t r = b; r < e; ++r) {
      float* o = out + r * width;
      const float* dv = den_div + r * width;
      if (den_in == nullptr) {
        float* d = den + r * width;
        for (std::size_t x = 0; x < width; ++x) {
          d[x] = dv[x] + floor;
          o[x] /= d[x];
        }
      } else {
        for (std::size_t x = 0; x < width; ++x) o[x] /= dv[x];
      }
      row_sum[r] = row_sum8(o, width);
    }
  });
  double sum = 0.0;
  for (double v : row_sum) sum += v;
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  parallel_for(height, kRowGrain, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b * width; i < e * width; ++i) out[i] -= mean;
  });
}

void fold(const FoldParams& p) {
  if (p.w == nullptr || p.out == nullptr) throw InvalidArgument("image fold: null pointer");
  if (!(p.period > 0.0) || !std::isfinite(p.period) || !std::isfinite(p.theta))
    throw InvalidArgument("image fold: period must be > 0 and finite");
  if (p.side < 1) throw InvalidArgument("image fold: side must be >= 1");
  const std::size_t side = static_cast<std::size_t>(p.side), nb = side * side;
  const std::size_t blocks = std::max<std::size_t>(1, std::min(kFoldBlocks, p.height));
  const double s = static_cast<double>(p.side) / p.period;
  const double ct = std::cos(p.theta) * s, st = std::sin(p.theta) * s;
  // floor(v) mod side as (int64)(v + K) & (side - 1) for a power-of-two side, K a large multiple of side
  // that keeps the argument positive (|v| stays far below K for any picture the bindings accept).
  const bool pow2 = (side & (side - 1)) == 0;
  const double shift = static_cast<double>(side) * 1048576.0;
  const long long mask = static_cast<long long>(side) - 1;
  const long long m = static_cast<long long>(side);
  if (p.theta == 0.0) {
    // Unrotated lattice (the nominal geometry, the informed embedder): the column bin depends on x only and
    // the row bin on the row only (sin 0 = 0 makes the cross terms exact zeros), so the bins are the ones
    // of the general loop below, found by table; counts are row count x column count.
    // the bin of coordinate t (a column or a row), as the general loop computes it
    const auto bin_of = [&](std::size_t t) -> long long {
      const double u = ct * (static_cast<double>(t) + 0.5);
      if (pow2) return static_cast<long long>(u + shift) & mask;
      const long long i = static_cast<long long>(std::floor(u)) % m;
      return i < 0 ? i + m : i;
    };
    std::vector<uint32_t> col_bin(p.width), col_count(side, 0);
    for (std::size_t x = 0; x < p.width; ++x) {
      const long long iu = bin_of(x);
      col_bin[x] = static_cast<uint32_t>(iu);
      col_count[iu] += 1;
    }
    // Rows first: acc[iv][x] sums the rows of row bin iv (split by columns across threads), then each row
    // bin's columns go to their bins (split by row bins). Fixed order for any thread count.
    std::vector<uint32_t> row_bin(p.height), row_count(side, 0);
    for (std::size_t r = 0; r < p.height; ++r) {
      const long long iv = bin_of(r);
      row_bin[r] = static_cast<uint32_t>(iv);
      row_count[iv] += 1;
    }
    const std::size_t wd = p.width;
    std::vector<double> acc(side * wd, 0.0);
    constexpr std::size_t kCols = 256;
    parallel_for((wd + kCols - 1) / kCols, 1, [&](std::size_t c0, std::size_t c1) {
      const std::size_t x0 = c0 * kCols, x1 = std::min(wd, c1 * kCols);
      for (std::size_t r = 0; r < p.height; ++r) {
        double* a = acc.data() + static_cast<std::size_t>(row_bin[r]) * wd;
        const float* row = p.w + r * wd;
        for (std::size_t x = x0; x < x1; ++x) a[x] += row[x];
      }
    });
    parallel_for(side, 8, [&](std::size_t v0, std::size_t v1) {
      std::vector<double> bins(side);
      for (std::size_t iv = v0; iv < v1; ++iv) {
        std::fill(bins.begin(), bins.end(), 0.0);
        const double* a = acc.data() + iv * wd;
        for (std::size_t x = 0; x < wd; ++x) bins[col_bin[x]] += a[x];
        for (std::size_t iu = 0; iu < side; ++iu) {
          const uint64_t cn = static_cast<uint64_t>(row_count[iv]) * col_count[iu];
          p.out[iv * side + iu] = cn ? bins[iu] / static_cast<double>(cn) : 0.0;
        }
      }
    });
    return;
  }
  std::vector<double> sums(blocks * nb, 0.0);
  std::vector<uint32_t> counts(blocks * nb, 0);
  // bin indices of a row in a first (vectorisable) loop, with 32-bit conversions where every argument fits
  const double reach = (std::fabs(ct) + std::fabs(st)) * static_cast<double>(p.width + p.height + 2);
  const bool fits32 = pow2 && shift + reach < 2.0e9;
  parallel_for(blocks, 1, [&](std::size_t b0, std::size_t b1) {
    std::vector<uint32_t> idx(p.width);
    for (std::size_t blk = b0; blk < b1; ++blk) {
      const std::size_t r0 = p.height * blk / blocks, r1 = p.height * (blk + 1) / blocks;
      double* su = sums.data() + blk * nb;
      uint32_t* cn = counts.data() + blk * nb;
      for (std::size_t r = r0; r < r1; ++r) {
        const double Y = static_cast<double>(r) + 0.5;
        const double u0 = st * Y, v0 = ct * Y;
        const float* row = p.w + r * p.width;
        if (fits32) {
          // locals (not lambda captures) and an int counter, so the loop vectorises
          const int32_t m32 = static_cast<int32_t>(mask);
          const int32_t sh = static_cast<int32_t>(std::log2(static_cast<double>(side)) + 0.5);
          const double c = ct, ms = -st, sft = shift, uu = u0, vv = v0;
          const int wd = static_cast<int>(p.width);
          uint32_t* ix = idx.data();
          for (int x = 0; x < wd; ++x) {
            const double X = static_cast<double>(x) + 0.5;
            const double u = c * X + uu, v = ms * X + vv;
            const int32_t iu = static_cast<int32_t>(u + sft) & m32;
            const int32_t iv = static_cast<int32_t>(v + sft) & m32;
            ix[x] = static_cast<uint32_t>((iv << sh) | iu);
          }
        } else {
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
            idx[x] =
                static_cast<uint32_t>(static_cast<std::size_t>(iv) * side + static_cast<std::size_t>(iu));
          }
        }
        for (std::size_t x = 0; x < p.width; ++x) {
          su[idx[x]] += row[x];
          cn[idx[x]] += 1;
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
