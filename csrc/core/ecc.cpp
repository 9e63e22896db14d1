// Payload ECC: CRC-32C + K = 7 rate-1/3 convolutional code, soft-decision Viterbi. See ecc.h for the layout.
#include "ecc.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>

namespace provmark::ecc {
namespace {

constexpr std::size_t kMaxInfoBits = kMaxPayloadBits + kCrcBits + kTailBits;  // trellis steps, at most
constexpr int kHalf = kStates / 2;                                            // butterflies per step
constexpr uint32_t kCrc32cReflected = 0x82F63B78u;
// A path metric that no real path can reach: unreachable start states. Finite on purpose, so the ACS stays
// correct under -ffast-math (soft values are checked finite and |soft| sums stay far below this).
constexpr float kUnreachable = -1e30f;

static_assert(kStates == 64, "the decoder's butterfly layout assumes K = 7");
static_assert((kPolys[0] & kPolys[1] & kPolys[2] & 1u) == 1u, "every polynomial must tap the newest bit");
static_assert((kPolys[0] & kPolys[1] & kPolys[2] & (1u << kTailBits)) != 0u,
              "every polynomial must tap the oldest bit");

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ kCrc32cReflected : (c >> 1);
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

constexpr int parity(uint32_t x) {
  x ^= x >> 16;
  x ^= x >> 8;
  x ^= x >> 4;
  x ^= x >> 2;
  x ^= x >> 1;
  return static_cast<int>(x & 1u);
}

// Output triple (bit j = coded bit j) of the encoder when its 7-bit register holds reg.
constexpr int branch_outputs(uint32_t reg) {
  int out = 0;
  for (int j = 0; j < kRateInv; ++j) out |= parity(reg & kPolys[j]) << j;
  return out;
}

// For butterfly i (predecessors i and i + 32, successors 2i and 2i + 1): the output triple of the transition
// i -> 2i (register value 2i, newest bit 0), as signs: kBranchSign[j][i] = +1 if coded bit j is 1, else -1.
// The other three transitions of the butterfly emit this triple (i + 32 -> 2i + 1) or its complement
// (i -> 2i + 1, i + 32 -> 2i), because every polynomial taps both the newest and the oldest register bit.
struct BranchSigns {
  float v[kRateInv][kHalf];
};
constexpr BranchSigns make_branch_signs() {
  BranchSigns s{};
  for (int i = 0; i < kHalf; ++i)
    for (int j = 0; j < kRateInv; ++j) s.v[j][i] = ((branch_outputs(2u * i) >> j) & 1) ? 1.0f : -1.0f;
  return s;
}
alignas(64) constexpr BranchSigns kBranchSign = make_branch_signs();

void build_info_bits(const uint8_t* payload_bytes, std::size_t payload_bits, uint8_t* info) {
  const std::size_t nbytes = payload_bits / 8;
  std::size_t t = 0;
  for (std::size_t b = 0; b < nbytes; ++b)
    for (int k = 7; k >= 0; --k) info[t++] = static_cast<uint8_t>((payload_bytes[b] >> k) & 1u);
  const uint32_t crc = crc32c(payload_bytes, nbytes);
  for (int k = kCrcBits - 1; k >= 0; --k) info[t++] = static_cast<uint8_t>((crc >> k) & 1u);
  for (int k = 0; k < kTailBits; ++k) info[t++] = 0;
}

// The convolutional encoder: steps info bits -> kRateInv * steps coded bits (0/1).
void convolve(const uint8_t* info, std::size_t steps, uint8_t* coded) {
  uint32_t reg = 0;
  for (std::size_t t = 0; t < steps; ++t) {
    reg = ((reg << 1) | info[t]) & 0x7Fu;
    for (int j = 0; j < kRateInv; ++j)
      coded[kRateInv * t + j] = static_cast<uint8_t>(parity(reg & kPolys[j]));
  }
}

}  // namespace

void check_payload_bits(std::size_t payload_bits) {
  if (payload_bits % 8 != 0 || payload_bits < kMinPayloadBits || payload_bits > kMaxPayloadBits)
    throw std::invalid_argument("ecc: payload_bits must be a multiple of 8 in [" +
                                std::to_string(kMinPayloadBits) + ", " + std::to_string(kMaxPayloadBits) +
                                "], got " + std::to_string(payload_bits));
}

std::size_t coded_length(std::size_t payload_bits) {
  check_payload_bits(payload_bits);
  return (payload_bits + kCrcBits + kTailBits) * kRateInv;
}

uint32_t crc32c(const uint8_t* data, std::size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) c = kCrcTable[(c ^ data[i]) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::vector<uint8_t> encode(const uint8_t* payload_bytes, std::size_t payload_bits) {
  const std::size_t n = coded_length(payload_bits);
  if (payload_bytes == nullptr) throw std::invalid_argument("ecc::encode: payload_bytes is null");
  const std::size_t steps = n / kRateInv;
  std::array<uint8_t, kMaxInfoBits> info{};
  build_info_bits(payload_bytes, payload_bits, info.data());
  std::vector<uint8_t> coded(n);
  convolve(info.data(), steps, coded.data());
  return coded;
}

namespace {

// Checks the arguments of decode / decode_list (before anything is written), then writes soft scaled by a
// power of two (exact, barring underflow of values 2^126 below the largest) so that max |soft| lies in
// [0.5, 1) into scaled: path metrics then stay below n whatever the caller's scale, far from overflow,
// denormals and kUnreachable. Returns n.
std::size_t check_and_scale(const float* soft, std::size_t n, std::size_t payload_bits, float* scaled) {
  const std::size_t expected = coded_length(payload_bits);
  if (n != expected)
    throw std::invalid_argument("ecc::decode: expected " + std::to_string(expected) + " soft values for " +
                                std::to_string(payload_bits) + " payload bits, got " + std::to_string(n));
  if (soft == nullptr) throw std::invalid_argument("ecc::decode: soft is null");
  float max_abs = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(soft[i]))
      throw std::invalid_argument("ecc::decode: soft value at index " + std::to_string(i) +
                                  " is not finite (NaN or infinity)");
    max_abs = std::max(max_abs, std::fabs(soft[i]));
  }
  int exponent = 0;
  if (max_abs > 0.0f) std::frexp(max_abs, &exponent);
  const float scale = std::ldexp(1.0f, -exponent);
  for (std::size_t i = 0; i < n; ++i) scaled[i] = soft[i] * scale;
  return n;
}

// Metric, confidence and CRC check of the info bits of one decoded path. The metric and confidence come
// from the re-encoded path in double precision, on the caller's scale: a clean codeword gives a confidence
// of exactly 1 whatever the scale and length.
DecodeResult finish(const float* soft, std::size_t n, std::size_t payload_bits, const uint8_t* info) {
  DecodeResult result;
  const std::size_t steps = n / kRateInv;
  std::array<uint8_t, kMaxInfoBits * kRateInv> coded{};
  convolve(info, steps, coded.data());
  double agree = 0.0, abs_sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = soft[i];
    agree += coded[i] ? v : -v;
    abs_sum += std::fabs(v);
  }
  result.path_metric = static_cast<float>(agree);
  result.confidence = abs_sum > 0.0 ? static_cast<float>(agree / abs_sum) : 0.0f;

