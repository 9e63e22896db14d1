// The audio embedder's arguments as both bindings receive them (CPU: AudioEmbedCore, CUDA: cuda_audio_embed),
// gathered into the core's EmbedArgs; make_embed_params (core/audio.h) then checks them once for both.
#pragma once

#include <pybind11/numpy.h>

#include "core/audio.h"

namespace provmark::audio {

template <class Edges, class Chips, class Dither, class Bits>
EmbedArgs embed_args(int channels, int hop, int cell_hops, int ng, const Edges& edges, const Chips& chips,
                     const Dither& dither, const Bits& bits, double step, double gamma, double cap,
                     double alpha, double snr_db, double local_snr_db, double leak, double floor) {
  EmbedArgs a;
  a.channels = channels;
  a.hop = hop;
  a.cell_hops = cell_hops;
  a.ng = ng;
  a.edges = edges.data();
  a.n_edges = edges.shape(0);
  a.chips = chips.data();
  a.G = chips.shape(0);
  a.L = chips.shape(1);
  a.dither = dither.data();
  a.T = dither.shape(0);
  a.dither_cols = dither.shape(1);
  a.bits = bits.data();
  a.bits_rows = bits.shape(0);
  a.bits_cols = bits.shape(1);
  a.step = step;
  a.gamma = gamma;
  a.cap = cap;
  a.alpha = alpha;
  a.snr_db = snr_db;
  a.local_snr_db = local_snr_db;
  a.leak = leak;
  a.floor = floor;
  return a;
}

}  // namespace provmark::audio
