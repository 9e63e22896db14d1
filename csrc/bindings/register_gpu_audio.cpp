// pybind11 glue for the CUDA audio detector kernels (csrc/cuda/audio_cuda.h). Internal API for
// python/provmark/gpu_audio.py: device memory crosses as integer pointers and streams as integer handles;
// the small tables (band edges, chips, speeds, dither, signs) are host numpy arrays, checked here. In a build
// without CUDA every function raises provmark.CudaError (csrc/cuda/unavailable.cpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "bindings/audio_args.h"
#include "bindings/common.h"
#include "cuda/audio_cuda.h"

namespace py = pybind11;
using namespace provmark::audio;
namespace ac = provmark::audio::cuda;

using provmark::bindings::shape_str;

namespace {

template <class T>
using Host = py::array_t<T, py::array::c_style | py::array::forcecast>;

const void* as_ptr(std::uintptr_t p) { return reinterpret_cast<const void*>(p); }

template <class T>
T* dev_ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

void need_dims(const py::array& a, int ndim, const char* fn, const char* name) {
  if (a.ndim() != ndim)
    throw std::invalid_argument(std::string(fn) + ": " + name + " must have " + std::to_string(ndim) +
                                " dimensions, got " + shape_str(a));
}

SampleType sample_type(const std::string& name, const char* fn);

// The clips [B, C, n] at device address x, with element strides.
ac::ClipView clip_view(std::uintptr_t x, const std::string& dtype, long long batch, long long channels,
                       long long nsamples, long long stride_b, long long stride_c, long long stride_t,
                       const char* fn) {
  ac::ClipView v;
  v.data = as_ptr(x);
  v.type = sample_type(dtype, fn);
  v.batch = batch;
  v.channels = channels;
  v.nsamples = nsamples;
  v.stride_b = stride_b;
  v.stride_c = stride_c;
  v.stride_t = stride_t;
  return v;
}

ac::ClipOut clip_out(std::uintptr_t out, const std::string& dtype, long long stride_b, long long stride_c,
                     long long stride_t, const char* fn) {
  ac::ClipOut o;
  o.data = reinterpret_cast<void*>(out);
  o.type = sample_type(dtype, fn);
  o.stride_b = stride_b;
  o.stride_c = stride_c;
  o.stride_t = stride_t;
  return o;
}

SampleType sample_type(const std::string& name, const char* fn) {
  if (name == "float32") return SampleType::kF32;
  if (name == "float64") return SampleType::kF64;
  if (name == "int16") return SampleType::kI16;
  throw py::type_error(std::string(fn) + ": samples must be float32, float64 or int16, got '" + name + "'");
}

}  // namespace

