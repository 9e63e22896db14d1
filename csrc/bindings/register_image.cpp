// pybind11 glue for the image watermark kernels (csrc/core/image_embed.h, image_fused.h, image_detect.h):
// validate shapes and dtypes, allocate outputs, release the GIL, call the core. Orchestration lives in
// python/provmark/image.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "core/image_detect.h"
#include "core/image_embed.h"
#include "core/image_fused.h"
#include "core/image_lattice.h"

namespace py = pybind11;
using namespace provmark::image;

using provmark::bindings::shape_str;

namespace {

// The embedding passes' scalars: chip size in pixels and the target RMS of the luma delta.
void check_gain_args(double chip, double target_rms, const char* fn) {
  if (!(chip > 0.0) || !std::isfinite(chip))
    throw std::invalid_argument(std::string(fn) + ": chip must be > 0");
  if (!(target_rms >= 0.0) || !std::isfinite(target_rms))
    throw std::invalid_argument(std::string(fn) + ": target_rms must be >= 0");
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
  throw py::type_error(std::string(fn) +
                       ": pixels must be uint8, float32 or float64 (native byte order), got " +
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
  check_gain_args(chip, target_rms, "image_embed_apply");
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

using U16 = py::array_t<uint16_t, py::array::c_style>;

py::tuple image_embed_analyse(const py::array& img, py::ssize_t work_h, py::ssize_t work_w) {
  const ImageBatch b = batch_of(img, false, "image_embed_analyse");
  const bool work = work_h != 0 || work_w != 0;
  if (work && (work_h < 1 || work_w < 1 || static_cast<std::size_t>(work_h) > b.height ||
               static_cast<std::size_t>(work_w) > b.width))
    throw std::invalid_argument(
        "image_embed_analyse: the working size must be within [1, input size] on both "
        "axes (or 0 x 0 for none), got " +
        std::to_string(work_h) + "x" + std::to_string(work_w) + " for " + shape_str(img));
  U16 mask_q({b.height, b.width});
  AnalyseParams p;
  p.in = b;
  p.mask_q = mask_q.mutable_data();
  py::object yw = py::none(), mw = py::none();
  if (work) {
    F32 y({work_h, work_w}), m({work_h, work_w});
    p.work_h = static_cast<std::size_t>(work_h);
    p.work_w = static_cast<std::size_t>(work_w);
    p.y_work = y.mutable_data();
    p.m_work = m.mutable_data();
    yw = y;
    mw = m;
  }
  {
    py::gil_scoped_release release;
    embed_analyse(p);
  }
  return py::make_tuple(mask_q, yw, mw);
}

F32 image_luma_work(const py::array& img, py::ssize_t work_h, py::ssize_t work_w) {
  const ImageBatch b = batch_of(img, false, "image_luma_work");
  if (work_h < 1 || work_w < 1 || static_cast<std::size_t>(work_h) > b.height ||
      static_cast<std::size_t>(work_w) > b.width)
    throw std::invalid_argument(
        "image_luma_work: the working size must be within [1, input size] on both axes, got " +
        std::to_string(work_h) + "x" + std::to_string(work_w) + " for " + shape_str(img));
  F32 y({work_h, work_w});
  AnalyseParams p;
  p.in = b;
  p.work_h = static_cast<std::size_t>(work_h);
  p.work_w = static_cast<std::size_t>(work_w);
  p.y_work = y.mutable_data();
  {
    py::gil_scoped_release release;
    embed_analyse(p);
  }
  return y;
}

py::array image_embed_fused(const py::array& img, const py::array& mask_any, const py::array& tile_any,
                            double chip, double target_rms, double flat_rms) {
  const ImageBatch b = batch_of(img, false, "image_embed_fused");
  if (!py::isinstance<py::array_t<uint16_t>>(mask_any))
    throw py::type_error("image_embed_fused: mask_q must be uint16 (from image_embed_analyse), got " +
                         std::string(py::str(mask_any.dtype())));
  require_contiguous(mask_any, "image_embed_fused", "mask_q");
  const U16 mask = py::reinterpret_borrow<U16>(mask_any);
  if (mask.ndim() != 2 || static_cast<std::size_t>(mask.shape(0)) != b.height ||
      static_cast<std::size_t>(mask.shape(1)) != b.width)
    throw std::invalid_argument("image_embed_fused: mask_q " + shape_str(mask) + " does not match image " +
                                shape_str(img));
  const F32 tile = plane_f32(tile_any, "image_embed_fused", "tile");
  if (tile.shape(0) != kTile || tile.shape(1) != kTile)
    throw std::invalid_argument("image_embed_fused: tile must be [" + std::to_string(kTile) + ", " +
                                std::to_string(kTile) + "], got " + shape_str(tile));
  check_gain_args(chip, target_rms, "image_embed_fused");
  std::vector<py::ssize_t> shape(img.shape(), img.shape() + img.ndim());
  py::array out(img.dtype(), shape);
  FusedApplyParams p;
  p.in = b;
  p.out = out.mutable_data();
  p.mask_q = mask.data();
  p.tile = tile.data();
  p.chip = chip;
  p.target_rms = target_rms;
  p.flat_rms = flat_rms;
  {
    py::gil_scoped_release release;
    embed_apply_fused(p);
  }
  return out;
}

py::tuple image_pattern(const py::array& tile_any, py::ssize_t height, py::ssize_t width, double chip,
                        const py::object& mask_obj) {
  const F32 tile = plane_f32(tile_any, "image_pattern", "tile");
  if (tile.shape(0) != kTile || tile.shape(1) != kTile)
    throw std::invalid_argument("image_pattern: tile must be [" + std::to_string(kTile) + ", " +
                                std::to_string(kTile) + "], got " + shape_str(tile));
  if (height < 1 || width < 1 || height > (1 << 20) || width > (1 << 20))
    throw std::invalid_argument("image_pattern: height and width must be in [1, 2^20]");
  if (!(chip > 0.0) || !std::isfinite(chip)) throw std::invalid_argument("image_pattern: chip must be > 0");
  F32 mask;
  const float* mptr = nullptr;
  if (!mask_obj.is_none()) {
    mask = plane_f32(py::reinterpret_borrow<py::array>(mask_obj), "image_pattern", "mask");
    if (mask.shape(0) != height || mask.shape(1) != width)
      throw std::invalid_argument("image_pattern: mask must be [height, width], got " + shape_str(mask));
    mptr = mask.data();
  }
  F32 out({height, width});
  float* o = out.mutable_data();
  const float* t = tile.data();
  double rms;
  {
    py::gil_scoped_release release;
    rms = render_pattern(t, height, width, chip, mptr, o);
  }
  return py::make_tuple(out, rms);
}

F32 image_flatten_spectrum(const py::array& p_any, double sigma_y, double sigma_x) {
  const F32 p = plane_f32(p_any, "image_flatten_spectrum", "p");
  for (double sigma : {sigma_y, sigma_x})
    if (!(sigma > 0.0) || !std::isfinite(sigma) || sigma > 100.0)
      throw std::invalid_argument("image_flatten_spectrum: sigmas must be in (0, 100], got " +
                                  std::to_string(sigma));
  F32 out({p.shape(0), p.shape(1)});
  const float* src = p.data();
  float* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    flatten_spectrum(src, p.shape(0), p.shape(1), sigma_y, sigma_x, o);
  }
  return out;
}

using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;

py::array_t<double> image_lattice_scores(const py::array& a_any, const F64& periods, const F64& thetas) {
  const F32 a = plane_f32(a_any, "image_lattice_scores", "a");
  if (periods.ndim() != 1 || thetas.ndim() != 1 || periods.size() == 0 || thetas.size() == 0)
    throw std::invalid_argument("image_lattice_scores: periods and thetas must be non-empty 1-D arrays");
  for (py::ssize_t i = 0; i < periods.size(); ++i)
    if (!(periods.data()[i] > 0.0) || !std::isfinite(periods.data()[i]))
      throw std::invalid_argument("image_lattice_scores: periods must be positive and finite");
  for (py::ssize_t i = 0; i < thetas.size(); ++i)
    if (!std::isfinite(thetas.data()[i]))
      throw std::invalid_argument("image_lattice_scores: thetas must be finite");
  py::array_t<double> out({periods.size(), thetas.size()});
  LatticeScoreParams p;
  p.a = a.data();
  p.height = a.shape(0);
  p.width = a.shape(1);
  p.periods = periods.data();
  p.n_periods = periods.size();
  p.thetas = thetas.data();
  p.n_thetas = thetas.size();
  p.out = out.mutable_data();
  {
    py::gil_scoped_release release;
    lattice_scores(p);
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
  m.def("image_embed_analyse", &image_embed_analyse, py::arg("image"), py::arg("work_h") = 0,
        py::arg("work_w") = 0,
        "Pass A of the fused embedder, one picture [H, W(, C)]: (mask_q uint16 [H, W], luma and mask "
        "area-resampled to [work_h, work_w] float32, or None for 0 x 0).");
  m.def("image_luma_work", &image_luma_work, py::arg("image"), py::arg("work_h"), py::arg("work_w"),
        "Luma of one picture [H, W(, C)] area-resampled to float32 [work_h, work_w] in one pass (equals "
        "image_resample(image_luma(image), work_h, work_w)).");
  m.def("image_embed_fused", &image_embed_fused, py::arg("image"), py::arg("mask_q"), py::arg("tile"),
        py::arg("chip"), py::arg("target_rms"), py::arg("flat_rms") = 0.0,
        "Pass B of the fused embedder: add gain * mask * tiled pattern to the colour channels of one picture "
        "(same shape and dtype out); equals image_embed_apply with the dequantised mask. flat_rms > 0 limits "
        "the delta's RMS on flat pixels (mask_q == 0) to flat_rms grey levels and moves their share to the "
        "textured ones (at most 2x their gain; image_math.h flat_gains).");
  m.def("image_pattern", &image_pattern, py::arg("tile"), py::arg("height"), py::arg("width"),
        py::arg("chip"), py::arg("mask") = py::none(),
        "(mask * tiled pattern float32 [height, width], its RMS); mask None means 1.");
  m.def(
      "image_flatten_spectrum", &image_flatten_spectrum, py::arg("p"), py::arg("sigma_y"), py::arg("sigma_x"),
      "clip(p / (periodic Gaussian blur of p, sigmas in bins along rows / columns) - 1, -1, 8) of a float32 "
      "[H, W] power spectrum.");
  m.def("image_lattice_scores", &image_lattice_scores, py::arg("a"), py::arg("periods"), py::arg("thetas"),
        "Lattice scores float64 [len(periods), len(thetas)] on a float32 [H, W] autocorrelation.");
}
