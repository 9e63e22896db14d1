#include <cuda_runtime.h>

#include "cuda/backend.h"

namespace provmark {

bool built_with_cuda() { return true; }

int cuda_device_count(std::string* error) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" state so later queries start clean
    if (error) *error = cudaGetErrorString(err);
    return 0;
  }
  if (count == 0 && error) *error = "no CUDA device found";
  return count;
}

}  // namespace provmark
