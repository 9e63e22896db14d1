// Audio watermark on CUDA: the twins of the CPU core's detector functions (csrc/core/audio.h: analysis,
// projections, fold_scores) for a batch of B same-length clips already on the device, with every speed
// hypothesis of the search in one launch and every block phase (time offset) folded at once; and the
// embedder (CellEmbedder) for whole clips, batched, with the causal budget as a sequential scan per clip.
// Entry points queue their work on the caller's stream and return without synchronising; scratch memory is
// stream-ordered. Errors: InvalidArgument for bad parameters, CudaError for CUDA failures (and for every
// call in a build without CUDA: csrc/cuda/unavailable.cpp).
//
// Per-element math is shared with the CPU through the PROVMARK_HD inlines of csrc/core/audio_common.h
// (log_pos, cs_interp, fold_term / cos_sin_2pi, group_move, budget_step, load_sample / store_sample); the
// device has no FFT library, so the kernels compute the DFT of each frame directly, restricted to the bins
// the bands use. Results equal the CPU's up to rounding (summation order, FMA contraction on the device):
// tests/test_cuda_audio.py (on a GPU; and the same kernel source on host threads, everywhere).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/audio_common.h"

namespace provmark::audio::cuda {

constexpr int kMaxHop = 1024;  // largest hop the device analysis takes (frame of 2 hop in shared memory)

// B clips of C channels and n samples each in device memory; strides in elements. float32 / float64 in
// [-1, 1], or int16 (value / 32768, as load_sample reads it).
struct ClipView {
  const void* data = nullptr;
  SampleType type = SampleType::kF64;
  long long batch = 0, channels = 0, nsamples = 0;
  long long stride_b = 0, stride_c = 0, stride_t = 1;
};

// cs[b, j, 0] = 0, cs[b, j, k + 1] = cumulated sum over bins k' <= k < top of the Hann power spectra
// (summed over channels) of frame j of clip b: the CPU's analysis() per clip. cs: [B, nfr, top + 1],
// nfr = analysis_frames(nsamples, hop).
void analysis(const ClipView& x, int hop, int top, double* cs, std::uintptr_t stream);

// Projections and reliability weights of every clip at every speed: the CPU's projections() per (clip,
// speed). Tables (edges, chips, speeds) are host arrays, uploaded on the stream.
struct ProjectBatch {
  const double* cs = nullptr;      // device [B, nfr, top + 1] (from analysis())
  long long batch = 0;             // B
  long long nfr = 0;               // hops per clip
  int top = 0;                     // bins cumulated
  const int32_t* edges = nullptr;  // host [ng * group + 1]
  int ng = 0, group = 0;
  const double* chips = nullptr;  // host [>= ng, group]
  int cell_hops = 0;
  double log_floor = 0.0;
  const double* speeds = nullptr;  // host [nspeeds] (or [batch, nspeeds] with per_clip), each in [0.5, 2]
  int nspeeds = 0;
  bool per_clip = false;  // speeds differ per clip: speeds[b * nspeeds + s] (the sub-hop re-analyses)
  double w0 = 0.0, w1 = 1.0;
  long long rows = 0;   // R: row stride of the outputs, >= projection_rows() of every speed (checked)
  double* p = nullptr;  // device [B, nspeeds, R, ng]; rows past a speed's count are set to 0
  double* w = nullptr;  // device [B, nspeeds, R, ng]
};
void projections(const ProjectBatch& b, std::uintptr_t stream);

// Fold of `count` independent (p, w) series (e.g. B clips x S speeds) over the P = T * cell_hops block
// phases, and the sync statistic of every phase: the CPU's fold_scores() per series.
struct FoldBatch {
  const double* p = nullptr;  // device [count, rows, ng]
  const double* w = nullptr;  // device [count, rows, ng]
  long long count = 0;
  long long rows = 0;             // row stride
  const long long* nj = nullptr;  // host [count]: rows used of each series (<= rows)
  int ng = 0, n_groups = 0, block_cells = 0, cell_hops = 0;
  double step = 0.0;
  const double* dither = nullptr;  // host [T, G]
  const double* sign = nullptr;    // host [T, G]
  double* fc = nullptr;            // device [count, P, ng]
  double* fs = nullptr;            // device [count, P, ng]
  double* z = nullptr;             // device [count, P]
};
void fold(const FoldBatch& b, std::uintptr_t stream);

// ---- embedding
// --------------------------------------------------------------------------------------------- Writable twin
// of ClipView (the marked output; may be the input itself: every sample is read before it is written, by the
// same thread).
struct ClipOut {
  void* data = nullptr;
  SampleType type = SampleType::kF64;
  long long stride_b = 0, stride_c = 0, stride_t = 1;
};

// State carried between calls of a streaming embedder (one per clip of the batch), kept on the device so
// that no call synchronises. A call with t0 == 0 starts fresh (empty budget, no earlier change) and does not
// read bucket / acc; every call with a carry writes them.
struct EmbedCarry {
  long long t0 = 0;          // cell index of the call's first cell (the keyed tables repeat every T cells)
  double* bucket = nullptr;  // device [B]: the budget bucket after the previous call's last cell
  double* acc = nullptr;  // device [B, C, hop]: the previous call's change of its last hop (its last frame's
                          // second half), added to this call's first hop
  bool whole_cells = false;  // true: floor((n - hop) / span) whole cells, no padding, out gets that many
                             // cells' samples (CellEmbedder::run); false: the zero-padded tail (flush)
};

// Marks B whole clips from the first cell (t = 0, empty budget), as audio.embed does for each clip: the
// clip is read as zero-padded to ceil(n / span) cells plus one hop, out = clip(x + change, -1, 1) (int16:
// rounded half to even and saturated, store_sample). p: the core's EmbedParams (host tables; p.channels
// must equal x.channels). Four launches: band energies per cell (direct DFT of the Hann frames over the
// bands' bins), quantiser moves per cell (group_move), the causal budget as a sequential scan per clip
// (budget_step, one thread per clip), then per-frame gains on the sine-windowed spectra, inverse DFT over
// those bins and the overlap-add with the input. With `carry`, the call continues a stream (see EmbedCarry):
// cells from carry->t0, the bucket and last hop's change of the previous call, written back for the next.
void embed(const EmbedParams& p, const ClipView& x, const ClipOut& out, std::uintptr_t stream,
           const EmbedCarry* carry = nullptr);

// Samples of x stored into out (same [B, C, n] shape, any strides, any of the three sample types; int16
// output rounded as store_sample, floats not clipped). The streaming embedder's input buffer fill.
void copy(const ClipView& x, const ClipOut& out, std::uintptr_t stream);

}  // namespace provmark::audio::cuda
