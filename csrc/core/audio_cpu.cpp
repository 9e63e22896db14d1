// Audio watermark engine, CPU implementation (see audio.h). The transforms run through the batched FFT
// kernels of audio_fft.h; the per-element math is the PROVMARK_HD code of audio_common.h.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/audio.h"

namespace provmark::audio {
namespace {

// Scratch of at least n doubles (the kernels align it to 64 bytes inside, hence the slack).
double* scratch_buffer(std::vector<double>& v, std::size_t n) {
  if (v.size() < n + 8) v.assign(n + 8, 0.0);
  return v.data();
}

void check_edges(const int32_t* edges, int nb, int limit, const char* fn) {
  for (int b = 0; b <= nb; ++b) {
    if (edges[b] < 1 || edges[b] > limit || (b > 0 && edges[b] <= edges[b - 1]))
      throw InvalidArgument(std::string(fn) + ": band edges must increase within [1, " +
                            std::to_string(limit) + "]");
  }
}

}  // namespace

EmbedParams make_embed_params(const EmbedArgs& a, const char* fn) {
  const std::string f(fn);
  auto fail = [&](const std::string& what) { throw std::invalid_argument(f + ": " + what); };
  if (a.channels < 1 || a.channels > 16)
    fail("channels must be in [1, 16], got " + std::to_string(a.channels));
  if (a.hop < 8 || a.hop > 4800) fail("hop must be in [8, 4800]");
  if (a.cell_hops < 1 || a.cell_hops > 64) fail("cell_hops must be in [1, 64]");
  if (a.L < 2 || a.L > kMaxGroup || a.L % 2) fail("chips must be [G, L], L even <= 8");
  if (a.ng < 1 || a.ng > a.G) fail("ng must be in [1, G]");
  if (a.n_edges != a.ng * a.L + 1)
    fail("edges must have ng * L + 1 entries, got " + std::to_string(a.n_edges));
  if (a.ng * a.L > kMaxBands) fail("too many bands");
  if (a.T < 1 || a.dither_cols != a.G || a.bits_rows != a.T || a.bits_cols != a.G)
    fail("dither and bits must be [T, G] with G = chips rows");
  for (long long b = 0; b < a.n_edges; ++b)
    if (a.edges[b] < 1 || a.edges[b] > a.hop - 1 || (b > 0 && a.edges[b] <= a.edges[b - 1]))
      fail("edges must increase within [1, " + std::to_string(a.hop - 1) + "]");
  for (long long i = 0; i < a.T * a.G; ++i)
    if (a.bits[i] != 0 && a.bits[i] != 1) fail("bits must be 0/1");
  for (double v : {a.step, a.gamma, a.cap, a.alpha, a.snr_db, a.local_snr_db, a.leak, a.floor})
    if (!std::isfinite(v)) fail("parameters must be finite");
  if (!(a.step > 0) || !(a.cap > 0) || !(a.alpha > 0 && a.alpha <= 1) || !(a.leak >= 0 && a.leak <= 1) ||
      !(a.floor > 0))
    fail("need step > 0, cap > 0, alpha in (0, 1], leak in [0, 1], floor > 0");
  EmbedParams p;
  p.channels = a.channels;
  p.hop = a.hop;
  p.cell_hops = a.cell_hops;
  p.group = static_cast<int>(a.L);
  p.ng = a.ng;
  p.n_groups = static_cast<int>(a.G);
  p.block_cells = static_cast<int>(a.T);
  p.edges = a.edges;
  p.chips = a.chips;
  p.dither = a.dither;
  p.bits = a.bits;
  p.step = a.step;
  p.gamma = a.gamma;
  p.cap = a.cap;
  p.alpha = a.alpha;
  p.k_global = std::pow(10.0, -a.snr_db / 10.0);
  p.k_local = std::pow(10.0, -a.local_snr_db / 10.0);
  p.leak = a.leak;
  p.log_floor = a.floor * 2.0 * a.hop * a.cell_hops;
  return p;
}

// ---- embedding -------------------------------------------------------------------------------------------
namespace {

// Sum of squares with four independent accumulators (a single chain runs at one add per FP latency).
double sum_squares(const double* p, std::size_t n) {
  double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
  std::size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    a0 += p[j] * p[j];
    a1 += p[j + 1] * p[j + 1];
    a2 += p[j + 2] * p[j + 2];
    a3 += p[j + 3] * p[j + 3];
  }
  for (; j < n; ++j) a0 += p[j] * p[j];
  return (a0 + a1) + (a2 + a3);
}

}  // namespace

