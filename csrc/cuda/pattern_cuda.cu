// CUDA twin of csrc/core/pattern_cpu.cpp: one thread per output element, the same inlines from rng.h /
// pattern.h, so the values are bit-identical (words, uniform, signs) or within 1 ulp (normal).
#include <cuda_runtime.h>

#include "core/pattern.h"
#include "cuda/check.h"

namespace provmark {
namespace {

__global__ void pattern_kernel(PatternParams p) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= p.n) return;
  const int wpv = words_per_value(p.kind);
  const uint64_t w = (p.offset + i) * static_cast<uint64_t>(wpv);
  switch (p.kind) {
    case PatternKind::kWords:
      static_cast<uint32_t*>(p.out)[i] = keystream_word(p.key, p.stream, w);
      break;
    case PatternKind::kUniform:
      static_cast<float*>(p.out)[i] = word_to_uniform(keystream_word(p.key, p.stream, w));
      break;
    case PatternKind::kSigns:
      static_cast<int8_t*>(p.out)[i] = word_to_sign(keystream_word(p.key, p.stream, w));
      break;
    case PatternKind::kNormal:
      static_cast<float*>(p.out)[i] =
          words_to_normal(keystream_word(p.key, p.stream, w), keystream_word(p.key, p.stream, w + 1));
      break;
  }
}

std::size_t value_size(PatternKind kind) { return kind == PatternKind::kSigns ? 1 : 4; }

}  // namespace

void generate_pattern_cuda(const PatternParams& params, int device) {
  if (params.n == 0) return;
  if (params.out == nullptr) throw InvalidArgument("generate_pattern_cuda: out is null");
  PROVMARK_CUDA_CHECK(cudaSetDevice(device));
  const std::size_t bytes = params.n * value_size(params.kind);
  DeviceBuffer<unsigned char> buf(bytes);
  PatternParams dp = params;
  dp.out = buf.get();
  constexpr int kThreads = 256;
  const std::size_t blocks = (params.n + kThreads - 1) / kThreads;
  pattern_kernel<<<static_cast<unsigned>(blocks), kThreads>>>(dp);
  PROVMARK_CUDA_CHECK(cudaGetLastError());
  PROVMARK_CUDA_CHECK(cudaMemcpy(params.out, buf.get(), bytes, cudaMemcpyDeviceToHost));
}

}  // namespace provmark
