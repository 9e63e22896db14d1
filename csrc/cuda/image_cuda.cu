// CUDA twins of the CPU image kernels (see image_cuda.h). Kernels are kept plain: one thread per output
// element (or a 32 x 32 tile in shared memory for the texture mask), the per-element math from
// core/image_math.h, every launch and runtime call checked.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/image_math.h"
#include "cuda/check.h"
#include "cuda/image_cuda.h"

namespace provmark::image::cuda {
namespace {

constexpr int kThreads = 256;  // threads per block everywhere

cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// Blocks for a grid-stride loop over `n` elements.
unsigned grid_for(long long n) {
  const long long b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > (1LL << 20) ? (1LL << 20) : b));
}

// ---- samples --------------------------------------------------------------------------------------------
// One sample as the CPU kernels see it before scaling: uint8 as float, float32 as is, float64 rounded to
// float, uint16 as (v >> shift) / vmax clipped to [0, 1]; float16 / bfloat16 widened to float.
__device__ __forceinline__ float sample_unit(const FrameView& v, long long off) {
  switch (v.type) {
    case SampleType::kU8:
      return static_cast<float>(static_cast<const uint8_t*>(v.data)[off]);
    case SampleType::kU16:
      return u16_unit(static_cast<const uint16_t*>(v.data)[off], v.shift, v.vmax);
    case SampleType::kF32:
      return static_cast<const float*>(v.data)[off];
    case SampleType::kF64:
      return static_cast<float>(static_cast<const double*>(v.data)[off]);
    case SampleType::kF16:
      return __half2float(static_cast<const __half*>(v.data)[off]);
    case SampleType::kBF16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(v.data)[off]);
  }
  return 0.0f;
}

__device__ __forceinline__ long long pixel_offset(const FrameView& v, long long i, long long r, long long x) {
  return i * v.stride_n + r * v.stride_y + x * v.stride_x;
}

// Luma in grey levels of pixel (frame i, row r, col x): image_embed.cpp luma_rows.
// Float samples in [-1, 1] (lo == -1) get the offset -lo * scale (127.5 grey levels) after scaling.
__device__ __forceinline__ float luma_at(const FrameView& v, long long i, long long r, long long x) {
  const long long o = pixel_offset(v, i, r, x);
  const float y = v.channels == 1 ? mul_rn(sample_unit(v, o), v.scale)
                                  : luma_rn(sample_unit(v, o), sample_unit(v, o + v.stride_c),
                                            sample_unit(v, o + 2 * v.stride_c), v.scale);
  return v.lo == 0.0f ? y : add_rn(y, mul_rn(-v.lo, v.scale));
}

__device__ __forceinline__ float apply_float(float s, float dd, bool signed_range) {
  return signed_range ? apply_f32_signed(s, dd) : apply_f32(s, dd);
}

// Writes the marked pixel: the delta on the colour channels, extra channels (alpha) copied unless in place.
__device__ __forceinline__ void apply_pixel(const FrameView& in, const FrameView& out, bool in_place,
                                            long long i, long long r, long long x, float dd) {
  const long long oi = pixel_offset(in, i, r, x), oo = pixel_offset(out, i, r, x);
  const int colour = in.channels >= 3 ? 3 : 1;
  const bool sr = in.lo != 0.0f;  // float samples in [-1, 1]
  for (int c = 0; c < in.channels; ++c) {
    const long long si = oi + c * in.stride_c, so = oo + c * out.stride_c;
    const bool mark = c < colour;
    if (!mark && in_place) continue;
    switch (in.type) {
      case SampleType::kU8: {
        const uint8_t s = static_cast<const uint8_t*>(in.data)[si];
        static_cast<uint8_t*>(out.data)[so] = mark ? apply_u8(s, dd) : s;
        break;
      }
      case SampleType::kU16: {
        const uint16_t s = static_cast<const uint16_t*>(in.data)[si];
        static_cast<uint16_t*>(out.data)[so] = mark ? apply_u16(s, dd, in.shift, in.vmax) : s;
        break;
      }
      case SampleType::kF32: {
        const float s = static_cast<const float*>(in.data)[si];
        static_cast<float*>(out.data)[so] = mark ? apply_float(s, dd, sr) : s;
        break;
      }
      case SampleType::kF64: {
        const double s = static_cast<const double*>(in.data)[si];
        static_cast<double*>(out.data)[so] = mark ? (sr ? apply_f64_signed(s, dd) : apply_f64(s, dd)) : s;
        break;
      }
      case SampleType::kF16: {
        const __half s = static_cast<const __half*>(in.data)[si];
        static_cast<__half*>(out.data)[so] = mark ? __float2half_rn(apply_float(__half2float(s), dd, sr)) : s;
        break;
      }
      case SampleType::kBF16: {
        const __nv_bfloat16 s = static_cast<const __nv_bfloat16*>(in.data)[si];
        static_cast<__nv_bfloat16*>(out.data)[so] =
            mark ? __float2bfloat16_rn(apply_float(__bfloat162float(s), dd, sr)) : s;
        break;
      }
    }
  }
}

// ---- luma ------------------------------------------------------------------------------------------------
__global__ void luma_kernel(FrameView v, float* out) {
  const long long hw = v.height * v.width, total = v.n * hw;
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long i = k / hw, rem = k % hw;
    out[k] = luma_at(v, i, rem / v.width, rem % v.width);
  }
}

// ---- texture mask and the two embedding passes (32 x 32 output tiles in shared memory) --------------------
constexpr int kT = 32;                          // output tile side
constexpr int kHalo = kMaskInner + kMaskOuter;  // 4: luma rows / cols needed beyond the tile
constexpr int kL = kT + 2 * kHalo;              // 40: luma region side
constexpr int kHP = kT + 2 * kMaskOuter;        // 38: high-pass region side
static_assert(kMaskInner == 1, "the tile kernel's box3 is written for kMaskInner == 1");

enum class TileMode : int { kMask = 0, kEnergy = 1, kApply = 2 };

struct TileArgs {
  FrameView in;                     // frames
  FrameView out;                    // kApply: marked frames (never aliasing `in`: neighbours read halos)
  const float* tiles = nullptr;     // kEnergy / kApply: [N, kTile, kTile] chip amplitudes
  const int* row_lo = nullptr;      // [H] chip_coord of each row
  const float* row_frac = nullptr;  // [H]
  const int* col_lo = nullptr;      // [W] chip_coord of each column
  const float* col_frac = nullptr;  // [W]
  float* mask_out = nullptr;        // kMask: [N, H, W] mask; kEnergy: optional copy of the mask
  double* partials = nullptr;       // kEnergy: [N, blocks per frame] delta energy per tile
  double* flat_partials = nullptr;  // kEnergy with a flat limit: [N, blocks, kFlatSums] (flat_gains)
  const double* gains = nullptr;    // kApply: [N, 2] gains per frame: the mask's floor, its excess
};

// The luma delta of one pixel from its pattern value pv and mask m, with the frame's two gains (gains[0] the
// floor's, gains[1] the excess's; flat_gains): g m p when they are equal, else p (g_floor + g_excess e) as
// the CPU's embed_apply_fused.
__device__ float marked_delta(const double* gains, float pv, float m) {
  const float gf = static_cast<float>(gains[0]), gx = static_cast<float>(gains[1]);
  if (gf == gx) return mul_rn(gx, mul_rn(pv, m));
  return mul_rn(pv, add_rn(gf, mul_rn(gx, mask_excess(m))));
}

// Every thread's v summed in a fixed tree order (deterministic, rounding as the energy pass always had);
// returned to every thread. red: kThreads floats of shared memory.
__device__ float tile_sum(float v, float* red) {
  const int tid = threadIdx.x;
  __syncthreads();  // earlier readers of red are done
  red[tid] = v;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (tid < half) red[tid] = add_rn(red[tid], red[tid + half]);
    __syncthreads();
  }
  return red[0];
}

