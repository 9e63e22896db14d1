// Image watermark, fused full-resolution embedder (see image_fused.h).
#include "core/image_fused.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/image_embed.h"
#include "core/image_kernels_isa.h"
#include "core/image_math.h"
#include "core/parallel.h"
#include "core/simd.h"

namespace provmark::image {

const ImageKernels& image_kernels() {
#if defined(PROVMARK_HAVE_AVX2_TU)
  if (simd_level() == SimdLevel::kAVX2) return isa_avx2::image_kernels_table();
#endif
  return isa_baseline::image_kernels_table();
}

namespace {

constexpr std::size_t kInRowsPerBlock = 128;  // input rows per task of pass A (halo: 5 rows recomputed)
constexpr std::size_t kApplyGrain = 16;       // rows per chunk of pass B

std::size_t elem_size(PixelType t) { return t == PixelType::kU8 ? 1 : (t == PixelType::kF32 ? 4 : 8); }

void check_one(const ImageBatch& b, const char* fn) {
  if (b.data == nullptr) throw InvalidArgument(std::string(fn) + ": null pixel pointer");
  if (b.n != 1) throw InvalidArgument(std::string(fn) + ": one picture per call");
  if (b.height == 0 || b.width == 0) throw InvalidArgument(std::string(fn) + ": empty picture");
  if (!(b.channels == 0 || b.channels == 1 || b.channels == 3 || b.channels == 4))
    throw InvalidArgument(std::string(fn) + ": channels must be 0, 1, 3 or 4");
}

// Horizontal taps in the layout of ImageKernels::resample_h_row: tap-major weights, zero-padded to the
// largest count (a padded tap reads at most taps - 1 floats past the row: the row buffers have that slack).
struct HTaps {
  std::vector<int32_t> first;
  std::vector<float> wts;  // [taps, out_w]
  int taps = 0;
};

HTaps h_taps(const AreaTaps& t, std::size_t out_w) {
  HTaps h;
  std::size_t most = 1;
  for (std::size_t x = 0; x < out_w; ++x) most = std::max(most, t.count[x]);
  h.taps = static_cast<int>(most);
  h.first.resize(out_w);
  h.wts.assign(most * out_w, 0.0f);
  for (std::size_t x = 0; x < out_w; ++x) {
    h.first[x] = static_cast<int32_t>(t.first[x]);
    for (std::size_t k = 0; k < t.count[x]; ++k) h.wts[k * out_w + x] = t.weight[x * t.max_taps + k];
  }
  return h;
}

struct Block {
  std::size_t in_a, in_b;    // input rows whose mask is computed
  std::size_t own_a, own_b;  // input rows whose mask_q this block writes
  std::size_t o0, o1;        // working rows this block produces
};

// Row caches of pass A, keyed by row index (slot = row mod size): luma (padded by 1; 8 rows, so row r stays
// while mask row r pulls in rows up to r + 4), horizontal box3 of luma, horizontal box7 of the high-pass.
class MaskRows {
 public:
  MaskRows(const ImageBatch& in, const ImageKernels& k)
      : in_(in),
        k_(k),
        w_(in.width),
        h_(static_cast<int>(in.height)),
        row_bytes_(in.width * in.pixel_stride() * elem_size(in.type)),
        luma_(8 * (w_ + 2)),
        hb3_(4 * w_),
        hh7_(8 * w_),
        hp_(w_ + 6) {
    std::fill(std::begin(luma_tag_), std::end(luma_tag_), -1);
    std::fill(std::begin(hb3_tag_), std::end(hb3_tag_), -1);
    std::fill(std::begin(hh7_tag_), std::end(hh7_tag_), -1);
  }

  // Luma row r, padded: element 0 is x = -1.
  const float* luma(int r) {
    const int s = r & 7;
    float* row = luma_.data() + static_cast<std::size_t>(s) * (w_ + 2);
    if (luma_tag_[s] != r) {
      const char* src = static_cast<const char*>(in_.data) + static_cast<std::size_t>(r) * row_bytes_;
      k_.luma_row(src, static_cast<int>(in_.type), static_cast<int>(in_.pixel_stride()), w_, row + 1);
      row[0] = row[1];        // reflect(-1) = 0
      row[w_ + 1] = row[w_];  // reflect(W) = W - 1
      luma_tag_[s] = r;
    }
    return row;
  }

