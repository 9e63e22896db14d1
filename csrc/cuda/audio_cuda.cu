// CUDA twins of the CPU audio detector and embedder (see audio_cuda.h). Kernels are kept plain and mirror
// audio_cpu.cpp step by step: one thread block per (clip, frame) for the analysis, one per (clip, speed) for
// the projections, one thread per (phase, group) for the fold; for embedding one block per (clip, cell) for
// the band energies, a thread per (clip, cell) for the moves, one per clip for the budget scan, one block per
// (clip, frame) for the filter and a thread per sample for the overlap-add. Per-element math from
// core/audio_common.h. The kernel source also runs on host threads in tests/test_cuda_audio.py (launches
// rewritten there), so keep to `kernel<<<grid, block, shmem, stream>>>(args)` launches and
// `extern __shared__ double sh[];` for dynamic shared memory.
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/audio_common.h"
#include "cuda/audio_cuda.h"
#include "cuda/check.h"
#include "cuda/image_cuda.h"  // pointer_device

namespace provmark::audio::cuda {
namespace {

constexpr int kThreads = 256;

cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// A device copy of a small host table, uploaded on the stream (pageable source: the copy is staged before
// cudaMemcpyAsync returns, so the host array may go away afterwards).
template <typename T>
class Table {
 public:
  Table(const T* host, std::size_t n, cudaStream_t stream) : buf_(n, stream) {
    if (n > 0)
      PROVMARK_CUDA_CHECK(cudaMemcpyAsync(buf_.get(), host, n * sizeof(T), cudaMemcpyHostToDevice, stream));
  }
  const T* get() const { return buf_.get(); }

