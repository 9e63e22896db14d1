#include "core/rng.h"

#include <algorithm>
#include <vector>

#include "core/keystream_isa.h"
#include "core/parallel.h"
#include "core/simd.h"

namespace provmark {
namespace {

void chacha_blocks(const ChaChaKey& key, uint64_t stream, uint64_t first_block, std::size_t nblocks,
                   uint32_t* out) {
#if defined(PROVMARK_HAVE_AVX2_TU)
  if (simd_level() == SimdLevel::kAVX2) return isa_avx2::chacha_blocks(key, stream, first_block, nblocks, out);
#endif
  isa_baseline::chacha_blocks(key, stream, first_block, nblocks, out);
}

}  // namespace

void keystream_fill(const ChaChaKey& key, uint64_t stream, uint64_t first_word, std::size_t nwords,
                    uint32_t* out) {
  if (nwords == 0) return;
  const uint64_t first_block = first_word >> 4;
  const uint64_t last_block = (first_word + nwords - 1) >> 4;
  const std::size_t nblocks = static_cast<std::size_t>(last_block - first_block + 1);
  // Chunks of whole blocks; each chunk writes its slice of `out` (the unaligned head and tail go through a
  // small buffer).
  constexpr std::size_t kChunkBlocks = 256;
  const std::size_t nchunks = (nblocks + kChunkBlocks - 1) / kChunkBlocks;
  parallel_for(nchunks, 4, [&](std::size_t c0, std::size_t c1) {
    std::vector<uint32_t> buf(kChunkBlocks * 16);
    for (std::size_t c = c0; c < c1; ++c) {
      const uint64_t b0 = first_block + c * kChunkBlocks;
      const std::size_t nb = static_cast<std::size_t>(std::min<uint64_t>(kChunkBlocks, last_block + 1 - b0));
      chacha_blocks(key, stream, b0, nb, buf.data());
      const uint64_t w0 = std::max<uint64_t>(b0 * 16, first_word);
      const uint64_t w1 = std::min<uint64_t>((b0 + nb) * 16, first_word + nwords);
      std::copy(buf.begin() + static_cast<std::ptrdiff_t>(w0 - b0 * 16),
                buf.begin() + static_cast<std::ptrdiff_t>(w1 - b0 * 16), out + (w0 - first_word));
    }
  });
}

void keyed_permutation(const ChaChaKey& key, uint64_t stream, std::size_t n, int32_t* out) {
  if (n > 0x7fffffffu) throw InvalidArgument("keyed_permutation: n too large");
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(i);
  if (n < 2) return;
  std::vector<uint32_t> words(n - 1);
  keystream_fill(key, stream, 0, n - 1, words.data());
  for (std::size_t i = n - 1; i > 0; --i) {
    // Lemire's multiply-shift maps a 32-bit word onto [0, i]; the bias (< i / 2^32) is irrelevant here.
    const std::size_t j = static_cast<std::size_t>((static_cast<uint64_t>(words[n - 1 - i]) * (i + 1)) >> 32);
    std::swap(out[i], out[j]);
  }
}

}  // namespace provmark
