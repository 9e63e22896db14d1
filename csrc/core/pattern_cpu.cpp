#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "core/pattern.h"

namespace provmark {

void generate_pattern_cpu(const PatternParams& p) {
  if (p.n == 0) return;
  if (p.out == nullptr) throw InvalidArgument("generate_pattern_cpu: out is null");
  const int wpv = words_per_value(p.kind);
  if (p.kind == PatternKind::kWords) {
    keystream_fill(p.key, p.stream, p.offset, p.n, static_cast<uint32_t*>(p.out));
    return;
  }
  constexpr std::size_t kChunk = 4096;
  const std::size_t nchunks = (p.n + kChunk - 1) / kChunk;
  parallel_for(nchunks, 4, [&](std::size_t c0, std::size_t c1) {
    std::vector<uint32_t> words(kChunk * 2);
    for (std::size_t c = c0; c < c1; ++c) {
      const std::size_t i0 = c * kChunk;
      const std::size_t m = std::min(kChunk, p.n - i0);
      keystream_fill(p.key, p.stream, (p.offset + i0) * wpv, m * wpv, words.data());
      switch (p.kind) {
        case PatternKind::kUniform: {
          float* out = static_cast<float*>(p.out) + i0;
          for (std::size_t i = 0; i < m; ++i) out[i] = word_to_uniform(words[i]);
          break;
        }
        case PatternKind::kSigns: {
          int8_t* out = static_cast<int8_t*>(p.out) + i0;
          for (std::size_t i = 0; i < m; ++i) out[i] = word_to_sign(words[i]);
          break;
        }
        case PatternKind::kNormal: {
          float* out = static_cast<float*>(p.out) + i0;
          for (std::size_t i = 0; i < m; ++i) out[i] = words_to_normal(words[2 * i], words[2 * i + 1]);
          break;
        }
        default:
          throw InvalidArgument("generate_pattern_cpu: unknown pattern kind");
      }
    }
  });
}

}  // namespace provmark
