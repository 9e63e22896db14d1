// pybind11 glue for the image watermark kernels (csrc/core/image_embed.h, image_detect.h): validate shapes
// and dtypes, allocate outputs, release the GIL, call the core. Orchestration lives in
// python/provmark/image.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/image_detect.h"
#include "core/image_embed.h"

namespace py = pybind11;
using namespace provmark::image;

namespace {

std::string shape_str(const py::array& a) {
  std::string s = "[";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + "]";
}

void require_contiguous(const py::array& a, const char* fn, const char* name) {
  if (!(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(fn) + ": " + name + " must be C-contiguous");
}

PixelType pixel_type(const py::array& a, const char* fn) {
  // Compare dtypes by equivalence (not identity): unpickled arrays carry equal but distinct dtype objects,
  // and a non-native byte order must not pass as native.
  if (py::isinstance<py::array_t<uint8_t>>(a)) return PixelType::kU8;
  if (py::isinstance<py::array_t<float>>(a)) return PixelType::kF32;
  if (py::isinstance<py::array_t<double>>(a)) return PixelType::kF64;
  throw py::type_error(std::string(fn) + ": pixels must be uint8, float32 or float64 (native byte order), got " +
                       std::string(py::str(a.dtype())));
}

// images: [H, W], [H, W, C] (batch = false) or [N, H, W], [N, H, W, C] (batch = true).
ImageBatch batch_of(const py::array& a, bool batch, const char* fn) {
  require_contiguous(a, fn, "image");
  const int lead = batch ? 1 : 0;
  if (a.ndim() != 2 + lead && a.ndim() != 3 + lead)
    throw std::invalid_argument(std::string(fn) + ": image must be " +
                                (batch ? "[N, H, W(, C)]" : "[H, W(, C)]") + ", got " + shape_str(a));
  ImageBatch b;
  b.data = a.data();
  b.type = pixel_type(a, fn);
  b.n = batch ? static_cast<std::size_t>(a.shape(0)) : 1;
  b.height = static_cast<std::size_t>(a.shape(lead));
  b.width = static_cast<std::size_t>(a.shape(lead + 1));
  b.channels = a.ndim() == 3 + lead ? static_cast<int>(a.shape(lead + 2)) : 0;
  if (!(b.channels == 0 || b.channels == 1 || b.channels == 3 || b.channels == 4))
    throw std::invalid_argument(std::string(fn) + ": the channel axis must have 1, 3 or 4 entries, got " +
                                shape_str(a));
  if (b.n == 0 || b.height == 0 || b.width == 0)
    throw std::invalid_argument(std::string(fn) + ": empty image " + shape_str(a));
  return b;
}

using F32 = py::array_t<float, py::array::c_style>;

F32 plane_f32(const py::array& a, const char* fn, const char* name, int ndim_min = 2, int ndim_max = 2) {
  if (!py::isinstance<py::array_t<float>>(a))
    throw py::type_error(std::string(fn) + ": " + name + " must be float32, got " +
                         std::string(py::str(a.dtype())));
  require_contiguous(a, fn, name);
  if (a.ndim() < ndim_min || a.ndim() > ndim_max)
    throw std::invalid_argument(std::string(fn) + ": " + name +
                                " has the wrong number of dimensions: " + shape_str(a));
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    if (a.shape(i) == 0)
      throw std::invalid_argument(std::string(fn) + ": " + name + " is empty " + shape_str(a));
  return py::reinterpret_borrow<F32>(a);
}

F32 image_luma(const py::array& img, bool batch) {
  const ImageBatch b = batch_of(img, batch, "image_luma");
  F32 out = batch ? F32({b.n, b.height, b.width}) : F32({b.height, b.width});
  float* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    luma(b, o);
  }
  return out;
}

F32 image_mask(const py::array& y_any) {
  const F32 y = plane_f32(y_any, "image_mask", "y", 2, 3);
  const std::size_t n = y.ndim() == 3 ? y.shape(0) : 1;
  const std::size_t h = y.shape(y.ndim() - 2), w = y.shape(y.ndim() - 1);
  F32 out = y.ndim() == 3 ? F32({n, h, w}) : F32({h, w});
  const float* src = y.data();
  float* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    texture_mask(src, n, h, w, o);
  }
  return out;
}

F32 image_resample(const py::array& y_any, py::ssize_t out_h, py::ssize_t out_w) {
  const F32 y = plane_f32(y_any, "image_resample", "y");
  const py::ssize_t h = y.shape(0), w = y.shape(1);
  if (out_h < 1 || out_w < 1 || out_h > h || out_w > w)
    throw std::invalid_argument(
        "image_resample: output size must be within [1, input size] on both axes, got " +
        std::to_string(out_h) + "x" + std::to_string(out_w) + " for " + shape_str(y));
  F32 out({out_h, out_w});
  const float* src = y.data();
  float* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    resample_area(src, h, w, o, out_h, out_w);
  }
  return out;
}

