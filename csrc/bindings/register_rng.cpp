// Keyed randomness: the pattern generator (CPU or CUDA) and keyed permutations.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bindings/common.h"
#include "core/pattern.h"
#include "core/rng.h"

namespace py = pybind11;
using namespace provmark;
using provmark::bindings::check_count;
using provmark::bindings::key_from_bytes;

namespace {

template <typename T>
py::array_t<T> generate(const py::bytes& key, uint64_t stream, py::ssize_t n, uint64_t offset, PatternKind kind,
                        const std::string& device, const char* func) {
  check_count(n, func);
  PatternParams p;
  p.key = key_from_bytes(key, func);
  p.stream = stream;
  p.offset = offset;
  p.n = static_cast<std::size_t>(n);
  p.kind = kind;
  py::array_t<T> out(n);
  p.out = out.mutable_data();
  int cuda_index = -1;
  if (device.rfind("cuda", 0) == 0) {
    cuda_index = 0;
    if (device.size() > 5 && device[4] == ':') cuda_index = std::stoi(device.substr(5));
  } else if (device != "cpu") {
    throw py::value_error(std::string(func) + ": device must be 'cpu' or 'cuda[:N]', got '" + device + "'");
  }
  {
    py::gil_scoped_release release;
    if (cuda_index >= 0) {
      generate_pattern_cuda(p, cuda_index);
    } else {
      generate_pattern_cpu(p);
    }
  }
  return out;
}

}  // namespace

void register_rng(py::module_& m) {
  py::enum_<Stream>(m, "Stream", "Named keyed-randomness streams (one purpose each).")
      .value("TEST", Stream::kTest)
      .value("IMAGE_SYNC", Stream::kImageSync)
      .value("IMAGE_PAYLOAD", Stream::kImagePayload)
      .value("IMAGE_PERMUTE", Stream::kImagePermute)
      .value("AUDIO_BINS", Stream::kAudioBins)
      .value("AUDIO_SYNC", Stream::kAudioSync)
      .value("AUDIO_PAYLOAD", Stream::kAudioPayload)
      .value("AUDIO_PERMUTE", Stream::kAudioPermute)
      .value("LABEL_PAYLOAD", Stream::kLabelPayload);

  const char* doc_tail = " Element i is derived from keystream words at (offset + i); device is 'cpu' or 'cuda[:N]'.";
  m.def(
      "random_words",
      [](const py::bytes& key, Stream stream, py::ssize_t n, uint64_t offset, const std::string& device) {
        return generate<uint32_t>(key, static_cast<uint64_t>(stream), n, offset, PatternKind::kWords, device,
                                  "random_words");
      },
      py::arg("key"), py::arg("stream"), py::arg("n"), py::arg("offset") = 0, py::arg("device") = "cpu",
      (std::string("uint32 ChaCha20 keystream words.") + doc_tail).c_str());
  m.def(
      "random_uniform",
      [](const py::bytes& key, Stream stream, py::ssize_t n, uint64_t offset, const std::string& device) {
        return generate<float>(key, static_cast<uint64_t>(stream), n, offset, PatternKind::kUniform, device,
                               "random_uniform");
      },
      py::arg("key"), py::arg("stream"), py::arg("n"), py::arg("offset") = 0, py::arg("device") = "cpu",
      (std::string("float32 uniform in [0, 1).") + doc_tail).c_str());
  m.def(
      "random_signs",
      [](const py::bytes& key, Stream stream, py::ssize_t n, uint64_t offset, const std::string& device) {
        return generate<int8_t>(key, static_cast<uint64_t>(stream), n, offset, PatternKind::kSigns, device,
                                "random_signs");
      },
      py::arg("key"), py::arg("stream"), py::arg("n"), py::arg("offset") = 0, py::arg("device") = "cpu",
      (std::string("int8 +1/-1 chips.") + doc_tail).c_str());
  m.def(
      "random_normal",
      [](const py::bytes& key, Stream stream, py::ssize_t n, uint64_t offset, const std::string& device) {
        return generate<float>(key, static_cast<uint64_t>(stream), n, offset, PatternKind::kNormal, device,
                               "random_normal");
      },
      py::arg("key"), py::arg("stream"), py::arg("n"), py::arg("offset") = 0, py::arg("device") = "cpu",
      (std::string("float32 standard normal.") + doc_tail).c_str());
  m.def(
      "random_permutation",
      [](const py::bytes& key, Stream stream, py::ssize_t n) {
        check_count(n, "random_permutation", 0x7fffffff);
        const ChaChaKey k = key_from_bytes(key, "random_permutation");
        py::array_t<int32_t> out(n);
        int32_t* data = out.mutable_data();
        {
          py::gil_scoped_release release;
          keyed_permutation(k, static_cast<uint64_t>(stream), static_cast<std::size_t>(n), data);
        }
        return out;
      },
      py::arg("key"), py::arg("stream"), py::arg("n"), "int32 keyed permutation of range(n) (Fisher-Yates).");
}
