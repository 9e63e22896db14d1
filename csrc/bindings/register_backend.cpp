#include <pybind11/pybind11.h>

#include <string>

#include "core/parallel.h"
#include "core/simd.h"
#include "cuda/backend.h"

namespace py = pybind11;

void register_backend(py::module_& m) {
  using namespace provmark;
  m.def("built_with_cuda", &built_with_cuda, "True when this build contains the CUDA backend.");
  m.def(
      "cuda_device_count",
      [] {
        std::string error;
        const int n = cuda_device_count(&error);
        return py::make_tuple(n, error.empty() ? py::object(py::none()) : py::object(py::str(error)));
      },
      "(count, error): usable CUDA devices, and why there are none (None when count > 0).");
  m.def("simd_level", [] { return std::string(simd_level_name(simd_level())); }, "SIMD level in use.");
  m.def(
      "simd_level_supported", [] { return std::string(simd_level_name(simd_level_supported())); },
      "Best SIMD level this CPU and build support.");
  m.def(
      "set_simd_level",
      [](const std::string& name) {
        if (name == "baseline") return set_simd_level(SimdLevel::kBaseline);
        if (name == "avx2") return set_simd_level(SimdLevel::kAVX2);
        throw py::value_error("set_simd_level: expected 'baseline' or 'avx2', got '" + name + "'");
      },
      py::arg("level"), "Select the SIMD level ('baseline' or 'avx2').");
  m.def("num_threads", &num_threads, "Threads used by the native core.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"), "Set the native thread count (>= 1).");
}