// Mask of the block's tile: luma of the reflected region, |y - box3(y)|, box7, clip; operation order of
// texture_mask (image_embed.cpp). Reflecting the luma once equals reflecting each stage (the boxes are
// symmetric), up to the order of float additions at the borders.
template <TileMode M>
__global__ void __launch_bounds__(kThreads) tile_kernel(TileArgs a) {
  __shared__ float L[kL][kL];
  __shared__ float hb[kL][kHP];
  __shared__ float hp[kHP][kHP];
  __shared__ float h7[kHP][kT];
  __shared__ float tile[kTile * kTile];
  __shared__ float red[kThreads];
  const int tid = threadIdx.x;
  const int h = static_cast<int>(a.in.height), w = static_cast<int>(a.in.width);
  const long long img = blockIdx.z;
  const int r0 = static_cast<int>(blockIdx.y) * kT, x0 = static_cast<int>(blockIdx.x) * kT;
  const float inv3 = 1.0f / static_cast<float>(2 * kMaskInner + 1);
  const float inv7 = 1.0f / static_cast<float>(2 * kMaskOuter + 1);

  for (int k = tid; k < kL * kL; k += kThreads) {
    const int i = k / kL, j = k % kL;
    L[i][j] = luma_at(a.in, img, reflect_index(r0 - kHalo + i, h), reflect_index(x0 - kHalo + j, w));
  }
  if (M != TileMode::kMask) {
    for (int k = tid; k < kTile * kTile; k += kThreads) tile[k] = a.tiles[img * kTile * kTile + k];
  }
  __syncthreads();
  // horizontal box3: hb[i][j] centred on luma column j + 1
  for (int k = tid; k < kL * kHP; k += kThreads) {
    const int i = k / kHP, j = k % kHP;
    hb[i][j] = mul_rn(add_rn(add_rn(L[i][j], L[i][j + 1]), L[i][j + 2]), inv3);
  }
  __syncthreads();
  // vertical box3 and the absolute high-pass: hp[i][j] at luma (i + 1, j + 1)
  for (int k = tid; k < kHP * kHP; k += kThreads) {
    const int i = k / kHP, j = k % kHP;
    const float s = add_rn(add_rn(hb[i][j], hb[i + 1][j]), hb[i + 2][j]);
    hp[i][j] = fabsf(L[i + 1][j + 1] - mul_rn(s, inv3));
  }
  __syncthreads();
  // horizontal box7: h7[i][j] centred on hp column j + 3 (tile column j)
  for (int k = tid; k < kHP * kT; k += kThreads) {
    const int i = k / kT, j = k % kT;
    float s = hp[i][j];
    for (int t = 1; t <= 2 * kMaskOuter; ++t) s = add_rn(s, hp[i][j + t]);
    h7[i][j] = mul_rn(s, inv7);
  }
  __syncthreads();

  float energy = 0.0f;
  float sums[kFlatSums] = {};  // with a flat limit
  const int tx = tid % kT;
  for (int ty = tid / kT; ty < kT; ty += kThreads / kT) {
    const int r = r0 + ty, x = x0 + tx;
    if (r >= h || x >= w) continue;
    float s = 0.0f;
    for (int t = 0; t <= 2 * kMaskOuter; ++t) s = add_rn(s, h7[ty + t][tx]);
    const float m = mask_clip(mul_rn(s, inv7));
    const long long flat = (img * h + r) * static_cast<long long>(w) + x;
    if (M == TileMode::kMask) {
      a.mask_out[flat] = m;
      continue;
    }
    const float pv = pattern_at(tile, a.row_lo[r], a.row_frac[r], a.col_lo[x], a.col_frac[x]);
    if (M == TileMode::kEnergy) {
      if (a.mask_out != nullptr) a.mask_out[flat] = m;
      if (a.flat_partials == nullptr) {
        const float d = mul_rn(pv, m);
        energy = add_rn(energy, mul_rn(d, d));
      } else {
        const float pp = mul_rn(pv, pv), e = mask_excess(m);
        sums[kSumPP] = add_rn(sums[kSumPP], pp);
        sums[kSumPPE] = add_rn(sums[kSumPPE], mul_rn(pp, e));
        sums[kSumPPEE] = add_rn(sums[kSumPPEE], mul_rn(mul_rn(pp, e), e));
        if (mask_at_floor(m)) {
          sums[kSumFlatPP] = add_rn(sums[kSumFlatPP], pp);
          sums[kSumFlatN] += 1.0f;  // at most kT * kT: exact
        }
      }
    } else {
      apply_pixel(a.in, a.out, false, img, r, x, marked_delta(a.gains + 2 * img, pv, m));
    }
  }
  if (M == TileMode::kEnergy) {
    const long long per_frame = static_cast<long long>(gridDim.x) * gridDim.y;
    const long long block = img * per_frame + blockIdx.y * gridDim.x + blockIdx.x;
    if (a.flat_partials == nullptr) {
      const float e = tile_sum(energy, red);
      if (tid == 0) a.partials[block] = static_cast<double>(e);
    } else {
      for (int j = 0; j < kFlatSums; ++j) {
        const float v = tile_sum(sums[j], red);
        if (tid == 0) a.flat_partials[block * kFlatSums + j] = static_cast<double>(v);
      }
    }
  }
}

// In-place second pass: reads the stored mask, so each thread touches only its own pixel.
__global__ void apply_plane_kernel(TileArgs a) {
  const long long h = a.in.height, w = a.in.width, hw = h * w, total = a.in.n * hw;
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long i = k / hw, rem = k % hw, r = rem / w, x = rem % w;
    const float* tile = a.tiles + i * kTile * kTile;
    const float pv = pattern_at(tile, a.row_lo[r], a.row_frac[r], a.col_lo[x], a.col_frac[x]);
    apply_pixel(a.in, a.out, true, i, r, x, marked_delta(a.gains + 2 * i, pv, a.mask_out[k]));
  }
}

__global__ void chip_coord_kernel(long long n, double chip, int* lo, float* frac) {
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<long long>(gridDim.x) * blockDim.x)
    chip_coord(static_cast<int>(k), chip, lo + k, frac + k);
}

// Sum of every thread's s into red[0] in a fixed tree order (deterministic); kThreads threads per block.
template <class T>
__device__ void block_sum(T s, T* red) {
  red[threadIdx.x] = s;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) red[threadIdx.x] += red[threadIdx.x + half];
    __syncthreads();
  }
}

// One block per frame: the tiles' sums in a fixed order (deterministic), then the gains: gains[2 img] for the
// mask's floor, gains[2 img + 1] for its excess (flat_gains; without a flat limit both are the plain gain).
__global__ void gains_kernel(const double* partials, const double* flat_partials, long long per_frame,
                             double pixels, double target_rms, double flat_rms, double* gains) {
  __shared__ double red[kThreads];
  const long long img = blockIdx.x;
  const int n = flat_partials != nullptr ? kFlatSums : 1;
  double sums[kFlatSums] = {};  // valid in thread 0
  for (int j = 0; j < n; ++j) {
    double s = 0.0;
    for (long long k = threadIdx.x; k < per_frame; k += kThreads)
      s += flat_partials != nullptr ? flat_partials[(img * per_frame + k) * kFlatSums + j]
                                    : partials[img * per_frame + k];
    block_sum(s, red);  // red[0] read by thread 0 only, before its next write
    if (threadIdx.x == 0) sums[j] = red[0];
  }
  if (threadIdx.x != 0) return;
  if (flat_partials != nullptr) {
    flat_gains(sums, pixels, target_rms, flat_rms, &gains[2 * img], &gains[2 * img + 1]);
  } else {
    gains[2 * img] = gains[2 * img + 1] = embed_gain(sums[0], pixels, target_rms);
  }
}

// ---- area resampling (rows first, then columns, as resample_area)
// ------------------------------------------
__global__ void resample_rows_kernel(FrameView v, long long out_h, float* mid) {
  const long long w = v.width, total = v.n * out_h * w;
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long i = k / (out_h * w), rem = k % (out_h * w), o = rem / w, x = rem % w;
    long long first, count;
    area_span(o, v.height, out_h, &first, &count);
    float m = 0.0f;
    for (long long t = 0; t < count; ++t)
      m = add_rn(m, mul_rn(area_weight(o, first + t, v.height, out_h), luma_at(v, i, first + t, x)));
    mid[k] = m;
  }
}

__global__ void resample_cols_kernel(const float* mid, long long n, long long out_h, long long w,
                                     long long out_w, float* out) {
  const long long total = n * out_h * out_w;
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long row = k / out_w, o = k % out_w;  // row = i * out_h + output row
    long long first, count;
    area_span(o, w, out_w, &first, &count);
    const float* s = mid + row * w + first;
    float acc = 0.0f;
    for (long long t = 0; t < count; ++t)
      acc = add_rn(acc, mul_rn(area_weight(o, first + t, w, out_w), s[t]));
    out[k] = acc;
  }
}

// ---- Gaussian blur
// -----------------------------------------------------------------------------------------
constexpr int kMaxRadius = 128;  // taps travel by value in the launch parameters (no upload, no sync)

struct Taps {
  int radius = 0;
  float k[2 * kMaxRadius + 1] = {};
};

// Same kernel as gaussian_kernel (image_detect.cpp): exp(-i^2 / 2 sigma^2) in double, normalised, to float.
Taps gaussian_taps(double sigma) {
  Taps t;
  t.radius = static_cast<int>(kGaussTruncate * sigma + 0.5);
  if (t.radius > kMaxRadius)
    throw InvalidArgument("image gaussian_blur (CUDA): sigma " + std::to_string(sigma) +
                          " is too large (kernel radius " + std::to_string(t.radius) + " > " +
                          std::to_string(kMaxRadius) + ")");
  std::vector<double> v(2 * t.radius + 1);
  double sum = 0.0;
  for (int i = -t.radius; i <= t.radius; ++i) {
    v[i + t.radius] = std::exp(-0.5 * (i * i) / (sigma * sigma));
    sum += v[i + t.radius];
  }
  for (int i = 0; i <= 2 * t.radius; ++i) t.k[i] = static_cast<float>(static_cast<float>(v[i]) / sum);
  return t;
}

__global__ void blur_rows_kernel(const float* in, long long n, long long h, long long w, Taps t, float* mid) {
  const long long total = n * h * w;
  const int wi = static_cast<int>(w);
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long row = k / w;
    const int x = static_cast<int>(k % w);
    const float* s = in + row * w;
    float o = mul_rn(t.k[0], s[reflect_index(x - t.radius, wi)]);
    for (int j = 1; j <= 2 * t.radius; ++j)
      o = add_rn(o, mul_rn(t.k[j], s[reflect_index(x - t.radius + j, wi)]));
    mid[k] = o;
  }
}

__global__ void blur_cols_kernel(const float* mid, long long n, long long h, long long w, Taps t,
                                 float* out) {
  const long long total = n * h * w, hw = h * w;
  const int hi = static_cast<int>(h);
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long i = k / hw, rem = k % hw;
    const int r = static_cast<int>(rem / w);
    const long long x = rem % w;
    const float* plane = mid + i * hw;
    float o = 0.0f;
    for (int j = -t.radius; j <= t.radius; ++j)
      o = add_rn(o, mul_rn(t.k[j + t.radius], plane[reflect_index(r + j, hi) * w + x]));
    out[k] = o;
  }
}

