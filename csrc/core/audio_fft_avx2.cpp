// The batched FFT and frame kernels for AVX2 (this file is compiled with -mavx2 -mfma). Contraction into
// FMA is switched off so that every lane and every loop split (vector body or scalar peel) rounds alike:
// streaming output stays bit-identical to one-shot output whatever the chunk sizes.
#pragma GCC optimize("fp-contract=off")
#define PROVMARK_ISA_NS isa_avx2
#include "core/audio_fft_impl.h"
