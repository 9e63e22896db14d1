// Run-time SIMD dispatch. Hot loops are compiled once per ISA level in their own translation units
// (`*_baseline.cpp`, `*_avx2.cpp`, both including the same `*_impl.h`), and call sites pick one through
// simd_level(). One binary serves every x86-64 CPU; PROVMARK_SIMD=baseline|avx2 overrides the choice.
#pragma once

namespace provmark {

enum class SimdLevel : int { kBaseline = 0, kAVX2 = 1 };

// The level in use now (starts at PROVMARK_SIMD if set, else the best the CPU and the build support).
SimdLevel simd_level();
// The best level this CPU and this build support.
SimdLevel simd_level_supported();
// Select a level (tests compare levels against each other); throws InvalidArgument above the supported one.
void set_simd_level(SimdLevel level);
const char* simd_level_name(SimdLevel level);

}  // namespace provmark