// ---- whitening helpers
// --------------------------------------------------------------------------------------- out -= den
// (band-pass); den = |out| when `abs_into_den`.
__global__ void band_kernel(float* out, float* den, long long total, bool abs_into_den) {
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float b = out[k] - den[k];
    out[k] = b;
    if (abs_into_den) den[k] = fabsf(b);
  }
}

// row_sums[row] = float sum of one row (one block per row, fixed tree order).
__global__ void row_sum_kernel(const float* in, long long w, float* row_sums) {
  __shared__ float red[kThreads];
  const long long row = blockIdx.x;
  float s = 0.0f;
  for (long long x = threadIdx.x; x < w; x += kThreads) s += in[row * w + x];
  block_sum(s, red);
  if (threadIdx.x == 0) row_sums[row] = red[0];
}

// plane_mean[i] = (sum of the rows of plane i in double) / (h * w); one block per plane.
__global__ void plane_mean_kernel(const float* row_sums, long long h, long long w, double* plane_mean) {
  __shared__ double red[kThreads];
  const long long i = blockIdx.x;
  double s = 0.0;
  for (long long r = threadIdx.x; r < h; r += kThreads) s += static_cast<double>(row_sums[i * h + r]);
  block_sum(s, red);
  if (threadIdx.x == 0) plane_mean[i] = red[0] / static_cast<double>(h * w);
}

// den += 0.5 + 0.1 mean(den) per plane (whiten's floor).
__global__ void den_floor_kernel(float* den, long long n, long long hw, const double* mean) {
  const long long total = n * hw;
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float fl = add_rn(0.5f, mul_rn(0.1f, static_cast<float>(mean[k / hw])));
    den[k] = add_rn(den[k], fl);
  }
}

__global__ void divide_kernel(float* out, const float* den, long long total) {
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x)
    out[k] = out[k] / den[k];
}

__global__ void subtract_mean_kernel(float* out, long long n, long long hw, const double* mean) {
  const long long total = n * hw;
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x)
    out[k] = out[k] - static_cast<float>(mean[k / hw]);
}

// Per-plane mean (row float sums, then double), left in `mean` on the device.
void plane_means(const float* in, long long n, long long h, long long w, double* mean, cudaStream_t s) {
  StreamBuffer<float> rows(static_cast<std::size_t>(n * h), s);
  row_sum_kernel<<<static_cast<unsigned>(n * h), kThreads, 0, s>>>(in, w, rows.get());
  check_launch("image whiten: row sums");
  plane_mean_kernel<<<static_cast<unsigned>(n), kThreads, 0, s>>>(rows.get(), h, w, mean);
  check_launch("image whiten: plane means");
}

// ---- fold
// -------------------------------------------------------------------------------------------------------
// A hypothesis as the fold kernel reads it: the plane and the CPU's lattice coefficients (s = side / period,
// ct = cos(theta) s, st = sin(theta) s, computed on the host with the CPU's std::cos / std::sin).
struct DeviceHypothesis {
  const float* w;
  double ct, st;
};

// blockIdx.y = hypothesis (of this chunk); a grid-stride loop over the plane's pixels in x.
__global__ void fold_batch_kernel(const DeviceHypothesis* hyps, long long h, long long w, long long side,
                                  double* sums, unsigned* counts) {
  const DeviceHypothesis hp = hyps[blockIdx.y];
  const long long hw = h * w, base = static_cast<long long>(blockIdx.y) * side * side;
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < hw;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long bin = base + fold_bin(k / w, k % w, hp.ct, hp.st, side);
    atomicAdd(sums + bin, static_cast<double>(hp.w[k]));
    atomicAdd(counts + bin, 1u);
  }
}

// q = (a / den)^2 with a = max(den - (0.5 + 0.1 mean_a), 0), mean_a = max((mean(den) - 0.5) / 1.1, 0): the
// operations of image._Search.reliability_weighted (float32 elementwise, the constants in double).
__global__ void reliability_q_kernel(const float* den, long long n, long long hw, const double* mean_den,
                                     float* q) {
  const long long total = n * hw;
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const double mean_a = max_d((mean_den[k / hw] - 0.5) / 1.1, 0.0);
    const float sub = static_cast<float>(add_rn(0.5, mul_rn(0.1, mean_a)));
    const float d = den[k];
    const float r = max_f(d - sub, 0.0f) / d;
    q[k] = mul_rn(r, r);
  }
}

// out = w / (q + (floor mean(q) + 1e-12)); `q` is overwritten with the result.
__global__ void reliability_out_kernel(const float* w, float* q, long long n, long long hw,
                                       const double* mean_q, double floor) {
  const long long total = n * hw;
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float add = static_cast<float>(add_rn(mul_rn(floor, mean_q[k / hw]), 1e-12));
    q[k] = w[k] / add_rn(q[k], add);
  }
}

__global__ void fold_mean_kernel(const double* sums, const unsigned* counts, long long total, double* out) {
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x)
    out[k] = counts[k] ? sums[k] / static_cast<double>(counts[k]) : 0.0;
}

__global__ void sum_planes_kernel(const float* in, long long n, long long plane, double* out) {
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < plane;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    double s = 0.0;
    for (long long i = 0; i < n; ++i) s += static_cast<double>(in[i * plane + k]);
    out[k] = s;
  }
}

// ---- sync statistic
// ---------------------------------------------------------------------------------------- One block of
// kThreads per tile. The tile's 128 x 128 complex spectrum lives in a global scratch slice (128 KiB: too
// large for the shared memory of every architecture this builds for; each block reads and writes only its own
// slice, and __syncthreads orders global memory within a block): a radix-2 decimation-in-frequency FFT along
// rows then columns (natural order in, bit-reversed order out), the product with the two template spectra
// (uploaded in bit-reversed order, so no permutation is needed), both correlations in one inverse transform
// (c0 + i c1: both are real), a decimation-in-time inverse FFT (bit-reversed in, natural out), then
// fixed-order block reductions (double sums: deterministic).
constexpr int kSyncN = kSyncSide * kSyncSide;
static_assert((kSyncSide & (kSyncSide - 1)) == 0, "the sync FFT needs a power-of-two tile side");
static_assert((kThreads & (kThreads - 1)) == 0, "the block reductions need a power-of-two block");

struct Cf {
  float re, im;
};

__device__ __forceinline__ Cf c_add(Cf a, Cf b) { return Cf{a.re + b.re, a.im + b.im}; }
__device__ __forceinline__ Cf c_sub(Cf a, Cf b) { return Cf{a.re - b.re, a.im - b.im}; }
__device__ __forceinline__ Cf c_mul(Cf a, Cf b) {
  return Cf{a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}

// One radix-2 stage of half-length m over all 128 lines of the tile (rows when !along_y, columns when
// along_y). Forward DIF: (a, b) -> (a + b, (a - b) w); inverse DIT: (a, b) -> (a + b w*, a - b w*); w = tw[j
// * 64 / m].
__device__ __forceinline__ void sync_fft_stage(Cf* buf, const Cf* tw, int m, bool along_y, bool inverse) {
  constexpr int half = kSyncSide / 2;
  for (int b = threadIdx.x; b < kSyncN / 2; b += blockDim.x) {
    const int line = along_y ? b % kSyncSide : b / half, q = along_y ? b / kSyncSide : b % half;
    const int j = q & (m - 1), i0 = 2 * (q - j) + j, i1 = i0 + m;
    const int a0 = along_y ? i0 * kSyncSide + line : line * kSyncSide + i0;
    const int a1 = along_y ? i1 * kSyncSide + line : line * kSyncSide + i1;
    const Cf w = tw[j * (half / m)];
    const Cf x = buf[a0], y = buf[a1];
    if (!inverse) {
      buf[a0] = c_add(x, y);
      buf[a1] = c_mul(c_sub(x, y), w);
    } else {
      const Cf t = c_mul(y, Cf{w.re, -w.im});
      buf[a0] = c_add(x, t);
      buf[a1] = c_sub(x, t);
    }
  }
  __syncthreads();
}

// Reduction slots of one block: sums in double, maxima with the index of their first occurrence.
struct SyncRed {
  double sum[kThreads][2];
  float max[kThreads][2];
  int arg[kThreads][2];
};

// Block-wide sums of red.sum (both correlations); the result is in red.sum[0].
__device__ __forceinline__ void sync_reduce_sums(SyncRed& red) {
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s)
      for (int c = 0; c < 2; ++c) red.sum[threadIdx.x][c] += red.sum[threadIdx.x + s][c];
    __syncthreads();
  }
}