  const std::size_t nbytes = payload_bits / 8;
  std::array<uint8_t, kMaxPayloadBits / 8> bytes{};
  for (std::size_t b = 0; b < nbytes; ++b) {
    unsigned v = 0;
    for (int k = 0; k < 8; ++k) v = (v << 1) | info[8 * b + k];
    bytes[b] = static_cast<uint8_t>(v);
  }
  uint32_t crc_rx = 0;
  for (int k = 0; k < kCrcBits; ++k) crc_rx = (crc_rx << 1) | info[payload_bits + k];
  if (crc_rx == crc32c(bytes.data(), nbytes)) {
    result.ok = true;
    result.payload_bytes.assign(bytes.begin(), bytes.begin() + nbytes);
  }
  return result;
}

// The k best trellis paths into every node, found lazily (the recursive enumeration algorithm of Jiménez and
// Marzal for k shortest paths): node (t, s) is state s after t steps, and its k-th best path is the better of
// the next unused paths of its two predecessors (state s >> 1 and (s >> 1) | 32 at step t - 1) plus their
// branch metrics, so asking for path k of the final node computes only the paths it needs: about k * steps
// merges instead of k * 64 * steps for the parallel list Viterbi. The order and the tie-breaks (the first
// predecessor wins, as in decode) are those of a full merge, so path 0 is decode()'s path.
class PathLists {
 public:
  PathLists(const float* scaled, std::size_t steps)
      : scaled_(scaled), steps_(steps), nodes_((steps + 1) * kStates) {
    Node& start = nodes_[0];  // node (0, 0): the empty path; every other node at t = 0 has none
    start.paths.push_back({0.0f, 0, 0});
    for (std::size_t s = 0; s < static_cast<std::size_t>(kStates); ++s) nodes_[s].done = true;
  }

