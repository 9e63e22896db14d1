// CUDA error checking: every runtime call and launch goes through PROVMARK_CUDA_CHECK.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "core/common.h"

#define PROVMARK_CUDA_CHECK(call)                                                                     \
  do {                                                                                                \
    const cudaError_t provmark_err_ = (call);                                                         \
    if (provmark_err_ != cudaSuccess) {                                                               \
      throw ::provmark::CudaError(std::string(__func__) + ": " #call " failed: " +                    \
                                  cudaGetErrorString(provmark_err_));                                 \
    }                                                                                                 \
  } while (0)

namespace provmark {

// Device buffer owned by RAII (freed on every path, exceptions included).
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    if (n_ > 0) PROVMARK_CUDA_CHECK(cudaMalloc(&ptr_, n_ * sizeof(T)));
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }
  std::size_t size() const { return n_; }

 private:
  T* ptr_ = nullptr;
  std::size_t n_ = 0;
};

}  // namespace provmark