__global__ void __launch_bounds__(kThreads)
    sync_kernel(const double* tiles, const Cf* spectra, Cf* scratch, double* out) {
  __shared__ Cf tw[kSyncSide / 2];
  __shared__ SyncRed red;
  const long long k = blockIdx.x;
  const double* tile = tiles + k * kSyncN;
  Cf* buf = scratch + k * kSyncN;
  const int t = static_cast<int>(threadIdx.x);
  for (int i = t; i < kSyncSide / 2; i += blockDim.x) {
    const double a = 6.283185307179586476925286766559 * i / kSyncSide;
    tw[i] = Cf{static_cast<float>(cos(a)), static_cast<float>(-sin(a))};  // exp(-2 pi i / 128)^i
  }
  for (int i = t; i < kSyncN; i += blockDim.x) buf[i] = Cf{static_cast<float>(tile[i]), 0.0f};
  __syncthreads();
  for (int dim = 0; dim < 2; ++dim)
    for (int m = kSyncSide / 2; m >= 1; m >>= 1) sync_fft_stage(buf, tw, m, dim == 1, false);
  // G = F S0 + i F S1: the inverse of G is c0 + i c1
  for (int i = t; i < kSyncN; i += blockDim.x) {
    const Cf f = buf[i], p = c_mul(f, spectra[i]), q = c_mul(f, spectra[kSyncN + i]);
    buf[i] = Cf{p.re - q.im, p.im + q.re};
  }
  __syncthreads();
  for (int dim = 0; dim < 2; ++dim)
    for (int m = 1; m < kSyncSide; m <<= 1) sync_fft_stage(buf, tw, m, dim == 1, true);
  constexpr float inv = 1.0f / static_cast<float>(kSyncN);  // a power of two: exact
  double sum[2] = {0.0, 0.0};
  float mx[2] = {-INFINITY, -INFINITY};
  int arg[2] = {kSyncN, kSyncN};
  for (int i = t; i < kSyncN; i += blockDim.x) {
    const float v[2] = {buf[i].re * inv, buf[i].im * inv};
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      sum[c] += static_cast<double>(v[c]);
      if (v[c] > mx[c]) mx[c] = v[c], arg[c] = i;  // i grows: the first occurrence stays
    }
  }
#pragma unroll
  for (int c = 0; c < 2; ++c) red.sum[t][c] = sum[c], red.max[t][c] = mx[c], red.arg[t][c] = arg[c];
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (t < s)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const float o = red.max[t + s][c];
        const int oa = red.arg[t + s][c];
        if (o > red.max[t][c] || (o == red.max[t][c] && oa < red.arg[t][c]))
          red.max[t][c] = o, red.arg[t][c] = oa;
      }
    __syncthreads();
  }
  sync_reduce_sums(red);
  const double mean[2] = {red.sum[0][0] / kSyncN, red.sum[0][1] / kSyncN};
  __syncthreads();  // every thread has read the sums before the slots are reused
  double sq[2] = {0.0, 0.0};
  for (int i = t; i < kSyncN; i += blockDim.x) {
    const double d0 = static_cast<double>(buf[i].re * inv) - mean[0];
    const double d1 = static_cast<double>(buf[i].im * inv) - mean[1];
    sq[0] += d0 * d0;
    sq[1] += d1 * d1;
  }
  red.sum[t][0] = sq[0];
  red.sum[t][1] = sq[1];
  __syncthreads();
  sync_reduce_sums(red);
  if (t == 0) {
    double best_z = 0.0;
    int best_arg = 0, flip = 0;
    bool any = false;
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const double sd = sqrt(red.sum[0][c] / kSyncN);
      if (!(sd > 0.0) || red.arg[0][c] >= kSyncN) continue;
      const double z = (static_cast<double>(red.max[0][c]) - mean[c]) / sd;
      if (!any || z > best_z) best_z = z, best_arg = red.arg[0][c], flip = c, any = true;
    }
    out[4 * k + 0] = any ? best_z : 0.0;
    out[4 * k + 1] = static_cast<double>(best_arg / kSyncSide);
    out[4 * k + 2] = static_cast<double>(best_arg % kSyncSide);
    out[4 * k + 3] = static_cast<double>(flip);
  }
}

// ---- lattice search: power spectrum, flattening, autocorrelation and scores
// ------------------------------------ A mixed-radix Stockham FFT (radices 4, 2, 3, 5; natural order in and
// out, no permutation): stage s of radix R with ns = the product of the earlier radices reads x[j + r n / R]
// (r < R) for each j < n / R, multiplies entry r by w^(r k) (k = j mod ns, w = exp(-+2 pi i / (ns R)), a
// lookup in the [n] twiddle table), takes the R-point DFT and writes it to y[(j / ns) ns R + k + r ns]; the
// buffers swap after each stage. One block per line (a row or a column of the spectrum), the line's two
// buffers in shared memory (kLatticeLineMax complex entries each) or, for longer lines, in a global scratch
// slice per block.
#ifndef PROVMARK_LATTICE_THREADS
#define PROVMARK_LATTICE_THREADS 256  // threads per block of the lattice kernels (a power of two)
#endif
constexpr int kLineThreads = PROVMARK_LATTICE_THREADS;
constexpr int kMaxStages = 32;
constexpr int kBoxRadius = 3;  // the scoring's 7 x 7 box mean

struct FftPlan {
  int n = 0, stages = 0;
  int radix[kMaxStages] = {};
  const Cf* tw = nullptr;  // [n] exp(-2 pi i t / n) (device)
};

FftPlan make_plan(long long n, const Cf* tw, const char* fn) {
  FftPlan p;
  p.n = static_cast<int>(n);
  p.tw = tw;
  long long m = n;
  while (m % 4 == 0) p.radix[p.stages++] = 4, m /= 4;
  while (m % 2 == 0) p.radix[p.stages++] = 2, m /= 2;
  while (m % 3 == 0) p.radix[p.stages++] = 3, m /= 3;
  while (m % 5 == 0) p.radix[p.stages++] = 5, m /= 5;
  if (m != 1)
    throw InvalidArgument(std::string(fn) + ": FFT size " + std::to_string(n) +
                          " has a prime factor above 5");
  return p;
}

__global__ void twiddle_kernel(Cf* tw, long long n) {
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const double a = 6.283185307179586476925286766559 * static_cast<double>(k) / static_cast<double>(n);
    tw[k] = Cf{static_cast<float>(cos(a)), static_cast<float>(-sin(a))};
  }
}

__device__ __forceinline__ Cf c_times_i(Cf a, float s) { return Cf{-s * a.im, s * a.re}; }  // a * (s i)

// In-place R-point DFT of v (exponent sign -1 forward, +1 inverse).
__device__ __forceinline__ void small_dft(Cf* v, int radix, bool inverse) {
  const float sg = inverse ? 1.0f : -1.0f;
  if (radix == 2) {
    const Cf t = v[0];
    v[0] = c_add(t, v[1]);
    v[1] = c_sub(t, v[1]);
  } else if (radix == 4) {
    const Cf t0 = c_add(v[0], v[2]), t1 = c_sub(v[0], v[2]), t2 = c_add(v[1], v[3]);
    const Cf t3 = c_times_i(c_sub(v[1], v[3]), sg);
    v[0] = c_add(t0, t2);
    v[1] = c_add(t1, t3);
    v[2] = c_sub(t0, t2);
    v[3] = c_sub(t1, t3);
  } else if (radix == 3) {
    const Cf s = c_add(v[1], v[2]), d = c_times_i(c_sub(v[1], v[2]), sg * 0.866025403784438646763723170753f);
    const Cf m = Cf{v[0].re - 0.5f * s.re, v[0].im - 0.5f * s.im};
    v[0] = c_add(v[0], s);
    v[1] = c_add(m, d);
    v[2] = c_sub(m, d);
  } else {  // 5
    constexpr float c1 = 0.309016994374947424102293417183f, c2 = -0.809016994374947424102293417183f;
    const float s1 = sg * 0.951056516295153572116439333379f, s2 = sg * 0.587785252292473129168705954639f;
    const Cf a1 = c_add(v[1], v[4]), b1 = c_sub(v[1], v[4]), a2 = c_add(v[2], v[3]), b2 = c_sub(v[2], v[3]);
    const Cf m1 = Cf{v[0].re + c1 * a1.re + c2 * a2.re, v[0].im + c1 * a1.im + c2 * a2.im};
    const Cf m2 = Cf{v[0].re + c2 * a1.re + c1 * a2.re, v[0].im + c2 * a1.im + c1 * a2.im};
    const Cf n1 = c_times_i(Cf{s1 * b1.re + s2 * b2.re, s1 * b1.im + s2 * b2.im}, 1.0f);
    const Cf n2 = c_times_i(Cf{s2 * b1.re - s1 * b2.re, s2 * b1.im - s1 * b2.im}, 1.0f);
    v[0] = c_add(v[0], c_add(a1, a2));
    v[1] = c_add(m1, n1);
    v[4] = c_sub(m1, n1);
    v[2] = c_add(m2, n2);
    v[3] = c_sub(m2, n2);
  }
}

// The FFT of the line in a (length p.n) by the block; b is the other buffer. Returns the buffer holding the
// result. Starts and ends with the block synchronised (the caller syncs after filling a).
__device__ Cf* line_fft(Cf* a, Cf* b, const FftPlan& p, bool inverse) {
  int ns = 1;
  for (int s = 0; s < p.stages; ++s) {
    const int radix = p.radix[s], m = p.n / radix, stride = p.n / (ns * radix);
    for (int j = static_cast<int>(threadIdx.x); j < m; j += static_cast<int>(blockDim.x)) {
      const int k = j % ns;
      Cf v[5];
      for (int r = 0; r < radix; ++r) {
        Cf x = a[j + r * m];
        if (r > 0 && k > 0) {
          Cf w = p.tw[r * k * stride];  // r k stride < n
          if (inverse) w.im = -w.im;
          x = c_mul(x, w);
        }
        v[r] = x;
      }
      small_dft(v, radix, inverse);
      const int o = (j / ns) * ns * radix + k;
      for (int r = 0; r < radix; ++r) b[o + r * ns] = v[r];
    }
    __syncthreads();
    Cf* t = a;
    a = b;
    b = t;
    ns *= radix;
  }
  return a;
}