void register_gpu_audio(py::module_& m) {
  m.def(
      "cuda_audio_analysis",
      [](std::uintptr_t x, const std::string& dtype, long long batch, long long channels, long long nsamples,
         long long stride_b, long long stride_c, long long stride_t, int hop, int top, std::uintptr_t cs,
         std::uintptr_t stream) {
        const ac::ClipView v = clip_view(x, dtype, batch, channels, nsamples, stride_b, stride_c, stride_t,
                                         "cuda_audio_analysis");
        py::gil_scoped_release release;
        ac::analysis(v, hop, top, reinterpret_cast<double*>(cs), stream);
      },
      py::arg("x"), py::arg("dtype"), py::arg("batch"), py::arg("channels"), py::arg("nsamples"),
      py::arg("stride_b"), py::arg("stride_c"), py::arg("stride_t"), py::arg("hop"), py::arg("top"),
      py::arg("cs"), py::arg("stream") = 0,
      "Cumulated Hann power spectra of every hop of B clips on the device into cs [B, nfr, top + 1] float64 "
      "(the twin of audio_analysis; strides in elements; queued on stream).");
  m.def(
      "cuda_audio_projections",
      [](std::uintptr_t cs, long long batch, long long nfr, int top, const Host<int32_t>& edges,
         const Host<double>& chips, int ng, int cell_hops, double log_floor, const Host<double>& speeds,
         double w0, double w1, long long rows, std::uintptr_t p, std::uintptr_t w, std::uintptr_t stream,
         bool per_clip) {
        const char* fn = "cuda_audio_projections";
        need_dims(edges, 1, fn, "edges");
        need_dims(chips, 2, fn, "chips");
        need_dims(speeds, per_clip ? 2 : 1, fn, "speeds");
        if (per_clip && speeds.shape(0) != batch)
          throw std::invalid_argument(std::string(fn) + ": per_clip speeds must be [batch, S], got " +
                                      shape_str(speeds));
        const int L = static_cast<int>(chips.shape(1));
        if (ng < 1 || ng > chips.shape(0) || edges.shape(0) != static_cast<py::ssize_t>(ng) * L + 1)
          throw std::invalid_argument(
              std::string(fn) + ": need 1 <= ng <= chips rows and ng * L + 1 edges, got ng=" +
              std::to_string(ng) + ", chips " + shape_str(chips) + ", edges " + shape_str(edges));
        ac::ProjectBatch b;
        b.cs = reinterpret_cast<const double*>(cs);
        b.batch = batch;
        b.nfr = nfr;
        b.top = top;
        b.edges = edges.data();
        b.ng = ng;
        b.group = L;
        b.chips = chips.data();
        b.cell_hops = cell_hops;
        b.log_floor = log_floor;
        b.speeds = speeds.data();
        b.nspeeds = static_cast<int>(speeds.shape(per_clip ? 1 : 0));
        b.per_clip = per_clip;
        b.w0 = w0;
        b.w1 = w1;
        b.rows = rows;
        b.p = reinterpret_cast<double*>(p);
        b.w = reinterpret_cast<double*>(w);
        py::gil_scoped_release release;
        ac::projections(b, stream);
      },
      py::arg("cs"), py::arg("batch"), py::arg("nfr"), py::arg("top"), py::arg("edges"), py::arg("chips"),
      py::arg("ng"), py::arg("cell_hops"), py::arg("log_floor"), py::arg("speeds"), py::arg("w0"),
      py::arg("w1"), py::arg("rows"), py::arg("p"), py::arg("w"), py::arg("stream") = 0,
      py::arg("per_clip") = false,
      "Projections and weights of B clips x S speeds on the device into p, w [B, S, rows, ng] float64 (rows "
      "past a speed's count are 0); the twin of audio_projections. per_clip: speeds is [B, S], each clip its "
      "own speeds.");
  m.def(
      "cuda_audio_fold",
      [](std::uintptr_t p, std::uintptr_t w, long long count, long long rows, const Host<long long>& nj,
         int ng, const Host<double>& dither, const Host<double>& sign, double step, int cell_hops,
         std::uintptr_t fc, std::uintptr_t fs, std::uintptr_t z, std::uintptr_t stream) {
        const char* fn = "cuda_audio_fold";
        need_dims(nj, 1, fn, "nj");
        need_dims(dither, 2, fn, "dither");
        need_dims(sign, 2, fn, "sign");
        if (nj.shape(0) != count)
          throw std::invalid_argument(std::string(fn) + ": nj must have count entries, got " + shape_str(nj));
        if (sign.shape(0) != dither.shape(0) || sign.shape(1) != dither.shape(1))
          throw std::invalid_argument(std::string(fn) + ": dither and sign must be [T, G], got " +
                                      shape_str(dither) + " and " + shape_str(sign));
        ac::FoldBatch b;
        b.p = reinterpret_cast<const double*>(p);
        b.w = reinterpret_cast<const double*>(w);
        b.count = count;
        b.rows = rows;
        b.nj = nj.data();
        b.ng = ng;
        b.n_groups = static_cast<int>(dither.shape(1));
        b.block_cells = static_cast<int>(dither.shape(0));
        b.cell_hops = cell_hops;
        b.step = step;
        b.dither = dither.data();
        b.sign = sign.data();
        b.fc = reinterpret_cast<double*>(fc);
        b.fs = reinterpret_cast<double*>(fs);
        b.z = reinterpret_cast<double*>(z);
        py::gil_scoped_release release;
        ac::fold(b, stream);
      },
      py::arg("p"), py::arg("w"), py::arg("count"), py::arg("rows"), py::arg("nj"), py::arg("ng"),
      py::arg("dither"), py::arg("sign"), py::arg("step"), py::arg("cell_hops"), py::arg("fc"), py::arg("fs"),
      py::arg("z"), py::arg("stream") = 0,
      "Fold of count (p, w) series [count, rows, ng] (nj rows used each) over the P = T cell_hops block "
      "phases "
      "into fc, fs [count, P, ng] and the sync statistic z [count, P]; the twin of audio_fold.");
  m.def(
      "cuda_audio_embed",
      [](std::uintptr_t x, const std::string& dtype, long long batch, long long channels, long long nsamples,
         long long stride_b, long long stride_c, long long stride_t, std::uintptr_t out,
         const std::string& out_dtype, long long out_stride_b, long long out_stride_c, long long out_stride_t,
         int hop, int cell_hops, const Host<int32_t>& edges, const Host<double>& chips,
         const Host<double>& dither, const Host<int8_t>& bits, int ng, double step, double gamma, double cap,
         double alpha, double snr_db, double local_snr_db, double leak, double floor, std::uintptr_t stream,
         long long t0, std::uintptr_t bucket, std::uintptr_t acc, bool whole_cells) {
        const char* fn = "cuda_audio_embed";
        need_dims(edges, 1, fn, "edges");
        need_dims(chips, 2, fn, "chips");
        need_dims(dither, 2, fn, "dither");
        need_dims(bits, 2, fn, "bits");
        if (channels < 1 || channels > 16)
          throw std::invalid_argument(std::string(fn) + ": channels must be in [1, 16]");
        const EmbedArgs a = embed_args(static_cast<int>(channels), hop, cell_hops, ng, edges, chips, dither,
                                       bits, step, gamma, cap, alpha, snr_db, local_snr_db, leak, floor);
        const EmbedParams p = make_embed_params(a, fn);  // the CPU embedder's checks, exactly
        const ac::ClipView v =
            clip_view(x, dtype, batch, channels, nsamples, stride_b, stride_c, stride_t, fn);
        const ac::ClipOut o = clip_out(out, out_dtype, out_stride_b, out_stride_c, out_stride_t, fn);
        const bool streaming = bucket != 0 || acc != 0;
        if (streaming && (bucket == 0 || acc == 0 || t0 < 0))
          throw std::invalid_argument(std::string(fn) + ": a stream needs both bucket and acc, and t0 >= 0");
        if (!streaming && (t0 != 0 || whole_cells))
          throw std::invalid_argument(std::string(fn) +
                                      ": t0 and whole_cells need the bucket and acc buffers");
        ac::EmbedCarry carry;
        carry.t0 = t0;
        carry.bucket = dev_ptr<double>(bucket);
        carry.acc = dev_ptr<double>(acc);
        carry.whole_cells = whole_cells;
        py::gil_scoped_release release;
        ac::embed(p, v, o, stream, streaming ? &carry : nullptr);
      },
      py::arg("x"), py::arg("dtype"), py::arg("batch"), py::arg("channels"), py::arg("nsamples"),
      py::arg("stride_b"), py::arg("stride_c"), py::arg("stride_t"), py::arg("out"), py::arg("out_dtype"),
      py::arg("out_stride_b"), py::arg("out_stride_c"), py::arg("out_stride_t"), py::arg("hop"),
      py::arg("cell_hops"), py::arg("edges"), py::arg("chips"), py::arg("dither"), py::arg("bits"),
      py::arg("ng"), py::arg("step"), py::arg("gamma"), py::arg("cap"), py::arg("alpha"), py::arg("snr_db"),
      py::arg("local_snr_db"), py::arg("leak"), py::arg("floor"), py::arg("stream") = 0, py::arg("t0") = 0,
      py::arg("bucket") = 0, py::arg("acc") = 0, py::arg("whole_cells") = false,
      "Mark B whole clips [B, C, n] on the device from cell 0 (parameters as AudioEmbedCore); out may be x. "
      "Queued on stream. Streaming: bucket (device [B] float64) and acc (device [B, C, hop] float64) carry "
      "the "
      "budget and the last hop's change between calls, t0 is the first cell's index (0: fresh, nothing "
      "read); "
      "whole_cells: embed only whole cells (n - hop) // span and write that many cells' samples.");
  m.def(
      "cuda_audio_copy",
      [](std::uintptr_t x, const std::string& dtype, long long batch, long long channels, long long nsamples,
         long long stride_b, long long stride_c, long long stride_t, std::uintptr_t out,
         const std::string& out_dtype, long long out_stride_b, long long out_stride_c, long long out_stride_t,
         std::uintptr_t stream) {
        const char* fn = "cuda_audio_copy";
        const ac::ClipView v =
            clip_view(x, dtype, batch, channels, nsamples, stride_b, stride_c, stride_t, fn);
        const ac::ClipOut o = clip_out(out, out_dtype, out_stride_b, out_stride_c, out_stride_t, fn);
        py::gil_scoped_release release;
        ac::copy(v, o, stream);
      },
      py::arg("x"), py::arg("dtype"), py::arg("batch"), py::arg("channels"), py::arg("nsamples"),
      py::arg("stride_b"), py::arg("stride_c"), py::arg("stride_t"), py::arg("out"), py::arg("out_dtype"),
      py::arg("out_stride_b"), py::arg("out_stride_c"), py::arg("out_stride_t"), py::arg("stream") = 0,
      "Copy samples [B, C, n] (any strides, float32 / float64 / int16) into out, converting (int16 rounded, "
      "floats not clipped). Queued on stream.");
}