 private:
  StreamBuffer<T> buf_;
};

long long frames_of(long long nsamples, int hop) {
  const long long n = 2LL * hop;
  return nsamples >= n ? (nsamples - n) / hop + 1 : 0;
}

// Rows of band energies after the speed mapping (energy_rows() of audio_cpu.cpp).
__host__ __device__ long long energy_rows(long long nfr, double speed) {
  if (nfr == 0) return 0;
  if (speed == 1.0) return nfr;
  return static_cast<long long>(ceil((double(nfr) - 1.0) * speed + 1e-9));
}

// ---- analysis ------------------------------------------------------------------------------------------
// Bin k of the DFT of xs[0, n): sum_i xs[i] (cos, -sin)(2 pi k i / n), with the host's cos / sin tables of
// 2 pi m / n indexed k i mod n (no division: the index advances by k and wraps once).
__device__ void dft_bin(const double* xs, const double* ct, const double* st, int n, int k, double* re_out,
                        double* im_out) {
  double re = 0.0, im = 0.0;
  int m = 0;
  for (int i = 0; i < n; ++i) {
    re += xs[i] * ct[m];
    im -= xs[i] * st[m];
    m += k;
    if (m >= n) m -= n;
  }
  *re_out = re;
  *im_out = im;
}

// Block (frame j, clip b): per channel, the Hann-windowed frame in shared memory, then one thread per bin
// k < top sums the direct DFT with the host's cos / sin table of 2 pi m / n (index k i mod n); powers are
// summed over channels and cumulated over bins by thread 0 (in bin order, as the CPU).
__global__ void analysis_kernel(ClipView x, int hop, int top, const double* tab, double* cs, long long nfr) {
  extern __shared__ double sh[];
  const int n = 2 * hop;
  double* xs = sh;          // [n]
  double* pw = sh + n;      // [top]
  const double* win = tab;  // [n]
  const double* ct = tab + n;
  const double* st = tab + 2 * n;
  const long long j = blockIdx.x, b = blockIdx.y;
  for (int k = threadIdx.x; k < top; k += blockDim.x) pw[k] = 0.0;
  for (long long c = 0; c < x.channels; ++c) {
    __syncthreads();
    const long long base = b * x.stride_b + c * x.stride_c + j * hop * x.stride_t;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
      xs[i] = win[i] * load_sample(x.data, x.type, static_cast<std::size_t>(base + i * x.stride_t));
    __syncthreads();
    for (int k = threadIdx.x; k < top; k += blockDim.x) {
      double re, im;
      dft_bin(xs, ct, st, n, k, &re, &im);
      pw[k] += re * re + im * im;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double* row = cs + (b * nfr + j) * (top + 1);
    double acc = 0.0;
    row[0] = 0.0;
    for (int k = 0; k < top; ++k) {
      acc += pw[k];
      row[k + 1] = acc;
    }
  }
}

// ---- projections ---------------------------------------------------------------------------------------
// Order-statistic selection by radix: doubles mapped to unsigned keys in the same order (sign bit set for
// positives, all bits flipped for negatives), then 8 passes of 8 bits, each a 256-bin histogram (shared
// memory atomics) of the keys that share the prefix chosen so far. The key of rank r (values below it plus
// equal values before it) is the r-th order statistic, exactly: the value numpy's sort puts at index r.
constexpr int kSelBands = 16;  // bands selected together (a 16 KB histogram)

__device__ unsigned long long order_key(double v) {
  unsigned long long b;
  memcpy(&b, &v, sizeof b);
  return (b >> 63) ? ~b : (b | 0x8000000000000000ULL);
}

__device__ double from_order_key(unsigned long long k) {
  const unsigned long long b = (k >> 63) ? (k & 0x7fffffffffffffffULL) : ~k;
  double v;
  memcpy(&v, &b, sizeof v);
  return v;
}

// out[qq] = the value of rank r (0-based) of column q0 + qq of v [nj, nb], for qq < nq (nq <= kSelBands).
// Called by every thread of the block; out is shared memory.
__device__ void select_rank(const double* v, long long nj, int nb, int q0, int nq, long long r, double* out) {
  __shared__ unsigned int hist[kSelBands * 256];
  __shared__ unsigned long long prefix[kSelBands];
  __shared__ long long rest[kSelBands];
  if (threadIdx.x < nq) {
    prefix[threadIdx.x] = 0;
    rest[threadIdx.x] = r;
  }
  for (int pass = 0; pass < 8; ++pass) {
    const int shift = 56 - 8 * pass;
    const unsigned long long mask = pass == 0 ? 0ULL : ~0ULL << (64 - 8 * pass);
    for (int i = threadIdx.x; i < kSelBands * 256; i += blockDim.x) hist[i] = 0;
    __syncthreads();
    for (long long idx = threadIdx.x; idx < nj * nq; idx += blockDim.x) {
      const long long j = idx / nq;
      const int qq = static_cast<int>(idx % nq);
      const unsigned long long key = order_key(v[j * nb + q0 + qq]);
      if ((key & mask) == prefix[qq]) atomicAdd(&hist[qq * 256 + static_cast<int>((key >> shift) & 255)], 1u);
    }
    __syncthreads();
    if (threadIdx.x < nq) {
      const int qq = threadIdx.x;
      long long rr = rest[qq];
      int dgt = 0;
      for (; dgt < 255; ++dgt) {
        const long long c = hist[qq * 256 + dgt];
        if (rr < c) break;
        rr -= c;
      }
      prefix[qq] |= static_cast<unsigned long long>(dgt) << shift;
      rest[qq] = rr;
    }
    __syncthreads();
  }
  if (threadIdx.x < nq) out[threadIdx.x] = from_order_key(prefix[threadIdx.x]);
  __syncthreads();
}

struct ProjectDev {
  const double* cs;
  long long nfr;
  int top;
  const int32_t* edges;
  int ng, group, nb;
  const double* chips;
  int cell_hops;
  double log_floor;
  const double* speeds;
  int nspeeds;
  bool per_clip;
  double w0, w1;
  long long rows, ne_max;
  double* ebuf;  // [B * S, ne_max, nb]: band energies, then log cell energies
  double* cum;   // [B * S, ne_max + 1, nb]
  double* p;
  double* w;
};

// Block (speed s, clip b). Mirrors projections() of audio_cpu.cpp: 1. speed-mapped band energies per hop;
// 2. cumulated over time (one thread per band, in time order) and log cell energies; 3. per-band noise
// floors (10th percentile from two exact order statistics, numpy's linear method, or the minimum under 20
// rows); 4. p, w.
__global__ void projections_kernel(ProjectDev d) {
  const int s = blockIdx.x;
  const long long b = blockIdx.y;
  const long long bs = b * d.nspeeds + s;
  const int nb = d.nb, L = d.group, ch = d.cell_hops;
  const double speed = d.speeds[d.per_clip ? bs : s];
  const long long ne = energy_rows(d.nfr, speed);
  const long long nj = ne >= ch ? ne - ch + 1 : 0;
  const long long W = d.top + 1;
  const double* cs = d.cs + b * d.nfr * W;
  double* e = d.ebuf + bs * d.ne_max * nb;
  double* cum = d.cum + bs * (d.ne_max + 1) * nb;
  double* pout = d.p + bs * d.rows * d.ng;
  double* wout = d.w + bs * d.rows * d.ng;
  __shared__ double pos[kMaxBands + 1];
  __shared__ double floor_b[kMaxBands];
  __shared__ double va_s[kSelBands], vb_s[kSelBands];
  // rows past nj are zero
  for (long long i = nj * d.ng + threadIdx.x; i < d.rows * d.ng; i += blockDim.x) pout[i] = wout[i] = 0.0;
  if (nj == 0) return;  // uniform across the block
  for (int q = threadIdx.x; q <= nb; q += blockDim.x) {
    const double v = d.edges[q] * speed, lim = d.top - 1e-9;
    pos[q] = v < lim ? v : lim;
  }
  __syncthreads();
  // 1. band energies
  for (long long idx = threadIdx.x; idx < ne * nb; idx += blockDim.x) {
    const long long i = idx / nb;
    const int q = static_cast<int>(idx % nb);
    if (speed == 1.0) {
      e[idx] = cs[i * W + d.edges[q + 1]] - cs[i * W + d.edges[q]];
    } else {
      const double tpos = double(i) / speed;
      const double j0d = floor(tpos);
      const long long j0 = static_cast<long long>(j0d);
      const long long j1 = j0 + 1 < d.nfr - 1 ? j0 + 1 : d.nfr - 1;
      const double ft = tpos - j0d;
      const double e0 = cs_interp(cs + j0 * W, pos[q + 1]) - cs_interp(cs + j0 * W, pos[q]);
      const double e1 = cs_interp(cs + j1 * W, pos[q + 1]) - cs_interp(cs + j1 * W, pos[q]);
      e[idx] = e0 * (1 - ft) + e1 * ft;
    }
  }
  __syncthreads();
  // 2. cumulated over time, then log cell energies (written over e: row j needs cum rows j and j + ch only)
  for (int q = threadIdx.x; q < nb; q += blockDim.x) {
    cum[q] = 0.0;
    for (long long i = 0; i < ne; ++i) cum[(i + 1) * nb + q] = cum[i * nb + q] + e[i * nb + q];
  }
  __syncthreads();
  for (long long idx = threadIdx.x; idx < nj * nb; idx += blockDim.x) {
    const long long j = idx / nb;
    const int q = static_cast<int>(idx % nb);
    const double cev = cum[(j + ch) * nb + q] - cum[j * nb + q];
    e[idx] = log_pos((cev > 0.0 ? cev : 0.0) + d.log_floor);
  }
  __syncthreads();
  // 3. noise floors
  const double* v = e;
  if (nj >= 20) {
    const double idxf = double(nj - 1) * 0.1;
    double lo_d = floor(idxf);
    if (lo_d < 0) lo_d = 0;
    long long lo = static_cast<long long>(lo_d);
    if (lo > nj - 1) lo = nj - 1;
    const long long hi = lo + 1 < nj - 1 ? lo + 1 : nj - 1;
    for (int q0 = 0; q0 < nb; q0 += kSelBands) {
      const int nq = nb - q0 < kSelBands ? nb - q0 : kSelBands;
      select_rank(v, nj, nb, q0, nq, lo, va_s);
      if (hi != lo) select_rank(v, nj, nb, q0, nq, hi, vb_s);  // uniform across the block
      if (threadIdx.x < nq) {
        const double va = va_s[threadIdx.x], vb = hi != lo ? vb_s[threadIdx.x] : va;
        const double t = idxf - lo_d, diff = vb - va;
        floor_b[q0 + threadIdx.x] = t >= 0.5 ? vb - diff * (1.0 - t) : va + diff * t;
      }
      __syncthreads();
    }
  } else {
    for (int q = threadIdx.x; q < nb; q += blockDim.x) {
      double m = v[q];
      for (long long j = 1; j < nj; ++j) m = v[j * nb + q] < m ? v[j * nb + q] : m;
      floor_b[q] = m;
    }
    __syncthreads();
  }
  // 4. projections and weights
  for (long long idx = threadIdx.x; idx < nj * d.ng; idx += blockDim.x) {
    const long long j = idx / d.ng;
    const int g = static_cast<int>(idx % d.ng);
    const double* vr = v + j * nb;
    double acc = 0.0, snr = 0.0;
    for (int l = 0; l < L; ++l) {
      acc += vr[g * L + l] * d.chips[g * L + l];
      const double sv = vr[g * L + l] - floor_b[g * L + l];
      snr = l == 0 ? sv : (sv < snr ? sv : snr);
    }
    pout[idx] = acc / L;
    const double wv = (snr - d.w0) / d.w1;
    wout[idx] = wv < 0.0 ? 0.0 : (wv > 1.0 ? 1.0 : wv);
  }
}

// ---- fold ----------------------------------------------------------------------------------------------
// Thread per (phase m, group g) of series blockIdx.y: sums the rows j = m, m + P, ... in increasing j, the
// CPU's order.
__global__ void fold_kernel(FoldBatch f, const long long* nj, long long P) {
  const long long c = blockIdx.y;
  const long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= P * f.ng) return;
  const long long m = idx / f.ng;
  const int g = static_cast<int>(idx % f.ng);
  const double* p = f.p + c * f.rows * f.ng;
  const double* w = f.w + c * f.rows * f.ng;
  double sc = 0.0, ss = 0.0;
  for (long long j = m; j < nj[c]; j += P) {
    double cc, s2;
    fold_term(p[j * f.ng + g], w[j * f.ng + g], f.step, &cc, &s2);
    sc += cc;
    ss += s2;
  }
  f.fc[(c * P + m) * f.ng + g] = sc;
  f.fs[(c * P + m) * f.ng + g] = ss;
}

// Thread per phase of series blockIdx.y: the sync statistic, the CPU's loop order.
__global__ void sync_kernel(FoldBatch f, const double* dither, const double* sign, long long P) {
  const long long c = blockIdx.y;
  const long long ph = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (ph >= P) return;
  const int ng = f.ng, G = f.n_groups;
  const double* fc = f.fc + c * P * ng;
  const double* fs = f.fs + c * P * ng;
  double score = 0.0, var = 0.0;
  for (int t = 0; t < f.block_cells; ++t) {
    const long long r = (ph + static_cast<long long>(f.cell_hops) * t) % P;
    for (int g = 0; g < ng; ++g) {
      const double sgn = sign[t * G + g];
      if (sgn == 0.0) continue;
      const double dd = 2.0 * M_PI * dither[t * G + g];
      const double cd = cos(dd) * sgn, sd = sin(dd) * sgn;
      const double a = fc[r * ng + g], bb = fs[r * ng + g];
      score += a * cd + bb * sd;
      var += a * a + bb * bb;
    }
  }
  var *= 0.5;
  f.z[c * P + ph] = var > 0 ? score / sqrt(var > 1e-300 ? var : 1e-300) : 0.0;
}

long long projection_rows(long long nfr, int cell_hops, double speed) {
  const long long ne = energy_rows(nfr, speed);
  return ne >= cell_hops ? ne - cell_hops + 1 : 0;
}

// ---- embedding -----------------------------------------------------------------------------------------
struct EmbedDev {
  ClipView x;
  int C, H, n, ch, L, ng, nb, G, T, lo, hi;
  long long ncells, nfr;  // cells, frames (ncells * ch)
  long long t0;           // cell index of cell 0 (streaming)
  long long nout;         // output samples per channel
  double* bucket_state;   // [B] or null (EmbedCarry::bucket)
  double* acc;            // [B, C, H] or null (EmbedCarry::acc)
  const int32_t* edges;   // [nb + 1]
  const double* chips;    // [G, L]
  const double* dither;   // [T, G]
  const int8_t* bits;     // [T, G]
  const double* tab;      // [4 n]: hann, sine, cos(2 pi m / n), sin(2 pi m / n)
  double step, gamma, cap, alpha, k_global, k_local, leak, log_floor;
  double* ce;     // [B, ncells, nb] band energies of each cell
  double* etot;   // [B, ncells] the signal's energy over each cell's span
  double* dv;     // [B, ncells, nb] moves
  double* dist;   // [B, ncells] energy of each cell's own change (wanted gains)
  double* scale;  // [B, ncells] the budget's scale of each cell's change
  double* dfr;    // [B, C, nfr, n] windowed change of every frame at the wanted gains
};

// Sample i of channel c of clip b, zero past the clip's end (the zero padding of audio.embed's tail).
__device__ double clip_sample(const ClipView& x, long long b, long long c, long long i) {
  if (i >= x.nsamples) return 0.0;
  return load_sample(x.data, x.type,
                     static_cast<std::size_t>(b * x.stride_b + c * x.stride_c + i * x.stride_t));
}

// Every thread's v summed by thread 0 in thread order (deterministic, the host reference's order); the sum
// is valid in thread 0 only. part: kThreads doubles of shared memory.
__device__ double ordered_block_sum(double v, double* part) {
  part[threadIdx.x] = v;
  __syncthreads();
  double sum = 0.0;
  if (threadIdx.x == 0)
    for (unsigned k = 0; k < blockDim.x; ++k) sum += part[k];
  return sum;
}

// Block (cell t, clip b): band energies summed over the cell's frames and channels, and the signal's energy
// over the cell's span.
__global__ void embed_energy_kernel(EmbedDev d) {
  extern __shared__ double sh[];
  double* xs = sh;                    // [n]
  double* pw = sh + d.n;              // [hi - lo]
  double* band = pw + (d.hi - d.lo);  // [nb]
  __shared__ double esum;
  const long long t = blockIdx.x, b = blockIdx.y;
  const double* win = d.tab;
  const double* ct = d.tab + 2 * d.n;
  const double* st = d.tab + 3 * d.n;
  for (int q = threadIdx.x; q < d.nb; q += blockDim.x) band[q] = 0.0;
  {  // the signal's energy over the cell's span (the budget's reference): per-thread strides, summed in order
    __shared__ double part[kThreads];
    double e = 0.0;
    const long long span = static_cast<long long>(d.ch) * d.H;
    for (int c = 0; c < d.C; ++c)
      for (long long j = threadIdx.x; j < span; j += blockDim.x) {
        const double v = clip_sample(d.x, b, c, t * span + j);
        e += v * v;
      }
    const double sum = ordered_block_sum(e, part);
    if (threadIdx.x == 0) esum = sum;
  }
  for (int i = 0; i < d.ch; ++i)
    for (int c = 0; c < d.C; ++c) {
      __syncthreads();
      const long long start = (t * d.ch + i) * d.H;
      for (int m = threadIdx.x; m < d.n; m += blockDim.x) xs[m] = win[m] * clip_sample(d.x, b, c, start + m);
      __syncthreads();
      for (int k = d.lo + threadIdx.x; k < d.hi; k += blockDim.x) {
        double re, im;
        dft_bin(xs, ct, st, d.n, k, &re, &im);
        pw[k - d.lo] = re * re + im * im;
      }
      __syncthreads();
      for (int q = threadIdx.x; q < d.nb; q += blockDim.x) {
        double acc = 0.0;
        for (int k = d.edges[q]; k < d.edges[q + 1]; ++k) acc += pw[k - d.lo];
        band[q] += acc;
      }
    }
  __syncthreads();
  for (int q = threadIdx.x; q < d.nb; q += blockDim.x) d.ce[(b * d.ncells + t) * d.nb + q] = band[q];
  if (threadIdx.x == 0) d.etot[b * d.ncells + t] = esum;
}

// Thread per (clip, cell): the quantiser moves of every group (group_move).
__global__ void embed_moves_kernel(EmbedDev d, long long total) {
  const long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const long long t = idx % d.ncells;
  const int tb = static_cast<int>((d.t0 + t) % d.T);
  const double* ce = d.ce + idx * d.nb;
  double* dv = d.dv + idx * d.nb;
  double v[kMaxBands];
  for (int q = 0; q < d.nb; ++q) v[q] = log(ce[q] + d.log_floor);
  for (int g = 0; g < d.ng; ++g)
    group_move(v + g * d.L, d.chips + g * d.L, d.L, d.dither[tb * d.G + g], d.bits[tb * d.G + g], d.step,
               d.gamma, d.cap, d.alpha, dv + g * d.L);
}

// Thread per clip: the causal budget, cell after cell (budget_step).
__global__ void embed_budget_kernel(EmbedDev d, long long batch) {
  const long long b = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= batch) return;
  double bucket = d.t0 > 0 && d.bucket_state != nullptr ? d.bucket_state[b] : 0.0;
  for (long long t = 0; t < d.ncells; ++t) {
    const long long i = b * d.ncells + t;
    d.scale[i] = budget_step(d.dist[i], d.etot[i], d.k_global, d.k_local, d.leak, &bucket);
  }
  if (d.bucket_state != nullptr) d.bucket_state[b] = bucket;
}

// Block (frame f, clip b): per channel, the sine-windowed frame's DFT over bins [lo, hi), times the cell's
// band gains, inverse over the same bins (and their mirrors), sine window: the frame's change.
__global__ void embed_filter_kernel(EmbedDev d) {
  extern __shared__ double sh[];
  const int nk = d.hi - d.lo;
  double* xs = sh;        // [n]
  double* yr = sh + d.n;  // [nk]
  double* yi = yr + nk;   // [nk]
  double* gb = yi + nk;   // [nb]
  const long long f = blockIdx.x, b = blockIdx.y;
  const long long t = f / d.ch;
  const double* sine = d.tab + d.n;
  const double* ct = d.tab + 2 * d.n;
  const double* st = d.tab + 3 * d.n;
  for (int q = threadIdx.x; q < d.nb; q += blockDim.x) {
    const long long i = b * d.ncells + t;
    gb[q] = expm1(0.5 * d.dv[i * d.nb + q]);
  }
  for (int c = 0; c < d.C; ++c) {
    __syncthreads();
    for (int m = threadIdx.x; m < d.n; m += blockDim.x) xs[m] = sine[m] * clip_sample(d.x, b, c, f * d.H + m);
    __syncthreads();
    for (int k = d.lo + threadIdx.x; k < d.hi; k += blockDim.x) {
      double re, im;
      dft_bin(xs, ct, st, d.n, k, &re, &im);
      int q = 0;
      while (k >= d.edges[q + 1]) ++q;
      yr[k - d.lo] = gb[q] * re;
      yi[k - d.lo] = gb[q] * im;
    }
    __syncthreads();
    double* out = d.dfr + ((b * d.C + c) * d.nfr + f) * d.n;
    for (int m = threadIdx.x; m < d.n; m += blockDim.x) {
      // real part of sum_k Y_k e^{2 pi i k m / n} over k and n - k: 2 Re(sum over [lo, hi)), then / n
      double acc = 0.0;
      int idx = static_cast<int>((static_cast<long long>(d.lo) * m) % d.n);
      for (int k = 0; k < nk; ++k) {
        acc += yr[k] * ct[idx] - yi[k] * st[idx];
        idx += m;
        if (idx >= d.n) idx -= d.n;
      }
      out[m] = sine[m] * (2.0 * acc / d.n);
    }
  }
}

// Block (cell t, clip b): the energy of the cell's own change, its frames overlap-added (span + H samples
// per channel): what the budget counts. Fixed summation order (per-thread strides, then in thread order).
__global__ void embed_used_kernel(EmbedDev d) {
  __shared__ double part[kThreads];
  const long long t = blockIdx.x, b = blockIdx.y;
  const long long len = static_cast<long long>(d.ch + 1) * d.H;
  double acc = 0.0;
  for (int c = 0; c < d.C; ++c) {
    const double* fr = d.dfr + ((b * d.C + c) * d.nfr + t * d.ch) * d.n;
    for (long long j = threadIdx.x; j < len; j += blockDim.x) {
      double v = 0.0;
      for (int i = 0; i < d.ch; ++i) {
        const long long m = j - static_cast<long long>(i) * d.H;
        if (m >= 0 && m < d.n) v += fr[i * d.n + m];
      }
      acc += v * v;
    }
  }
  const double sum = ordered_block_sum(acc, part);
  if (threadIdx.x == 0) d.dist[b * d.ncells + t] = sum;
}

// Thread per output sample: x + the two overlapping frames' change (in hop 0 of a continued stream: the
// previous call's last hop), stored (clipped) in the output type.
__global__ void embed_output_kernel(EmbedDev d, ClipOut o, long long total) {
  const long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const long long s = idx % d.nout;
  const long long bc = idx / d.nout;
  const long long c = bc % d.C, b = bc / d.C;
  const long long q = s / d.H, r = s % d.H;
  const double* fr = d.dfr + (b * d.C + c) * d.nfr * d.n;
  const double* sc = d.scale + b * d.ncells;
  double delta = sc[q / d.ch] * fr[q * d.n + r];
  if (q >= 1)
    delta += sc[(q - 1) / d.ch] * fr[(q - 1) * d.n + r + d.H];
  else if (d.t0 > 0 && d.acc != nullptr)
    delta += d.acc[bc * d.H + r];
  const double xv = clip_sample(d.x, b, c, s);
  store_sample(o.data, o.type, static_cast<std::size_t>(b * o.stride_b + c * o.stride_c + s * o.stride_t),
               xv + delta, true);
}

// Thread per (clip, channel, sample of the last hop): the change the next call adds to its first hop.
__global__ void embed_carry_kernel(EmbedDev d, long long total) {
  const long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const long long bc = idx / d.H, r = idx % d.H;
  d.acc[idx] =
      d.scale[(bc / d.C) * d.ncells + d.ncells - 1] * d.dfr[(bc * d.nfr + d.nfr - 1) * d.n + d.H + r];
}

// Thread per sample: out = x converted (no clipping of floats; int16 rounded by store_sample).
__global__ void copy_kernel(ClipView x, ClipOut o, long long total) {
  const long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const long long s = idx % x.nsamples, bc = idx / x.nsamples;
  const long long c = bc % x.channels, b = bc / x.channels;
  const double v =
      load_sample(x.data, x.type, static_cast<std::size_t>(b * x.stride_b + c * x.stride_c + s * x.stride_t));
  store_sample(o.data, o.type, static_cast<std::size_t>(b * o.stride_b + c * o.stride_c + s * o.stride_t), v,
               false);
}

bool known_type(SampleType t) {
  return t == SampleType::kF32 || t == SampleType::kF64 || t == SampleType::kI16;
}

}  // namespace