// The two line buffers of this block: shared memory, or a global scratch slice of 2 n entries per block.
__device__ __forceinline__ Cf* line_buffers(Cf* shared, Cf* scratch, int n) {
  return scratch == nullptr ? shared : scratch + 2LL * n * blockIdx.x;
}

// Rows of the zero-padded plane: spec[row, 0 .. half) = FFT of the row (rows >= h are zero).
__global__ void __launch_bounds__(kLineThreads)
    lattice_rows_kernel(const float* w, long long h, long long wd, long long lines, FftPlan pl,
                        long long half, Cf* spec, Cf* scratch) {
  __shared__ Cf sh[2 * kLatticeLineMax];
  Cf* a = line_buffers(sh, scratch, pl.n);
  Cf* b = a + pl.n;
  const int t = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  for (long long row = blockIdx.x; row < lines; row += gridDim.x) {
    Cf* o = spec + row * half;
    if (row >= h) {  // the zero padding: the whole block takes this branch
      for (long long x = t; x < half; x += nt) o[x] = Cf{0.0f, 0.0f};
      continue;
    }
    const float* src = w + row * wd;
    for (int x = t; x < pl.n; x += nt) a[x] = Cf{x < wd ? src[x] : 0.0f, 0.0f};
    __syncthreads();
    const Cf* r = line_fft(a, b, pl, false);
    for (long long x = t; x < half; x += nt) o[x] = r[x];
    __syncthreads();  // the buffers are refilled by the next line
  }
}

// Columns of the half spectrum: forward FFT, then power = re^2 + im^2 (as the host: two products, one sum).
__global__ void __launch_bounds__(kLineThreads)
    lattice_cols_power_kernel(const Cf* spec, long long half, FftPlan pl, float* power, Cf* scratch) {
  __shared__ Cf sh[2 * kLatticeLineMax];
  Cf* a = line_buffers(sh, scratch, pl.n);
  Cf* b = a + pl.n;
  const int t = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  for (long long col = blockIdx.x; col < half; col += gridDim.x) {
    for (int y = t; y < pl.n; y += nt) a[y] = spec[y * half + col];
    __syncthreads();
    const Cf* r = line_fft(a, b, pl, false);
    for (int y = t; y < pl.n; y += nt)
      power[y * half + col] = add_rn(mul_rn(r[y].re, r[y].re), mul_rn(r[y].im, r[y].im));
    __syncthreads();
  }
}

__device__ __forceinline__ long long wrap_ll(long long i, long long n) {
  const long long r = i % n;
  return r < 0 ? r + n : r;
}

// Separable periodic filter, along rows: mid[y, x] = sum_j k[j] in[y, x - radius + j].
__global__ void wrap_rows_kernel(const float* in, long long h, long long w, Taps t, float* mid) {
  const long long total = h * w;
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long y = k / w, x = k % w;
    const float* s = in + y * w;
    float o = 0.0f;
    for (int j = 0; j <= 2 * t.radius; ++j) o = add_rn(o, mul_rn(t.k[j], s[wrap_ll(x - t.radius + j, w)]));
    mid[k] = o;
  }
}

// Flattening, second half: smooth = the column filter of mid; out = clip(p / (smooth + 1e-20) - 1, -1, 8),
// then 0 on the notched rows and columns and at (0, 0).
__global__ void flatten_cols_kernel(const float* p, const float* mid, long long h, long long w, Taps t,
                                    const std::uint8_t* notch, float* out) {
  const long long total = h * w;
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long y = k / w, x = k % w;
    float sm = 0.0f;
    for (int j = 0; j <= 2 * t.radius; ++j)
      sm = add_rn(sm, mul_rn(t.k[j], mid[wrap_ll(y - t.radius + j, h) * w + x]));
    float v = p[k] / (sm + 1e-20f) - 1.0f;
    v = v < -1.0f ? -1.0f : (v > 8.0f ? 8.0f : v);
    if (notch[y] != 0 || notch[h + x] != 0 || k == 0) v = 0.0f;
    out[k] = v;
  }
}

// Columns of the flattened (real) half spectrum: inverse FFT into spec.
__global__ void __launch_bounds__(kLineThreads)
    lattice_cols_inverse_kernel(const float* r, long long half, FftPlan pl, Cf* spec, Cf* scratch) {
  __shared__ Cf sh[2 * kLatticeLineMax];
  Cf* a = line_buffers(sh, scratch, pl.n);
  Cf* b = a + pl.n;
  const int t = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  for (long long col = blockIdx.x; col < half; col += gridDim.x) {
    for (int y = t; y < pl.n; y += nt) a[y] = Cf{r[y * half + col], 0.0f};
    __syncthreads();
    const Cf* o = line_fft(a, b, pl, true);
    for (int y = t; y < pl.n; y += nt) spec[y * half + col] = o[y];
    __syncthreads();
  }
}

// Rows, complex to real (as numpy's / pocketfft's irfft: the imaginary parts of the DC and Nyquist bins are
// ignored): the row's full spectrum by Hermitian symmetry, inverse FFT, real part times `scale`.
__global__ void __launch_bounds__(kLineThreads)
    lattice_rows_inverse_kernel(const Cf* spec, long long half, long long lines, FftPlan pl, float scale,
                                float* out, Cf* scratch) {
  __shared__ Cf sh[2 * kLatticeLineMax];
  Cf* a = line_buffers(sh, scratch, pl.n);
  Cf* b = a + pl.n;
  const int t = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x), n = pl.n;
  for (long long row = blockIdx.x; row < lines; row += gridDim.x) {
    const Cf* s = spec + row * half;
    for (int x = t; x < n; x += nt) {
      if (2 * x <= n) {
        a[x] = s[x];
        if (x == 0 || 2 * x == n) a[x].im = 0.0f;
      } else {
        a[x] = Cf{s[n - x].re, -s[n - x].im};
      }
    }
    __syncthreads();
    const Cf* o = line_fft(a, b, pl, true);
    for (int x = t; x < n; x += nt) out[row * n + x] = o[x].re * scale;
    __syncthreads();
  }
}

// a' = a - box7(a) (periodic), the second (column) pass: mid holds the row pass.
__global__ void box_cols_subtract_kernel(const float* a, const float* mid, long long h, long long w, Taps t,
                                         float* out) {
  const long long total = h * w;
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long y = k / w, x = k % w;
    float sm = 0.0f;
    for (int j = 0; j <= 2 * t.radius; ++j)
      sm = add_rn(sm, mul_rn(t.k[j], mid[wrap_ll(y - t.radius + j, h) * w + x]));
    out[k] = a[k] - sm;
  }
}

// Periodic bilinear read of a [h, w] at (cy, cx) (image_lattice.cpp sample_wrap).
__device__ __forceinline__ float lattice_sample(const float* a, long long h, long long w, double cy,
                                                double cx) {
  const double fh = static_cast<double>(h), fw = static_cast<double>(w);
  cy -= floor(cy * (1.0 / fh)) * fh;
  cx -= floor(cx * (1.0 / fw)) * fw;
  const double y0f = floor(cy), x0f = floor(cx);
  const float ty = static_cast<float>(cy - y0f), tx = static_cast<float>(cx - x0f);
  long long y0 = static_cast<long long>(y0f), x0 = static_cast<long long>(x0f);
  if (y0 >= h) y0 -= h;
  if (y0 < 0) y0 += h;
  if (x0 >= w) x0 -= w;
  if (x0 < 0) x0 += w;
  const long long y1 = y0 + 1 == h ? 0 : y0 + 1, x1 = x0 + 1 == w ? 0 : x0 + 1;
  const float* r0 = a + y0 * w;
  const float* r1 = a + y1 * w;
  return (1.0f - ty) * ((1.0f - tx) * r0[x0] + tx * r0[x1]) + ty * ((1.0f - tx) * r1[x0] + tx * r1[x1]);
}

// One thread per (period, angle): the four lattice vectors minus max(0, the four half vectors).
__global__ void lattice_score_kernel(const float* a, long long h, long long w, const double* periods,
                                     long long n_periods, const double* cos_sin, long long n_thetas,
                                     double* out) {
  const long long total = n_periods * n_thetas;
  const int vx[4] = {1, 0, 1, 1}, vy[4] = {0, 1, 1, -1};
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const double period = periods[k / n_thetas], c = cos_sin[2 * (k % n_thetas)],
                 s = cos_sin[2 * (k % n_thetas) + 1];
    double full = 0.0, halfs = 0.0;
    for (int v = 0; v < 4; ++v) {
      const double dx = period * (vx[v] * c - vy[v] * s), dy = period * (vx[v] * s + vy[v] * c);
      full += lattice_sample(a, h, w, dy, dx);
      halfs += lattice_sample(a, h, w, 0.5 * dy, 0.5 * dx);
    }
    out[k] = full - (halfs > 0.0 ? halfs : 0.0);
  }
}

// Gaussian taps of image_lattice.cpp (truncate 4): exp(-i^2 / 2 sigma^2) / sum in double, rounded to float.
Taps flatten_taps(double sigma, const char* fn) {
  Taps t;
  t.radius = static_cast<int>(4.0 * sigma + 0.5);
  if (t.radius > kMaxRadius)
    throw InvalidArgument(std::string(fn) + ": flattening sigma " + std::to_string(sigma) + " is too large");
  double sum = 0.0;
  for (int i = -t.radius; i <= t.radius; ++i) sum += std::exp(-0.5 * (i * i) / (sigma * sigma));
  for (int i = -t.radius; i <= t.radius; ++i)
    t.k[i + t.radius] = static_cast<float>(std::exp(-0.5 * (i * i) / (sigma * sigma)) / sum);
  return t;
}

