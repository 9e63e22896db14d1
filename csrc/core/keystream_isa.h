// Per-ISA variants of the keystream loop (see simd.h). Same signature in each namespace.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/rng.h"

namespace provmark {
namespace isa_baseline {
// out[0, 16*nblocks) = ChaCha20 blocks first_block .. first_block+nblocks-1 of (key, stream).
void chacha_blocks(const ChaChaKey& key, uint64_t stream, uint64_t first_block, std::size_t nblocks,
                   uint32_t* out);
}  // namespace isa_baseline
namespace isa_avx2 {
void chacha_blocks(const ChaChaKey& key, uint64_t stream, uint64_t first_block, std::size_t nblocks,
                   uint32_t* out);
}  // namespace isa_avx2
}  // namespace provmark