void analysis(const ClipView& x, int hop, int top, double* cs, std::uintptr_t stream) {
  const char* fn = "audio analysis (CUDA)";
  if (x.data == nullptr || cs == nullptr) throw InvalidArgument(std::string(fn) + ": null pointer");
  if (!known_type(x.type))
    throw InvalidArgument(std::string(fn) + ": samples must be float32, float64 or int16");
  if (x.batch < 1 || x.channels < 1 || x.channels > 16 || x.nsamples < 1)
    throw InvalidArgument(std::string(fn) + ": need batch >= 1, channels in [1, 16], samples >= 1");
  if (hop < 8 || hop > kMaxHop)
    throw InvalidArgument(std::string(fn) + ": hop must be in [8, " + std::to_string(kMaxHop) + "]");
  if (top < 1 || top > hop + 1) throw InvalidArgument(std::string(fn) + ": top must be in [1, hop + 1]");
  const long long nfr = frames_of(x.nsamples, hop);
  if (nfr == 0) return;
  if (nfr > 0x7fffffffLL || x.batch > 65535) throw InvalidArgument(std::string(fn) + ": batch too large");
  const int n = 2 * hop;
  std::vector<double> tab(3 * std::size_t(n));
  for (int i = 0; i < n; ++i) {
    tab[i] = 0.5 - 0.5 * std::cos(2.0 * M_PI * i / n);  // the CPU's Hann window
    tab[n + i] = std::cos(2.0 * M_PI * i / n);
    tab[2 * n + i] = std::sin(2.0 * M_PI * i / n);
  }
  DeviceGuard g(image::cuda::pointer_device(x.data));
  const cudaStream_t s = as_stream(stream);
  Table<double> dtab(tab.data(), tab.size(), s);
  const std::size_t shmem = (std::size_t(n) + top) * sizeof(double);
  analysis_kernel<<<dim3(static_cast<unsigned>(nfr), static_cast<unsigned>(x.batch)), kThreads, shmem, s>>>(
      x, hop, top, dtab.get(), cs, nfr);
  check_launch(fn);
}

