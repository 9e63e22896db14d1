// Image watermark, full-resolution stages (see image_embed.h).
#include "core/image_embed.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "core/parallel.h"

namespace provmark::image {
namespace {

// Rows per parallel chunk for row-wise loops (keeps chunks big enough to amortise the pool).
constexpr std::size_t kRowGrain = 16;

template <typename T>
float to_float(T v) {
  return static_cast<float>(v);
}

template <typename T>
void luma_rows(const ImageBatch& in, float* out, std::size_t row_begin, std::size_t row_end) {
  const T* src = static_cast<const T*>(in.data);
  const std::size_t w = in.width;
  const std::size_t ps = in.pixel_stride();
  const float scale = in.type == PixelType::kU8 ? 1.0f : 255.0f;
  for (std::size_t r = row_begin; r < row_end; ++r) {
    const T* s = src + r * w * ps;
    float* o = out + r * w;
    if (in.channels == 0 || in.channels == 1) {
      for (std::size_t x = 0; x < w; ++x) o[x] = to_float(s[x * ps]) * scale;
    } else {
      for (std::size_t x = 0; x < w; ++x) {
        const T* px = s + x * ps;
        o[x] = luma_of(to_float(px[0]), to_float(px[1]), to_float(px[2]), scale);
      }
    }
  }
}

// Horizontal box mean (2R+1 taps, reflect borders) of rows [r0, r1) of `in` into `out`.
void box_rows(const float* in, float* out, std::size_t width, int radius, std::size_t r0, std::size_t r1) {
  const int w = static_cast<int>(width);
  const float inv = 1.0f / static_cast<float>(2 * radius + 1);
  std::vector<float> padded(width + 2 * radius + 1);
  for (std::size_t r = r0; r < r1; ++r) {
    const float* s = in + r * width;
    // reflect only the borders: reflect_index costs two integer divisions
    for (int x = -radius; x < 0; ++x) padded[x + radius] = s[reflect_index(x, w)];
    std::copy(s, s + w, padded.data() + radius);
    for (int x = w; x < w + radius; ++x) padded[x + radius] = s[reflect_index(x, w)];
    float* o = out + r * width;
    const float* pp = padded.data();
    // sum of the 2R+1 shifted copies: vectorises across x
    for (int x = 0; x < w; ++x) o[x] = pp[x];
    for (int t = 1; t <= 2 * radius; ++t) {
      const float* q = pp + t;
      for (int x = 0; x < w; ++x) o[x] += q[x];
    }
    for (int x = 0; x < w; ++x) o[x] *= inv;
  }
}

void check_batch(const ImageBatch& b, const char* fn) {
  if (b.data == nullptr) throw InvalidArgument(std::string(fn) + ": null pixel pointer");
  if (b.height == 0 || b.width == 0) throw InvalidArgument(std::string(fn) + ": empty picture");
  if (!(b.channels == 0 || b.channels == 1 || b.channels == 3 || b.channels == 4))
    throw InvalidArgument(std::string(fn) + ": channels must be 0, 1, 3 or 4, got " +
                          std::to_string(b.channels));
}

// Pattern row r of picture `img` times the mask row: d[x] = mask[x] * bilinear(tile)(r, x).
void delta_row(const EmbedApplyParams& p, const std::vector<int>& col_lo, const std::vector<float>& col_frac,
               std::size_t img, std::size_t r, const float* m, float* d) {
  float rowvec[kTile + 1];
  const float* tile = p.tiles + img * kTile * kTile;
  int lo;
  float fr;
  chip_coord(static_cast<int>(r), p.chip, &lo, &fr);
  const float* t0 = tile + lo * kTile;
  const float* t1 = tile + ((lo + 1) % kTile) * kTile;
  for (int k = 0; k < kTile; ++k) rowvec[k] = (1.0f - fr) * t0[k] + fr * t1[k];
  rowvec[kTile] = rowvec[0];
  const std::size_t w = p.in.width;
  for (std::size_t x = 0; x < w; ++x) {
    const float f = col_frac[x];
    const int j = col_lo[x];
    d[x] = (1.0f - f) * rowvec[j] + f * rowvec[j + 1];
  }
  for (std::size_t x = 0; x < w; ++x) d[x] *= m[x];
}

template <typename T>
void apply_rows(const EmbedApplyParams& p, const float* dplane, const std::vector<double>& gains,
                std::size_t row_begin, std::size_t row_end) {
  const ImageBatch& in = p.in;
  const std::size_t h = in.height, w = in.width, ps = in.pixel_stride();
  const std::size_t colour = in.channels >= 3 ? 3 : 1;
  const T* src = static_cast<const T*>(in.data);
  T* dst = static_cast<T*>(p.out);
  for (std::size_t gr = row_begin; gr < row_end; ++gr) {
    const float g = static_cast<float>(gains[gr / h]);
    const float* d = dplane + gr * w;
    const T* s = src + gr * w * ps;
    T* o = dst + gr * w * ps;
    for (std::size_t x = 0; x < w; ++x) {
      const float dd = g * d[x];
      const T* sp = s + x * ps;
      T* op = o + x * ps;
      for (std::size_t c = 0; c < colour; ++c) {
        if constexpr (std::is_same_v<T, uint8_t>) {
          // round half up via truncation of a positive value (the argument stays in [0.5, 255.5])
          const float v = std::min(255.0f, std::max(0.0f, static_cast<float>(sp[c]) + dd)) + 0.5f;
          op[c] = static_cast<uint8_t>(static_cast<int>(v));
        } else {
          op[c] = std::min(T(1),
                           std::max(T(0), static_cast<T>(sp[c] + static_cast<T>(dd) / static_cast<T>(255))));
        }
      }
      for (std::size_t c = colour; c < ps; ++c) op[c] = sp[c];
    }
  }
}

}  // namespace

void luma(const ImageBatch& in, float* out) {
  check_batch(in, "image luma");
  if (out == nullptr) throw InvalidArgument("image luma: null output");
  const std::size_t rows = in.n * in.height;
  parallel_for(rows, kRowGrain, [&](std::size_t b, std::size_t e) {
    switch (in.type) {
      case PixelType::kU8:
        luma_rows<uint8_t>(in, out, b, e);
        break;
      case PixelType::kF32:
        luma_rows<float>(in, out, b, e);
        break;
      case PixelType::kF64:
        luma_rows<double>(in, out, b, e);
        break;
    }
  });
}

void texture_mask(const float* y, std::size_t n, std::size_t height, std::size_t width, float* out) {
  if (y == nullptr || out == nullptr) throw InvalidArgument("image texture_mask: null pointer");
  if (height == 0 || width == 0) throw InvalidArgument("image texture_mask: empty picture");
  const std::size_t plane = height * width;
  const int h = static_cast<int>(height);
  constexpr int kIn = kMaskInner, kOut = kMaskOuter;
  constexpr std::size_t kBlock = 64;  // output rows per task; each task recomputes a halo of kIn + kOut rows
  const std::size_t blocks_per_image = (height + kBlock - 1) / kBlock;
  parallel_for(n * blocks_per_image, 1, [&](std::size_t b0, std::size_t b1) {
    std::vector<float> hb3, hh7;
    for (std::size_t task = b0; task < b1; ++task) {
      const std::size_t img = task / blocks_per_image, blk = task % blocks_per_image;
      const float* yi = y + img * plane;
      float* oi = out + img * plane;
      const int r0 = static_cast<int>(blk * kBlock), r1 = std::min(h, static_cast<int>((blk + 1) * kBlock));
      // rows of hh7 (= horizontal box7 of |y - box3(y)|) needed: reflect(r0 - kOut) .. reflect(r1 - 1 +
      // kOut), i.e. the actual rows [lo7, hi7); their hp needs box3 rows [lo7 - kIn, hi7 + kIn).
      int lo7 = h, hi7 = 0;
      for (int r = r0 - kOut; r < r1 + kOut; ++r) {
        const int q = reflect_index(r, h);
        lo7 = std::min(lo7, q);
        hi7 = std::max(hi7, q + 1);
      }
      int lo3 = h, hi3 = 0;
      for (int r = lo7 - kIn; r < hi7 + kIn; ++r) {
        const int q = reflect_index(r, h);
        lo3 = std::min(lo3, q);
        hi3 = std::max(hi3, q + 1);
      }
      hb3.resize(static_cast<std::size_t>(hi3 - lo3) * width);
      hh7.resize(static_cast<std::size_t>(hi7 - lo7) * width);
      box_rows(yi + static_cast<std::size_t>(lo3) * width, hb3.data(), width, kIn, 0, hi3 - lo3);
      std::vector<float> hp(width);
      for (int q = lo7; q < hi7; ++q) {
        // hp row q = |y - vertical box3 of hb3|
        const float* yr = yi + static_cast<std::size_t>(q) * width;
        std::fill(hp.begin(), hp.end(), 0.0f);
        for (int k = -kIn; k <= kIn; ++k) {
          const float* src = hb3.data() + static_cast<std::size_t>(reflect_index(q + k, h) - lo3) * width;
          for (std::size_t x = 0; x < width; ++x) hp[x] += src[x];
        }
        const float inv3 = 1.0f / static_cast<float>(2 * kIn + 1);
        for (std::size_t x = 0; x < width; ++x) hp[x] = std::fabs(yr[x] - hp[x] * inv3);
        box_rows(hp.data(), hh7.data() + static_cast<std::size_t>(q - lo7) * width, width, kOut, 0, 1);
      }
      const float inv7 = 1.0f / static_cast<float>(2 * kOut + 1);
      for (int r = r0; r < r1; ++r) {
        float* o = oi + static_cast<std::size_t>(r) * width;
        std::fill(o, o + width, 0.0f);
        for (int k = -kOut; k <= kOut; ++k) {
          const float* src = hh7.data() + static_cast<std::size_t>(reflect_index(r + k, h) - lo7) * width;
          for (std::size_t x = 0; x < width; ++x) o[x] += src[x];
        }
        for (std::size_t x = 0; x < width; ++x) o[x] = std::min(kMaskHi, std::max(kMaskLo, o[x] * inv7));
      }
    }
  });
}

AreaTaps area_taps(std::size_t n_in, std::size_t n_out) {
  AreaTaps t;
  const double s = static_cast<double>(n_in) / static_cast<double>(n_out);
  t.max_taps = static_cast<std::size_t>(std::ceil(s)) + 2;
  t.first.resize(n_out);
  t.count.resize(n_out);
  t.weight.assign(n_out * t.max_taps, 0.0f);
  for (std::size_t o = 0; o < n_out; ++o) {
    const double a = static_cast<double>(o) * s, b = static_cast<double>(o + 1) * s;
    const std::size_t i0 = static_cast<std::size_t>(std::floor(a));
    const std::size_t i1 = std::min(static_cast<std::size_t>(std::ceil(b)), n_in);
    t.first[o] = i0;
    t.count[o] = i1 - i0;
    for (std::size_t i = i0; i < i1; ++i) {
      const double wgt = std::min(b, static_cast<double>(i + 1)) - std::max(a, static_cast<double>(i));
      t.weight[o * t.max_taps + (i - i0)] = static_cast<float>(wgt / s);
    }
  }
  return t;
}

void resample_area(const float* in, std::size_t height, std::size_t width, float* out, std::size_t out_h,
                   std::size_t out_w) {
  if (in == nullptr || out == nullptr) throw InvalidArgument("image resample: null pointer");
  if (out_h == 0 || out_w == 0 || out_h > height || out_w > width)
    throw InvalidArgument("image resample: output size must be in [1, input size] on both axes");
  const AreaTaps ty = area_taps(height, out_h), tx = area_taps(width, out_w);
  std::vector<float> mid(out_h * width);
  parallel_for(out_h, 4, [&](std::size_t b, std::size_t e) {
    for (std::size_t o = b; o < e; ++o) {
      float* m = mid.data() + o * width;
      std::fill(m, m + width, 0.0f);
      for (std::size_t k = 0; k < ty.count[o]; ++k) {
        const float wgt = ty.weight[o * ty.max_taps + k];
        const float* s = in + (ty.first[o] + k) * width;
        for (std::size_t x = 0; x < width; ++x) m[x] += wgt * s[x];
      }
    }
  });
  parallel_for(out_h, 4, [&](std::size_t b, std::size_t e) {
    for (std::size_t o = b; o < e; ++o) {
      const float* m = mid.data() + o * width;
      float* d = out + o * out_w;
      for (std::size_t x = 0; x < out_w; ++x) {
        float acc = 0.0f;
        const float* wx = tx.weight.data() + x * tx.max_taps;
        const float* s = m + tx.first[x];
        for (std::size_t k = 0; k < tx.count[x]; ++k) acc += wx[k] * s[k];
        d[x] = acc;
      }
    }
  });
}

void embed_apply(const EmbedApplyParams& p) {
  check_batch(p.in, "image embed_apply");
  if (p.out == nullptr || p.mask == nullptr || p.tiles == nullptr)
    throw InvalidArgument("image embed_apply: null pointer");
  if (!(p.chip > 0.0) || !std::isfinite(p.chip)) throw InvalidArgument("image embed_apply: chip must be > 0");
  if (!(p.target_rms >= 0.0) || !std::isfinite(p.target_rms))
    throw InvalidArgument("image embed_apply: target_rms must be >= 0");
  const std::size_t n = p.in.n, h = p.in.height, w = p.in.width;
  std::vector<int> col_lo(w);
  std::vector<float> col_frac(w);
  for (std::size_t x = 0; x < w; ++x) chip_coord(static_cast<int>(x), p.chip, &col_lo[x], &col_frac[x]);
  // pass 1: mask * pattern into a plane, and its energy per row (fixed reduction order: deterministic for
  // any thread count)
  std::vector<float> dplane(n * h * w);
  std::vector<double> row_energy(n * h, 0.0);
  parallel_for(n * h, kRowGrain, [&](std::size_t b, std::size_t e) {
    for (std::size_t gr = b; gr < e; ++gr) {
      float* d = dplane.data() + gr * w;
      delta_row(p, col_lo, col_frac, gr / h, gr % h, p.mask + gr * w, d);
      float acc = 0.0f;
      for (std::size_t x = 0; x < w; ++x) acc += d[x] * d[x];
      row_energy[gr] = acc;
    }
  });
  std::vector<double> gains(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    double e = 0.0;
    for (std::size_t r = 0; r < h; ++r) e += row_energy[i * h + r];
    const double rms = std::sqrt(e / static_cast<double>(h * w));
    gains[i] = rms > 1e-12 ? p.target_rms / rms : 0.0;
    if (p.gains != nullptr) p.gains[i] = gains[i];
  }
  parallel_for(n * h, kRowGrain, [&](std::size_t b, std::size_t e) {
    switch (p.in.type) {
      case PixelType::kU8:
        apply_rows<uint8_t>(p, dplane.data(), gains, b, e);
        break;
      case PixelType::kF32:
        apply_rows<float>(p, dplane.data(), gains, b, e);
        break;
      case PixelType::kF64:
        apply_rows<double>(p, dplane.data(), gains, b, e);
        break;
    }
  });
}

}  // namespace provmark::image
