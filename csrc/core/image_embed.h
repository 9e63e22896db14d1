// Image watermark, full-resolution stages: luma, texture mask, area resampling, and the fused
// "tiled pattern x mask -> scale to a target RMS -> add to R, G, B -> round/clip" pass. CPU, threaded.
// numpy references: python/provmark/image.py (_ref_luma, _ref_mask, _ref_resample, _ref_pattern +
// _ref_apply).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/image_common.h"

namespace provmark::image {

// A batch of N same-size pictures, C-contiguous [N, H, W] (channels == 0: grey without a channel axis) or
// [N, H, W, C] with C in {1, 3, 4}.
struct ImageBatch {
  const void* data = nullptr;       // pixels
  PixelType type = PixelType::kU8;  // uint8 (0..255) or float32/float64 (0..1)
  std::size_t n = 0, height = 0, width = 0;
  int channels = 0;  // 0 (no channel axis), 1, 3 or 4
  std::size_t pixel_stride() const { return channels == 0 ? 1 : static_cast<std::size_t>(channels); }
};

// out[N, H, W] = luma in grey levels (channel 0 for one channel; R, G, B for 3 or 4 channels, alpha ignored).
void luma(const ImageBatch& in, float* out);

// out[N, H, W] = clip(box7(|y - box3(y)|), kMaskLo, kMaskHi), boxes with "reflect" borders.
void texture_mask(const float* y, std::size_t n, std::size_t height, std::size_t width, float* out);

// Area-average resampling of one [H, W] plane to [out_h, out_w] (out_h <= H, out_w <= W): each output pixel
// is the mean of the input area it covers (fractional edge weights).
// Area-averaging taps from n_in samples to n_out: output o is sum(weight[o * max_taps + k] *
// in[first[o] + k]) for k < count[o] (the weights of one output sum to 1).
struct AreaTaps {
  std::vector<std::size_t> first;  // [n_out] first input index
  std::vector<std::size_t> count;  // [n_out] taps
  std::vector<float> weight;       // [n_out * max_taps]
  std::size_t max_taps = 0;
};

AreaTaps area_taps(std::size_t n_in, std::size_t n_out);

void resample_area(const float* in, std::size_t height, std::size_t width, float* out, std::size_t out_h,
                   std::size_t out_w);

struct EmbedApplyParams {
  ImageBatch in;                 // the pictures
  void* out = nullptr;           // same layout and type as in.data
  const float* mask = nullptr;   // [N, H, W] texture mask
  const float* tiles = nullptr;  // [N, kTile, kTile] chip amplitudes per picture
  double chip = 0.0;             // chip size in pixels (> 0)
  double target_rms = 0.0;       // RMS of the luma delta (grey levels) after scaling
  double* gains = nullptr;       // [N] out: the gain applied to mask * pattern per picture (may be null)
};

// out = round/clip(in + g_i * mask * pattern_i) on R, G, B (or grey), alpha copied; g_i makes the RMS of
// the delta equal target_rms. Float pictures are not rounded (clip to [0, 1]).
void embed_apply(const EmbedApplyParams& p);

}  // namespace provmark::image