void projections(const ProjectBatch& b, std::uintptr_t stream) {
  const char* fn = "audio projections (CUDA)";
  const int nb = b.ng * b.group;
  if (b.cs == nullptr || b.p == nullptr || b.w == nullptr || b.edges == nullptr || b.chips == nullptr ||
      b.speeds == nullptr)
    throw InvalidArgument(std::string(fn) + ": null pointer");
  if (b.batch < 1 || b.batch > 65535 || b.nfr < 0 || b.top < 1)
    throw InvalidArgument(std::string(fn) + ": bad batch / nfr / top");
  if (b.group < 2 || b.group > kMaxGroup || b.ng < 1 || nb > kMaxBands)
    throw InvalidArgument(std::string(fn) + ": bad group layout");
  for (int q = 0; q <= nb; ++q)
    if (b.edges[q] < 1 || b.edges[q] > b.top || (q > 0 && b.edges[q] <= b.edges[q - 1]))
      throw InvalidArgument(std::string(fn) + ": band edges must increase within [1, top]");
  if (b.cell_hops < 1 || !(b.log_floor > 0) || !(b.w1 > 0) || !std::isfinite(b.w0))
    throw InvalidArgument(std::string(fn) + ": need cell_hops >= 1, log_floor > 0, w1 > 0");
  if (b.nspeeds < 1 || b.nspeeds > 65535) throw InvalidArgument(std::string(fn) + ": need 1..65535 speeds");
  long long ne_max = 0;
  const int nsp = b.per_clip ? static_cast<int>(b.batch * b.nspeeds) : b.nspeeds;
  for (int i = 0; i < nsp; ++i) {
    if (!(b.speeds[i] >= 0.5 && b.speeds[i] <= 2.0))
      throw InvalidArgument(std::string(fn) + ": speeds must be in [0.5, 2]");
    const long long ne = energy_rows(b.nfr, b.speeds[i]);
    ne_max = ne > ne_max ? ne : ne_max;
    if (projection_rows(b.nfr, b.cell_hops, b.speeds[i]) > b.rows)
      throw InvalidArgument(std::string(fn) + ": rows is smaller than the projection rows of a speed");
  }
  DeviceGuard g(image::cuda::pointer_device(b.cs));
  const cudaStream_t s = as_stream(stream);
  Table<int32_t> edges(b.edges, std::size_t(nb) + 1, s);
  Table<double> chips(b.chips, std::size_t(nb), s);
  Table<double> speeds(b.speeds, std::size_t(nsp), s);
  const std::size_t series = std::size_t(b.batch) * b.nspeeds;
  StreamBuffer<double> ebuf(series * std::size_t(ne_max) * nb, s);
  StreamBuffer<double> cum(series * std::size_t(ne_max + 1) * nb, s);
  ProjectDev d{b.cs,        b.nfr,       b.top,       edges.get(),  b.ng,      b.group,    nb,
               chips.get(), b.cell_hops, b.log_floor, speeds.get(), b.nspeeds, b.per_clip, b.w0,
               b.w1,        b.rows,      ne_max,      ebuf.get(),   cum.get(), b.p,        b.w};
  projections_kernel<<<dim3(static_cast<unsigned>(b.nspeeds), static_cast<unsigned>(b.batch)), kThreads, 0,
                       s>>>(d);
  check_launch(fn);
}