  // Info bits of the r-th best path ending in state 0 after all steps (zero tail); false if there is none.
  bool trace(std::size_t r, uint8_t* info) {
    if (!get(steps_ * kStates, r)) return false;
    unsigned state = 0;
    std::size_t k = r;
    for (std::size_t t = steps_; t > 0; --t) {
      const Entry& e = nodes_[t * kStates + state].paths[k];
      info[t - 1] = static_cast<uint8_t>(state & 1u);
      state = (state >> 1) | (static_cast<unsigned>(e.choice) << (kConstraint - 2));
      k = e.rank;
    }
    return true;
  }

 private:
  struct Entry {
    float metric;
    uint16_t rank;   // rank of the path continued in the predecessor
    uint8_t choice;  // 0: predecessor s >> 1, 1: (s >> 1) | 32
  };
  // A node's paths in order of metric, best first. Most nodes only ever hold one or two (the list's paths
  // deviate from the best one at few nodes), so the first kInline live in the node: no allocation for them.
  static constexpr std::size_t kInline = 2;
  struct Paths {
    Entry inline_[kInline];
    std::vector<Entry> more;
    std::size_t n = 0;
    std::size_t size() const { return n; }
    const Entry& operator[](std::size_t k) const { return k < kInline ? inline_[k] : more[k - kInline]; }
    void push_back(const Entry& e) {
      if (n < kInline)
        inline_[n] = e;
      else
        more.push_back(e);
      ++n;
    }
  };
  struct Node {
    Paths paths;
    uint16_t next[2] = {0, 0};  // next unused rank of each predecessor
    bool done = false;          // no further paths
  };

  // Makes path k of node idx exist if it can; false when the node has at most k paths.
  bool get(std::size_t idx, std::size_t k) {
    const std::size_t t = idx / kStates;
    if (t == 0) return nodes_[idx].paths.size() > k;  // the start node's one path, or none
    const unsigned s = static_cast<unsigned>(idx % kStates);
    const unsigned i = s >> 1;
    // branch metric of butterfly i at step t - 1, signed for this successor (see decode)
    const float* y = scaled_ + kRateInv * (t - 1);
    const float b = kBranchSign.v[0][i] * y[0] + kBranchSign.v[1][i] * y[1] + kBranchSign.v[2][i] * y[2];
    const float b0 = (s & 1u) ? -b : b, b1 = (s & 1u) ? b : -b;
    while (nodes_[idx].paths.size() <= k && !nodes_[idx].done) {
      float cand[2];
      for (int c = 0; c < 2; ++c) {
        const std::size_t pred = (t - 1) * kStates + (i | (c ? kHalf : 0u));
        const std::size_t j = nodes_[idx].next[c];
        cand[c] = get(pred, j) ? nodes_[pred].paths[j].metric + (c ? b1 : b0) : kUnreachable;
      }
      Node& me = nodes_[idx];  // (get() on a predecessor never resizes nodes_, only its own list)
      if (cand[0] <= kUnreachable && cand[1] <= kUnreachable) {
        me.done = true;
        break;
      }
      const int c = cand[1] > cand[0] ? 1 : 0;
      me.paths.push_back({cand[c], me.next[c], static_cast<uint8_t>(c)});
      ++me.next[c];
    }
    return nodes_[idx].paths.size() > k;
  }

  const float* scaled_;
  std::size_t steps_;
  std::vector<Node> nodes_;
};

}  // namespace

