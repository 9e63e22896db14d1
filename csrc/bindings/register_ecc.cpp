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

py::tuple ecc_decode(const py::object& soft_obj, long long payload_bits) {
  const std::size_t bits = payload_bits_arg("ecc_decode", payload_bits);
  provmark::ecc::check_payload_bits(bits);
  if (!py::isinstance<py::array>(soft_obj))
    throw py::type_error("ecc_decode: soft must be a numpy float32 or float64 array, got " +
                         std::string(py::str(py::type::of(soft_obj).attr("__name__"))));
  const auto soft_any = py::reinterpret_borrow<py::array>(soft_obj);
  const py::dtype dt = soft_any.dtype();
  if (dt.kind() != 'f' || (dt.itemsize() != 4 && dt.itemsize() != 8))
    throw py::type_error("ecc_decode: soft must have dtype float32 or float64, got " +
                         std::string(py::str(dt)));
  if (soft_any.ndim() != 1)
    throw std::invalid_argument("ecc_decode: soft must be 1-D [coded_length], got " +
                                std::to_string(soft_any.ndim()) + " dimensions");
  // float32, C-contiguous (a no-op for a contiguous float32 input; float64 and strided inputs are converted).
  const auto soft = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(soft_any);
  if (!soft) throw py::error_already_set();
  const float* ptr = soft.data();
  const std::size_t n = static_cast<std::size_t>(soft.size());
  provmark::ecc::DecodeResult result;
  {
    py::gil_scoped_release release;
    result = provmark::ecc::decode(ptr, n, bits);
  }
  py::object payload = py::none();
  if (result.ok)
    payload =
        py::bytes(reinterpret_cast<const char*>(result.payload_bytes.data()), result.payload_bytes.size());
  return py::make_tuple(payload, result.confidence);
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
}