void fold(const FoldBatch& b, std::uintptr_t stream) {
  const char* fn = "audio fold (CUDA)";
  if (b.p == nullptr || b.w == nullptr || b.nj == nullptr || b.dither == nullptr || b.sign == nullptr ||
      b.fc == nullptr || b.fs == nullptr || b.z == nullptr)
    throw InvalidArgument(std::string(fn) + ": null pointer");
  if (b.count < 1 || b.count > 65535 || b.rows < 0 || b.ng < 1 || b.ng > b.n_groups || b.block_cells < 1 ||
      b.cell_hops < 1 || b.cell_hops > 64 || !(b.step > 0))
    throw InvalidArgument(std::string(fn) + ": bad sizes or step");
  for (long long c = 0; c < b.count; ++c)
    if (b.nj[c] < 0 || b.nj[c] > b.rows) throw InvalidArgument(std::string(fn) + ": nj must be in [0, rows]");
  const long long P = static_cast<long long>(b.block_cells) * b.cell_hops;
  DeviceGuard g(image::cuda::pointer_device(b.p));
  const cudaStream_t s = as_stream(stream);
  Table<long long> nj(b.nj, std::size_t(b.count), s);
  const std::size_t tg = std::size_t(b.block_cells) * b.n_groups;
  Table<double> dither(b.dither, tg, s);
  Table<double> sign(b.sign, tg, s);
  const unsigned gx = static_cast<unsigned>((P * b.ng + kThreads - 1) / kThreads);
  fold_kernel<<<dim3(gx, static_cast<unsigned>(b.count)), kThreads, 0, s>>>(b, nj.get(), P);
  check_launch(fn);
  const unsigned gz = static_cast<unsigned>((P + kThreads - 1) / kThreads);
  sync_kernel<<<dim3(gz, static_cast<unsigned>(b.count)), kThreads, 0, s>>>(b, dither.get(), sign.get(), P);
  check_launch(fn);
}

