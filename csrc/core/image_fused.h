// Image watermark, fused full-resolution embedder: two passes over the pixels, row-block-wise, with no
// full-size float plane.
//
//   pass A (embed_analyse): luma -> texture mask (running row caches) -> the mask, quantised to uint16,
//     and optionally the area-resampled luma and mask at the working size (what the informed step needs);
//   pass B (embed_apply_fused): the mask times the tiled pattern, its energy (for the gain that sets the
//     delta's RMS; with flat_rms, the sums for the floor's and the excess's gains: flat_gains in
//     image_math.h), then the delta added to R, G, B (or grey), rounded and clipped.
//
// Together they compute what image_luma -> image_mask -> image_resample -> image_embed_apply compute
// (image_embed.h), which stay as the reference: the mask is the same up to float rounding, the delta differs
// by the mask's quantisation (relative 2e-5), so outputs agree within one grey level (rounding ties). The row
// kernels are per ISA (image_kernels_isa.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/image_embed.h"

namespace provmark::image {

struct AnalyseParams {
  ImageBatch in;                       // one picture (in.n == 1)
  uint16_t* mask_q = nullptr;          // [H, W] out: quantised texture mask (kMaskQ in image_common.h)
  std::size_t work_h = 0, work_w = 0;  // working size for y_work / m_work (0 x 0: none); <= H x W
  float* y_work = nullptr;             // [work_h, work_w] out: area-resampled luma (grey levels)
  float* m_work = nullptr;             // [work_h, work_w] out: area-resampled texture mask
};

// With mask_q and m_work null, only the luma is computed (and resampled): the detector's first stage.

void embed_analyse(const AnalyseParams& p);

struct FusedApplyParams {
  ImageBatch in;                     // one picture (in.n == 1)
  void* out = nullptr;               // same layout and type as in.data
  const uint16_t* mask_q = nullptr;  // [H, W] from embed_analyse
  const float* tile = nullptr;       // [kTile, kTile] chip amplitudes
  double chip = 0.0;                 // chip size in pixels (> 0)
  double target_rms = 0.0;           // RMS of the luma delta (grey levels)
  double flat_rms = 0.0;   // > 0: limit of the delta's RMS on flat pixels (flat_gains, image_math.h)
  double* gain = nullptr;  // out: the gain of mask * pattern (with a flat limit: of the mask's excess)
};

void embed_apply_fused(const FusedApplyParams& p);

// out[h, w] = mask * tiled pattern of `tile` (mask null: 1); returns the RMS of out.
double render_pattern(const float* tile, std::size_t height, std::size_t width, double chip,
                      const float* mask, float* out);

}  // namespace provmark::image