py::tuple image_whiten(const py::array& y_any, double chip, const py::object& den_obj) {
  const F32 y = plane_f32(y_any, "image_whiten", "y");
  const std::size_t h = y.shape(0), w = y.shape(1);
  if (!(chip > 0.0) || !std::isfinite(chip))
    throw std::invalid_argument("image_whiten: chip must be a positive number, got " + std::to_string(chip));
  F32 den_in;
  const float* den_ptr = nullptr;
  if (!den_obj.is_none()) {
    den_in = plane_f32(py::reinterpret_borrow<py::array>(den_obj), "image_whiten", "den");
    if (den_in.shape(0) != y.shape(0) || den_in.shape(1) != y.shape(1))
      throw std::invalid_argument("image_whiten: den must have the shape of y " + shape_str(y) + ", got " +
                                  shape_str(den_in));
    den_ptr = den_in.data();
  }
  F32 out({h, w}), den_out({h, w});
  const float* src = y.data();
  float* o = out.mutable_data();
  float* d = den_out.mutable_data();
  {
    py::gil_scoped_release release;
    whiten(src, h, w, chip, den_ptr, o, d);
  }
  return py::make_tuple(out, den_out);
}

py::array_t<double> image_fold(const py::array& w_any, double period, double theta, int side) {
  const F32 wv = plane_f32(w_any, "image_fold", "w");
  if (!(period > 0.0) || !std::isfinite(period) || !std::isfinite(theta))
    throw std::invalid_argument("image_fold: period must be > 0 and theta finite");
  if (side < 1 || side > 4096) throw std::invalid_argument("image_fold: side must be in [1, 4096]");
  py::array_t<double> out({side, side});
  FoldParams p;
  p.w = wv.data();
  p.height = wv.shape(0);
  p.width = wv.shape(1);
  p.period = period;
  p.theta = theta;
  p.side = side;
  p.out = out.mutable_data();
  {
    py::gil_scoped_release release;
    fold(p);
  }
  return out;
}

py::array image_embed_apply(const py::array& img, const py::array& mask_any, const py::array& tiles_any,
                            double chip, double target_rms) {
  const F32 mask = plane_f32(mask_any, "image_embed_apply", "mask", 2, 3);
  const bool batch = mask.ndim() == 3;
  const ImageBatch b = batch_of(img, batch, "image_embed_apply");
  if ((batch && static_cast<std::size_t>(mask.shape(0)) != b.n) ||
      static_cast<std::size_t>(mask.shape(mask.ndim() - 2)) != b.height ||
      static_cast<std::size_t>(mask.shape(mask.ndim() - 1)) != b.width)
    throw std::invalid_argument("image_embed_apply: mask " + shape_str(mask) + " does not match image " +
                                shape_str(img));
  const F32 tiles = plane_f32(tiles_any, "image_embed_apply", "tiles", 2, 3);
  const std::size_t n_tiles = tiles.ndim() == 3 ? tiles.shape(0) : 1;
  if (tiles.shape(tiles.ndim() - 1) != kTile || tiles.shape(tiles.ndim() - 2) != kTile || n_tiles != b.n ||
      (tiles.ndim() == 3) != batch)
    throw std::invalid_argument("image_embed_apply: tiles must be [" + std::string(batch ? "N, " : "") +
                                std::to_string(kTile) + ", " + std::to_string(kTile) + "], got " +
                                shape_str(tiles));
  if (!(chip > 0.0) || !std::isfinite(chip))
    throw std::invalid_argument("image_embed_apply: chip must be > 0");
  if (!(target_rms >= 0.0) || !std::isfinite(target_rms))
    throw std::invalid_argument("image_embed_apply: target_rms must be >= 0");
  std::vector<py::ssize_t> shape(img.shape(), img.shape() + img.ndim());
  py::array out(img.dtype(), shape);
  EmbedApplyParams p;
  p.in = b;
  p.out = out.mutable_data();
  p.mask = mask.data();
  p.tiles = tiles.data();
  p.chip = chip;
  p.target_rms = target_rms;
  {
    py::gil_scoped_release release;
    embed_apply(p);
  }
  return out;
}

}  // namespace

void register_image(py::module_& m) {
  m.def("image_luma", &image_luma, py::arg("image"), py::arg("batch") = false,
        "Luma in grey levels, float32 [H, W] of uint8 / float (0..1) pixels [H, W(, C)]; with batch=True, "
        "[N, H, W] of [N, H, W(, C)].");
  m.def("image_mask", &image_mask, py::arg("y"), "Texture mask of luma [H, W] or [N, H, W] (float32).");
  m.def("image_resample", &image_resample, py::arg("y"), py::arg("out_h"), py::arg("out_w"),
        "Area-average downscale of a float32 [H, W] plane.");
  m.def("image_whiten", &image_whiten, py::arg("y"), py::arg("chip"), py::arg("den") = py::none(),
        "Band-pass whitening with local normalisation; returns (whitened, denominator), float32 [H, W].");
  m.def("image_fold", &image_fold, py::arg("w"), py::arg("period"), py::arg("theta"),
        py::arg("side") = kTile * kBins,
        "Fold a whitened float32 [H, W] plane onto the lattice: float64 [side, side] bin means.");
  m.def("image_embed_apply", &image_embed_apply, py::arg("image"), py::arg("mask"), py::arg("tiles"),
        py::arg("chip"), py::arg("target_rms"),
        "Add gain * mask * tiled pattern to the colour channels (same shape and dtype out). A 3-D mask "
        "[N, H, W] means a batch: image [N, H, W(, C)] and tiles [N, 32, 32].");
}
