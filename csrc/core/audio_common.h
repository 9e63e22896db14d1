// Audio watermark: parameter structs and the per-element math shared by the CPU loops (audio_cpu.cpp) and a
// later CUDA backend. NumPy reference: python/provmark/audio.py (_cell_moves, _budget_scale, _Analysis,
// _projections, _phase_terms); tests/test_audio_native.py checks the two against each other.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/common.h"

namespace provmark::audio {

constexpr int kMaxGroup = 8;    // bands per group (the format uses 4)
constexpr int kMaxBands = 64;   // bands per frame (the format uses 24)
constexpr int kMaxStages = 24;  // FFT stages (radix factors) per plan
constexpr int kMaxLanes = 8;    // most transforms one batched FFT call computes side by side (AVX-512)

// ---- embedding -------------------------------------------------------------------------------------------
// Format and key-derived tables the embedder needs (T = block_cells, G = n_groups, L = group).
struct EmbedParams {
  int channels = 0;                // C (1..16)
  int hop = 0;                     // H samples; frame N = 2 H
  int cell_hops = 0;               // hops per cell (4)
  int group = 0;                   // L, bands per group (even)
  int ng = 0;                      // groups moved at this rate; bands used = ng * L
  int n_groups = 0;                // G, row stride of dither / bits / chips tables
  int block_cells = 0;             // T, cell-times per block
  const int32_t* edges = nullptr;  // [ng * L + 1] band edges, bins on the N-point grid, increasing, < N / 2
  const double* chips = nullptr;   // [G, L] +-1 zero-sum chips
  const double* dither = nullptr;  // [T, G] in [0, 1)
  const int8_t* bits = nullptr;    // [T, G] 0/1: bit of every instance (sync or coded)
  double step = 0.0;               // quantisation step of the projection
  double gamma = 0.0;              // move split exponent
  double cap = 0.0;                // largest |change| of one band's log power
  double alpha = 1.0;              // strength in (0, 1]
  double k_global = 0.0;           // 10**(-snr_db / 10)
  double k_local = 0.0;            // 10**(-local_snr_db / 10)
  double leak = 0.0;               // bucket leak per cell-time
  double log_floor = 0.0;          // floor * N * cell_hops, added to cell energies before the log
};

// Sample storage of the embedder's input and output arrays.
enum class SampleType : int {
  kF64 = 0,  // float64 in [-1, 1]
  kF32 = 1,  // float32 in [-1, 1]
  kI16 = 2,  // int16, value / 32768
};

// Sample i of a row as float64 (int16 scaled by 1 / 32768, as the Python layer does).
PROVMARK_HD double load_sample(const void* row, SampleType t, std::size_t i) {
  switch (t) {
    case SampleType::kF32:
      return static_cast<double>(static_cast<const float*>(row)[i]);
    case SampleType::kI16:
      return static_cast<double>(static_cast<const int16_t*>(row)[i]) / 32768.0;
    default:
      return static_cast<const double*>(row)[i];
  }
}

// Store v as sample i of a row: floats clipped to [-1, 1] when `clip` (then cast), int16 as
// clip(round_half_even(v * 32768), -32768, 32767) (numpy: np.clip(np.round(y * 32768), ...)).
PROVMARK_HD void store_sample(void* row, SampleType t, std::size_t i, double v, bool clip) {
  if (t == SampleType::kI16) {
    double r = nearbyint(v * 32768.0);
    r = r < -32768.0 ? -32768.0 : (r > 32767.0 ? 32767.0 : r);
    static_cast<int16_t*>(row)[i] = static_cast<int16_t>(r);
    return;
  }
  if (clip) v = v < -1.0 ? -1.0 : (v > 1.0 ? 1.0 : v);
  if (t == SampleType::kF32)
    static_cast<float*>(row)[i] = static_cast<float>(v);
  else
    static_cast<double*>(row)[i] = v;
}

PROVMARK_HD std::size_t sample_size(SampleType t) {
  return t == SampleType::kF64 ? 8 : (t == SampleType::kF32 ? 4 : 2);
}

// Per-call buffers and state of CellEmbedder::run.
struct EmbedIO {
  const void* x = nullptr;  // [C, ld] input; (cell_hops * ncells + 1) * H samples are read per row
  SampleType x_type = SampleType::kF64;
  std::size_t ld = 0;   // row stride of x, samples
  void* out = nullptr;  // [C, ld_out] output: cell_hops * ncells * H samples per row (may alias no input)
  SampleType out_type = SampleType::kF64;
  std::size_t ld_out = 0;    // row stride of out, samples
  bool clip = false;         // clip float output to [-1, 1] (int16 output is always clipped)
  std::size_t ncells = 0;    // cells to embed
  int64_t t_first = 0;       // cell-time index of the first cell (block position = t % T)
  double* bucket = nullptr;  // [1] in/out: unused budget (see _budget_scale)
  double* acc = nullptr;     // [C, H] in/out: tail of the previous cells' change (added to the first hop)
};

// Wanted log-power move of the L bands of one group in one cell (the quantiser + split + cap).
// v: [L] log cell energies; chips: [L]; dither, bit: the instance's; writes dv[L].
PROVMARK_HD void group_move(const double* v, const double* chips, int L, double dither, int bit, double step,
                            double gamma, double cap, double alpha, double* dv) {
  double p = 0.0, mean = 0.0;
  for (int l = 0; l < L; ++l) {
    p += v[l] * chips[l];
    mean += v[l];
  }
  p /= L;
  mean /= L;
  const double off = (dither + 0.5 * bit) * step;
  const double q = nearbyint((p - off) / step) * step + off;  // round half to even, as numpy
  const double dp = alpha * (q - p);
  double w[kMaxGroup];
  double ws = 0.0;
  for (int l = 0; l < L; ++l) {
    w[l] = exp(-gamma * (v[l] - mean));
    ws += w[l];
  }
  for (int l = 0; l < L; ++l) {
    const double d = chips[l] * (w[l] * (L / ws)) * dp;
    dv[l] = d < -cap ? -cap : (d > cap ? cap : d);
  }
}

// One step of the causal energy budget: dist = energy of the cell-time's synthesised change, etot = the
// signal's energy over the cell-time; returns the scale of its gains (the change is linear in them) and
// updates *bucket.
PROVMARK_HD double budget_step(double dist, double etot, double k_global, double k_local, double leak,
                               double* bucket) {
  const double a = k_global * etot + *bucket, b = k_local * etot;
  const double allow = a < b ? a : b;
  double used = dist, scale = 1.0;
  if (used > allow) {
    scale = used > 0 ? sqrt(allow / used) : 1.0;
    used = allow;
  }
  const double nb = *bucket + k_global * etot - used;
  *bucket = (nb > 0.0 ? nb : 0.0) * leak;
  return scale;
}

// ---- detection -------------------------------------------------------------------------------------------
// Natural log of a positive, finite, normal x, branch-free so loops vectorise: x = 2^e m with m in
// [sqrt(1/2), sqrt(2)), log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.172, series to s^23
// (truncation < 1e-18); within a few ulp of std::log. Detection only (the embedder uses std::log).
PROVMARK_HD double log_pos(double x) {
  uint64_t bits;
  __builtin_memcpy(&bits, &x, sizeof bits);
  int64_t e = static_cast<int64_t>((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
  double m;
  __builtin_memcpy(&m, &bits, sizeof m);
  const bool big = m > 1.4142135623730951;
  m = big ? 0.5 * m : m;
  e += big ? 1 : 0;
  const double s = (m - 1.0) / (m + 1.0), s2 = s * s;
  double poly = 1.0 / 23;
  poly = poly * s2 + 1.0 / 21;
  poly = poly * s2 + 1.0 / 19;
  poly = poly * s2 + 1.0 / 17;
  poly = poly * s2 + 1.0 / 15;
  poly = poly * s2 + 1.0 / 13;
  poly = poly * s2 + 1.0 / 11;
  poly = poly * s2 + 1.0 / 9;
  poly = poly * s2 + 1.0 / 7;
  poly = poly * s2 + 1.0 / 5;
  poly = poly * s2 + 1.0 / 3;
  const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  const double de = static_cast<double>(e);
  return de * ln2_hi + (2.0 * s * s2 * poly + (de * ln2_lo + 2.0 * s));
}

// cos(2 pi u) and sin(2 pi u) for finite u, branch-free: u is reduced to r in [-1/2, 1/2], the series run
// on t = 2 pi r / 4 (|t| <= pi / 4, to t^22 / t^23) and two double-angle steps follow; about 1e-15.
PROVMARK_HD void cos_sin_2pi(double u, double* c, double* s) {
  const double r = u - nearbyint(u);
  const double t = r * (2.0 * M_PI / 4.0), t2 = t * t;
  double cp = -1.0 / 1124000727777607680000.0;  // -1/22!
  cp = cp * t2 + 1.0 / 2432902008176640000.0;   // 1/20!
  cp = cp * t2 - 1.0 / 6402373705728000.0;
  cp = cp * t2 + 1.0 / 20922789888000.0;
  cp = cp * t2 - 1.0 / 87178291200.0;
  cp = cp * t2 + 1.0 / 479001600.0;
  cp = cp * t2 - 1.0 / 3628800.0;
  cp = cp * t2 + 1.0 / 40320.0;
  cp = cp * t2 - 1.0 / 720.0;
  cp = cp * t2 + 1.0 / 24.0;
  cp = cp * t2 - 0.5;
  const double c1 = cp * t2 + 1.0;
  double sp = -1.0 / 25852016738884976640000.0;  // -1/23!
  sp = sp * t2 + 1.0 / 51090942171709440000.0;
  sp = sp * t2 - 1.0 / 121645100408832000.0;
  sp = sp * t2 + 1.0 / 355687428096000.0;
  sp = sp * t2 - 1.0 / 1307674368000.0;
  sp = sp * t2 + 1.0 / 6227020800.0;
  sp = sp * t2 - 1.0 / 39916800.0;
  sp = sp * t2 + 1.0 / 362880.0;
  sp = sp * t2 - 1.0 / 5040.0;
  sp = sp * t2 + 1.0 / 120.0;
  sp = sp * t2 - 1.0 / 6.0;
  const double s1 = t + t * t2 * sp;
  // two double-angle steps: (c, s)(2t) = (c^2 - s^2, 2 s c)
  const double c2 = (c1 - s1) * (c1 + s1), s2 = 2.0 * s1 * c1;
  *c = (c2 - s2) * (c2 + s2);
  *s = 2.0 * s2 * c2;
}

// Cumulated power spectra per hop (from analysis()) and the format tables for projections().
struct ProjectParams {
  const double* cs = nullptr;      // [nfr, top + 1] cumulated power over bins (cs[:, 0] = 0)
  std::size_t nfr = 0;             // hops
  int top = 0;                     // bins cumulated
  const int32_t* edges = nullptr;  // [nb + 1] band edges (bins), nb = ng * L
  int ng = 0, group = 0;           // groups, bands per group
  const double* chips = nullptr;   // [>= ng, L] (row stride L)
  int cell_hops = 0;               // hops per cell
  double log_floor = 0.0;          // floor * N * cell_hops
  double speed = 1.0;              // playback speed hypothesis
  double w0 = 0.0, w1 = 1.0;       // reliability weight clip((snr - w0) / w1, 0, 1)
};

// Linear interpolation of the cumulated power at fractional bin `pos` (0 <= pos < top).
PROVMARK_HD double cs_interp(const double* row, double pos) {
  const double i0 = floor(pos);
  const int i = static_cast<int>(i0);
  const double f = pos - i0;
  return row[i] * (1.0 - f) + row[i + 1] * f;
}

struct FoldParams {
  const double* p = nullptr;  // [nj, ng] projections
  const double* w = nullptr;  // [nj, ng] reliability weights
  std::size_t nj = 0;
  int ng = 0;
  int n_groups = 0;     // G, row stride of the tables
  int block_cells = 0;  // T
  int cell_hops = 0;    // hops per cell; block period P = T * cell_hops hops
  double step = 0.0;
  const double* dither = nullptr;  // [T, G]
  const double* sign = nullptr;    // [T, G] +-1 on sync instances, 0 elsewhere
};

// Folded cos/sin term of one (hop, group): cos(2 pi p / step) and sin, weighted.
PROVMARK_HD void fold_term(double p, double w, double step, double* c, double* s) {
  double cc, ss;
  cos_sin_2pi(p / step, &cc, &ss);
  *c = w * cc;
  *s = w * ss;
}

}  // namespace provmark::audio
