// Audio watermark engine, CPU core: the embedder's per-cell pipeline (band energies -> quantiser moves ->
// wanted per-band gains -> each cell's change synthesised -> causal budget on its energy -> the scaled
// changes overlap-added) and the detector's analysis, per-speed
// projections and block-phase fold. Orchestration (tables, buffering, search, decoding) lives in
// python/provmark/audio.py, whose NumPy functions are the reference these are tested against
// (tests/test_audio_native.py). Parameter structs and per-element math: audio_common.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/audio_common.h"
#include "core/audio_fft.h"

namespace provmark::audio {

// The embedder's tables and settings as the Python layer passes them (audio.Layout, strength, SNR budget).
struct EmbedArgs {
  int channels = 0, hop = 0, cell_hops = 0, ng = 0;
  const int32_t* edges = nullptr;  // [n_edges]
  long long n_edges = 0;
  const double* chips = nullptr;  // [G, L]
  long long G = 0, L = 0;
  const double* dither = nullptr;  // [T, dither_cols]
  long long T = 0, dither_cols = 0;
  const int8_t* bits = nullptr;  // [bits_rows, bits_cols]
  long long bits_rows = 0, bits_cols = 0;
  double step = 0, gamma = 0, cap = 0, alpha = 0, snr_db = 0, local_snr_db = 0, leak = 0, floor = 0;
};

// Checks every field (std::invalid_argument naming fn) and returns the kernels' parameter struct; shared by
// the CPU embedder's and the CUDA embedder's bindings so both accept exactly the same inputs.
EmbedParams make_embed_params(const EmbedArgs& a, const char* fn);

// Embeds consecutive cells; holds the FFT plan, the windows and scratch of one (rate, channels) stream.
// Not thread-safe (one per stream). The tables behind p's pointers are copied.
class CellEmbedder {
 public:
  explicit CellEmbedder(const EmbedParams& p);
  // Embed io.ncells cells; io.bucket / io.acc carry the state between calls (see EmbedIO).
  void run(const EmbedIO& io);

 private:
  EmbedParams p_;
  std::vector<int32_t> edges_;
  std::vector<double> chips_, dither_;
  std::vector<int8_t> bits_;
  FftPlan plan_;
  std::vector<double> hann_, sine_, scratch_;
};

// Hops of hop-spaced 2H-point frames in n samples.
std::size_t analysis_frames(std::size_t nsamples, int hop);

// cs[j, 0] = 0, cs[j, k + 1] = sum_{k' <= k} sum_c |rfft(hann * frame_{j,c})[k']|^2 for k < top: the
// cumulated power spectra of the Hann frames at every hop (frames j H .. j H + 2H). x: [C, ld].
void analysis(const double* x, std::size_t channels, std::size_t ld, std::size_t nsamples, int hop, int top,
              double* cs);

// Rows of projections() for p (0 when the speed-mapped audio holds less than one cell).
std::size_t projection_rows(const ProjectParams& p);
// Projections and reliability weights of the cells anchored at every (speed-mapped) hop: pout, wout
// [rows, ng]. Mirrors _Analysis.band_energy + _projections.
void projections(const ProjectParams& p, double* pout, double* wout);

// Folded weighted cos/sin per block phase and group (fc, fs: [P, ng], P = T * cell_hops) and the sync
// statistic z[P] of every block phase. Mirrors _phase_terms + the sync score in _detect_core.
void fold_scores(const FoldParams& p, double* fc, double* fs, double* z);

}  // namespace provmark::audio
