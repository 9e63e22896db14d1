// What the CUDA backend reports about itself. Implemented by csrc/cuda/*.cu in CUDA builds and by
// csrc/cuda/unavailable.cpp otherwise, so the rest of the code needs no #ifdef.
#pragma once

#include <string>

namespace provmark {

// True when this build contains the CUDA backend.
bool built_with_cuda();
// Number of usable CUDA devices; 0 with `error` set when there is none (no driver, no device, no CUDA build).
int cuda_device_count(std::string* error);

}  // namespace provmark