void check_plane_args(const void* p, long long n, long long h, long long w, const char* fn) {
  if (p == nullptr) throw InvalidArgument(std::string(fn) + ": null device pointer");
  if (n < 1 || h < 1 || w < 1)
    throw InvalidArgument(std::string(fn) + ": sizes must be >= 1, got n=" + std::to_string(n) +
                          " h=" + std::to_string(h) + " w=" + std::to_string(w));
  if (h > (1LL << 30) || w > (1LL << 30)) throw InvalidArgument(std::string(fn) + ": plane too large");
}

void blur_into(const float* in, long long n, long long h, long long w, double sigma, float* out,
               cudaStream_t s) {
  const long long total = n * h * w;
  if (sigma < 0.2) {
    if (in != out)
      PROVMARK_CUDA_CHECK(cudaMemcpyAsync(out, in, total * sizeof(float), cudaMemcpyDeviceToDevice, s));
    return;
  }
  const Taps t = gaussian_taps(sigma);
  StreamBuffer<float> mid(static_cast<std::size_t>(total), s);
  blur_rows_kernel<<<grid_for(total), kThreads, 0, s>>>(in, n, h, w, t, mid.get());
  check_launch("image gaussian_blur: rows");
  blur_cols_kernel<<<grid_for(total), kThreads, 0, s>>>(mid.get(), n, h, w, t, out);
  check_launch("image gaussian_blur: columns");
}

}  // namespace

// ---- entry points
// ---------------------------------------------------------------------------------------------
void check_view(const FrameView& v, const char* fn) {
  const std::string f(fn);
  if (v.data == nullptr) throw InvalidArgument(f + ": null device pointer");
  if (v.n < 1 || v.height < 1 || v.width < 1)
    throw InvalidArgument(f + ": frames must be non-empty, got n=" + std::to_string(v.n) +
                          " height=" + std::to_string(v.height) + " width=" + std::to_string(v.width));
  if (v.height > (1LL << 21) || v.width > (1LL << 21) || v.n > 65535)
    throw InvalidArgument(f + ": at most 65535 frames of at most 2^21 x 2^21 pixels");
  if (!(v.channels == 1 || v.channels == 3 || v.channels == 4))
    throw InvalidArgument(f + ": channels must be 1, 3 or 4, got " + std::to_string(v.channels));
  if (!(v.scale > 0.0f) || !std::isfinite(v.scale)) throw InvalidArgument(f + ": scale must be > 0");
  if (v.type == SampleType::kU16) {
    if (v.channels != 1) throw InvalidArgument(f + ": uint16 frames must be single planes (channels == 1)");
    if (!(v.vmax >= 1.0f && v.vmax <= 65535.0f) || v.shift < 0 || v.shift > 15)
      throw InvalidArgument(f + ": uint16 frames need vmax in [1, 65535] and shift in [0, 15]");
  } else if (v.shift != 0) {
    throw InvalidArgument(f + ": shift applies to uint16 frames only");
  }
  if (v.lo != 0.0f) {
    if (v.lo != -1.0f) throw InvalidArgument(f + ": lo must be 0 or -1");
    if (v.type == SampleType::kU8 || v.type == SampleType::kU16)
      throw InvalidArgument(f + ": the value range [-1, 1] applies to float frames only");
  }
}

int pointer_device(const void* ptr) {
  cudaPointerAttributes attr{};
  PROVMARK_CUDA_CHECK(cudaPointerGetAttributes(&attr, ptr));
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged)
    throw InvalidArgument("provmark CUDA: the pointer is not device memory (type " +
                          std::to_string(attr.type) + ")");
  return attr.device;
}

void copy_to_device(void* dst, const void* src, std::size_t bytes, std::uintptr_t stream) {
  if (bytes == 0) return;
  DeviceGuard g(pointer_device(dst));
  PROVMARK_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, as_stream(stream)));
}

void copy_to_host(void* dst, const void* src, std::size_t bytes, std::uintptr_t stream) {
  if (bytes == 0) return;
  DeviceGuard g(pointer_device(src));
  PROVMARK_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, as_stream(stream)));
  PROVMARK_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream)));
}

void luma(const FrameView& in, float* out, std::uintptr_t stream) {
  check_view(in, "image luma (CUDA)");
  if (out == nullptr) throw InvalidArgument("image luma (CUDA): null output");
  DeviceGuard g(pointer_device(in.data));
  const cudaStream_t s = as_stream(stream);
  luma_kernel<<<grid_for(in.n * in.height * in.width), kThreads, 0, s>>>(in, out);
  check_launch("image luma (CUDA)");
}

void texture_mask(const FrameView& in, float* out, std::uintptr_t stream) {
  check_view(in, "image texture_mask (CUDA)");
  if (out == nullptr) throw InvalidArgument("image texture_mask (CUDA): null output");
  DeviceGuard g(pointer_device(in.data));
  TileArgs a;
  a.in = in;
  a.mask_out = out;
  const dim3 grid(static_cast<unsigned>((in.width + kT - 1) / kT),
                  static_cast<unsigned>((in.height + kT - 1) / kT), static_cast<unsigned>(in.n));
  tile_kernel<TileMode::kMask><<<grid, kThreads, 0, as_stream(stream)>>>(a);
  check_launch("image texture_mask (CUDA)");
}

void resample_area(const FrameView& in, float* out, long long out_h, long long out_w, std::uintptr_t stream) {
  check_view(in, "image resample (CUDA)");
  if (out == nullptr) throw InvalidArgument("image resample (CUDA): null output");
  if (out_h < 1 || out_w < 1 || out_h > in.height || out_w > in.width)
    throw InvalidArgument("image resample (CUDA): output size must be in [1, input size] on both axes");
  DeviceGuard g(pointer_device(in.data));
  const cudaStream_t s = as_stream(stream);
  StreamBuffer<float> mid(static_cast<std::size_t>(in.n * out_h * in.width), s);
  resample_rows_kernel<<<grid_for(in.n * out_h * in.width), kThreads, 0, s>>>(in, out_h, mid.get());
  check_launch("image resample (CUDA): rows");
  resample_cols_kernel<<<grid_for(in.n * out_h * out_w), kThreads, 0, s>>>(mid.get(), in.n, out_h, in.width,
                                                                           out_w, out);
  check_launch("image resample (CUDA): columns");
}

void gaussian_blur(const float* in, long long n, long long height, long long width, double sigma, float* out,
                   std::uintptr_t stream) {
  check_plane_args(in, n, height, width, "image gaussian_blur (CUDA)");
  if (out == nullptr) throw InvalidArgument("image gaussian_blur (CUDA): null output");
  if (!std::isfinite(sigma)) throw InvalidArgument("image gaussian_blur (CUDA): sigma must be finite");
  DeviceGuard g(pointer_device(in));
  blur_into(in, n, height, width, sigma, out, as_stream(stream));
}

void whiten(const float* y, long long n, long long height, long long width, double chip, const float* den_in,
            float* out, float* den_out, std::uintptr_t stream) {
  check_plane_args(y, n, height, width, "image whiten (CUDA)");
  if (out == nullptr) throw InvalidArgument("image whiten (CUDA): null output");
  if (!(chip > 0.0) || !std::isfinite(chip)) throw InvalidArgument("image whiten (CUDA): chip must be > 0");
  DeviceGuard g(pointer_device(y));
  const cudaStream_t s = as_stream(stream);
  const long long hw = height * width, total = n * hw;
  StreamBuffer<float> local(den_out == nullptr ? static_cast<std::size_t>(total) : 0, s);
  float* den = den_out != nullptr ? den_out : local.get();
  StreamBuffer<double> mean(static_cast<std::size_t>(n), s);
  blur_into(y, n, height, width, 0.15 * chip, out, s);
  blur_into(y, n, height, width, 0.5 * chip, den, s);
  band_kernel<<<grid_for(total), kThreads, 0, s>>>(out, den, total, den_in == nullptr);
  check_launch("image whiten: band");
  if (den_in == nullptr) {
    blur_into(den, n, height, width, chip, den, s);
    plane_means(den, n, height, width, mean.get(), s);
    den_floor_kernel<<<grid_for(total), kThreads, 0, s>>>(den, n, hw, mean.get());
    check_launch("image whiten: floor");
  } else {
    PROVMARK_CUDA_CHECK(cudaMemcpyAsync(den, den_in, total * sizeof(float), cudaMemcpyDeviceToDevice, s));
  }
  divide_kernel<<<grid_for(total), kThreads, 0, s>>>(out, den, total);
  check_launch("image whiten: divide");
  plane_means(out, n, height, width, mean.get(), s);
  subtract_mean_kernel<<<grid_for(total), kThreads, 0, s>>>(out, n, hw, mean.get());
  check_launch("image whiten: mean");
}

void fold(const FoldParams& p, std::uintptr_t stream) {
  check_plane_args(p.w, p.n, p.height, p.width, "image fold (CUDA)");
  std::vector<FoldHypothesis> hyps(static_cast<std::size_t>(p.n));
  for (long long i = 0; i < p.n; ++i)
    hyps[i] = FoldHypothesis{p.w + i * p.height * p.width, p.period, p.theta};
  FoldBatch b;
  b.hyps_host = hyps.data();
  b.n_hyp = p.n;
  b.height = p.height;
  b.width = p.width;
  b.side = p.side;
  b.out = p.out;
  fold_batch(b, stream);
}

