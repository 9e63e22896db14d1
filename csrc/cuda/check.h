// CUDA error checking: every runtime call and launch goes through PROVMARK_CUDA_CHECK.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "core/common.h"

#define PROVMARK_CUDA_CHECK(call)                                                              \
  do {                                                                                         \
    const cudaError_t provmark_err_ = (call);                                                  \
    if (provmark_err_ != cudaSuccess) {                                                        \
      throw ::provmark::CudaError(std::string(__func__) +                                      \
                                  ": " #call " failed: " + cudaGetErrorString(provmark_err_)); \
    }                                                                                          \
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

// Checks the launch just queued (configuration errors surface here, execution errors at the next sync).
inline void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    throw CudaError(std::string(what) + ": kernel launch failed: " + cudaGetErrorString(err));
}

// Makes the device that owns the data current for the duration of a call, then restores the caller's.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    PROVMARK_CUDA_CHECK(cudaGetDevice(&prev_));
    if (prev_ != device) PROVMARK_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() { cudaSetDevice(prev_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = 0;
};

// Stream-ordered scratch memory: allocated and freed on the stream, so a call never synchronises.
template <typename T>
class StreamBuffer {
 public:
  StreamBuffer(std::size_t n, cudaStream_t stream) : n_(n), stream_(stream) {
    if (n_ > 0)
      PROVMARK_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&ptr_), n_ * sizeof(T), stream_));
  }
  ~StreamBuffer() {
    if (ptr_) cudaFreeAsync(ptr_, stream_);
  }
  StreamBuffer(const StreamBuffer&) = delete;
  StreamBuffer& operator=(const StreamBuffer&) = delete;
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
  std::size_t n_ = 0;
  cudaStream_t stream_ = nullptr;
};

}  // namespace provmark