DecodeResult decode(const float* soft, std::size_t n, std::size_t payload_bits) {
  alignas(64) float scaled[kMaxInfoBits * kRateInv];
  check_and_scale(soft, n, payload_bits, scaled);
  const std::size_t steps = n / kRateInv;
  // Survivor decisions, one byte per (step, next state): 0 if the survivor came from predecessor ns >> 1,
  // 1 if from (ns >> 1) | 32. At most 294 x 64 bytes = 18.4 KiB, which stays in L1; bytes (rather than packed
  // bits) let the compiler vectorise the add-compare-select loop below.
  alignas(64) uint8_t decisions[kMaxInfoBits][kStates];
  // Path metrics of step t live in metrics[t & 1].
  alignas(64) float metrics[2][kStates];
  for (int s = 0; s < kStates; ++s) metrics[0][s] = kUnreachable;
  metrics[0][0] = 0.0f;

  for (std::size_t t = 0; t < steps; ++t) {
    const float* __restrict pm = metrics[t & 1];
    float* __restrict next = metrics[(t + 1) & 1];
    const float s0 = scaled[kRateInv * t];
    const float s1 = scaled[kRateInv * t + 1];
    const float s2 = scaled[kRateInv * t + 2];
    // Branch metric of each butterfly: correlation of the three soft values with its output triple.
    alignas(64) float bm[kHalf];
    for (int i = 0; i < kHalf; ++i)
      bm[i] = kBranchSign.v[0][i] * s0 + kBranchSign.v[1][i] * s1 + kBranchSign.v[2][i] * s2;

    uint8_t* __restrict dec = decisions[t];
    // Butterflies: 32 independent add-compare-selects over contiguous arrays (vectorisable).
    for (int i = 0; i < kHalf; ++i) {
      const float a = pm[i];
      const float c = pm[i + kHalf];
      const float b = bm[i];
      const float even0 = a + b, even1 = c - b;  // into state 2i
      const float odd0 = a - b, odd1 = c + b;    // into state 2i + 1
      const bool de = even1 > even0;
      const bool dodd = odd1 > odd0;
      next[2 * i] = de ? even1 : even0;
      next[2 * i + 1] = dodd ? odd1 : odd0;
      dec[2 * i] = static_cast<uint8_t>(de);
      dec[2 * i + 1] = static_cast<uint8_t>(dodd);
    }
  }

  // The zero tail forces the encoder back to state 0: trace back from there.
  std::array<uint8_t, kMaxInfoBits> info{};
  unsigned state = 0;
  for (std::size_t t = steps; t-- > 0;) {
    info[t] = static_cast<uint8_t>(state & 1u);
    state = (state >> 1) | (static_cast<unsigned>(decisions[t][state]) << (kConstraint - 2));
  }
  return finish(soft, n, payload_bits, info.data());
}

ListDecodeResult decode_list(const float* soft, std::size_t n, std::size_t payload_bits,
                             std::size_t list_size) {
  if (list_size < 1 || list_size > kMaxListSize)
    throw std::invalid_argument("ecc::decode_list: list_size must be in [1, " + std::to_string(kMaxListSize) +
                                "], got " + std::to_string(list_size));
  ListDecodeResult out;
  // The plain Viterbi path is the list's first: when its CRC passes (a clearly marked input) the list is
  // not needed, and it costs list_size times more.
  out.best = decode(soft, n, payload_bits);
  out.checked = 1;
  if (list_size == 1 || out.best.ok) return out;
  // (the list's first path is that one again: counted twice, which keeps the false-accept bound safe even if
  // rounding ever ordered the list differently)
  alignas(64) float scaled[kMaxInfoBits * kRateInv];
  const std::size_t steps = check_and_scale(soft, n, payload_bits, scaled) / kRateInv;
  PathLists lists(scaled, steps);
  std::array<uint8_t, kMaxInfoBits> info{};
  for (std::size_t r = 0; r < list_size; ++r) {
    if (!lists.trace(r, info.data())) break;  // fewer than list_size paths end in state 0
    DecodeResult d = finish(soft, n, payload_bits, info.data());
    ++out.checked;
    if (d.ok) {
      out.best = std::move(d);
      out.rank = r;
      break;
    }
  }
  return out;
}

}  // namespace provmark::ecc
