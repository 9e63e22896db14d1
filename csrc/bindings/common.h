// Binding-layer helpers: argument checks and conversions shared by the register_*.cpp files.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <string>

#include "core/rng.h"

namespace provmark::bindings {

namespace py = pybind11;

// A 32-byte Python bytes key -> ChaChaKey (little-endian words). The message never echoes the value.
inline ChaChaKey key_from_bytes(const py::bytes& key, const char* func) {
  char* data = nullptr;
  py::ssize_t len = 0;
  if (PYBIND11_BYTES_AS_STRING_AND_SIZE(key.ptr(), &data, &len) != 0) throw py::error_already_set();
  if (len != 32) {
    throw py::value_error(std::string(func) + ": key must be 32 bytes, got " + std::to_string(len));
  }
  ChaChaKey k{};
  for (int i = 0; i < 8; ++i) {
    const auto* b = reinterpret_cast<const unsigned char*>(data) + 4 * i;
    k.words[i] = uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
  }
  return k;
}

// "[2, 3]": an array's shape for error messages.
inline std::string shape_str(const py::array& a) {
  std::string s = "[";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + "]";
}

inline void check_count(py::ssize_t n, const char* func, py::ssize_t limit = py::ssize_t(1) << 34) {
  if (n < 0) throw py::value_error(std::string(func) + ": n must be >= 0, got " + std::to_string(n));
  if (n > limit) throw py::value_error(std::string(func) + ": n=" + std::to_string(n) + " is too large");
}

}  // namespace provmark::bindings
