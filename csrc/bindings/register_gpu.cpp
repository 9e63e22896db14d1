// pybind11 glue for the CUDA image kernels (csrc/cuda/image_cuda.h). Internal API for python/provmark/gpu.py:
// device memory crosses as integer pointers and CUDA streams as integer handles (STYLE item 9), so provmark
// never links or imports torch / CuPy. gpu.py reads them from __cuda_array_interface__ and checks shapes,
// strides and dtypes; the core checks sizes again and that every pointer is device memory. In a build without
// CUDA every function raises provmark.CudaError (csrc/cuda/unavailable.cpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/image_cuda.h"

namespace py = pybind11;
using namespace provmark::image;
namespace pc = provmark::image::cuda;

namespace {

void* as_ptr(std::uintptr_t p) { return reinterpret_cast<void*>(p); }

pc::SampleType sample_type(const std::string& name) {
  if (name == "uint8") return pc::SampleType::kU8;
  if (name == "uint16") return pc::SampleType::kU16;
  if (name == "float32") return pc::SampleType::kF32;
  if (name == "float64") return pc::SampleType::kF64;
  if (name == "float16") return pc::SampleType::kF16;
  if (name == "bfloat16") return pc::SampleType::kBF16;
  throw py::type_error(
      "CudaFrameView: dtype must be 'uint8', 'uint16', 'float16', 'bfloat16', 'float32' or "
      "'float64', got '" +
      name + "'");
}

std::string sample_name(pc::SampleType t) {
  switch (t) {
    case pc::SampleType::kU8:
      return "uint8";
    case pc::SampleType::kU16:
      return "uint16";
    case pc::SampleType::kF32:
      return "float32";
    case pc::SampleType::kF64:
      return "float64";
    case pc::SampleType::kF16:
      return "float16";
    case pc::SampleType::kBF16:
      return "bfloat16";
  }
  return "?";
}

// A writable, C-contiguous host array of exactly `bytes` bytes.
void* host_buffer(const py::array& a, std::size_t bytes, bool writable, const char* fn) {
  if (!(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(fn) + ": host array must be C-contiguous");
  if (writable && !a.writeable()) throw std::invalid_argument(std::string(fn) + ": host array is read-only");
  if (static_cast<std::size_t>(a.nbytes()) != bytes)
    throw std::invalid_argument(std::string(fn) + ": host array has " + std::to_string(a.nbytes()) +
                                " bytes, expected " + std::to_string(bytes));
  return const_cast<void*>(a.data());
}

}  // namespace

void register_gpu(py::module_& m) {
  py::class_<pc::FrameView>(
      m, "CudaFrameView",
      "N same-size frames in device memory: pointer, sample type, sizes and element strides "
      "(internal; built by provmark.gpu).")
      .def(py::init([](std::uintptr_t ptr, const std::string& dtype, long long n, long long height,
                       long long width, int channels, long long stride_n, long long stride_y,
                       long long stride_x, long long stride_c, float scale, int shift, float vmax, float lo) {
             pc::FrameView v;
             v.data = as_ptr(ptr);
             v.type = sample_type(dtype);
             v.n = n;
             v.height = height;
             v.width = width;
             v.channels = channels;
             v.stride_n = stride_n;
             v.stride_y = stride_y;
             v.stride_x = stride_x;
             v.stride_c = stride_c;
             v.scale = scale;
             v.shift = shift;
             v.vmax = vmax;
             v.lo = lo;
             return v;
           }),
           py::arg("ptr"), py::arg("dtype"), py::arg("n"), py::arg("height"), py::arg("width"),
           py::arg("channels"), py::arg("stride_n"), py::arg("stride_y"), py::arg("stride_x"),
           py::arg("stride_c"), py::arg("scale"), py::arg("shift") = 0, py::arg("vmax") = 0.0f,
           py::arg("lo") = 0.0f)
      .def_property_readonly("ptr",
                             [](const pc::FrameView& v) { return reinterpret_cast<std::uintptr_t>(v.data); })
      .def_property_readonly("dtype", [](const pc::FrameView& v) { return sample_name(v.type); })
      .def_property_readonly("lo", [](const pc::FrameView& v) { return v.lo; })
      .def_property_readonly(
          "shape", [](const pc::FrameView& v) { return py::make_tuple(v.n, v.height, v.width, v.channels); })
      .def_property_readonly("strides",
                             [](const pc::FrameView& v) {
                               return py::make_tuple(v.stride_n, v.stride_y, v.stride_x, v.stride_c);
                             })
      .def("__repr__", [](const pc::FrameView& v) {
        return "CudaFrameView(" + sample_name(v.type) + ", n=" + std::to_string(v.n) + ", " +
               std::to_string(v.height) + "x" + std::to_string(v.width) + "x" + std::to_string(v.channels) +
               ")";
      });

  m.def(
      "cuda_pointer_device",
      [](std::uintptr_t ptr) {
        py::gil_scoped_release release;
        return pc::pointer_device(as_ptr(ptr));
      },
      py::arg("ptr"), "Index of the CUDA device that owns `ptr` (ValueError for host memory).");
  m.def(
      "cuda_image_luma",
      [](const pc::FrameView& v, std::uintptr_t out, std::uintptr_t stream) {
        py::gil_scoped_release release;
        pc::luma(v, static_cast<float*>(as_ptr(out)), stream);
      },
      py::arg("frames"), py::arg("out"), py::arg("stream") = 0,
      "Luma in grey levels into out[N, H, W] (device float32).");
  m.def(
      "cuda_image_mask",
      [](const pc::FrameView& v, std::uintptr_t out, std::uintptr_t stream) {
        py::gil_scoped_release release;
        pc::texture_mask(v, static_cast<float*>(as_ptr(out)), stream);
      },
      py::arg("frames"), py::arg("out"), py::arg("stream") = 0,
      "Texture mask of each frame's luma into out[N, H, W] (device float32).");
  m.def(
      "cuda_image_resample",
      [](const pc::FrameView& v, std::uintptr_t out, long long out_h, long long out_w,
         std::uintptr_t stream) {
        py::gil_scoped_release release;
        pc::resample_area(v, static_cast<float*>(as_ptr(out)), out_h, out_w, stream);
      },
      py::arg("frames"), py::arg("out"), py::arg("out_h"), py::arg("out_w"), py::arg("stream") = 0,
      "Area-resampled luma into out[N, out_h, out_w] (device float32).");
  m.def(
      "cuda_image_blur",
      [](std::uintptr_t src, long long n, long long h, long long w, double sigma, std::uintptr_t out,
         std::uintptr_t stream) {
        py::gil_scoped_release release;
        pc::gaussian_blur(static_cast<const float*>(as_ptr(src)), n, h, w, sigma,
                          static_cast<float*>(as_ptr(out)), stream);
      },
      py::arg("src"), py::arg("n"), py::arg("height"), py::arg("width"), py::arg("sigma"), py::arg("out"),
      py::arg("stream") = 0, "Gaussian blur of N contiguous float32 planes (device).");
  m.def(
      "cuda_image_whiten",
      [](std::uintptr_t y, long long n, long long h, long long w, double chip, std::uintptr_t out,
         std::uintptr_t den_in, std::uintptr_t den_out, std::uintptr_t stream) {
        py::gil_scoped_release release;
        pc::whiten(static_cast<const float*>(as_ptr(y)), n, h, w, chip,
                   static_cast<const float*>(as_ptr(den_in)), static_cast<float*>(as_ptr(out)),
                   static_cast<float*>(as_ptr(den_out)), stream);
      },
      py::arg("y"), py::arg("n"), py::arg("height"), py::arg("width"), py::arg("chip"), py::arg("out"),
      py::arg("den_in") = 0, py::arg("den_out") = 0, py::arg("stream") = 0,
      "Whitening of N contiguous float32 planes (device); 0 for no den_in / den_out.");
  m.def(
      "cuda_image_fold",
      [](std::uintptr_t w, long long n, long long h, long long wd, double period, double theta,
         std::uintptr_t out, int side, std::uintptr_t stream) {
        pc::FoldParams p;
        p.w = static_cast<const float*>(as_ptr(w));
        p.n = n;
        p.height = h;
        p.width = wd;
        p.period = period;
        p.theta = theta;
        p.side = side;
        p.out = static_cast<double*>(as_ptr(out));
        py::gil_scoped_release release;
        pc::fold(p, stream);
      },
      py::arg("w"), py::arg("n"), py::arg("height"), py::arg("width"), py::arg("period"), py::arg("theta"),
      py::arg("out"), py::arg("side") = kTile * kBins, py::arg("stream") = 0,
      "Fold N whitened planes into out[N, side, side] (device float64).");
  m.def(
      "cuda_image_fold_many",
      [](const py::array& planes_any, const py::array& periods_any, const py::array& thetas_any, long long h,
         long long wd, std::uintptr_t out, int side, std::uintptr_t stream) {
        if (!py::isinstance<py::array_t<std::uint64_t>>(planes_any) ||
            !py::isinstance<py::array_t<double>>(periods_any) ||
            !py::isinstance<py::array_t<double>>(thetas_any))
          throw py::type_error(
              "cuda_image_fold_many: planes must be uint64, periods and thetas float64 arrays");
        const auto planes = py::reinterpret_borrow<py::array>(planes_any);
        const auto periods = py::reinterpret_borrow<py::array>(periods_any);
        const auto thetas = py::reinterpret_borrow<py::array>(thetas_any);
        if (planes.ndim() != 1 || periods.ndim() != 1 || thetas.ndim() != 1 || planes.shape(0) < 1 ||
            periods.shape(0) != planes.shape(0) || thetas.shape(0) != planes.shape(0))
          throw std::invalid_argument(
              "cuda_image_fold_many: planes, periods and thetas must be 1-D arrays of one length >= 1");
        const std::size_t k = static_cast<std::size_t>(planes.shape(0));
        const auto* pp = static_cast<const std::uint64_t*>(
            host_buffer(planes, k * sizeof(std::uint64_t), false, "cuda_image_fold_many"));
        const auto* pe = static_cast<const double*>(
            host_buffer(periods, k * sizeof(double), false, "cuda_image_fold_many"));
        const auto* th = static_cast<const double*>(
            host_buffer(thetas, k * sizeof(double), false, "cuda_image_fold_many"));
        std::vector<pc::FoldHypothesis> hyps(k);
        for (std::size_t i = 0; i < k; ++i)
          hyps[i] = pc::FoldHypothesis{static_cast<const float*>(as_ptr(static_cast<std::uintptr_t>(pp[i]))),
                                       pe[i], th[i]};
        pc::FoldBatch b;
        b.hyps_host = hyps.data();
        b.n_hyp = static_cast<long long>(k);
        b.height = h;
        b.width = wd;
        b.side = side;
        b.out = static_cast<double*>(as_ptr(out));
        py::gil_scoped_release release;
        pc::fold_batch(b, stream);
      },
      py::arg("planes"), py::arg("periods"), py::arg("thetas"), py::arg("height"), py::arg("width"),
      py::arg("out"), py::arg("side") = kTile * kBins, py::arg("stream") = 0,
      "Fold K hypotheses (plane pointer k: a whitened [height, width] float32 plane, lattice periods[k], "
      "thetas[k]) into out[K, side, side] (device float64) in one launch.");
  m.def(
      "cuda_image_sync",
      [](std::uintptr_t tiles, long long n, std::uintptr_t spectra, std::uintptr_t out,
         std::uintptr_t stream) {
        pc::SyncBatch b;
        b.tiles = static_cast<const double*>(as_ptr(tiles));
        b.n = n;
        b.spectra = static_cast<const float*>(as_ptr(spectra));
        b.out = static_cast<double*>(as_ptr(out));
        py::gil_scoped_release release;
        pc::sync_batch(b, stream);
      },
      py::arg("tiles"), py::arg("n"), py::arg("spectra"), py::arg("out"), py::arg("stream") = 0,
      "Sync statistic of n folded tiles [n, 128, 128] (device float64) against the template spectra [2, 128, "
      "128, 2] (device float32, bit-reversed order) into out[n, 4] (device float64: z, shift row, shift "
      "column, "
      "flip); queued, not synchronised.");
  m.def(
      "cuda_image_lattice_scores",
      [](std::uintptr_t w, long long h, long long wd, long long fft_h, long long fft_w, double sigma_y,
         double sigma_x, const py::array& notch_rows_any, const py::array& notch_cols_any,
         const py::array& periods_any, const py::array& thetas_any, std::uintptr_t stream) {
        const char* fn = "cuda_image_lattice_scores";
        if (!py::isinstance<py::array_t<std::uint8_t>>(notch_rows_any) ||
            !py::isinstance<py::array_t<std::uint8_t>>(notch_cols_any) ||
            !py::isinstance<py::array_t<double>>(periods_any) ||
            !py::isinstance<py::array_t<double>>(thetas_any))
          throw py::type_error(std::string(fn) +
                               ": notches must be uint8 arrays, periods and thetas float64 arrays");
        const auto nr = py::reinterpret_borrow<py::array>(notch_rows_any);
        const auto nc = py::reinterpret_borrow<py::array>(notch_cols_any);
        const auto pe = py::reinterpret_borrow<py::array>(periods_any);
        const auto th = py::reinterpret_borrow<py::array>(thetas_any);
        if (nr.ndim() != 1 || nc.ndim() != 1 || pe.ndim() != 1 || th.ndim() != 1)
          throw std::invalid_argument(std::string(fn) + ": notches, periods and thetas must be 1-D arrays");
        if (fft_h < 1 || fft_w < 1 || nr.shape(0) != fft_h || nc.shape(0) != fft_w / 2 + 1)
          throw std::invalid_argument(
              std::string(fn) + ": notch_rows must have fft_h entries and notch_cols " + "fft_w / 2 + 1");
        if (pe.shape(0) < 1 || th.shape(0) < 1)
          throw std::invalid_argument(std::string(fn) + ": the period and angle grids must not be empty");
        const std::size_t np_ = static_cast<std::size_t>(pe.shape(0)),
                          nt = static_cast<std::size_t>(th.shape(0));
        py::array_t<double> out({static_cast<py::ssize_t>(np_), static_cast<py::ssize_t>(nt)});
        pc::LatticeParams p;
        p.w = static_cast<const float*>(as_ptr(w));
        p.height = h;
        p.width = wd;
        p.fft_h = fft_h;
        p.fft_w = fft_w;
        p.sigma_y = sigma_y;
        p.sigma_x = sigma_x;
        p.notch_rows_host =
            static_cast<const std::uint8_t*>(host_buffer(nr, static_cast<std::size_t>(fft_h), false, fn));
        p.notch_cols_host = static_cast<const std::uint8_t*>(
            host_buffer(nc, static_cast<std::size_t>(fft_w / 2 + 1), false, fn));
        p.periods_host = static_cast<const double*>(host_buffer(pe, np_ * sizeof(double), false, fn));
        p.n_periods = static_cast<long long>(np_);
        p.thetas_host = static_cast<const double*>(host_buffer(th, nt * sizeof(double), false, fn));
        p.n_thetas = static_cast<long long>(nt);
        p.out_host = out.mutable_data();
        {
          py::gil_scoped_release release;
          pc::lattice_scores(p, stream);
        }
        return out;
      },
      py::arg("w"), py::arg("height"), py::arg("width"), py::arg("fft_h"), py::arg("fft_w"),
      py::arg("sigma_y"), py::arg("sigma_x"), py::arg("notch_rows"), py::arg("notch_cols"),
      py::arg("periods"), py::arg("thetas"), py::arg("stream") = 0,
      "Lattice scores [len(periods), len(thetas)] (host float64) of the whitened plane w [height, width] "
      "(device "
      "float32): power spectrum zero-padded to fft_h x fft_w (sizes with prime factors 2, 3, 5 only), "
      "flattened (Gaussian sigmas in bins), notched (uint8 masks of the fft_h rows and fft_w / 2 + 1 columns "
      "of the half spectrum), inverse FFT, scored as image_lattice_scores; synchronises.");
  m.def(
      "cuda_image_reliability",
      [](std::uintptr_t w, std::uintptr_t den, long long n, long long h, long long wd, double floor,
         std::uintptr_t out, std::uintptr_t stream) {
        py::gil_scoped_release release;
        pc::reliability(static_cast<const float*>(as_ptr(w)), static_cast<const float*>(as_ptr(den)), n, h,
                        wd, floor, static_cast<float*>(as_ptr(out)), stream);
      },
      py::arg("w"), py::arg("den"), py::arg("n"), py::arg("height"), py::arg("width"), py::arg("floor"),
      py::arg("out"), py::arg("stream") = 0,
      "Reliability-weighted planes out[N, H, W] of N whitened planes and their denominators (device "
      "float32).");
  m.def(
      "cuda_sum_planes",
      [](std::uintptr_t src, long long n, long long plane, std::uintptr_t out, std::uintptr_t stream) {
        py::gil_scoped_release release;
        pc::sum_planes(static_cast<const float*>(as_ptr(src)), n, plane, static_cast<double*>(as_ptr(out)),
                       stream);
      },
      py::arg("src"), py::arg("n"), py::arg("plane"), py::arg("out"), py::arg("stream") = 0,
      "out[plane] (device float64) = sum of N contiguous float32 planes.");
  m.def(
      "cuda_image_embed",
      [](const pc::FrameView& in, const pc::FrameView& out, const py::array& tiles_any, double chip,
         double target_rms, std::uintptr_t stream, double flat_rms) {
        if (!py::isinstance<py::array_t<float>>(tiles_any))
          throw py::type_error("cuda_image_embed: tiles must be float32");
        const auto tiles = py::reinterpret_borrow<py::array>(tiles_any);
        if (tiles.ndim() != 3 || tiles.shape(0) != in.n || tiles.shape(1) != kTile || tiles.shape(2) != kTile)
          throw std::invalid_argument("cuda_image_embed: tiles must be [N, 32, 32] for N = " +
                                      std::to_string(in.n));
        pc::EmbedParams p;
        p.in = in;
        p.out = out;
        p.tiles_host = static_cast<const float*>(
            host_buffer(tiles, static_cast<std::size_t>(in.n) * kTile * kTile * sizeof(float), false,
                        "cuda_image_embed"));
        p.chip = chip;
        p.target_rms = target_rms;
        p.flat_rms = flat_rms;
        py::gil_scoped_release release;
        pc::embed(p, stream);
      },
      py::arg("frames"), py::arg("out"), py::arg("tiles"), py::arg("chip"), py::arg("target_rms"),
      py::arg("stream") = 0, py::arg("flat_rms") = 0.0,
      "Mark N frames into `out` (may be `frames` itself); queued, not synchronised. flat_rms > 0: the flat "
      "pixels' limit, as image_embed_fused.");
  m.def(
      "cuda_copy_to_device",
      [](std::uintptr_t dst, const py::array& src, std::uintptr_t stream) {
        const void* h =
            host_buffer(src, static_cast<std::size_t>(src.nbytes()), false, "cuda_copy_to_device");
        const std::size_t bytes = static_cast<std::size_t>(src.nbytes());
        if (bytes == 0) return;
        py::gil_scoped_release release;
        pc::copy_to_device(as_ptr(dst), h, bytes, stream);
      },
      py::arg("dst"), py::arg("src"), py::arg("stream") = 0,
      "Copy the C-contiguous host array src (src.nbytes bytes) to device pointer dst on the stream.");
  m.def(
      "cuda_copy_to_host",
      [](std::uintptr_t src, py::array& dst, std::uintptr_t stream) {
        void* d = host_buffer(dst, static_cast<std::size_t>(dst.nbytes()), true, "cuda_copy_to_host");
        const std::size_t bytes = static_cast<std::size_t>(dst.nbytes());
        py::gil_scoped_release release;
        pc::copy_to_host(d, as_ptr(src), bytes, stream);
      },
      py::arg("src"), py::arg("dst"), py::arg("stream") = 0,
      "Copy dst.nbytes bytes from device pointer src into the host array dst, then synchronise the stream.");
}
