// The key-derived pattern generator: fills an array with values drawn from one keyed stream, on the CPU or
// on a CUDA device, with identical results (the CUDA twin is csrc/cuda/pattern_cuda.cu). Element i uses
// keystream words starting at (offset + i) * words_per_value(kind), so any slice can be made on its own.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/rng.h"

namespace provmark {

enum class PatternKind : int {
  kWords = 0,    // uint32 keystream words
  kUniform = 1,  // float32 in [0, 1)
  kSigns = 2,    // int8 +1 / -1
  kNormal = 3,   // float32 standard normal (Box-Muller in double, cosine branch)
};

struct PatternParams {
  ChaChaKey key{};           // the 256-bit key
  uint64_t stream = 0;       // named purpose (Stream)
  uint64_t offset = 0;       // index of the first element
  std::size_t n = 0;         // number of elements
  PatternKind kind = PatternKind::kWords;
  void* out = nullptr;       // [n] of uint32 / float / int8 / float by kind (host memory for the CPU path)
};

PROVMARK_HD int words_per_value(PatternKind kind) { return kind == PatternKind::kNormal ? 2 : 1; }

// Box-Muller from two words; double math on both sides keeps host and device within 1 float ulp.
PROVMARK_HD float words_to_normal(uint32_t w0, uint32_t w1) {
  const double u1 = (static_cast<double>(w0) + 1.0) * (1.0 / 4294967296.0);  // (0, 1]
  const double u2 = static_cast<double>(w1) * (1.0 / 4294967296.0);          // [0, 1)
  return static_cast<float>(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

// CPU implementation (threaded, SIMD-dispatched keystream).
void generate_pattern_cpu(const PatternParams& params);

// CUDA implementation: same params, `out` in host memory; the values are computed by a kernel on `device`
// and copied back. Throws CudaError when the build has no CUDA or the device fails.
void generate_pattern_cuda(const PatternParams& params, int device);

}  // namespace provmark
