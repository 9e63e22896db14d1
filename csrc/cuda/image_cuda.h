// Image watermark on CUDA: the twins of the CPU image kernels (csrc/core/image_embed.h, image_detect.h) for
// batches of N same-size frames already on the device. Every entry point queues its work on the caller's
// stream and returns without synchronising (unless it says otherwise); scratch memory is stream-ordered
// (cudaMallocAsync / cudaFreeAsync). Errors: InvalidArgument for bad parameters, CudaError for CUDA failures
// (and for every call in a build without CUDA: csrc/cuda/unavailable.cpp).
//
// Per-element math is shared with the CPU through csrc/core/image_math.h; numpy references of every kernel
// are in python/provmark/image.py (_ref_*). Parity: tests/test_cuda_image.py, benchmarks/gpu_check.py.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/image_common.h"

namespace provmark::image::cuda {

// Sample types of a frame on the device.
// float16 / bfloat16 are read as float and the marked value rounded back to nearest (no CPU twin: the CPU
// engine takes float32 / float64).
enum class SampleType : int { kU8 = 0, kU16 = 1, kF32 = 2, kF64 = 3, kF16 = 4, kBF16 = 5 };

// A strided view of N same-size frames in device memory. Strides count elements (not bytes) and may be
// anything the caller's array has (NCHW, NHWC, a Y plane with a row pitch, ...). Zero-initialised.
struct FrameView {
  void* data = nullptr;               // device pointer to sample (frame 0, row 0, col 0, channel 0)
  SampleType type = SampleType::kU8;  // sample type
  long long n = 0;                    // frames
  long long height = 0, width = 0;    // rows, columns
  int channels = 1;                   // 1 (grey / luma plane), 3 (R, G, B) or 4 (R, G, B, alpha kept)
  long long stride_n = 0;             // elements between frames
  long long stride_y = 0;             // elements between rows
  long long stride_x = 0;             // elements between columns
  long long stride_c = 0;             // elements between channels (unused for 1 channel)
  float scale = 1.0f;                 // grey levels per sample unit: 1 for uint8, 255 for float / uint16
                                      // in [0, 1], 127.5 for float in [-1, 1]
  float lo = 0.0f;                    // float types: the samples' range is [lo, 1] with lo 0 or -1; the
                                      // luma in grey levels is (luma of the samples - lo) * scale, and
                                      // marked samples are clipped to [lo, 1]. 0 for other types.
  int shift = 0;                      // uint16 only: the sample is stored << shift (p010: 6)
  float vmax = 0.0f;                  // uint16 only: the largest sample value ((1 << bits) - 1)
};

// Checks a view's fields (sizes, channels, type-specific fields); throws InvalidArgument naming `fn`.
void check_view(const FrameView& v, const char* fn);

// out[N, H, W] (device, float32, contiguous) = luma in grey levels (image_embed.h luma()).
void luma(const FrameView& in, float* out, std::uintptr_t stream);

// out[N, H, W] (device, float32, contiguous) = texture mask of each frame's luma (image_embed.h
// texture_mask()), computed from the frames directly.
void texture_mask(const FrameView& in, float* out, std::uintptr_t stream);

// out[N, out_h, out_w] (device, float32, contiguous) = area resampling of each frame's luma (image_embed.h
// resample_area(); out_h <= H, out_w <= W). A float32 plane view with scale 1 resamples raw values.
void resample_area(const FrameView& in, float* out, long long out_h, long long out_w, std::uintptr_t stream);

// Gaussian blur of N contiguous float32 [H, W] planes (image_detect.h gaussian_blur()); out may equal in.
void gaussian_blur(const float* in, long long n, long long height, long long width, double sigma, float* out,
                   std::uintptr_t stream);

// Whitening of N contiguous float32 [H, W] planes (image_detect.h whiten()): out = band / den minus its
// mean; den_in (may be null) replaces the computed denominator, den_out (may be null) receives it.
void whiten(const float* y, long long n, long long height, long long width, double chip, const float* den_in,
            float* out, float* den_out, std::uintptr_t stream);

struct FoldParams {
  const float* w = nullptr;  // [N, H, W] whitened planes (device, contiguous)
  long long n = 0, height = 0, width = 0;
  double period = 0.0;       // lattice period in pixels (> 0)
  double theta = 0.0;        // lattice angle in radians
  int side = kTile * kBins;  // bins per tile side
  double* out = nullptr;     // [N, side, side] (device) mean of the pixels in each bin, 0 for empty bins
};

// Folds whitened planes onto a (period, angle) lattice (image_detect.h fold()), one tile per plane.
void fold(const FoldParams& p, std::uintptr_t stream);

// One geometry hypothesis of the detector's search: a whitened plane and a lattice.
struct FoldHypothesis {
  const float* w = nullptr;  // [height, width] whitened plane (device, contiguous)
  double period = 0.0;       // lattice period in pixels (> 0)
  double theta = 0.0;        // lattice angle in radians
};

struct FoldBatch {
  const FoldHypothesis* hyps_host = nullptr;  // [n_hyp] (host; uploaded on the stream)
  long long n_hyp = 0;
  long long height = 0, width = 0;  // every plane's size
  int side = kTile * kBins;         // bins per tile side
  double* out = nullptr;            // [n_hyp, side, side] (device) bin means, 0 for empty bins
};

// Folds many hypotheses (any mix of planes, periods and angles: e.g. every lattice candidate of every
// picture of a batch) in one launch; tile k equals fold() of hyps[k] (image_detect.h fold()) up to the order
// of the double additions (atomics).
void fold_batch(const FoldBatch& p, std::uintptr_t stream);

// The sync statistic of folded tiles (image._Search.evaluate), on the device: for each 128 x 128 tile, the
// cyclic cross-correlation with the sync template and with its mirror (2-D FFTs in float32, one block per
// tile, written out here: no cuFFT), then per correlation c: z = (max c - mean c) / std c (population std),
// the argmax (first index of the maximum) as (row, column) shift, and the better of the two (the mirror only
// when its z is strictly larger; a correlation with std <= 0 is skipped; neither: z 0, shift 0, no flip).
constexpr int kSyncSide = kTile * kBins;  // the folded tile's side (128): a power of two
struct SyncBatch {
  const double* tiles = nullptr;   // [n, 128, 128] (device) folded tiles (fold_batch's output)
  long long n = 0;                 // tiles
  const float* spectra = nullptr;  // [2, 128, 128, 2] (device) (re, im) of conj(FFT2(template)) and of
                                   // conj(FFT2(mirrored template)), rows and columns in bit-reversed order
  double* out = nullptr;           // [n, 4] (device) z, shift row, shift column, flip (0 or 1)
};

// Queues the sync statistic of n tiles (one launch; 128 KiB of stream-ordered scratch per tile).
void sync_batch(const SyncBatch& p, std::uintptr_t stream);

// The lattice search's scores (image._lattice_candidates) of one whitened plane, on the device: the power
// spectrum of the plane zero-padded to fft_h x fft_w (real FFT: the fft_w / 2 + 1 non-negative column
// frequencies), its spectral flattening (image_lattice.h flatten_spectrum: Gaussian smoothing with periodic
// borders on the [fft_h, fft_w / 2 + 1] half spectrum, division, clip), the notched rows and columns and the
// DC bin set to 0, the inverse real FFT (the autocorrelation), a' = a - box7(a) (periodic), and the score of
// every (period, angle) pair (image_lattice.h lattice_scores). The FFTs are written out (no cuFFT): a
// mixed-radix (2, 3, 4, 5) Stockham FFT along rows then columns, one block per line, the line in shared
// memory up to kLatticeLineMax complex entries, in global scratch above. Only the scores come back.
constexpr long long kLatticeLineMax = 2048;
struct LatticeParams {
  const float* w = nullptr;  // [height, width] whitened plane (device, contiguous)
  long long height = 0, width = 0;
  long long fft_h = 0, fft_w = 0;                 // FFT sizes: >= the plane, products of 2, 3 and 5 only
  double sigma_y = 0.0, sigma_x = 0.0;            // flattening's Gaussian (bins along columns / rows)
  const std::uint8_t* notch_rows_host = nullptr;  // [fft_h] nonzero: spectrum row zeroed (host)
  const std::uint8_t* notch_cols_host = nullptr;  // [fft_w / 2 + 1] nonzero: spectrum column zeroed (host)
  const double* periods_host = nullptr;           // [n_periods] lattice periods in pixels (host)
  long long n_periods = 0;
  const double* thetas_host = nullptr;  // [n_thetas] lattice angles in radians (host)
  long long n_thetas = 0;
  double* out_host = nullptr;  // [n_periods, n_thetas] scores (host)
};

// Runs the lattice scores of one plane on `stream` and copies them to out_host (synchronises).
void lattice_scores(const LatticeParams& p, std::uintptr_t stream);

// The detector's reliability-weighted plane (image._Search.reliability_weighted) of N whitened planes `w` and
// their whitening denominators `den` ([N, H, W], device, contiguous): mean_a = max((mean(den) - 0.5) / 1.1,
// 0), a = max(den - (0.5 + 0.1 mean_a), 0), q = (a / den)^2, out = w / (q + floor mean(q) + 1e-12), means
// per plane (float rows, double planes).
void reliability(const float* w, const float* den, long long n, long long height, long long width,
                 double floor, float* out, std::uintptr_t stream);

// out[plane] (device, float64) = sum over the N contiguous float32 planes in[N, plane] (video mode: the
// detector works on the mean working-size luma of many frames).
void sum_planes(const float* in, long long n, long long plane, double* out, std::uintptr_t stream);

struct EmbedParams {
  FrameView in;   // the frames
  FrameView out;  // where the marked frames go: same sizes and type; may be `in` itself
  const float* tiles_host =
      nullptr;              // [N, kTile, kTile] chip amplitudes per frame (host; uploaded on the stream)
  double chip = 0.0;        // chip size in pixels (> 0)
  double target_rms = 0.0;  // RMS of the luma delta (grey levels) after scaling
  double flat_rms = 0.0;    // > 0: limit of the delta's RMS on flat pixels (flat_gains in image_math.h)
};

// out = round/clip(in + g_i * mask * pattern_i) on the colour channels (image_embed.h embed_apply()), alpha
// copied; g_i makes the RMS of the delta equal target_rms (with flat_rms, flat pixels get their own gain:
// flat_gains in image_math.h, as the CPU's embed_apply_fused). Two passes over the frames: the first sums the
// delta's energy per frame, the second applies it. Out of place, both passes recompute the mask from the
// input (3 reads and 1 write of the frames); in place (out.data == in.data) the first pass stores the mask
// so the second reads only its own pixels.
void embed(const EmbedParams& p, std::uintptr_t stream);

// Uploads host memory to the device on `stream` (used for the small per-call tables) and downloads.
void copy_to_device(void* dst, const void* src, std::size_t bytes, std::uintptr_t stream);
void copy_to_host(void* dst, const void* src, std::size_t bytes, std::uintptr_t stream);  // synchronises

// The device that owns `ptr` (a cudaMalloc / caching-allocator pointer); throws for host memory.
int pointer_device(const void* ptr);

}  // namespace provmark::image::cuda