CellEmbedder::CellEmbedder(const EmbedParams& p) : p_(p), plan_(2 * p.hop) {
  const int L = p.group, nb = p.ng * p.group;
  if (p.channels < 1 || p.channels > 16) throw InvalidArgument("CellEmbedder: channels must be in [1, 16]");
  if (p.hop < 8) throw InvalidArgument("CellEmbedder: hop must be >= 8");
  if (L < 2 || L > kMaxGroup || L % 2) throw InvalidArgument("CellEmbedder: group must be even, in [2, 8]");
  if (p.ng < 1 || p.ng > p.n_groups || nb > kMaxBands) throw InvalidArgument("CellEmbedder: bad group count");
  if (p.cell_hops < 1 || p.block_cells < 1) throw InvalidArgument("CellEmbedder: bad cell layout");
  if (!(p.step > 0) || !(p.alpha > 0) || !(p.cap > 0))
    throw InvalidArgument("CellEmbedder: bad step/alpha/cap");
  check_edges(p.edges, nb, p.hop - 1, "CellEmbedder");
  edges_.assign(p.edges, p.edges + nb + 1);
  chips_.assign(p.chips, p.chips + std::size_t(p.n_groups) * L);
  dither_.assign(p.dither, p.dither + std::size_t(p.block_cells) * p.n_groups);
  bits_.assign(p.bits, p.bits + std::size_t(p.block_cells) * p.n_groups);
  p_.edges = edges_.data();
  p_.chips = chips_.data();
  p_.dither = dither_.data();
  p_.bits = bits_.data();
  const int n = 2 * p.hop;
  hann_.resize(n);
  sine_.resize(n);
  for (int i = 0; i < n; ++i) {
    hann_[i] = 0.5 - 0.5 * std::cos(2.0 * M_PI * i / n);
    sine_[i] = std::sin(M_PI * (i + 0.5) / n);
  }
}

