// provmark._core: the native module. Each area registers its functions from its own register_*.cpp;
// C++ exceptions are mapped to Python ones here, in one place.
#include <pybind11/pybind11.h>

#include "core/common.h"

namespace py = pybind11;

void register_backend(py::module_& m);
void register_rng(py::module_& m);
void register_ecc(py::module_& m);
void register_image(py::module_& m);
void register_gpu(py::module_& m);
void register_audio(py::module_& m);
void register_gpu_audio(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "provmark native core (C++17, optional CUDA). Internal: use the provmark package API.";
#ifdef PROVMARK_VERSION
  m.attr("__version__") = PROVMARK_VERSION;
#endif
  static py::exception<provmark::CudaError> cuda_error(m, "CudaError", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const provmark::CudaError& e) {
      py::set_error(cuda_error, e.what());
    }
  });

  register_backend(m);
  register_rng(m);
  register_ecc(m);
  register_image(m);
  register_gpu(m);
  register_audio(m);
  register_gpu_audio(m);
}
