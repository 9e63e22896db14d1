// The batched FFT and frame kernels for any x86-64 (or other) CPU: 2 lanes, one SSE2 register.
#define PROVMARK_ISA_NS isa_baseline
#define PROVMARK_AUDIO_LANES 2
#include "core/audio_fft_impl.h"