void CellEmbedder::run(const EmbedIO& io) {
  const EmbedParams& p = p_;
  const int C = p.channels, H = p.hop, n = 2 * H, ch = p.cell_hops, L = p.group, nb = p.ng * L;
  const int kmax = edges_[nb];
  const std::size_t span = std::size_t(ch) * H;
  constexpr std::size_t kChunk = 16;  // cells per pass (keeps the frames in cache)
  const int per_cell = ch * C;        // real sequences per cell (even pairs when ch is even)
  const int pairs_per_cell = (per_cell + 1) / 2;
  double* scratch = scratch_buffer(scratch_, frame_scratch_size(n));

  std::vector<const double*> pa_ptr, pb_ptr, gptr;
  std::vector<double*> da_ptr, db_ptr;
  std::vector<double> pa, ce, gains, cellbuf, delta, xbuf;
  const std::size_t in_size = sample_size(io.x_type), out_size = sample_size(io.out_type);
  std::vector<double> dv;
  for (std::size_t c0 = 0; c0 < io.ncells; c0 += kChunk) {
    const std::size_t nc = std::min(kChunk, io.ncells - c0);
    const std::size_t npairs = nc * pairs_per_cell;
    const std::size_t seg_len = (nc * ch + 1) * H;  // samples of this chunk's frames
    const std::size_t base = c0 * span;             // first sample of the chunk in x
    // The chunk's input as float64 rows [C, seg_len].
    xbuf.resize(std::size_t(C) * seg_len);
    for (int c = 0; c < C; ++c) {
      const char* row = static_cast<const char*>(io.x) + (std::size_t(c) * io.ld + base) * in_size;
      double* xb = xbuf.data() + std::size_t(c) * seg_len;
      if (io.x_type == SampleType::kF64) {
        std::copy(reinterpret_cast<const double*>(row), reinterpret_cast<const double*>(row) + seg_len, xb);
      } else if (io.x_type == SampleType::kF32) {
        const float* r = reinterpret_cast<const float*>(row);
        for (std::size_t k = 0; k < seg_len; ++k) xb[k] = static_cast<double>(r[k]);
      } else {
        for (std::size_t k = 0; k < seg_len; ++k) xb[k] = load_sample(row, io.x_type, k);
      }
    }
    pa_ptr.assign(npairs, nullptr);
    pb_ptr.assign(npairs, nullptr);
    for (std::size_t t = 0; t < nc; ++t)
      for (int s = 0; s < per_cell; ++s) {
        const int i = s / C, c = s % C;  // frame within the cell, channel
        const double* ptr = xbuf.data() + std::size_t(c) * seg_len + (t * ch + i) * H;
        const std::size_t q = t * pairs_per_cell + s / 2;
        (s % 2 ? pb_ptr : pa_ptr)[q] = ptr;
      }
    // 1. Hann band energies of every cell (powers summed over its frames and channels).
    pa.resize(npairs * nb);
    PowersArgs pw;
    pw.win = hann_.data();
    pw.a = pa_ptr.data();
    pw.b = pb_ptr.data();
    pw.npairs = npairs;
    pw.nb = kmax;
    pw.edges = edges_.data();
    pw.nbands = nb;
    pw.band_out = pa.data();  // [npairs, nb] band energies of both sequences of each pair
    frame_powers(plan_, pw, scratch);
    ce.assign(nc * nb, 0.0);
    for (std::size_t t = 0; t < nc; ++t)
      for (int q = 0; q < pairs_per_cell; ++q) {
        const double* a = pa.data() + (t * pairs_per_cell + q) * nb;
        for (int bnd = 0; bnd < nb; ++bnd) ce[t * nb + bnd] += a[bnd];
      }
    // 2. Moves and the wanted gains of every cell (the budget comes after the synthesis).
    const int half = n / 2 + 1;
    gains.assign(nc * half, 0.0);
    dv.assign(nb, 0.0);
    for (std::size_t t = 0; t < nc; ++t) {
      const int64_t tt = io.t_first + int64_t(c0 + t);
      const int tb = static_cast<int>(((tt % p.block_cells) + p.block_cells) % p.block_cells);
      double v[kMaxBands];
      for (int bnd = 0; bnd < nb; ++bnd) v[bnd] = std::log(ce[t * nb + bnd] + p.log_floor);
      for (int g = 0; g < p.ng; ++g)
        group_move(v + g * L, p.chips + g * L, L, p.dither[tb * p.n_groups + g], p.bits[tb * p.n_groups + g],
                   p.step, p.gamma, p.cap, p.alpha, dv.data() + g * L);
      double* g = gains.data() + t * half;
      for (int bnd = 0; bnd < nb; ++bnd) {
        const double gb = std::expm1(0.5 * dv[bnd]);
        for (int k = edges_[bnd]; k < edges_[bnd + 1]; ++k) g[k] = gb;
      }
    }
    // 3. Per-band gains on the sine-windowed spectra, inverse, sine window, overlap-added into each cell's
    //    own buffer [C, span + H] (cells are scaled separately below).
    const std::size_t cell_len = span + H;
    cellbuf.assign(nc * C * cell_len, 0.0);
    gptr.assign(npairs, nullptr);
    da_ptr.assign(npairs, nullptr);
    db_ptr.assign(npairs, nullptr);
    for (std::size_t t = 0; t < nc; ++t)
      for (int s = 0; s < per_cell; ++s) {
        const int i = s / C, c = s % C;
        double* ptr = cellbuf.data() + (t * C + c) * cell_len + std::size_t(i) * H;
        const std::size_t q = t * pairs_per_cell + s / 2;
        (s % 2 ? db_ptr : da_ptr)[q] = ptr;
        gptr[q] = gains.data() + t * half;
      }
    FilterArgs fa;
    fa.win = sine_.data();
    fa.a = pa_ptr.data();
    fa.b = pb_ptr.data();
    fa.gains = gptr.data();
    fa.npairs = npairs;
    fa.lo = edges_[0];
    fa.hi = kmax;
    fa.da = da_ptr.data();
    fa.db = db_ptr.data();
    frame_filter(plan_, fa, scratch);
    // 4. The budget, cell by cell (sequential: the bucket), on real energies: the cell's own change against
    //    the signal over the cell's span. The change scales linearly, so the scaled change is the buffer
    //    times the scale; overlap-add the scaled cells into delta.
    delta.resize(std::size_t(C) * seg_len);  // every sample is written below: cell t sets its span past the
                                             // first hop and adds its first hop to cell t - 1's tail
    for (std::size_t t = 0; t < nc; ++t) {
      double used = 0.0, etot = 0.0;
      for (int c = 0; c < C; ++c) {
        used += sum_squares(cellbuf.data() + (t * C + c) * cell_len, cell_len);
        etot += sum_squares(xbuf.data() + std::size_t(c) * seg_len + t * span, span);
      }
      const double scale = budget_step(used, etot, p.k_global, p.k_local, p.leak, io.bucket);
      for (int c = 0; c < C; ++c) {
        const double* cb = cellbuf.data() + (t * C + c) * cell_len;
        double* d = delta.data() + std::size_t(c) * seg_len + t * span;
        const std::size_t first = t == 0 ? 0 : std::size_t(H);  // samples before it overlap cell t - 1
        for (std::size_t j = 0; j < first; ++j) d[j] += scale * cb[j];
        for (std::size_t j = first; j < cell_len; ++j) d[j] = scale * cb[j];
      }
    }
    // 5. Output = input + change (+ the previous chunk's tail on the first hop); keep this chunk's tail.
    for (int c = 0; c < C; ++c) {
      double* d = delta.data() + std::size_t(c) * seg_len;
      double* acc = io.acc + std::size_t(c) * H;
      for (int k = 0; k < H; ++k) d[k] += acc[k];
      const double* x = xbuf.data() + std::size_t(c) * seg_len;
      char* orow = static_cast<char*>(io.out) + (std::size_t(c) * io.ld_out + base) * out_size;
      const std::size_t m = nc * span;
      if (io.out_type == SampleType::kF64 && !io.clip) {
        double* o = reinterpret_cast<double*>(orow);
        for (std::size_t k = 0; k < m; ++k) o[k] = x[k] + d[k];
      } else {
        for (std::size_t k = 0; k < m; ++k) store_sample(orow, io.out_type, k, x[k] + d[k], io.clip);
      }
      for (int k = 0; k < H; ++k) acc[k] = d[m + k];
    }
  }
}