void fold_batch(const FoldBatch& p, std::uintptr_t stream) {
  const char* fn = "image fold (CUDA)";
  if (p.hyps_host == nullptr || p.n_hyp < 1)
    throw InvalidArgument(std::string(fn) + ": at least one hypothesis is needed");
  check_plane_args(p.hyps_host[0].w, p.n_hyp, p.height, p.width, fn);
  if (p.out == nullptr) throw InvalidArgument(std::string(fn) + ": null output");
  if (p.side < 1 || p.side > 4096) throw InvalidArgument(std::string(fn) + ": side must be in [1, 4096]");
  std::vector<DeviceHypothesis> dh(static_cast<std::size_t>(p.n_hyp));
  for (long long k = 0; k < p.n_hyp; ++k) {
    const FoldHypothesis& h = p.hyps_host[k];
    if (h.w == nullptr)
      throw InvalidArgument(std::string(fn) + ": null plane in hypothesis " + std::to_string(k));
    if (!(h.period > 0.0) || !std::isfinite(h.period) || !std::isfinite(h.theta))
      throw InvalidArgument(std::string(fn) + ": period must be > 0 and finite, theta finite (hypothesis " +
                            std::to_string(k) + ")");
    // the CPU's lattice coefficients: s = side / period, ct = cos(theta) s, st = sin(theta) s
    const double sc = static_cast<double>(p.side) / h.period;
    dh[k] = DeviceHypothesis{h.w, std::cos(h.theta) * sc, std::sin(h.theta) * sc};
  }
  const int device = pointer_device(p.out);
  for (long long k = 0; k < p.n_hyp; ++k)
    if (k == 0 || dh[k].w != dh[k - 1].w) {
      if (pointer_device(dh[k].w) != device)
        throw InvalidArgument(std::string(fn) + ": the planes and the output are on different devices");
    }
  DeviceGuard g(device);
  const cudaStream_t s = as_stream(stream);
  const long long side = p.side, nb = side * side, bins = p.n_hyp * nb;
  StreamBuffer<DeviceHypothesis> hyps(static_cast<std::size_t>(p.n_hyp), s);
  PROVMARK_CUDA_CHECK(cudaMemcpyAsync(hyps.get(), dh.data(), dh.size() * sizeof(DeviceHypothesis),
                                      cudaMemcpyHostToDevice, s));
  StreamBuffer<double> sums(static_cast<std::size_t>(bins), s);
  StreamBuffer<unsigned> counts(static_cast<std::size_t>(bins), s);
  PROVMARK_CUDA_CHECK(cudaMemsetAsync(sums.get(), 0, bins * sizeof(double), s));
  PROVMARK_CUDA_CHECK(cudaMemsetAsync(counts.get(), 0, bins * sizeof(unsigned), s));
  const long long hw = p.height * p.width;
  // blocks per hypothesis: enough to cover the plane, fewer when there are many hypotheses
  long long per = (hw + kThreads - 1) / kThreads;
  const long long cap = std::max(8LL, (1LL << 16) / std::max(1LL, std::min(p.n_hyp, 65535LL)));
  if (per > cap) per = cap;
  constexpr long long kMaxY = 65535;  // grid.y limit: hypotheses in chunks
  for (long long k0 = 0; k0 < p.n_hyp; k0 += kMaxY) {
    const long long nk = std::min(kMaxY, p.n_hyp - k0);
    const dim3 grid(static_cast<unsigned>(per), static_cast<unsigned>(nk));
    fold_batch_kernel<<<grid, kThreads, 0, s>>>(hyps.get() + k0, p.height, p.width, side,
                                                sums.get() + k0 * nb, counts.get() + k0 * nb);
    check_launch(fn);
  }
  fold_mean_kernel<<<grid_for(bins), kThreads, 0, s>>>(sums.get(), counts.get(), bins, p.out);
  check_launch("image fold (CUDA): means");
}

void reliability(const float* w, const float* den, long long n, long long height, long long width,
                 double floor, float* out, std::uintptr_t stream) {
  const char* fn = "image reliability (CUDA)";
  check_plane_args(w, n, height, width, fn);
  if (den == nullptr || out == nullptr) throw InvalidArgument(std::string(fn) + ": null device pointer");
  if (!(floor >= 0.0) || !std::isfinite(floor))
    throw InvalidArgument(std::string(fn) + ": floor must be >= 0");
  if (out == den || out == w) throw InvalidArgument(std::string(fn) + ": out must not be w or den");
  DeviceGuard g(pointer_device(w));
  const cudaStream_t s = as_stream(stream);
  const long long hw = height * width, total = n * hw;
  StreamBuffer<double> mean(static_cast<std::size_t>(n), s);
  plane_means(den, n, height, width, mean.get(), s);
  reliability_q_kernel<<<grid_for(total), kThreads, 0, s>>>(den, n, hw, mean.get(), out);
  check_launch("image reliability (CUDA): q");
  plane_means(out, n, height, width, mean.get(), s);
  reliability_out_kernel<<<grid_for(total), kThreads, 0, s>>>(w, out, n, hw, mean.get(), floor);
  check_launch("image reliability (CUDA): weights");
}

void sum_planes(const float* in, long long n, long long plane, double* out, std::uintptr_t stream) {
  check_plane_args(in, n, 1, plane, "image sum_planes (CUDA)");
  if (out == nullptr) throw InvalidArgument("image sum_planes (CUDA): null output");
  DeviceGuard g(pointer_device(in));
  sum_planes_kernel<<<grid_for(plane), kThreads, 0, as_stream(stream)>>>(in, n, plane, out);
  check_launch("image sum_planes (CUDA)");
}

void sync_batch(const SyncBatch& p, std::uintptr_t stream) {
  const char* fn = "image sync (CUDA)";
  if (p.n < 1 || p.n > (1LL << 31) - 1)
    throw InvalidArgument(std::string(fn) + ": the number of tiles must be in [1, 2^31), got " +
                          std::to_string(p.n));
  if (p.tiles == nullptr || p.spectra == nullptr || p.out == nullptr)
    throw InvalidArgument(std::string(fn) + ": null device pointer");
  const int device = pointer_device(p.tiles);
  if (pointer_device(p.spectra) != device || pointer_device(p.out) != device)
    throw InvalidArgument(std::string(fn) + ": the tiles, spectra and output are on different devices");
  DeviceGuard g(device);
  const cudaStream_t s = as_stream(stream);
  StreamBuffer<Cf> scratch(static_cast<std::size_t>(p.n) * kSyncN, s);
  sync_kernel<<<static_cast<unsigned>(p.n), kThreads, 0, s>>>(p.tiles, reinterpret_cast<const Cf*>(p.spectra),
                                                              scratch.get(), p.out);
  check_launch(fn);
}

void embed(const EmbedParams& p, std::uintptr_t stream) {
  const char* fn = "image embed (CUDA)";
  check_view(p.in, fn);
  check_view(p.out, fn);
  if (p.out.n != p.in.n || p.out.height != p.in.height || p.out.width != p.in.width ||
      p.out.channels != p.in.channels || p.out.type != p.in.type || p.out.shift != p.in.shift ||
      p.out.vmax != p.in.vmax)
    throw InvalidArgument(std::string(fn) + ": the output must have the input's sizes, channels and type");
  if (p.tiles_host == nullptr) throw InvalidArgument(std::string(fn) + ": null tiles");
  if (!(p.chip > 0.0) || !std::isfinite(p.chip))
    throw InvalidArgument(std::string(fn) + ": chip must be > 0");
  if (!(p.target_rms >= 0.0) || !std::isfinite(p.target_rms))
    throw InvalidArgument(std::string(fn) + ": target_rms must be >= 0");
  if (!(p.flat_rms >= 0.0) || !std::isfinite(p.flat_rms))
    throw InvalidArgument(std::string(fn) + ": flat_rms must be >= 0");
  const bool in_place = p.in.data == p.out.data;
  if (in_place && (p.in.stride_n != p.out.stride_n || p.in.stride_y != p.out.stride_y ||
                   p.in.stride_x != p.out.stride_x || p.in.stride_c != p.out.stride_c))
    throw InvalidArgument(std::string(fn) + ": in place needs identical strides");
  const int device = pointer_device(p.in.data);
  if (pointer_device(p.out.data) != device)
    throw InvalidArgument(std::string(fn) + ": input and output are on different devices");
  DeviceGuard g(device);
  const cudaStream_t s = as_stream(stream);
  const long long n = p.in.n, h = p.in.height, w = p.in.width;

  StreamBuffer<float> tiles(static_cast<std::size_t>(n * kTile * kTile), s);
  PROVMARK_CUDA_CHECK(cudaMemcpyAsync(tiles.get(), p.tiles_host, n * kTile * kTile * sizeof(float),
                                      cudaMemcpyHostToDevice, s));
  StreamBuffer<int> row_lo(static_cast<std::size_t>(h), s), col_lo(static_cast<std::size_t>(w), s);
  StreamBuffer<float> row_frac(static_cast<std::size_t>(h), s), col_frac(static_cast<std::size_t>(w), s);
  chip_coord_kernel<<<grid_for(h), kThreads, 0, s>>>(h, p.chip, row_lo.get(), row_frac.get());
  check_launch("image embed (CUDA): row coordinates");
  chip_coord_kernel<<<grid_for(w), kThreads, 0, s>>>(w, p.chip, col_lo.get(), col_frac.get());
  check_launch("image embed (CUDA): column coordinates");

  const dim3 grid(static_cast<unsigned>((w + kT - 1) / kT), static_cast<unsigned>((h + kT - 1) / kT),
                  static_cast<unsigned>(n));
  const long long per_frame = static_cast<long long>(grid.x) * grid.y;
  StreamBuffer<double> partials(static_cast<std::size_t>(n * per_frame), s);
  const bool flat = p.flat_rms > 0.0;
  StreamBuffer<double> flat_partials(flat ? static_cast<std::size_t>(kFlatSums * n * per_frame) : 0, s);
  StreamBuffer<double> gains(static_cast<std::size_t>(2 * n), s);
  StreamBuffer<float> mask(in_place ? static_cast<std::size_t>(n * h * w) : 0, s);

  TileArgs a;
  a.in = p.in;
  a.out = p.out;
  a.tiles = tiles.get();
  a.row_lo = row_lo.get();
  a.row_frac = row_frac.get();
  a.col_lo = col_lo.get();
  a.col_frac = col_frac.get();
  a.mask_out = in_place ? mask.get() : nullptr;
  a.partials = partials.get();
  a.flat_partials = flat ? flat_partials.get() : nullptr;
  a.gains = gains.get();
  tile_kernel<TileMode::kEnergy><<<grid, kThreads, 0, s>>>(a);
  check_launch("image embed (CUDA): energy pass");
  gains_kernel<<<static_cast<unsigned>(n), kThreads, 0, s>>>(partials.get(), a.flat_partials, per_frame,
                                                             static_cast<double>(h * w), p.target_rms,
                                                             p.flat_rms, gains.get());
  check_launch("image embed (CUDA): gains");
  if (in_place) {
    apply_plane_kernel<<<grid_for(n * h * w), kThreads, 0, s>>>(a);
    check_launch("image embed (CUDA): apply pass (in place)");
  } else {
    tile_kernel<TileMode::kApply><<<grid, kThreads, 0, s>>>(a);
    check_launch("image embed (CUDA): apply pass");
  }
}