  const float* hb3(int r) {
    const int s = r & 3;
    float* row = hb3_.data() + static_cast<std::size_t>(s) * w_;
    if (hb3_tag_[s] != r) {
      k_.box_row(luma(r), w_, kMaskInner, row);
      hb3_tag_[s] = r;
    }
    return row;
  }

  const float* hh7(int q) {
    const int s = q & 7;
    float* row = hh7_.data() + static_cast<std::size_t>(s) * w_;
    if (hh7_tag_[s] != q) {
      const float* a = hb3(reflect_index(q - 1, h_));
      const float* b = hb3(q);
      const float* c = hb3(reflect_index(q + 1, h_));
      float* hp = hp_.data();
      k_.highpass_row(luma(q) + 1, a, b, c, w_, hp + kMaskOuter);
      const int w = static_cast<int>(w_);
      for (int x = -kMaskOuter; x < 0; ++x) hp[x + kMaskOuter] = hp[kMaskOuter + reflect_index(x, w)];
      for (int x = w; x < w + kMaskOuter; ++x) hp[x + kMaskOuter] = hp[kMaskOuter + reflect_index(x, w)];
      k_.box_row(hp, w_, kMaskOuter, row);
      hh7_tag_[s] = q;
    }
    return row;
  }

  // Mask row r into m (and its quantisation into q when not null).
  void mask(int r, float* m, uint16_t* q) {
    const float* rows[2 * kMaskOuter + 1];
    for (int t = -kMaskOuter; t <= kMaskOuter; ++t) rows[t + kMaskOuter] = hh7(reflect_index(r + t, h_));
    k_.mask_row(rows, 2 * kMaskOuter + 1, w_, m, q);
  }