// ---- detection -------------------------------------------------------------------------------------------
std::size_t analysis_frames(std::size_t nsamples, int hop) {
  const std::size_t n = 2 * std::size_t(hop);
  return nsamples >= n ? (nsamples - n) / hop + 1 : 0;
}

void analysis(const double* x, std::size_t channels, std::size_t ld, std::size_t nsamples, int hop, int top,
              double* cs) {
  const int n = 2 * hop;
  if (top < 1 || top > hop + 1) throw InvalidArgument("audio analysis: top must be in [1, hop + 1]");
  const std::size_t nfr = analysis_frames(nsamples, hop);
  if (nfr == 0) return;
  FftPlan plan(n);
  std::vector<double> win(n), scratch;
  for (int i = 0; i < n; ++i) win[i] = 0.5 - 0.5 * std::cos(2.0 * M_PI * i / n);
  double* scr = scratch_buffer(scratch, frame_scratch_size(n));
  constexpr std::size_t kChunk = 256;  // frames per pass
  const std::size_t C = channels, W = std::size_t(top) + 1;
  // Even channel counts pair the channels of one frame: each pair's cumulated |A|^2 + |B|^2 is that
  // frame's share directly. Odd counts pair sequences across frames: one cumulated row per sequence.
  const bool same_frame = C % 2 == 0;
  std::vector<const double*> a, b;
  std::vector<double> rows;
  for (std::size_t f0 = 0; f0 < nfr; f0 += kChunk) {
    const std::size_t nf = std::min(kChunk, nfr - f0);
    const std::size_t nseq = nf * C, npairs = (nseq + 1) / 2;
    a.assign(npairs, nullptr);
    b.assign(npairs, nullptr);
    for (std::size_t s = 0; s < nseq; ++s) {
      const std::size_t f = f0 + s / C, c = s % C;
      (s % 2 ? b : a)[s / 2] = x + c * ld + f * hop;
    }
    PowersArgs pw;
    pw.win = win.data();
    pw.a = a.data();
    pw.b = b.data();
    pw.npairs = npairs;
    pw.nb = top;
    pw.cum_sum = same_frame;
    if (same_frame && C == 2) {
      pw.cum_out = cs + f0 * W;  // one pair per frame: its rows are the output rows
      frame_powers(plan, pw, scr);
      continue;
    }
    rows.resize((same_frame ? npairs : 2 * npairs) * W);
    pw.cum_out = rows.data();
    frame_powers(plan, pw, scr);
    double* out = cs + f0 * W;
    std::fill(out, out + nf * W, 0.0);
    const std::size_t per_frame = same_frame ? C / 2 : C;  // rows per frame
    for (std::size_t r = 0; r < nf * per_frame; ++r) {
      const double* src = rows.data() + r * W;
      double* dst = out + (r / per_frame) * W;
      for (std::size_t k = 0; k < W; ++k) dst[k] += src[k];
    }
  }
}

