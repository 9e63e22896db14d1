// The batched FFT and frame kernels with 8 lanes for AVX-512F CPUs. The build sets ISA flags only for
// *_avx2.cpp files, so this file selects its target itself (GCC/Clang, x86-64 only; elsewhere it is empty
// and audio_fft.cpp never dispatches to it). Standard headers come first, outside the target region, so
// no library code is compiled for AVX-512. No FMA contraction (see audio_fft_avx2.cpp).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/audio_fft.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx2,fma")
#pragma GCC optimize("fp-contract=off")
#endif
#define PROVMARK_ISA_NS isa_avx512
#define PROVMARK_AUDIO_LANES 8
#include "core/audio_fft_impl.h"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
