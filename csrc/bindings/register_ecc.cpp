// pybind11 glue for the payload ECC (csrc/core/ecc.h): validate, convert, release the GIL, call the core.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/ecc.h"

namespace py = pybind11;

namespace {

std::size_t payload_bits_arg(const char* fn, long long payload_bits) {
  if (payload_bits < 0)
    throw std::invalid_argument(std::string(fn) +
                                ": payload_bits must be a multiple of 8 in [16, 256], got " +
                                std::to_string(payload_bits));
  return static_cast<std::size_t>(payload_bits);
}

py::array_t<uint8_t> ecc_encode(const py::bytes& payload) {
  const std::string data = payload;  // a copy of at most 32 bytes
  const std::size_t nbytes = data.size();
  if (nbytes * 8 < provmark::ecc::kMinPayloadBits || nbytes * 8 > provmark::ecc::kMaxPayloadBits)
    throw std::invalid_argument(
        "ecc_encode: payload must be " + std::to_string(provmark::ecc::kMinPayloadBits / 8) + " to " +
        std::to_string(provmark::ecc::kMaxPayloadBits / 8) + " bytes, got " + std::to_string(nbytes));
  const std::vector<uint8_t> coded =
      provmark::ecc::encode(reinterpret_cast<const uint8_t*>(data.data()), nbytes * 8);
  py::array_t<uint8_t> out(static_cast<py::ssize_t>(coded.size()));
  std::copy(coded.begin(), coded.end(), out.mutable_data());
  return out;
}

// The soft values as a float32 C-contiguous array (a no-op for a contiguous float32 input; float64 and
// strided inputs are converted), after the type and shape checks.
py::array_t<float, py::array::c_style | py::array::forcecast> soft_arg(const char* fn,
                                                                       const py::object& soft_obj) {
  if (!py::isinstance<py::array>(soft_obj))
    throw py::type_error(std::string(fn) + ": soft must be a numpy float32 or float64 array, got " +
                         std::string(py::str(py::type::of(soft_obj).attr("__name__"))));
  const auto soft_any = py::reinterpret_borrow<py::array>(soft_obj);
  const py::dtype dt = soft_any.dtype();
  if (dt.kind() != 'f' || (dt.itemsize() != 4 && dt.itemsize() != 8))
    throw py::type_error(std::string(fn) + ": soft must have dtype float32 or float64, got " +
                         std::string(py::str(dt)));
  if (soft_any.ndim() != 1)
    throw std::invalid_argument(std::string(fn) + ": soft must be 1-D [coded_length], got " +
                                std::to_string(soft_any.ndim()) + " dimensions");
  auto soft = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(soft_any);
  if (!soft) throw py::error_already_set();
  return soft;
}

py::object payload_or_none(const provmark::ecc::DecodeResult& r) {
  if (!r.ok) return py::none();
  return py::bytes(reinterpret_cast<const char*>(r.payload_bytes.data()), r.payload_bytes.size());
}

py::tuple ecc_decode(const py::object& soft_obj, long long payload_bits) {
  const std::size_t bits = payload_bits_arg("ecc_decode", payload_bits);
  provmark::ecc::check_payload_bits(bits);
  const auto soft = soft_arg("ecc_decode", soft_obj);
  const float* ptr = soft.data();
  const std::size_t n = static_cast<std::size_t>(soft.size());
  provmark::ecc::DecodeResult result;
  {
    py::gil_scoped_release release;
    result = provmark::ecc::decode(ptr, n, bits);
  }
  return py::make_tuple(payload_or_none(result), result.confidence);
}

py::tuple ecc_decode_list(const py::object& soft_obj, long long payload_bits, long long list_size) {
  const std::size_t bits = payload_bits_arg("ecc_decode_list", payload_bits);
  provmark::ecc::check_payload_bits(bits);
  if (list_size < 1 || list_size > static_cast<long long>(provmark::ecc::kMaxListSize))
    throw std::invalid_argument("ecc_decode_list: list_size must be in [1, " +
                                std::to_string(provmark::ecc::kMaxListSize) + "], got " +
                                std::to_string(list_size));
  const auto soft = soft_arg("ecc_decode_list", soft_obj);
  const float* ptr = soft.data();
  const std::size_t n = static_cast<std::size_t>(soft.size());
  provmark::ecc::ListDecodeResult r;
  {
    py::gil_scoped_release release;
    r = provmark::ecc::decode_list(ptr, n, bits, static_cast<std::size_t>(list_size));
  }
  return py::make_tuple(payload_or_none(r.best), r.best.confidence, r.checked, r.rank);
}

}  // namespace

void register_ecc(py::module_& m) {
  m.def(
      "ecc_coded_length",
      [](long long payload_bits) {
        return provmark::ecc::coded_length(payload_bits_arg("ecc_coded_length", payload_bits));
      },
      py::arg("payload_bits"),
      "Number of coded bits for a payload of payload_bits bits (a multiple of 8 in [16, 256]):\n"
      "(payload_bits + 32 CRC bits + 6 tail bits) * 3.");
  m.def(
      "ecc_encode", &ecc_encode, py::arg("payload"),
      "Encode a payload of 2..32 bytes (payload_bits = 8 * len(payload)): CRC-32C, then the K=7 rate-1/3\n"
      "convolutional code. Returns a uint8 array of ecc_coded_length(payload_bits) coded bits, each 0 or 1.");
  m.def(
      "ecc_decode", &ecc_decode, py::arg("soft"), py::arg("payload_bits"),
      "Soft-decision Viterbi decode. soft: 1-D float32 (or float64) array of ecc_coded_length(payload_bits)\n"
      "values; > 0 favours bit 1, |soft| is the confidence, 0 is an erasure. Returns (payload bytes, or "
      "None\n"
      "when the CRC fails; confidence), confidence being the |soft|-weighted agreement of the decoded\n"
      "codeword with soft, in [-1, 1] (see docs/ecc.md).");
  m.def(
      "ecc_decode_list", &ecc_decode_list, py::arg("soft"), py::arg("payload_bits"), py::arg("list_size"),
      "CRC-aided list Viterbi: the list_size (1..256) most likely paths are CRC-checked from the best down.\n"
      "Returns (payload bytes of the first that passes, or None; its confidence (else the best path's);\n"
      "CRC checks made; its rank in the list). Each check is a 2^-32 chance for a random input to pass.");
}