namespace {

// Rows of band energies after the speed mapping (the time interpolation of _Analysis.band_energy).
std::size_t energy_rows(const ProjectParams& p) {
  if (p.nfr == 0) return 0;
  if (p.speed == 1.0) return p.nfr;
  return static_cast<std::size_t>(std::ceil((double(p.nfr) - 1.0) * p.speed + 1e-9));
}

// numpy.percentile(a, q) with the default linear method; sorts a.
double percentile_linear(std::vector<double>& a, double q) {
  const std::size_t n = a.size();
  const double idx = double(n - 1) * q;  // numpy's virtual index for the linear method
  double lo_d = std::floor(idx);
  if (lo_d < 0) lo_d = 0;
  std::size_t lo = static_cast<std::size_t>(lo_d);
  if (lo > n - 1) lo = n - 1;
  const std::size_t hi = std::min(lo + 1, n - 1);
  std::nth_element(a.begin(), a.begin() + lo, a.end());
  const double va = a[lo];
  double vb = va;
  if (hi != lo) vb = *std::min_element(a.begin() + lo + 1, a.end());
  const double t = idx - lo_d;
  const double diff = vb - va;
  return t >= 0.5 ? vb - diff * (1.0 - t) : va + diff * t;
}

}  // namespace

std::size_t projection_rows(const ProjectParams& p) {
  const std::size_t ne = energy_rows(p);
  return ne >= std::size_t(p.cell_hops) ? ne - p.cell_hops + 1 : 0;
}

