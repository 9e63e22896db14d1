// Stand-in for the CUDA backend in builds without CUDA: every CUDA entry point raises CudaError.
#include "core/common.h"
#include "core/pattern.h"
#include "cuda/backend.h"

namespace provmark {

bool built_with_cuda() { return false; }

int cuda_device_count(std::string* error) {
  if (error) *error = "provmark was built without CUDA (PROVMARK_CUDA=OFF or no nvcc at build time)";
  return 0;
}

void generate_pattern_cuda(const PatternParams&, int) {
  throw CudaError("generate_pattern_cuda: provmark was built without CUDA");
}

}  // namespace provmark
