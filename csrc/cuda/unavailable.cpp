// Stand-in for the CUDA backend in builds without CUDA: every CUDA entry point raises CudaError.
#include <string>

#include "core/common.h"
#include "core/pattern.h"
#include "cuda/audio_cuda.h"
#include "cuda/backend.h"
#include "cuda/image_cuda.h"

namespace provmark {

namespace {
[[noreturn]] void no_cuda(const char* fn) {
  throw CudaError(std::string(fn) +
                  ": provmark was built without CUDA (PROVMARK_CUDA=OFF or no nvcc at build time)");
}
}  // namespace

bool built_with_cuda() { return false; }

int cuda_device_count(std::string* error) {
  if (error) *error = "provmark was built without CUDA (PROVMARK_CUDA=OFF or no nvcc at build time)";
  return 0;
}

void generate_pattern_cuda(const PatternParams&, int) { no_cuda("generate_pattern_cuda"); }

namespace image::cuda {

void check_view(const FrameView&, const char* fn) { no_cuda(fn); }
void luma(const FrameView&, float*, std::uintptr_t) { no_cuda("image luma (CUDA)"); }
void texture_mask(const FrameView&, float*, std::uintptr_t) { no_cuda("image texture_mask (CUDA)"); }
void resample_area(const FrameView&, float*, long long, long long, std::uintptr_t) {
  no_cuda("image resample (CUDA)");
}
void gaussian_blur(const float*, long long, long long, long long, double, float*, std::uintptr_t) {
  no_cuda("image gaussian_blur (CUDA)");
}
void whiten(const float*, long long, long long, long long, double, const float*, float*, float*,
            std::uintptr_t) {
  no_cuda("image whiten (CUDA)");
}
void fold(const FoldParams&, std::uintptr_t) { no_cuda("image fold (CUDA)"); }
void fold_batch(const FoldBatch&, std::uintptr_t) { no_cuda("image fold (CUDA)"); }
void reliability(const float*, const float*, long long, long long, long long, double, float*,
                 std::uintptr_t) {
  no_cuda("image reliability (CUDA)");
}
void sync_batch(const SyncBatch&, std::uintptr_t) { no_cuda("image sync (CUDA)"); }
void lattice_scores(const LatticeParams&, std::uintptr_t) { no_cuda("image lattice (CUDA)"); }
void sum_planes(const float*, long long, long long, double*, std::uintptr_t) {
  no_cuda("image sum_planes (CUDA)");
}
void embed(const EmbedParams&, std::uintptr_t) { no_cuda("image embed (CUDA)"); }
void copy_to_device(void*, const void*, std::size_t, std::uintptr_t) { no_cuda("copy_to_device (CUDA)"); }
void copy_to_host(void*, const void*, std::size_t, std::uintptr_t) { no_cuda("copy_to_host (CUDA)"); }
int pointer_device(const void*) { no_cuda("pointer_device (CUDA)"); }

}  // namespace image::cuda

namespace audio::cuda {

void analysis(const ClipView&, int, int, double*, std::uintptr_t) { no_cuda("audio analysis (CUDA)"); }
void projections(const ProjectBatch&, std::uintptr_t) { no_cuda("audio projections (CUDA)"); }
void fold(const FoldBatch&, std::uintptr_t) { no_cuda("audio fold (CUDA)"); }
void embed(const EmbedParams&, const ClipView&, const ClipOut&, std::uintptr_t, const EmbedCarry*) {
  no_cuda("audio embed (CUDA)");
}
void copy(const ClipView&, const ClipOut&, std::uintptr_t) { no_cuda("audio copy (CUDA)"); }

}  // namespace audio::cuda

}  // namespace provmark