void projections(const ProjectParams& p, double* pout, double* wout) {
  const int L = p.group, nb = p.ng * L, ch = p.cell_hops;
  const std::size_t W = p.top + 1;
  const std::size_t ne = energy_rows(p);
  const std::size_t nj = projection_rows(p);
  if (nj == 0) return;
  // 1. band energies per hop, speed-mapped in frequency (fractional edges) and time (linear interpolation).
  std::vector<double> e0(p.nfr * nb), e(ne * nb);
  if (p.speed == 1.0) {
    for (std::size_t j = 0; j < p.nfr; ++j)
      for (int b = 0; b < nb; ++b) e0[j * nb + b] = p.cs[j * W + p.edges[b + 1]] - p.cs[j * W + p.edges[b]];
    e.swap(e0);
  } else {
    double pos[kMaxBands + 1];
    for (int b = 0; b <= nb; ++b) pos[b] = std::min(p.edges[b] * p.speed, p.top - 1e-9);
    for (std::size_t j = 0; j < p.nfr; ++j) {
      const double* row = p.cs + j * W;
      double c[kMaxBands + 1];
      for (int b = 0; b <= nb; ++b) c[b] = cs_interp(row, pos[b]);
      for (int b = 0; b < nb; ++b) e0[j * nb + b] = c[b + 1] - c[b];
    }
    for (std::size_t i = 0; i < ne; ++i) {
      const double tpos = double(i) / p.speed;
      const double j0d = std::floor(tpos);
      const std::size_t j0 = static_cast<std::size_t>(j0d);
      const std::size_t j1 = std::min(j0 + 1, p.nfr - 1);
      const double ft = tpos - j0d;
      for (int b = 0; b < nb; ++b) e[i * nb + b] = e0[j0 * nb + b] * (1 - ft) + e0[j1 * nb + b] * ft;
    }
  }
  // 2. log cell energies at every hop (cumulated over time as the reference does).
  std::vector<double> v(nj * nb);
  {
    std::vector<double> cum(nb, 0.0), lag(nb, 0.0);
    std::vector<double> cumrows((ne + 1) * nb, 0.0);
    for (std::size_t i = 0; i < ne; ++i)
      for (int b = 0; b < nb; ++b) cumrows[(i + 1) * nb + b] = cumrows[i * nb + b] + e[i * nb + b];
    for (std::size_t j = 0; j < nj; ++j)
      for (int b = 0; b < nb; ++b) {
        const double cev = cumrows[(j + ch) * nb + b] - cumrows[j * nb + b];
        v[j * nb + b] = log_pos((cev > 0.0 ? cev : 0.0) + p.log_floor);
      }
  }
  // 3. projections, noise floors (10th percentile per band), reliability weights.
  double floor_b[kMaxBands];
  std::vector<double> col(nj);
  for (int b = 0; b < nb; ++b) {
    for (std::size_t j = 0; j < nj; ++j) col[j] = v[j * nb + b];
    floor_b[b] = nj >= 20 ? percentile_linear(col, 0.1) : *std::min_element(col.begin(), col.end());
  }
  for (std::size_t j = 0; j < nj; ++j) {
    const double* vr = v.data() + j * nb;
    for (int g = 0; g < p.ng; ++g) {
      double acc = 0.0, snr = 0.0;
      for (int l = 0; l < L; ++l) {
        acc += vr[g * L + l] * p.chips[g * L + l];
        const double s = vr[g * L + l] - floor_b[g * L + l];
        snr = l == 0 ? s : std::min(snr, s);
      }
      pout[j * p.ng + g] = acc / L;
      const double w = (snr - p.w0) / p.w1;
      wout[j * p.ng + g] = w < 0.0 ? 0.0 : (w > 1.0 ? 1.0 : w);
    }
  }
}

void fold_scores(const FoldParams& p, double* fc, double* fs, double* z) {
  const int ng = p.ng, T = p.block_cells, ch = p.cell_hops, G = p.n_groups;
  const std::size_t P = std::size_t(T) * ch;
  std::fill(fc, fc + P * ng, 0.0);
  std::fill(fs, fs + P * ng, 0.0);
  std::size_t m = 0;
  for (std::size_t j = 0; j < p.nj; ++j) {
    for (int g = 0; g < ng; ++g) {
      double c, s;
      fold_term(p.p[j * ng + g], p.w[j * ng + g], p.step, &c, &s);
      fc[m * ng + g] += c;
      fs[m * ng + g] += s;
    }
    if (++m == P) m = 0;
  }
  // Sync score per phase: sum_t,g sign (fc cos d + fs sin d) over the cell-times t of the block.
  std::vector<double> cd(std::size_t(T) * ng), sd(std::size_t(T) * ng), sg(std::size_t(T) * ng);
  for (int t = 0; t < T; ++t)
    for (int g = 0; g < ng; ++g) {
      const double d = 2.0 * M_PI * p.dither[t * G + g];
      sg[t * ng + g] = p.sign[t * G + g];
      cd[t * ng + g] = std::cos(d) * sg[t * ng + g];
      sd[t * ng + g] = std::sin(d) * sg[t * ng + g];
    }
  for (std::size_t ph = 0; ph < P; ++ph) {
    double score = 0.0, var = 0.0;
    for (int t = 0; t < T; ++t) {
      const std::size_t r = (ph + std::size_t(ch) * t) % P;
      const double* a = fc + r * ng;
      const double* b = fs + r * ng;
      for (int g = 0; g < ng; ++g) {
        const double sgn = sg[t * ng + g];
        if (sgn == 0.0) continue;
        score += a[g] * cd[t * ng + g] + b[g] * sd[t * ng + g];
        var += a[g] * a[g] + b[g] * b[g];
      }
    }
    var *= 0.5;
    z[ph] = var > 0 ? score / std::sqrt(std::max(var, 1e-300)) : 0.0;
  }
}

}  // namespace provmark::audio
