// pybind11 glue for the audio watermark core (csrc/core/audio.h): validate shapes, dtypes and values, fill
// the parameter structs, release the GIL, call the core. Orchestration lives in python/provmark/audio.py.
#include <pybind11/complex.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <complex>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/audio_args.h"
#include "bindings/common.h"
#include "core/audio.h"

namespace py = pybind11;
using namespace provmark::audio;

using provmark::bindings::shape_str;

namespace {

using F64 = py::array_t<double, py::array::c_style>;
using I32 = py::array_t<int32_t, py::array::c_style>;
using I8 = py::array_t<int8_t, py::array::c_style>;

// A C-contiguous array of dtype T and `ndim` dimensions (no conversion: the Python layer passes exact types).
template <class T>
py::array_t<T, py::array::c_style> exact(const py::object& obj, const char* fn, const char* name, int ndim,
                                         const char* tname) {
  if (!py::isinstance<py::array_t<T>>(obj))
    throw py::type_error(std::string(fn) + ": " + name + " must be a " + tname + " numpy array, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))) +
                         (py::isinstance<py::array>(obj)
                              ? " of dtype " + std::string(py::str(obj.attr("dtype")))
                              : std::string()));
  auto a = py::reinterpret_borrow<py::array>(obj);
  if (a.ndim() != ndim)
    throw std::invalid_argument(std::string(fn) + ": " + name + " must have " + std::to_string(ndim) +
                                " dimensions, got " + shape_str(a));
  if (!(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(fn) + ": " + name + " must be C-contiguous");
  return py::reinterpret_borrow<py::array_t<T, py::array::c_style>>(a);
}

// [C, n] samples (float64; with any_type also float32 or int16) with unit inner stride: row views such as
// x[:, shift:] are accepted without a copy.
struct Samples {
  const void* data = nullptr;
  SampleType type = SampleType::kF64;
  std::size_t channels = 0, n = 0, ld = 0;  // ld: row stride in samples
  std::size_t bytes() const { return ((channels - 1) * ld + n) * sample_size(type); }
};

Samples samples_arg(const py::object& obj, const char* fn, const char* name, bool any_type) {
  Samples s;
  if (py::isinstance<py::array_t<double>>(obj))
    s.type = SampleType::kF64;
  else if (any_type && py::isinstance<py::array_t<float>>(obj))
    s.type = SampleType::kF32;
  else if (any_type && py::isinstance<py::array_t<int16_t>>(obj))
    s.type = SampleType::kI16;
  else
    throw py::type_error(std::string(fn) + ": " + name + " must be a " +
                         (any_type ? "float64, float32 or int16" : "float64") + " numpy array [channels, n]");
  auto a = py::reinterpret_borrow<py::array>(obj);
  const py::ssize_t item = static_cast<py::ssize_t>(sample_size(s.type));
  if (a.ndim() != 2)
    throw std::invalid_argument(std::string(fn) + ": " + name + " must be [channels, n], got " +
                                shape_str(a));
  if (a.shape(0) < 1 || a.shape(0) > 16)
    throw std::invalid_argument(std::string(fn) + ": " + name + " must have 1 to 16 channels, got " +
                                shape_str(a));
  if (a.shape(1) > 1 && a.strides(1) != item)
    throw std::invalid_argument(std::string(fn) + ": " + name + " rows must be contiguous");
  if (a.shape(0) > 1 && (a.strides(0) < a.shape(1) * item || a.strides(0) % item != 0))
    throw std::invalid_argument(std::string(fn) + ": " + name + " must have non-overlapping rows");
  s.data = a.data();
  s.channels = static_cast<std::size_t>(a.shape(0));
  s.n = static_cast<std::size_t>(a.shape(1));
  s.ld = a.shape(0) > 1 ? static_cast<std::size_t>(a.strides(0) / item) : s.n;
  return s;
}

void check_edges(const I32& edges, int limit, const char* fn) {
  const int32_t* e = edges.data();
  for (py::ssize_t b = 0; b < edges.shape(0); ++b)
    if (e[b] < 1 || e[b] > limit || (b > 0 && e[b] <= e[b - 1]))
      throw std::invalid_argument(std::string(fn) + ": edges must increase within [1, " +
                                  std::to_string(limit) + "]");
}

// ---- FFT (test entry) ------------------------------------------------------------------------------------
py::array_t<std::complex<double>> audio_fft(const py::object& obj) {
  auto x = exact<std::complex<double>>(obj, "audio_fft", "x", 2, "complex128");
  const py::ssize_t count = x.shape(0), n = x.shape(1);
  if (n < 2 || n > (1 << 16)) throw std::invalid_argument("audio_fft: length must be in [2, 65536]");
  FftPlan plan(static_cast<int>(n));  // throws for unsupported sizes
  py::array_t<std::complex<double>> out({count, n});
  std::copy(x.data(), x.data() + count * n, out.mutable_data());
  double* d = reinterpret_cast<double*>(out.mutable_data());
  {
    py::gil_scoped_release release;
    fft_forward(plan, d, static_cast<std::size_t>(count));
  }
  return out;
}

// ---- embedding -------------------------------------------------------------------------------------------
// The embedder of one stream: the core's CellEmbedder plus the state carried between calls.
class EmbedCore {
 public:
  EmbedCore(int channels, int hop, int cell_hops, const py::object& edges_o, const py::object& chips_o,
            const py::object& dither_o, const py::object& bits_o, int ng, double step, double gamma,
            double cap, double alpha, double snr_db, double local_snr_db, double leak, double floor) {
    const char* fn = "AudioEmbedCore";
    auto edges = exact<int32_t>(edges_o, fn, "edges", 1, "int32");
    auto chips = exact<double>(chips_o, fn, "chips", 2, "float64");
    auto dither = exact<double>(dither_o, fn, "dither", 2, "float64");
    auto bits = exact<int8_t>(bits_o, fn, "bits", 2, "int8");
    const EmbedArgs a = embed_args(channels, hop, cell_hops, ng, edges, chips, dither, bits, step, gamma, cap,
                                   alpha, snr_db, local_snr_db, leak, floor);
    const EmbedParams p = make_embed_params(a, fn);  // checks everything; CellEmbedder copies the tables
    core_ = std::make_unique<CellEmbedder>(p);
    channels_ = channels;
    hop_ = hop;
    cell_hops_ = cell_hops;
    acc_.assign(std::size_t(channels) * hop, 0.0);
  }

  // x: [C, >= (cell_hops * ncells + 1) * hop] -> marked [C, cell_hops * ncells * hop] (before clipping).
  py::array run(const py::object& x_o, py::ssize_t ncells, const py::object& out_o, bool clip) {
    const Samples x = samples_arg(x_o, "AudioEmbedCore.run", "x", true);
    if (static_cast<int>(x.channels) != channels_)
      throw std::invalid_argument("AudioEmbedCore.run: expected " + std::to_string(channels_) +
                                  " channels, got " + std::to_string(x.channels));
    if (ncells < 0) throw std::invalid_argument("AudioEmbedCore.run: ncells must be >= 0");
    const std::size_t need = (std::size_t(cell_hops_) * ncells + 1) * hop_;
    if (x.n < need)
      throw std::invalid_argument("AudioEmbedCore.run: " + std::to_string(ncells) + " cells need " +
                                  std::to_string(need) + " samples per channel, got " + std::to_string(x.n));
    const std::size_t m = std::size_t(cell_hops_) * ncells * hop_;
    py::array out;
    void* o = nullptr;
    std::size_t ld_out = m;
    SampleType out_type = SampleType::kF64;
    if (out_o.is_none()) {
      F64 a({static_cast<py::ssize_t>(channels_), static_cast<py::ssize_t>(m)});
      o = a.mutable_data();
      out = a;
    } else {
      const Samples os = samples_arg(out_o, "AudioEmbedCore.run", "out", true);
      out = py::reinterpret_borrow<py::array>(out_o);
      if (!out.writeable()) throw std::invalid_argument("AudioEmbedCore.run: out must be writeable");
      if (static_cast<int>(os.channels) != channels_ || os.n < m)
        throw std::invalid_argument("AudioEmbedCore.run: out must be [" + std::to_string(channels_) +
                                    ", >= " + std::to_string(m) + "], got " + shape_str(out));
      const char* olo = static_cast<const char*>(os.data);
      const char* xlo = static_cast<const char*>(x.data);
      if (!(olo + os.bytes() <= xlo || olo >= xlo + x.bytes()))
        throw std::invalid_argument("AudioEmbedCore.run: out must not overlap x");
      o = out.mutable_data();
      ld_out = os.ld;
      out_type = os.type;
    }
    EmbedIO io;
    io.x = x.data;
    io.x_type = x.type;
    io.ld = x.ld;
    io.out = o;
    io.out_type = out_type;
    io.ld_out = ld_out;
    io.clip = clip;
    io.ncells = static_cast<std::size_t>(ncells);
    io.t_first = t_next_;
    io.bucket = &bucket_;
    io.acc = acc_.data();
    {
      py::gil_scoped_release release;
      core_->run(io);
    }
    t_next_ += ncells;
    return out;
  }

  double bucket() const { return bucket_; }
  int64_t t_next() const { return t_next_; }
  F64 acc() const {
    F64 a({channels_, hop_});
    std::copy(acc_.begin(), acc_.end(), a.mutable_data());
    return a;
  }

 private:
  std::unique_ptr<CellEmbedder> core_;
  int channels_ = 0, hop_ = 0, cell_hops_ = 0;
  double bucket_ = 0.0;
  int64_t t_next_ = 0;
  std::vector<double> acc_;
};

// ---- detection -------------------------------------------------------------------------------------------
F64 audio_analysis(const py::object& x_o, int hop, int top) {
  const Samples x = samples_arg(x_o, "audio_analysis", "x", false);
  if (hop < 8 || hop > 4800) throw std::invalid_argument("audio_analysis: hop must be in [8, 4800]");
  if (top < 1 || top > hop + 1)
    throw std::invalid_argument("audio_analysis: top must be in [1, hop + 1], got " + std::to_string(top));
  const std::size_t nfr = analysis_frames(x.n, hop);
  F64 cs({static_cast<py::ssize_t>(nfr), static_cast<py::ssize_t>(top + 1)});
  double* o = cs.mutable_data();
  {
    py::gil_scoped_release release;
    analysis(static_cast<const double*>(x.data), x.channels, x.ld, x.n, hop, top, o);
  }
  return cs;
}

py::tuple audio_projections(const py::object& cs_o, const py::object& edges_o, const py::object& chips_o,
                            int ng, int cell_hops, double log_floor, double speed, double w0, double w1) {
  const char* fn = "audio_projections";
  auto cs = exact<double>(cs_o, fn, "cs", 2, "float64");
  auto edges = exact<int32_t>(edges_o, fn, "edges", 1, "int32");
  auto chips = exact<double>(chips_o, fn, "chips", 2, "float64");
  const py::ssize_t L = chips.shape(1);
  if (cs.shape(1) < 2) throw std::invalid_argument(std::string(fn) + ": cs must be [nfr, top + 1], top >= 1");
  const int top = static_cast<int>(cs.shape(1) - 1);
  if (L < 2 || L > kMaxGroup)
    throw std::invalid_argument(std::string(fn) + ": chips must be [G, L], L in [2, 8]");
  if (ng < 1 || ng > chips.shape(0) || edges.shape(0) != ng * L + 1 || ng * L > kMaxBands)
    throw std::invalid_argument(std::string(fn) +
                                ": need 1 <= ng <= G and edges of ng * L + 1 entries, got ng=" +
                                std::to_string(ng) + ", edges " + shape_str(edges));
  check_edges(edges, top, fn);
  if (cell_hops < 1) throw std::invalid_argument(std::string(fn) + ": cell_hops must be >= 1");
  if (!(speed >= 0.5 && speed <= 2.0))
    throw std::invalid_argument(std::string(fn) + ": speed must be in [0.5, 2]");
  if (!(log_floor > 0) || !std::isfinite(log_floor) || !(w1 > 0) || !std::isfinite(w0))
    throw std::invalid_argument(std::string(fn) + ": need log_floor > 0, w1 > 0, finite w0");
  ProjectParams p;
  p.cs = cs.data();
  p.nfr = static_cast<std::size_t>(cs.shape(0));
  p.top = top;
  p.edges = edges.data();
  p.ng = ng;
  p.group = static_cast<int>(L);
  p.chips = chips.data();
  p.cell_hops = cell_hops;
  p.log_floor = log_floor;
  p.speed = speed;
  p.w0 = w0;
  p.w1 = w1;
  const std::size_t rows = projection_rows(p);
  F64 pout({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(ng)});
  F64 wout({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(ng)});
  double* po = pout.mutable_data();
  double* wo = wout.mutable_data();
  {
    py::gil_scoped_release release;
    projections(p, po, wo);
  }
  return py::make_tuple(pout, wout);
}

py::tuple audio_fold(const py::object& p_o, const py::object& w_o, const py::object& dither_o,
                     const py::object& sign_o, double step, int cell_hops) {
  const char* fn = "audio_fold";
  auto pv = exact<double>(p_o, fn, "p", 2, "float64");
  auto wv = exact<double>(w_o, fn, "w", 2, "float64");
  auto dither = exact<double>(dither_o, fn, "dither", 2, "float64");
  auto sign = exact<double>(sign_o, fn, "sign", 2, "float64");
  const py::ssize_t ng = pv.shape(1), T = dither.shape(0), G = dither.shape(1);
  if (wv.shape(0) != pv.shape(0) || wv.shape(1) != ng)
    throw std::invalid_argument(std::string(fn) + ": w must have the shape of p " + shape_str(pv) + ", got " +
                                shape_str(wv));
  if (ng < 1 || ng > G || T < 1 || sign.shape(0) != T || sign.shape(1) != G)
    throw std::invalid_argument(std::string(fn) +
                                ": need p [nj, ng], dither and sign [T, G] with ng <= G, got " +
                                shape_str(pv) + ", " + shape_str(dither) + ", " + shape_str(sign));
  if (cell_hops < 1 || cell_hops > 64)
    throw std::invalid_argument(std::string(fn) + ": cell_hops must be in [1, 64]");
  if (!(step > 0) || !std::isfinite(step))
    throw std::invalid_argument(std::string(fn) + ": step must be > 0");
  FoldParams f;
  f.p = pv.data();
  f.w = wv.data();
  f.nj = static_cast<std::size_t>(pv.shape(0));
  f.ng = static_cast<int>(ng);
  f.n_groups = static_cast<int>(G);
  f.block_cells = static_cast<int>(T);
  f.cell_hops = cell_hops;
  f.step = step;
  f.dither = dither.data();
  f.sign = sign.data();
  const py::ssize_t P = T * cell_hops;
  F64 fc({P, ng}), fs({P, ng}), z(P);
  double* a = fc.mutable_data();
  double* b = fs.mutable_data();
  double* c = z.mutable_data();
  {
    py::gil_scoped_release release;
    fold_scores(f, a, b, c);
  }
  return py::make_tuple(fc, fs, z);
}

}  // namespace

void register_audio(py::module_& m) {
  m.def("audio_kernel_isa", &kernel_isa,
        "Kernel set the audio FFT uses now: 'baseline', 'avx2' or 'avx512' (follows simd_level(); "
        "PROVMARK_AUDIO_AVX512=0 keeps the avx2 level on 4-lane kernels).");
  m.def("audio_fft", &audio_fft, py::arg("x"),
        "Forward DFT of each row of a complex128 [count, n] array with the audio engine's mixed-radix FFT "
        "(test entry; n must factor into primes <= 31).");
  py::class_<EmbedCore>(m, "AudioEmbedCore",
                        "Audio embedder core of one stream (python/provmark/audio.py _EmbedState drives it).")
      .def(py::init<int, int, int, const py::object&, const py::object&, const py::object&, const py::object&,
                    int, double, double, double, double, double, double, double, double>(),
           py::arg("channels"), py::arg("hop"), py::arg("cell_hops"), py::arg("edges"), py::arg("chips"),
           py::arg("dither"), py::arg("bits"), py::arg("ng"), py::arg("step"), py::arg("gamma"),
           py::arg("cap"), py::arg("alpha"), py::arg("snr_db"), py::arg("local_snr_db"), py::arg("leak"),
           py::arg("floor"))
      .def("run", &EmbedCore::run, py::arg("x"), py::arg("ncells"), py::arg("out") = py::none(),
           py::arg("clip") = false,
           "Embed the next ncells cells: x [C, >= (cell_hops ncells + 1) hop] (float64, float32 or int16 / "
           "32768) -> float64 [C, m = cell_hops ncells hop], or written into out[:, :m] (float64, float32 or "
           "int16; floats clipped to [-1, 1] when clip, int16 always rounded and clipped) and out returned.")
      .def_property_readonly("bucket", &EmbedCore::bucket)
      .def_property_readonly("t_next", &EmbedCore::t_next)
      .def_property_readonly("acc", &EmbedCore::acc);
  m.def("audio_analysis", &audio_analysis, py::arg("x"), py::arg("hop"), py::arg("top"),
        "Cumulated Hann power spectra (summed over channels) of the 2 hop-point frames at every hop: "
        "[nfr, top + 1] float64.");
  m.def("audio_projections", &audio_projections, py::arg("cs"), py::arg("edges"), py::arg("chips"),
        py::arg("ng"), py::arg("cell_hops"), py::arg("log_floor"), py::arg("speed"), py::arg("w0"),
        py::arg("w1"),
        "Projections and reliability weights [rows, ng] of the cells at every hop for one speed.");
  m.def("audio_fold", &audio_fold, py::arg("p"), py::arg("w"), py::arg("dither"), py::arg("sign"),
        py::arg("step"), py::arg("cell_hops"),
        "Folded weighted cos/sin [P, ng] per block phase and the sync statistic z [P].");
}
