#include "core/simd.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/common.h"

namespace provmark {
namespace {

SimdLevel detect_supported() {
#if defined(PROVMARK_HAVE_AVX2_TU) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::kAVX2;
#endif
  return SimdLevel::kBaseline;
}

SimdLevel initial_level() {
  const SimdLevel best = detect_supported();
  const char* env = std::getenv("PROVMARK_SIMD");
  if (env == nullptr || *env == '\0') return best;
  if (std::strcmp(env, "baseline") == 0) return SimdLevel::kBaseline;
  if (std::strcmp(env, "avx2") == 0 && best == SimdLevel::kAVX2) return SimdLevel::kAVX2;
  return best;  // unknown or unsupported request: fall back to what works
}

std::atomic<int>& level_slot() {
  static std::atomic<int> slot{static_cast<int>(initial_level())};
  return slot;
}

}  // namespace

SimdLevel simd_level() { return static_cast<SimdLevel>(level_slot().load(std::memory_order_relaxed)); }

SimdLevel simd_level_supported() {
  static const SimdLevel best = detect_supported();
  return best;
}

void set_simd_level(SimdLevel level) {
  if (static_cast<int>(level) > static_cast<int>(simd_level_supported())) {
    throw InvalidArgument(std::string("set_simd_level: ") + simd_level_name(level) +
                          " is not supported on this CPU/build (best: " +
                          simd_level_name(simd_level_supported()) + ")");
  }
  level_slot().store(static_cast<int>(level), std::memory_order_relaxed);
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAVX2:
      return "avx2";
    case SimdLevel::kBaseline:
    default:
      return "baseline";
  }
}

}  // namespace provmark
