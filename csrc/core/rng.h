// Keyed, counter-based randomness: ChaCha20 (D. J. Bernstein) keyed by the 256-bit provmark key.
//
// Every table a watermark needs (sync chips, payload chips, permutations, audio bins...) is derived from
// (key, stream, counter): the stream is a named purpose, the counter indexes 64-byte blocks. There is no
// state, so any element can be computed independently on the host or on the device with identical bits.
// Word layout of the 16-word state: constants, key[0..7], counter (lo, hi), stream (lo, hi); this is the
// original 64-bit-nonce ChaCha, so the output equals OpenSSL's ChaCha20 with nonce = counter || stream
// (little endian), which the tests check against the `cryptography` package.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/common.h"

namespace provmark {

// Named streams: one purpose each, never reused for another purpose. Append only (values are part of the
// watermark format: changing one changes every pattern derived from it).
enum class Stream : uint64_t {
  kTest = 0,            // tests and examples
  kImageSync = 1,       // image/video: sync chips of the tile
  kImagePayload = 2,    // image/video: payload chip signs
  kImagePermute = 3,    // image/video: chip -> coded bit assignment
  kAudioBins = 16,      // audio: order of the band-energy chips
  kAudioSync = 17,      // audio: sync positions and sync bits
  kAudioPayload = 18,   // audio: quantiser dithers
  kAudioPermute = 19,   // audio: coded bit -> cell assignment
  kLabelPayload = 32,   // labels: payload derivation
};

struct ChaChaKey {
  uint32_t words[8];  // the 256-bit secret as 8 little-endian words
};

PROVMARK_HD uint32_t chacha_rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

PROVMARK_HD void chacha_quarter(uint32_t& a, uint32_t& b, uint32_t& c, uint32_t& d) {
  a += b; d ^= a; d = chacha_rotl(d, 16);
  c += d; b ^= c; b = chacha_rotl(b, 12);
  a += b; d ^= a; d = chacha_rotl(d, 8);
  c += d; b ^= c; b = chacha_rotl(b, 7);
}

// One 64-byte ChaCha20 block: out[16] = keystream words of block `counter` in `stream`.
PROVMARK_HD void chacha20_block(const ChaChaKey& key, uint64_t stream, uint64_t counter, uint32_t out[16]) {
  uint32_t s[16] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u,
                    key.words[0], key.words[1], key.words[2], key.words[3],
                    key.words[4], key.words[5], key.words[6], key.words[7],
                    static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32),
                    static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)};
  uint32_t x[16];
  for (int i = 0; i < 16; ++i) x[i] = s[i];
  for (int round = 0; round < 10; ++round) {
    chacha_quarter(x[0], x[4], x[8], x[12]);
    chacha_quarter(x[1], x[5], x[9], x[13]);
    chacha_quarter(x[2], x[6], x[10], x[14]);
    chacha_quarter(x[3], x[7], x[11], x[15]);
    chacha_quarter(x[0], x[5], x[10], x[15]);
    chacha_quarter(x[1], x[6], x[11], x[12]);
    chacha_quarter(x[2], x[7], x[8], x[13]);
    chacha_quarter(x[3], x[4], x[9], x[14]);
  }
  for (int i = 0; i < 16; ++i) out[i] = x[i] + s[i];
}

// Word -> value conversions shared by the CPU loops and the CUDA kernel.
// Uniform in [0, 1) with 24 bits, exact in float32.
PROVMARK_HD float word_to_uniform(uint32_t w) { return static_cast<float>(w >> 8) * (1.0f / 16777216.0f); }
// +1 / -1 from the top bit.
PROVMARK_HD int8_t word_to_sign(uint32_t w) { return (w >> 31) ? int8_t(1) : int8_t(-1); }

// Keystream word `index` of (key, stream), computed alone (the CUDA kernel and slow paths use it).
PROVMARK_HD uint32_t keystream_word(const ChaChaKey& key, uint64_t stream, uint64_t index) {
  uint32_t block[16];
  chacha20_block(key, stream, index >> 4, block);
  return block[index & 15];
}

// Fill out[0, nwords) with keystream words starting at word `first_word` (CPU, SIMD-dispatched, threaded).
void keystream_fill(const ChaChaKey& key, uint64_t stream, uint64_t first_word, std::size_t nwords,
                    uint32_t* out);

// Fisher-Yates permutation of [0, n) drawn from the stream (host only: tables are built on the host and
// uploaded, so both backends use identical bits).
void keyed_permutation(const ChaChaKey& key, uint64_t stream, std::size_t n, int32_t* out);

}  // namespace provmark
