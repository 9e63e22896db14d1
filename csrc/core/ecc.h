// Payload error-correcting code: CRC-32C + convolutional code (K = 7, rate 1/3, zero-tail terminated),
// decoded by soft-decision Viterbi. Pure C++17, no Python types (bindings live in
// csrc/bindings/register_ecc.cpp). See docs/ecc.md for the measured figures.
//
// Layout of one codeword for a payload of B bits (B a multiple of 8 in [16, 256]):
//   info bits  u[0 .. B+32+6)  = payload bits (byte 0 first, each byte MSB first)
//                              + CRC-32C of the payload bytes (MSB first)
//                              + 6 zero tail bits (the encoder returns to state 0)
//   coded bits c[3t + j]       = parity(reg_t & kPolys[j]), j = 0, 1, 2, where reg_t = (u[t-6] .. u[t]) with
//                              u[t] in bit 0 and u[t-6] in bit 6 (u[<0] = 0).
//
// Soft input convention (the same everywhere in provmark): soft[i] > 0 favours coded bit 1, soft[i] < 0
// favours 0, |soft[i]| is the confidence and 0 is an erasure. Scale does not matter (the metric is linear).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace provmark::ecc {

constexpr int kCrcBits = 32;    // CRC-32C (Castagnoli) over the payload bytes
constexpr int kConstraint = 7;  // constraint length K: 2^(K-1) = 64 trellis states
constexpr int kRateInv = 3;     // coded bits per info bit
constexpr int kStates = 1 << (kConstraint - 1);
constexpr int kTailBits = kConstraint - 1;
// Generator polynomials (octal 133, 171, 165: the K = 7 rate-1/3 code of LTE, free distance 15).
// Bit 6 is the oldest info bit, bit 0 the newest. All three have bits 0 and 6 set, which the decoder's
// butterflies rely on (see ecc.cpp).
constexpr uint32_t kPolys[kRateInv] = {0133, 0171, 0165};

constexpr std::size_t kMinPayloadBits = 16;
constexpr std::size_t kMaxPayloadBits = 256;
constexpr std::size_t kDefaultPayloadBits = 64;

// Throws std::invalid_argument unless payload_bits is a multiple of 8 in [16, 256].
void check_payload_bits(std::size_t payload_bits);

// Number of coded bits for a payload of payload_bits bits: (payload_bits + kCrcBits + kConstraint - 1) * 3.
// Throws std::invalid_argument for an invalid payload_bits.
std::size_t coded_length(std::size_t payload_bits);

// CRC-32C (reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF; crc32c("123456789") = 0xE3069283).
uint32_t crc32c(const uint8_t* data, std::size_t n);

// Encode payload_bits / 8 bytes at payload_bytes. Returns coded_length(payload_bits) coded bits, each 0 or 1.
std::vector<uint8_t> encode(const uint8_t* payload_bytes, std::size_t payload_bits);

struct DecodeResult {
  bool ok = false;                     // the CRC of the decoded payload matched
  std::vector<uint8_t> payload_bytes;  // payload_bits / 8 bytes when ok, empty otherwise
  // Viterbi metric of the decoded (maximum-likelihood) codeword c: sum_i soft[i] * (2 c[i] - 1), summed in
  // double on the caller's scale (may be +-inf in float for soft values near FLT_MAX).
  float path_metric = 0.0f;
  // sum_i soft[i] * (2 c[i] - 1) / sum_i |soft[i]| for the re-encoded decoded codeword c, computed in double:
  // in [-1, 1] (0 when every soft value is 0), the |soft|-weighted agreement minus disagreement between the
  // input and the decoded codeword. Exactly 1 for a clean codeword at any scale; the ML path of pure noise
  // still agrees with it by construction (about 0.70 for 64 bits; see docs/ecc.md for the measured
  // distribution). Set whether or not the CRC passed.
  float confidence = 0.0f;
};

// Soft-decision Viterbi decode of n == coded_length(payload_bits) soft values, then CRC check.
// Throws std::invalid_argument for an invalid payload_bits, a wrong n, a null pointer, or a soft value that
// is NaN or infinite. Thread-safe (no shared state); allocation-free apart from the result's payload_bytes.
DecodeResult decode(const float* soft, std::size_t n, std::size_t payload_bits);

constexpr std::size_t kMaxListSize = 256;

struct ListDecodeResult {
  DecodeResult best;        // the first candidate whose CRC matches (ok), else the most likely path (not ok)
  std::size_t checked = 0;  // CRC checks made: each one is a 2^-32 chance for a random input to pass
  std::size_t rank = 0;     // rank of the returned path in the list (0 = the maximum-likelihood path)
};

// CRC-aided list Viterbi (the parallel list Viterbi algorithm): decode() first; when its CRC fails, keeps the
// list_size best paths into every state, then checks the CRC of the paths ending in state 0 from the most
// likely down and returns the first that passes (else decode()'s path, not ok). list_size == 1 is decode().
// At most 1 + list_size CRC checks: the false-accept chance on a random input is at most
// result.checked * 2^-32. Throws std::invalid_argument
// as decode() does, and for list_size outside [1, kMaxListSize]. Thread-safe; allocates its path lists
// (about list_size * steps path entries, 8 bytes each).
ListDecodeResult decode_list(const float* soft, std::size_t n, std::size_t payload_bits,
                             std::size_t list_size);

}  // namespace provmark::ecc
