// FFT plans (host) and the run-time ISA dispatch of the frame kernels. Kernels: audio_fft_impl.h.
#include "core/audio_fft.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/simd.h"

namespace provmark::audio {
namespace {

enum class Isa { kBaseline, kAVX2, kAVX512 };

#if defined(PROVMARK_HAVE_AVX2_TU)
bool avx512_usable() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool cpu = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  }();
  if (!cpu) return false;
  const char* env = std::getenv("PROVMARK_AUDIO_AVX512");
  return env == nullptr || std::strcmp(env, "0") != 0;
#else
  return false;
#endif
}
#endif

Isa current_isa() {
#if defined(PROVMARK_HAVE_AVX2_TU)
  if (simd_level() == SimdLevel::kAVX2) return avx512_usable() ? Isa::kAVX512 : Isa::kAVX2;
#endif
  return Isa::kBaseline;
}

}  // namespace

const char* kernel_isa() {
  switch (current_isa()) {
    case Isa::kAVX512:
      return "avx512";
    case Isa::kAVX2:
      return "avx2";
    default:
      return "baseline";
  }
}

FftPlan::FftPlan(int n) {
  if (n < 2 || n > (1 << 20))
    throw InvalidArgument("FftPlan: size must be in [2, 2^20], got " + std::to_string(n));
  // Radix 4 first (cheapest per point), then 2, 3, 5, 7 and any other prime up to 31.
  int rest = n, ns = 0;
  int radices[kMaxStages];
  while (rest % 4 == 0) radices[ns++] = 4, rest /= 4;
  for (int f = 2; f <= 31 && rest > 1; ++f) {
    while (rest % f == 0) {
      if (ns >= kMaxStages) throw InvalidArgument("FftPlan: too many factors");
      radices[ns++] = f;
      rest /= f;
    }
  }
  if (rest != 1) throw InvalidArgument("FftPlan: size " + std::to_string(n) + " has a prime factor above 31");
  // Largest radix first: the first stage needs no twiddles, so it should be the widest butterfly.
  std::sort(radices, radices + ns, [](int a, int b) { return a > b; });
  // Storage: twiddles then rotation tables of every stage.
  std::size_t total = 0;
  int span = 1;
  for (int s = 0; s < ns; ++s) {
    const int r = radices[s], m = (r - 1) / 2;
    total += 2 * std::size_t(span) * (r - 1) + (r % 2 ? 2 * std::size_t(m) * m : 0);
    span *= r;
  }
  storage_.assign(total + 1, 0.0);
  view_.n = n;
  view_.nstages = ns;
  span = 1;
  std::size_t at = 0;
  for (int s = 0; s < ns; ++s) {
    const int r = radices[s], m = (r - 1) / 2;
    view_.radix[s] = r;
    view_.span[s] = span;
    double* tw = storage_.data() + at;
    for (int k = 0; k < span; ++k)
      for (int q = 1; q < r; ++q) {
        const double a = -2.0 * M_PI * double(k) * q / (double(span) * r);
        tw[2 * ((r - 1) * k + q - 1)] = std::cos(a);
        tw[2 * ((r - 1) * k + q - 1) + 1] = std::sin(a);
      }
    view_.tw[s] = tw;
    at += 2 * std::size_t(span) * (r - 1);
    if (r % 2) {
      double* rot = storage_.data() + at;
      for (int kk = 1; kk <= m; ++kk)
        for (int q = 1; q <= m; ++q) {
          const double a = 2.0 * M_PI * double(q) * kk / r;
          rot[2 * (m * (kk - 1) + q - 1)] = std::cos(a);
          rot[2 * (m * (kk - 1) + q - 1) + 1] = std::sin(a);
        }
      view_.rot[s] = rot;
      at += 2 * std::size_t(m) * m;
    }
    span *= r;
  }
}

std::size_t frame_scratch_size(int n) { return 4 * std::size_t(n) * kMaxLanes + 16; }

// Dispatch helper: call isa_X::fn(args...) for the ISA in use.
#if defined(PROVMARK_HAVE_AVX2_TU)
#define PROVMARK_AUDIO_DISPATCH(fn, ...)      \
  do {                                        \
    switch (current_isa()) {                  \
      case Isa::kAVX512:                      \
        return isa_avx512::fn(__VA_ARGS__);   \
      case Isa::kAVX2:                        \
        return isa_avx2::fn(__VA_ARGS__);     \
      default:                                \
        return isa_baseline::fn(__VA_ARGS__); \
    }                                         \
  } while (0)
#else
#define PROVMARK_AUDIO_DISPATCH(fn, ...) return isa_baseline::fn(__VA_ARGS__)
#endif

namespace {
int isa_lanes() { PROVMARK_AUDIO_DISPATCH(lanes, ); }
void isa_fft(const FftView& p, double* re, double* im, double* re2, double* im2, int* second) {
  PROVMARK_AUDIO_DISPATCH(fft_lanes, p, re, im, re2, im2, second);
}
}  // namespace

void fft_forward(const FftPlan& plan, double* data, std::size_t count) {
  const int n = plan.size();
  const int L = isa_lanes();
  std::vector<double> buf(frame_scratch_size(n));
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(buf.data());
  double* re = reinterpret_cast<double*>((a + 63) & ~std::uintptr_t(63));
  double* im = re + std::size_t(n) * L;
  double* re2 = im + std::size_t(n) * L;
  double* im2 = re2 + std::size_t(n) * L;
  for (std::size_t c0 = 0; c0 < count; c0 += L) {
    const std::size_t lanes = std::min<std::size_t>(L, count - c0);
    for (std::size_t i = 0; i < std::size_t(n) * L; ++i) re[i] = im[i] = 0.0;
    for (std::size_t l = 0; l < lanes; ++l)
      for (int i = 0; i < n; ++i) {
        re[i * L + l] = data[2 * ((c0 + l) * n + i)];
        im[i * L + l] = data[2 * ((c0 + l) * n + i) + 1];
      }
    int second = 0;
    isa_fft(plan.view(), re, im, re2, im2, &second);
    const double* r = second ? re2 : re;
    const double* m = second ? im2 : im;
    for (std::size_t l = 0; l < lanes; ++l)
      for (int i = 0; i < n; ++i) {
        data[2 * ((c0 + l) * n + i)] = r[i * L + l];
        data[2 * ((c0 + l) * n + i) + 1] = m[i * L + l];
      }
  }
}

void frame_powers(const FftPlan& plan, const PowersArgs& args, double* scratch) {
  PROVMARK_AUDIO_DISPATCH(frame_powers, plan.view(), args, scratch);
}

void frame_filter(const FftPlan& plan, const FilterArgs& args, double* scratch) {
  PROVMARK_AUDIO_DISPATCH(frame_filter, plan.view(), args, scratch);
}

}  // namespace provmark::audio
