// Mixed-radix FFT for the audio engine's frame sizes (2H = 160 .. 960 points: factors 2, 3, 4, 5, 7, 11),
// written for this project: a Stockham (self-sorting) radix-r decomposition that transforms 4 or 8
// sequences side by side, so each butterfly is a SIMD operation across transforms. Double precision.
//
// The frame kernels take PAIRS of real sequences (a, b) and transform z = win * (a + i b) as one complex
// sequence: A = (Z[k] + conj Z[N-k]) / 2, B = (Z[k] - conj Z[N-k]) / 2i. With a real, symmetric gain G,
// ifft(G Z) = ifft(G A) + i ifft(G B), so a pair that shares its gains is filtered by one forward and one
// inverse transform.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/audio_common.h"

namespace provmark::audio {

// Read-only view of a plan, what the per-ISA kernels see (raw pointers only).
struct FftView {
  int n = 0;  // transform length
  int nstages = 0;
  int radix[kMaxStages] = {};          // radix of each stage
  int span[kMaxStages] = {};           // Ns: product of the earlier radices
  const double* tw[kMaxStages] = {};   // [Ns, R - 1, 2] twiddles (re, im) = exp(-2 pi i k r / (Ns R))
  const double* rot[kMaxStages] = {};  // odd radix R: [m, m, 2] (cos, sin)(2 pi p k / R), m = (R - 1) / 2
};

class FftPlan {
 public:
  explicit FftPlan(int n);  // throws InvalidArgument for n < 2 or a prime factor above 31
  const FftView& view() const { return view_; }
  int size() const { return view_.n; }

 private:
  std::vector<double> storage_;
  FftView view_;
};

// Forward DFT of `count` complex sequences (in place, [count][n] interleaved re/im). Reference/test entry.
void fft_forward(const FftPlan& plan, double* data, std::size_t count);

// Scratch doubles the frame kernels need (aligned inside).
std::size_t frame_scratch_size(int n);

// pa[q * nb + k] = |A_q[k]|^2, pb[q * nb + k] = |B_q[k]|^2 for k < nb (nb <= n / 2 + 1), for z_q =
// win * (a_q + i b_q); b_q may be null (zeros; pb is then not written for that pair and may be null).
struct PowersArgs {
  const double* win = nullptr;       // [n]
  const double* const* a = nullptr;  // [npairs] pointers to n samples
  const double* const* b = nullptr;  // [npairs] pointers to n samples or null
  std::size_t npairs = 0;
  int nb = 0;
  double* pa = nullptr;      // [npairs, nb]
  double* pb = nullptr;      // [npairs, nb]
  double* energy = nullptr;  // optional [npairs]: sum_i (win a_q)^2 + (win b_q)^2
  // Band mode (when band_out is set; pa, pb are then not written): band_out[q * nbands + j] = sum of
  // |A_q[k]|^2 + |B_q[k]|^2 over k in [edges[j], edges[j + 1]), edges[nbands] <= nb.
  const int32_t* edges = nullptr;
  int nbands = 0;
  double* band_out = nullptr;
  // Cumulative mode (when cum_out is set; pa, pb are then not written): running sums over k < nb with a
  // leading 0, nb + 1 values per row. cum_sum: one row per pair, of |A_q|^2 + |B_q|^2 (row q); otherwise
  // one row per sequence: row 2q of |A_q|^2, row 2q + 1 of |B_q|^2 (not written for a null b).
  double* cum_out = nullptr;
  bool cum_sum = false;
};
void frame_powers(const FftPlan& plan, const PowersArgs& args, double* scratch);

// da_q[i] += win[i] * ifft(G_q * fft(win * (a_q + i b_q))).real[i], db_q likewise with .imag; G_q is the
// real gain gains_q[k] for k in [lo, hi) (and its mirror n - k), 0 elsewhere.
struct FilterArgs {
  const double* win = nullptr;           // [n]
  const double* const* a = nullptr;      // [npairs]
  const double* const* b = nullptr;      // [npairs] or null entries
  const double* const* gains = nullptr;  // [npairs] pointers to n / 2 + 1 gains (only [lo, hi) read)
  std::size_t npairs = 0;
  int lo = 0, hi = 0;           // 0 < lo < hi <= n / 2
  double* const* da = nullptr;  // [npairs] accumulated outputs (n samples each)
  double* const* db = nullptr;  // [npairs] (null where b is null)
};
void frame_filter(const FftPlan& plan, const FilterArgs& args, double* scratch);

// The kernel set in use: "baseline" (SSE2, 4 lanes), "avx2" (4 lanes) or "avx512" (8 lanes). It follows
// simd_level(); at the avx2 level, CPUs with AVX-512F use the 8-lane kernels unless the environment sets
// PROVMARK_AUDIO_AVX512=0 (read at each call, so tests can compare the two).
const char* kernel_isa();

// Per-ISA implementations (audio_fft_impl.h compiled once per ISA); the functions above dispatch.
#define PROVMARK_AUDIO_ISA_DECLS                                                                          \
  int lanes();                                                                                            \
  void fft_lanes(const FftView& p, double* re, double* im, double* re2, double* im2, int* out_in_second); \
  void frame_powers(const FftView& p, const PowersArgs& args, double* scratch);                           \
  void frame_filter(const FftView& p, const FilterArgs& args, double* scratch);
namespace isa_baseline {
PROVMARK_AUDIO_ISA_DECLS
}  // namespace isa_baseline
namespace isa_avx2 {
PROVMARK_AUDIO_ISA_DECLS
}  // namespace isa_avx2
namespace isa_avx512 {
PROVMARK_AUDIO_ISA_DECLS
}  // namespace isa_avx512
#undef PROVMARK_AUDIO_ISA_DECLS

}  // namespace provmark::audio
