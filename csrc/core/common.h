// Shared definitions for the provmark core: host/device annotations and the error types that the bindings
// map to Python exceptions in one place (csrc/bindings/module.cpp).
#pragma once

#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#define PROVMARK_HD static __host__ __device__ __forceinline__
#else
// `static` keeps each translation unit's copy private: the per-ISA files (*_avx2.cpp) include these
// inlines too, and a shared inline symbol would let the linker pick the AVX2 copy for baseline code.
#define PROVMARK_HD static inline
#endif

namespace provmark {

// Invalid arguments (shapes, sizes, values) -> ValueError. std::invalid_argument is what pybind11 maps.
using InvalidArgument = std::invalid_argument;

// A CUDA runtime failure, or a CUDA call in a build without CUDA -> provmark.CudaError (a RuntimeError).
class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace provmark
