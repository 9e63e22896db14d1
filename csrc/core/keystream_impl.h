// Body of the per-ISA keystream loop; included by keystream_baseline.cpp and keystream_avx2.cpp with
// PROVMARK_ISA_NS set. Eight blocks run side by side in lanes so the compiler maps each lane loop onto one
// 256-bit vector under AVX2 (checked with -fopt-info-vec). Only raw arrays and static functions here: no
// shared inline or template symbols that the linker could merge across ISA levels.
#ifndef PROVMARK_ISA_NS
#error "define PROVMARK_ISA_NS before including keystream_impl.h"
#endif

#include <cstring>

#include "core/keystream_isa.h"

namespace provmark {
namespace PROVMARK_ISA_NS {
namespace {

constexpr int kLanes = 8;

static inline void lanes_quarter(uint32_t* a, uint32_t* b, uint32_t* c, uint32_t* d) {
  for (int l = 0; l < kLanes; ++l) { a[l] += b[l]; d[l] ^= a[l]; d[l] = (d[l] << 16) | (d[l] >> 16); }
  for (int l = 0; l < kLanes; ++l) { c[l] += d[l]; b[l] ^= c[l]; b[l] = (b[l] << 12) | (b[l] >> 20); }
  for (int l = 0; l < kLanes; ++l) { a[l] += b[l]; d[l] ^= a[l]; d[l] = (d[l] << 8) | (d[l] >> 24); }
  for (int l = 0; l < kLanes; ++l) { c[l] += d[l]; b[l] ^= c[l]; b[l] = (b[l] << 7) | (b[l] >> 25); }
}

// Eight consecutive blocks starting at `counter`, written block-major to out[0, 128).
static void chacha_8blocks(const ChaChaKey& key, uint64_t stream, uint64_t counter, uint32_t* out) {
  alignas(32) uint32_t s[16][kLanes];
  alignas(32) uint32_t x[16][kLanes];
  const uint32_t fixed[12] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u,
                              key.words[0], key.words[1], key.words[2], key.words[3],
                              key.words[4], key.words[5], key.words[6], key.words[7]};
  for (int w = 0; w < 12; ++w)
    for (int l = 0; l < kLanes; ++l) s[w][l] = fixed[w];
  for (int l = 0; l < kLanes; ++l) {
    const uint64_t c = counter + static_cast<uint64_t>(l);
    s[12][l] = static_cast<uint32_t>(c);
    s[13][l] = static_cast<uint32_t>(c >> 32);
    s[14][l] = static_cast<uint32_t>(stream);
    s[15][l] = static_cast<uint32_t>(stream >> 32);
  }
  std::memcpy(x, s, sizeof(x));
  for (int round = 0; round < 10; ++round) {
    lanes_quarter(x[0], x[4], x[8], x[12]);
    lanes_quarter(x[1], x[5], x[9], x[13]);
    lanes_quarter(x[2], x[6], x[10], x[14]);
    lanes_quarter(x[3], x[7], x[11], x[15]);
    lanes_quarter(x[0], x[5], x[10], x[15]);
    lanes_quarter(x[1], x[6], x[11], x[12]);
    lanes_quarter(x[2], x[7], x[8], x[13]);
    lanes_quarter(x[3], x[4], x[9], x[14]);
  }
  for (int w = 0; w < 16; ++w)
    for (int l = 0; l < kLanes; ++l) out[l * 16 + w] = x[w][l] + s[w][l];
}

}  // namespace

void chacha_blocks(const ChaChaKey& key, uint64_t stream, uint64_t first_block, std::size_t nblocks,
                   uint32_t* out) {
  std::size_t done = 0;
  for (; done + kLanes <= nblocks; done += kLanes) chacha_8blocks(key, stream, first_block + done, out + 16 * done);
  if (done < nblocks) {
    alignas(32) uint32_t tail[16 * kLanes];
    chacha_8blocks(key, stream, first_block + done, tail);
    std::memcpy(out + 16 * done, tail, sizeof(uint32_t) * 16 * (nblocks - done));
  }
}

}  // namespace PROVMARK_ISA_NS
}  // namespace provmark