void lattice_scores(const LatticeParams& p, std::uintptr_t stream) {
  const char* fn = "image lattice (CUDA)";
  check_plane_args(p.w, 1, p.height, p.width, fn);
  if (p.fft_h < p.height || p.fft_w < p.width || p.fft_h > (1LL << 24) || p.fft_w > (1LL << 24))
    throw InvalidArgument(std::string(fn) + ": FFT sizes must be >= the plane and <= 2^24, got " +
                          std::to_string(p.fft_h) + " x " + std::to_string(p.fft_w));
  if (!(p.sigma_y > 0.0 && p.sigma_x > 0.0) || !std::isfinite(p.sigma_y) || !std::isfinite(p.sigma_x))
    throw InvalidArgument(std::string(fn) + ": sigmas must be > 0 and finite");
  if (p.notch_rows_host == nullptr || p.notch_cols_host == nullptr || p.periods_host == nullptr ||
      p.thetas_host == nullptr || p.out_host == nullptr)
    throw InvalidArgument(std::string(fn) + ": null host pointer");
  if (p.n_periods < 1 || p.n_thetas < 1 || p.n_periods > (1LL << 20) || p.n_thetas > (1LL << 20))
    throw InvalidArgument(std::string(fn) + ": the period and angle grids must have 1 to 2^20 entries");
  for (long long i = 0; i < p.n_periods; ++i)
    if (!(p.periods_host[i] > 0.0 && p.periods_host[i] < 1e9))
      throw InvalidArgument(std::string(fn) + ": periods must be in (0, 1e9)");
  std::vector<double> cos_sin(2 * static_cast<std::size_t>(p.n_thetas));
  for (long long j = 0; j < p.n_thetas; ++j) {
    if (!std::isfinite(p.thetas_host[j])) throw InvalidArgument(std::string(fn) + ": thetas must be finite");
    cos_sin[2 * j] = std::cos(p.thetas_host[j]);
    cos_sin[2 * j + 1] = std::sin(p.thetas_host[j]);
  }
  const long long fh = p.fft_h, fw = p.fft_w, half = fw / 2 + 1, hs = fh * half, full = fh * fw;
  const Taps ty = flatten_taps(p.sigma_y, fn), tx = flatten_taps(p.sigma_x, fn);
  Taps box;
  box.radius = kBoxRadius;
  for (int i = 0; i <= 2 * kBoxRadius; ++i) box.k[i] = 1.0f / 7.0f;
  std::vector<std::uint8_t> notch(static_cast<std::size_t>(fh + half));
  std::copy(p.notch_rows_host, p.notch_rows_host + fh, notch.begin());
  std::copy(p.notch_cols_host, p.notch_cols_host + half, notch.begin() + fh);
  DeviceGuard g(pointer_device(p.w));
  const cudaStream_t s = as_stream(stream);
  StreamBuffer<Cf> tw_h(static_cast<std::size_t>(fh), s), tw_w(static_cast<std::size_t>(fw), s);
  twiddle_kernel<<<grid_for(fh), kLineThreads, 0, s>>>(tw_h.get(), fh);
  check_launch("image lattice (CUDA): twiddles");
  twiddle_kernel<<<grid_for(fw), kLineThreads, 0, s>>>(tw_w.get(), fw);
  check_launch("image lattice (CUDA): twiddles");
  const FftPlan ph = make_plan(fh, tw_h.get(), fn), pw = make_plan(fw, tw_w.get(), fn);
  // lines up to kLatticeLineMax in shared memory, one block each; longer ones in global scratch, 256 blocks
  const auto blocks = [](long long lines, long long n) {
    return static_cast<unsigned>(n > kLatticeLineMax ? std::min(lines, 256LL) : std::min(lines, 1LL << 30));
  };
  const auto scratch_len = [&](long long lines, long long n) {
    return static_cast<std::size_t>(n > kLatticeLineMax ? 2 * n * blocks(lines, n) : 0);
  };
  StreamBuffer<Cf> scr_w(scratch_len(fh, fw), s), scr_h(scratch_len(half, fh), s);
  StreamBuffer<Cf> spec(static_cast<std::size_t>(hs), s);
  StreamBuffer<float> power(static_cast<std::size_t>(hs), s), mid(static_cast<std::size_t>(full), s);
  StreamBuffer<float> flat(static_cast<std::size_t>(hs), s), a(static_cast<std::size_t>(full), s);
  StreamBuffer<std::uint8_t> notch_d(notch.size(), s);
  PROVMARK_CUDA_CHECK(cudaMemcpyAsync(notch_d.get(), notch.data(), notch.size(), cudaMemcpyHostToDevice, s));
  lattice_rows_kernel<<<blocks(fh, fw), kLineThreads, 0, s>>>(p.w, p.height, p.width, fh, pw, half,
                                                              spec.get(), scr_w.get());
  check_launch("image lattice (CUDA): row FFTs");
  lattice_cols_power_kernel<<<blocks(half, fh), kLineThreads, 0, s>>>(spec.get(), half, ph, power.get(),
                                                                      scr_h.get());
  check_launch("image lattice (CUDA): column FFTs");
  wrap_rows_kernel<<<grid_for(hs), kLineThreads, 0, s>>>(power.get(), fh, half, tx, mid.get());
  check_launch("image lattice (CUDA): flattening rows");
  flatten_cols_kernel<<<grid_for(hs), kLineThreads, 0, s>>>(power.get(), mid.get(), fh, half, ty,
                                                            notch_d.get(), flat.get());
  check_launch("image lattice (CUDA): flattening columns");
  lattice_cols_inverse_kernel<<<blocks(half, fh), kLineThreads, 0, s>>>(flat.get(), half, ph, spec.get(),
                                                                        scr_h.get());
  check_launch("image lattice (CUDA): inverse column FFTs");
  const float scale = static_cast<float>(1.0 / (static_cast<double>(fh) * static_cast<double>(fw)));
  lattice_rows_inverse_kernel<<<blocks(fh, fw), kLineThreads, 0, s>>>(spec.get(), half, fh, pw, scale,
                                                                      a.get(), scr_w.get());
  check_launch("image lattice (CUDA): inverse row FFTs");
  wrap_rows_kernel<<<grid_for(full), kLineThreads, 0, s>>>(a.get(), fh, fw, box, mid.get());
  check_launch("image lattice (CUDA): box rows");
  StreamBuffer<float> ap(static_cast<std::size_t>(full), s);
  box_cols_subtract_kernel<<<grid_for(full), kLineThreads, 0, s>>>(a.get(), mid.get(), fh, fw, box, ap.get());
  check_launch("image lattice (CUDA): box columns");
  const long long total = p.n_periods * p.n_thetas;
  StreamBuffer<double> grids(static_cast<std::size_t>(p.n_periods + 2 * p.n_thetas), s);
  PROVMARK_CUDA_CHECK(
      cudaMemcpyAsync(grids.get(), p.periods_host, p.n_periods * sizeof(double), cudaMemcpyHostToDevice, s));
  PROVMARK_CUDA_CHECK(cudaMemcpyAsync(grids.get() + p.n_periods, cos_sin.data(),
                                      cos_sin.size() * sizeof(double), cudaMemcpyHostToDevice, s));
  StreamBuffer<double> out(static_cast<std::size_t>(total), s);
  lattice_score_kernel<<<grid_for(total), kLineThreads, 0, s>>>(
      ap.get(), fh, fw, grids.get(), p.n_periods, grids.get() + p.n_periods, p.n_thetas, out.get());
  check_launch("image lattice (CUDA): scores");
  PROVMARK_CUDA_CHECK(
      cudaMemcpyAsync(p.out_host, out.get(), total * sizeof(double), cudaMemcpyDeviceToHost, s));
  PROVMARK_CUDA_CHECK(cudaStreamSynchronize(s));
}

}  // namespace provmark::image::cuda