 private:
  const ImageBatch& in_;
  const ImageKernels& k_;
  std::size_t w_;
  int h_;
  std::size_t row_bytes_;
  std::vector<float> luma_, hb3_, hh7_, hp_;
  int luma_tag_[8], hb3_tag_[4], hh7_tag_[8];
};

}  // namespace

void embed_analyse(const AnalyseParams& p) {
  check_one(p.in, "image embed_analyse");
  const std::size_t h = p.in.height, w = p.in.width;
  const bool work = p.work_h > 0 || p.work_w > 0;
  if (work) {
    if (p.work_h == 0 || p.work_w == 0 || p.work_h > h || p.work_w > w)
      throw InvalidArgument("image embed_analyse: the working size must be within [1, input size]");
    if (p.y_work == nullptr) throw InvalidArgument("image embed_analyse: null output");
  }
  if (!work && p.mask_q == nullptr) throw InvalidArgument("image embed_analyse: nothing to compute");
  const bool with_mask = p.mask_q != nullptr || p.m_work != nullptr;  // else luma only (the detector's)
  const bool identity = work && p.work_h == h && p.work_w == w;
  const bool resample = work && !identity;
  const ImageKernels& k = image_kernels();
  AreaTaps ty;
  HTaps hx;
  std::vector<Block> blocks;
  if (resample) {
    ty = area_taps(h, p.work_h);
    hx = h_taps(area_taps(w, p.work_w), p.work_w);
    const double s = static_cast<double>(h) / static_cast<double>(p.work_h);
    const std::size_t per = std::max<std::size_t>(1, static_cast<std::size_t>(kInRowsPerBlock / s));
    for (std::size_t o0 = 0; o0 < p.work_h; o0 += per) {
      const std::size_t o1 = std::min(p.work_h, o0 + per);
      Block b;
      b.o0 = o0;
      b.o1 = o1;
      b.in_a = ty.first[o0];
      b.in_b = ty.first[o1 - 1] + ty.count[o1 - 1];
      b.own_a = ty.first[o0];
      b.own_b = o1 < p.work_h ? ty.first[o1] : h;
      blocks.push_back(b);
    }
  } else {
    for (std::size_t r0 = 0; r0 < h; r0 += kInRowsPerBlock) {
      const std::size_t r1 = std::min(h, r0 + kInRowsPerBlock);
      blocks.push_back(Block{r0, r1, r0, r1, r0, r1});
    }
  }
  parallel_for(blocks.size(), 1, [&](std::size_t b0, std::size_t b1) {
    MaskRows rows(p.in, k);
    // mid rows: stride w + taps, the tail zero (read by the padded horizontal taps)
    const std::size_t ms = w + static_cast<std::size_t>(hx.taps);
    std::vector<float> m(w), mid_y(resample ? 4 * ms : 0, 0.0f), mid_m(resample ? 4 * ms : 0, 0.0f);
    for (std::size_t bi = b0; bi < b1; ++bi) {
      const Block& b = blocks[bi];
      std::size_t o_next = b.o0;  // first working row not yet started
      for (std::size_t r = b.in_a; r < b.in_b; ++r) {
        const bool own = r >= b.own_a && r < b.own_b;
        uint16_t* q = own && p.mask_q != nullptr ? p.mask_q + r * w : nullptr;
        if (with_mask) rows.mask(static_cast<int>(r), m.data(), q);
        if (identity) {
          std::memcpy(p.y_work + r * w, rows.luma(static_cast<int>(r)) + 1, w * sizeof(float));
          if (p.m_work != nullptr) std::memcpy(p.m_work + r * w, m.data(), w * sizeof(float));
        } else if (resample) {
          const float* yr = rows.luma(static_cast<int>(r)) + 1;
          // working rows o whose span holds r: started ones (o < o_next) and new ones starting here
          while (o_next < b.o1 && ty.first[o_next] <= r) {
            float* my = mid_y.data() + (o_next & 3) * ms;
            float* mm = mid_m.data() + (o_next & 3) * ms;
            std::fill(my, my + w, 0.0f);
            if (p.m_work != nullptr) std::fill(mm, mm + w, 0.0f);
            ++o_next;
          }
          for (std::size_t o = (o_next >= 4 ? o_next - 4 : 0); o < o_next; ++o) {
            if (o < b.o0 || r < ty.first[o] || r >= ty.first[o] + ty.count[o]) continue;
            const float wgt = ty.weight[o * ty.max_taps + (r - ty.first[o])];
            float* my = mid_y.data() + (o & 3) * ms;
            float* mm = mid_m.data() + (o & 3) * ms;
            k.axpy_row(wgt, yr, w, my);
            if (p.m_work != nullptr) k.axpy_row(wgt, m.data(), w, mm);
            if (r + 1 == ty.first[o] + ty.count[o]) {
              k.resample_h_row(my, hx.first.data(), hx.wts.data(), hx.taps, p.work_w,
                               p.y_work + o * p.work_w);
              if (p.m_work != nullptr)
                k.resample_h_row(mm, hx.first.data(), hx.wts.data(), hx.taps, p.work_w,
                                 p.m_work + o * p.work_w);
            }
          }
        }
      }
    }
  });
}

void embed_apply_fused(const FusedApplyParams& p) {
  check_one(p.in, "image embed_apply_fused");
  if (p.out == nullptr || p.mask_q == nullptr || p.tile == nullptr)
    throw InvalidArgument("image embed_apply_fused: null pointer");
  if (!(p.chip > 0.0) || !std::isfinite(p.chip))
    throw InvalidArgument("image embed_apply_fused: chip must be > 0");
  if (!(p.target_rms >= 0.0) || !std::isfinite(p.target_rms))
    throw InvalidArgument("image embed_apply_fused: target_rms must be >= 0");
  if (!(p.flat_rms >= 0.0) || !std::isfinite(p.flat_rms))
    throw InvalidArgument("image embed_apply_fused: flat_rms must be >= 0");
  const std::size_t h = p.in.height, w = p.in.width;
  const ImageKernels& k = image_kernels();
  // tile rows interpolated along x once: prow[j] = row j of the tile at every column (j = kTile wraps to 0)
  std::vector<float> prow((kTile + 1) * w);
  for (std::size_t x = 0; x < w; ++x) {
    int lo;
    float f;
    chip_coord(static_cast<int>(x), p.chip, &lo, &f);
    const int hi = (lo + 1) % kTile;
    for (int j = 0; j < kTile; ++j)
      prow[j * w + x] = (1.0f - f) * p.tile[j * kTile + lo] + f * p.tile[j * kTile + hi];
  }
  std::copy(prow.begin(), prow.begin() + w, prow.begin() + kTile * w);
  std::vector<int> row_lo(h);
  std::vector<float> row_fr(h);
  for (std::size_t r = 0; r < h; ++r) chip_coord(static_cast<int>(r), p.chip, &row_lo[r], &row_fr[r]);
  // energy per row (fixed reduction order: deterministic for any thread count); with a flat limit, the sums
  // of flat_gains (image_math.h) on the pattern p and the mask's excess e = q / kMaskQ instead
  const bool flat = p.flat_rms > 0.0;
  std::vector<double> row_energy(flat ? 0 : h, 0.0), row_sums(flat ? h * kFlatSums : 0, 0.0);
  parallel_for(h, kApplyGrain, [&](std::size_t b, std::size_t e) {
    std::vector<float> d(w);
    for (std::size_t r = b; r < e; ++r) {
      const int lo = row_lo[r];
      const uint16_t* q = p.mask_q + r * w;
      const float* p0 = prow.data() + lo * w;
      const float* p1 = prow.data() + (lo + 1) * w;
      if (!flat) {
        row_energy[r] = k.pattern_row(q, nullptr, p0, p1, row_fr[r], w, d.data());
        continue;
      }
      float sums[kFlatSums];
      k.flat_sums_row(q, p0, p1, row_fr[r], w, sums);
      for (int j = 0; j < kFlatSums; ++j) row_sums[r * kFlatSums + j] = sums[j];
    }
  });
  double g_floor = 0.0, g_excess = 0.0;
  if (flat) {
    double sums[kFlatSums] = {};
    for (std::size_t r = 0; r < h; ++r)
      for (int j = 0; j < kFlatSums; ++j) sums[j] += row_sums[r * kFlatSums + j];
    flat_gains(sums, static_cast<double>(h * w), p.target_rms, p.flat_rms, &g_floor, &g_excess);
  } else {
    double energy = 0.0;
    for (double e : row_energy) energy += e;
    g_floor = g_excess = embed_gain(energy, static_cast<double>(h * w), p.target_rms);
  }
  if (p.gain != nullptr) *p.gain = g_excess;
  const bool split = g_floor != g_excess;
  const float gf = static_cast<float>(g_floor), gx = static_cast<float>(g_excess);
  const std::size_t row_bytes = w * p.in.pixel_stride() * elem_size(p.in.type);
  const int type = static_cast<int>(p.in.type), ps = static_cast<int>(p.in.pixel_stride());
  parallel_for(h, kApplyGrain, [&](std::size_t b, std::size_t e) {
    std::vector<float> d(w), scratch(4 * w);
    for (std::size_t r = b; r < e; ++r) {
      const int lo = row_lo[r];
      const uint16_t* q = p.mask_q + r * w;
      const float* p0 = prow.data() + lo * w;
      const float* p1 = prow.data() + (lo + 1) * w;
      if (split) {  // d = p (g_floor + g_excess e), applied with gain 1 (1 * v == v)
        k.split_row(q, p0, p1, row_fr[r], gf, gx, w, d.data());
      } else {
        k.pattern_row(q, nullptr, p0, p1, row_fr[r], w, d.data());
      }
      k.apply_row(static_cast<const char*>(p.in.data) + r * row_bytes,
                  static_cast<char*>(p.out) + r * row_bytes, type, ps, d.data(), split ? 1.0f : gx, w,
                  scratch.data());
    }
  });
}

double render_pattern(const float* tile, std::size_t h, std::size_t w, double chip, const float* mask,
                      float* out) {
  if (tile == nullptr || out == nullptr) throw InvalidArgument("image render_pattern: null pointer");
  if (h == 0 || w == 0) throw InvalidArgument("image render_pattern: empty size");
  if (!(chip > 0.0) || !std::isfinite(chip)) throw InvalidArgument("image render_pattern: chip must be > 0");
  const ImageKernels& k = image_kernels();
  std::vector<float> prow((kTile + 1) * w);
  for (std::size_t x = 0; x < w; ++x) {
    int lo;
    float f;
    chip_coord(static_cast<int>(x), chip, &lo, &f);
    const int hi = (lo + 1) % kTile;
    for (int j = 0; j < kTile; ++j)
      prow[j * w + x] = (1.0f - f) * tile[j * kTile + lo] + f * tile[j * kTile + hi];
  }
  std::copy(prow.begin(), prow.begin() + w, prow.begin() + kTile * w);
  std::vector<double> row_energy(h, 0.0);
  parallel_for(h, kApplyGrain, [&](std::size_t b, std::size_t e) {
    for (std::size_t r = b; r < e; ++r) {
      int lo;
      float fr;
      chip_coord(static_cast<int>(r), chip, &lo, &fr);
      row_energy[r] = k.pattern_row(nullptr, mask != nullptr ? mask + r * w : nullptr, prow.data() + lo * w,
                                    prow.data() + (lo + 1) * w, fr, w, out + r * w);
    }
  });
  double energy = 0.0;
  for (double e : row_energy) energy += e;
  return std::sqrt(energy / static_cast<double>(h * w));
}

}  // namespace provmark::image