void embed(const EmbedParams& p, const ClipView& x, const ClipOut& out, std::uintptr_t stream,
           const EmbedCarry* carry) {
  const char* fn = "audio embed (CUDA)";
  const int L = p.group, nb = p.ng * p.group, H = p.hop, n = 2 * p.hop;
  if (x.data == nullptr || out.data == nullptr || p.edges == nullptr || p.chips == nullptr ||
      p.dither == nullptr || p.bits == nullptr)
    throw InvalidArgument(std::string(fn) + ": null pointer");
  if (!known_type(x.type) || !known_type(out.type))
    throw InvalidArgument(std::string(fn) + ": samples must be float32, float64 or int16");
  if (x.batch < 1 || x.batch > 65535 || x.channels != p.channels || p.channels < 1 || p.channels > 16 ||
      x.nsamples < (carry != nullptr ? 1 : n))
    throw InvalidArgument(std::string(fn) +
                          ": need 1..65535 clips of p.channels (1..16) channels, >= 2 hop " +
                          "samples (>= 1 when continuing a stream)");
  if (H < 8 || H > kMaxHop)
    throw InvalidArgument(std::string(fn) + ": hop must be in [8, " + std::to_string(kMaxHop) + "]");
  if (L < 2 || L > kMaxGroup || L % 2 || p.ng < 1 || p.ng > p.n_groups || nb > kMaxBands)
    throw InvalidArgument(std::string(fn) + ": bad group layout");
  if (p.cell_hops < 1 || p.cell_hops > 64 || p.block_cells < 1)
    throw InvalidArgument(std::string(fn) + ": bad cell layout");
  if (!(p.step > 0) || !(p.alpha > 0) || !(p.cap > 0))
    throw InvalidArgument(std::string(fn) + ": bad step/alpha/cap");
  for (int q = 0; q <= nb; ++q)
    if (p.edges[q] < 1 || p.edges[q] > H - 1 || (q > 0 && p.edges[q] <= p.edges[q - 1]))
      throw InvalidArgument(std::string(fn) + ": band edges must increase within [1, hop - 1]");
  const long long span = static_cast<long long>(p.cell_hops) * H;
  const bool whole = carry != nullptr && carry->whole_cells;
  if (carry != nullptr && (carry->t0 < 0 || carry->bucket == nullptr || carry->acc == nullptr))
    throw InvalidArgument(std::string(fn) + ": a carry needs t0 >= 0 and bucket / acc buffers");
  const long long ncells = whole ? (x.nsamples - H) / span : (x.nsamples + span - 1) / span;
  if (ncells < 1) throw InvalidArgument(std::string(fn) + ": whole-cell mode needs >= one cell plus one hop");
  const long long nfr = ncells * p.cell_hops;
  const long long nout = whole ? ncells * span : x.nsamples;
  if (ncells > 0x7fffffffLL / p.cell_hops) throw InvalidArgument(std::string(fn) + ": clip too long");
  std::vector<double> tab(4 * std::size_t(n));
  for (int i = 0; i < n; ++i) {
    tab[i] = 0.5 - 0.5 * std::cos(2.0 * M_PI * i / n);  // the CPU embedder's windows
    tab[n + i] = std::sin(M_PI * (i + 0.5) / n);
    tab[2 * n + i] = std::cos(2.0 * M_PI * i / n);
    tab[3 * n + i] = std::sin(2.0 * M_PI * i / n);
  }
  DeviceGuard g(image::cuda::pointer_device(x.data));
  const cudaStream_t s = as_stream(stream);
  const std::size_t tg = std::size_t(p.block_cells) * p.n_groups;
  Table<double> dtab(tab.data(), tab.size(), s);
  Table<int32_t> edges(p.edges, std::size_t(nb) + 1, s);
  Table<double> chips(p.chips, std::size_t(p.n_groups) * L, s);
  Table<double> dither(p.dither, tg, s);
  Table<int8_t> bits(p.bits, tg, s);
  const std::size_t cells = std::size_t(x.batch) * ncells;
  StreamBuffer<double> ce(cells * nb, s), etot(cells, s), dv(cells * nb, s), dist(cells, s), scale(cells, s);
  StreamBuffer<double> dfr(std::size_t(x.batch) * p.channels * nfr * n, s);
  EmbedDev d{
      x,          p.channels,    H,           n,           p.cell_hops,  L,          p.ng,        nb,
      p.n_groups, p.block_cells, p.edges[0],  p.edges[nb], ncells,       nfr,        0,           nout,
      nullptr,    nullptr,       edges.get(), chips.get(), dither.get(), bits.get(), dtab.get(),  p.step,
      p.gamma,    p.cap,         p.alpha,     p.k_global,  p.k_local,    p.leak,     p.log_floor, ce.get(),
      etot.get(), dv.get(),      dist.get(),  scale.get(), dfr.get()};
  if (carry != nullptr) {
    d.t0 = carry->t0;
    d.bucket_state = carry->bucket;
    d.acc = carry->acc;
  }
  const int nk = d.hi - d.lo;
  const unsigned gb = static_cast<unsigned>(x.batch);
  embed_energy_kernel<<<dim3(static_cast<unsigned>(ncells), gb), kThreads,
                        (std::size_t(n) + nk + nb) * sizeof(double), s>>>(d);
  check_launch(fn);
  const long long ncell_total = static_cast<long long>(cells);
  embed_moves_kernel<<<static_cast<unsigned>((ncell_total + kThreads - 1) / kThreads), kThreads, 0, s>>>(
      d, ncell_total);
  check_launch(fn);
  embed_filter_kernel<<<dim3(static_cast<unsigned>(nfr), gb), kThreads,
                        (std::size_t(n) + 2 * std::size_t(nk) + nb) * sizeof(double), s>>>(d);
  check_launch(fn);
  embed_used_kernel<<<dim3(static_cast<unsigned>(ncells), gb), kThreads, 0, s>>>(d);
  check_launch(fn);
  embed_budget_kernel<<<static_cast<unsigned>((x.batch + 63) / 64), 64, 0, s>>>(d, x.batch);
  check_launch(fn);
  const long long total = x.batch * x.channels * nout;
  const long long blocks = (total + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffffLL) throw InvalidArgument(std::string(fn) + ": batch too large");
  embed_output_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(d, out, total);
  check_launch(fn);
  if (carry != nullptr) {  // after the output kernel has read the previous call's acc
    const long long nacc = x.batch * x.channels * H;
    embed_carry_kernel<<<static_cast<unsigned>((nacc + kThreads - 1) / kThreads), kThreads, 0, s>>>(d, nacc);
    check_launch(fn);
  }
}

void copy(const ClipView& x, const ClipOut& out, std::uintptr_t stream) {
  const char* fn = "audio copy (CUDA)";
  if (x.data == nullptr || out.data == nullptr) throw InvalidArgument(std::string(fn) + ": null pointer");
  if (!known_type(x.type) || !known_type(out.type))
    throw InvalidArgument(std::string(fn) + ": samples must be float32, float64 or int16");
  if (x.batch < 1 || x.channels < 1 || x.nsamples < 1)
    throw InvalidArgument(std::string(fn) + ": need batch, channels and samples >= 1");
  const long long total = x.batch * x.channels * x.nsamples;
  const long long blocks = (total + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffffLL) throw InvalidArgument(std::string(fn) + ": too many samples");
  DeviceGuard g(image::cuda::pointer_device(x.data));
  const cudaStream_t s = as_stream(stream);
  copy_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(x, out, total);
  check_launch(fn);
}

}  // namespace provmark::audio::cuda
