// Batched mixed-radix FFT and the frame kernels, compiled once per ISA (audio_fft_baseline.cpp: 2 lanes,
// one SSE2 register; audio_fft_avx2.cpp: 4 lanes; audio_fft_avx512.cpp: 8 lanes; each defines
// PROVMARK_ISA_NS and PROVMARK_AUDIO_LANES first). Declarations and the data conventions: audio_fft.h.
// Only raw loops here (no standard-library templates), so nothing from the AVX2 copy can be shared with
// the baseline one by the linker.
#ifndef PROVMARK_ISA_NS
#error "define PROVMARK_ISA_NS before including audio_fft_impl.h"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/audio_fft.h"

namespace provmark::audio::PROVMARK_ISA_NS {
namespace {

#ifndef PROVMARK_AUDIO_LANES
#define PROVMARK_AUDIO_LANES 4
#endif
constexpr int kLanes = PROVMARK_AUDIO_LANES;
static_assert(kLanes == 2 || kLanes == 4 || kLanes == 8, "2, 4 or 8 lanes");
static_assert(kLanes <= kMaxLanes, "scratch is sized for kMaxLanes");

// kLanes doubles, one lane per transform (GCC/Clang vector extension: one SSE2, AVX or AVX-512 register).
typedef double V __attribute__((vector_size(8 * kLanes)));

// cos / sin by Taylor series at compile time (|x| <= pi; about 1e-16 absolute), for the butterfly constants.
constexpr double taylor_cos(double x) {
  double term = 1.0, sum = 1.0;
  for (int i = 1; i < 40; ++i) {
    term *= -x * x / ((2.0 * i - 1.0) * (2.0 * i));
    sum += term;
  }
  return sum;
}
constexpr double taylor_sin(double x) {
  double term = x, sum = x;
  for (int i = 1; i < 40; ++i) {
    term *= -x * x / ((2.0 * i) * (2.0 * i + 1.0));
    sum += term;
  }
  return sum;
}

// Odd radix R: c[k - 1][p - 1] = cos(2 pi p k / R), s[k - 1][p - 1] = sin(2 pi p k / R), k, p in [1, m].
template <int R>
struct Rotations {
  static constexpr int m = (R - 1) / 2;
  double c[m > 0 ? m : 1][m > 0 ? m : 1] = {};
  double s[m > 0 ? m : 1][m > 0 ? m : 1] = {};
  constexpr Rotations() {
    constexpr double kPi = 3.141592653589793238462643383279502884;
    for (int k = 1; k <= m; ++k)
      for (int p = 1; p <= m; ++p) {
        const int j = (p * k) % R;
        const double a = 2.0 * kPi * (j <= R / 2 ? j : j - R) / R;
        c[k - 1][p - 1] = taylor_cos(a);
        s[k - 1][p - 1] = taylor_sin(a);
      }
  }
};

// One Stockham stage of radix R (R > 0: compile-time radix; R == 0: odd radix `r` at run time).
// x -> y, n points, span ns = product of the earlier radices. Butterfly j (n / R of them): inputs
// x[j + q n / R] times exp(-2 pi i k q / (ns R)), k = j mod ns; outputs y[(j - k) R + k + q ns].
template <int R>
void stage(const FftView& p, int s, const V* __restrict xr, const V* __restrict xi, V* __restrict yr,
           V* __restrict yi) {
  const int n = p.n;
  const int r = R > 0 ? R : p.radix[s];
  const int ns = p.span[s];
  const int nr = n / r;
  const double* tw = p.tw[s];
  const double* rot = p.rot[s];
  const int m = (r - 1) / 2;
  constexpr int kMax = R > 0 ? R : 32;
  static constexpr Rotations<(R > 0 && R % 2) ? R : 1> kRot{};
  for (int j0 = 0; j0 < nr; j0 += ns) {
    for (int k = 0; k < ns; ++k) {
      const int j = j0 + k;
      V ar[kMax], ai[kMax];
      ar[0] = xr[j];
      ai[0] = xi[j];
      const double* t = tw + 2 * (r - 1) * k;
      for (int q = 1; q < r; ++q) {
        const V a = xr[j + q * nr], b = xi[j + q * nr];
        if (ns == 1) {
          ar[q] = a;
          ai[q] = b;
        } else {
          const double wr = t[2 * (q - 1)], wi = t[2 * (q - 1) + 1];
          ar[q] = a * wr - b * wi;
          ai[q] = a * wi + b * wr;
        }
      }
      const int d = j0 * r + k;
      if (r == 2) {
        yr[d] = ar[0] + ar[1];
        yi[d] = ai[0] + ai[1];
        yr[d + ns] = ar[0] - ar[1];
        yi[d + ns] = ai[0] - ai[1];
      } else if (r == 4) {
        const V s0r = ar[0] + ar[2], s0i = ai[0] + ai[2], d0r = ar[0] - ar[2], d0i = ai[0] - ai[2];
        const V s1r = ar[1] + ar[3], s1i = ai[1] + ai[3], d1r = ar[1] - ar[3], d1i = ai[1] - ai[3];
        yr[d] = s0r + s1r;
        yi[d] = s0i + s1i;
        yr[d + 2 * ns] = s0r - s1r;
        yi[d + 2 * ns] = s0i - s1i;
        // y1 = d0 - i d1, y3 = d0 + i d1
        yr[d + ns] = d0r + d1i;
        yi[d + ns] = d0i - d1r;
        yr[d + 3 * ns] = d0r - d1i;
        yi[d + 3 * ns] = d0i + d1r;
      } else {
        // odd radix: y_k = A_k - i B_k, y_{r-k} = A_k + i B_k with A_k = x0 + sum_p cos(2 pi p k / r) (x_p +
        // x_{r-p}), B_k = sum_p sin(2 pi p k / r) (x_p - x_{r-p}).
        V sr[kMax / 2 + 1], si[kMax / 2 + 1], dr[kMax / 2 + 1], di[kMax / 2 + 1];
        V y0r = ar[0], y0i = ai[0];
        for (int q = 1; q <= m; ++q) {
          sr[q] = ar[q] + ar[r - q];
          si[q] = ai[q] + ai[r - q];
          dr[q] = ar[q] - ar[r - q];
          di[q] = ai[q] - ai[r - q];
          y0r += sr[q];
          y0i += si[q];
        }
        yr[d] = y0r;
        yi[d] = y0i;
        for (int kk = 1; kk <= m; ++kk) {
          V Ar = ar[0], Ai = ai[0], Br = V{}, Bi = V{};
          const double* cs = rot + 2 * m * (kk - 1);
          for (int q = 1; q <= m; ++q) {
            double c, sn;
            if constexpr (R > 0) {
              c = kRot.c[kk - 1][q - 1];
              sn = kRot.s[kk - 1][q - 1];
            } else {
              c = cs[2 * (q - 1)];
              sn = cs[2 * (q - 1) + 1];
            }
            Ar += c * sr[q];
            Ai += c * si[q];
            Br += sn * dr[q];
            Bi += sn * di[q];
          }
          yr[d + kk * ns] = Ar + Bi;
          yi[d + kk * ns] = Ai - Br;
          yr[d + (r - kk) * ns] = Ar - Bi;
          yi[d + (r - kk) * ns] = Ai + Br;
        }
      }
    }
  }
}

// Forward DFT of kLanes sequences held as re[n], im[n] (lane l = sequence l). Returns the buffer pair that
// holds the result (the input pair or the scratch pair).
void fft_run(const FftView& p, V*& re, V*& im, V*& re2, V*& im2) {
  for (int s = 0; s < p.nstages; ++s) {
    switch (p.radix[s]) {
      case 2:
        stage<2>(p, s, re, im, re2, im2);
        break;
      case 3:
        stage<3>(p, s, re, im, re2, im2);
        break;
      case 4:
        stage<4>(p, s, re, im, re2, im2);
        break;
      case 5:
        stage<5>(p, s, re, im, re2, im2);
        break;
      case 7:
        stage<7>(p, s, re, im, re2, im2);
        break;
      default:
        stage<0>(p, s, re, im, re2, im2);
        break;
    }
    V* t = re;
    re = re2;
    re2 = t;
    t = im;
    im = im2;
    im2 = t;
  }
}

inline V load_v(const double* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}

inline void store_v(double* p, V v) { std::memcpy(p, &v, sizeof(V)); }

#if defined(__clang__)
#define PM_SHUF(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
typedef long long VI __attribute__((vector_size(8 * kLanes)));
#define PM_SHUF(a, b, ...) __builtin_shuffle(a, b, VI{__VA_ARGS__})
#endif

// kLanes x kLanes transpose in place: rows r[l] (kLanes consecutive samples of lane l) <-> columns (one
// sample of every lane).
inline void transpose(V* r) {
#if PROVMARK_AUDIO_LANES == 2
  const V t0 = PM_SHUF(r[0], r[1], 0, 2), t1 = PM_SHUF(r[0], r[1], 1, 3);
  r[0] = t0;
  r[1] = t1;
#elif PROVMARK_AUDIO_LANES == 4
  const V t0 = PM_SHUF(r[0], r[1], 0, 4, 2, 6), t1 = PM_SHUF(r[0], r[1], 1, 5, 3, 7);
  const V t2 = PM_SHUF(r[2], r[3], 0, 4, 2, 6), t3 = PM_SHUF(r[2], r[3], 1, 5, 3, 7);
  r[0] = PM_SHUF(t0, t2, 0, 1, 4, 5);
  r[1] = PM_SHUF(t1, t3, 0, 1, 4, 5);
  r[2] = PM_SHUF(t0, t2, 2, 3, 6, 7);
  r[3] = PM_SHUF(t1, t3, 2, 3, 6, 7);
#else
  V t[8], u[8];
  for (int q = 0; q < 8; q += 2) {
    t[q] = PM_SHUF(r[q], r[q + 1], 0, 8, 2, 10, 4, 12, 6, 14);
    t[q + 1] = PM_SHUF(r[q], r[q + 1], 1, 9, 3, 11, 5, 13, 7, 15);
  }
  for (int q = 0; q < 8; q += 4)
    for (int o = 0; o < 2; ++o) {
      u[q + o] = PM_SHUF(t[q + o], t[q + 2 + o], 0, 1, 8, 9, 4, 5, 12, 13);
      u[q + 2 + o] = PM_SHUF(t[q + o], t[q + 2 + o], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  for (int o = 0; o < 4; ++o) {
    r[o] = PM_SHUF(u[o], u[4 + o], 0, 1, 2, 3, 8, 9, 10, 11);
    r[4 + o] = PM_SHUF(u[o], u[4 + o], 4, 5, 6, 7, 12, 13, 14, 15);
  }
#endif
}

// dst[i][l] = win[i] src_l[i] for the lanes (a null src_l, or a lane past `lanes`, reads as zeros).
void load_lanes(const double* win, const double* const* src, int lanes, int n, V* dst) {
  static const double kZeros[kLanes] = {};
  const double* p[kLanes];
  bool any = false;
  for (int l = 0; l < kLanes; ++l) {
    p[l] = l < lanes ? src[l] : nullptr;
    any = any || p[l] != nullptr;
  }
  if (!any) {
    for (int i = 0; i < n; ++i) dst[i] = V{};
    return;
  }
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    V r[kLanes];
    for (int l = 0; l < kLanes; ++l) r[l] = load_v(p[l] ? p[l] + i : kZeros);
    transpose(r);
    for (int j = 0; j < kLanes; ++j) dst[i + j] = win[i + j] * r[j];
  }
  for (; i < n; ++i) {
    V v{};
    for (int l = 0; l < kLanes; ++l) v[l] = p[l] ? win[i] * p[l][i] : 0.0;
    dst[i] = v;
  }
}

// re[i][l] = win[i] a_{q0+l}[i], im[i][l] = win[i] b_{q0+l}[i] (0 for a null b or a lane past the end).
void load_pairs(const double* win, const double* const* a, const double* const* b, std::size_t q0, int lanes,
                int n, V* re, V* im) {
  load_lanes(win, a + q0, lanes, n, re);
  load_lanes(win, b + q0, lanes, n, im);
}

// dst_l[i] += sign * win[i] * (src[i][l] * scale) for the lanes whose dst_l is not null.
void accumulate_lanes(const double* win, const V* src, double scale, double sign, double* const* dst,
                      int lanes, int n) {
  double* p[kLanes];
  for (int l = 0; l < kLanes; ++l) p[l] = l < lanes ? dst[l] : nullptr;
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    V r[kLanes];
    for (int j = 0; j < kLanes; ++j) r[j] = src[i + j] * scale;
    transpose(r);
    const V w = load_v(win + i);
    for (int l = 0; l < kLanes; ++l)
      if (p[l]) store_v(p[l] + i, load_v(p[l] + i) + sign * (w * r[l]));
  }
  for (; i < n; ++i)
    for (int l = 0; l < kLanes; ++l)
      if (p[l]) p[l][i] += sign * (win[i] * (src[i][l] * scale));
}

V* aligned(double* scratch) {
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(scratch);
  return reinterpret_cast<V*>((a + 63) & ~std::uintptr_t(63));
}

}  // namespace

int lanes() { return kLanes; }

void fft_lanes(const FftView& p, double* re, double* im, double* re2, double* im2, int* out_in_second) {
  V* a = reinterpret_cast<V*>(re);
  V* b = reinterpret_cast<V*>(im);
  V* c = reinterpret_cast<V*>(re2);
  V* d = reinterpret_cast<V*>(im2);
  fft_run(p, a, b, c, d);
  *out_in_second = a != reinterpret_cast<V*>(re);
}

void frame_powers(const FftView& p, const PowersArgs& args, double* scratch) {
  const int n = p.n, nb = args.nb;
  V* re = aligned(scratch);
  V* im = re + n;
  V* re2 = im + n;
  V* im2 = re2 + n;
  for (std::size_t q0 = 0; q0 < args.npairs; q0 += kLanes) {
    const int lanes = static_cast<int>(args.npairs - q0 < std::size_t(kLanes) ? args.npairs - q0 : kLanes);
    load_pairs(args.win, args.a, args.b, q0, lanes, n, re, im);
    if (args.energy) {
      V e0{}, e1{};
      for (int i = 0; i + 1 < n; i += 2) {
        e0 += re[i] * re[i] + im[i] * im[i];
        e1 += re[i + 1] * re[i + 1] + im[i + 1] * im[i + 1];
      }
      if (n % 2) e0 += re[n - 1] * re[n - 1] + im[n - 1] * im[n - 1];
      const V e = e0 + e1;
      for (int l = 0; l < lanes; ++l) args.energy[q0 + l] = e[l];
    }
    V *r = re, *m = im, *r2 = re2, *m2 = im2;
    fft_run(p, r, m, r2, m2);
    if (args.band_out) {
      for (int j = 0; j < args.nbands; ++j) {
        V acc{};
        for (int k = args.edges[j]; k < args.edges[j + 1]; ++k) {
          const int kn = k == 0 ? 0 : n - k;
          // |A|^2 + |B|^2 = (|Z[k]|^2 + |Z[n - k]|^2) / 2
          acc += 0.5 * (r[k] * r[k] + m[k] * m[k] + r[kn] * r[kn] + m[kn] * m[kn]);
        }
        for (int l = 0; l < lanes; ++l) args.band_out[(q0 + l) * args.nbands + j] = acc[l];
      }
      continue;
    }
    if (args.cum_out) {
      const std::size_t w = std::size_t(nb) + 1;
      V ca{}, cb{};
      double* rows_a[kLanes] = {};
      double* rows_b[kLanes] = {};
      for (int l = 0; l < lanes; ++l) {
        if (args.cum_sum) {
          rows_a[l] = args.cum_out + (q0 + l) * w;
        } else {
          rows_a[l] = args.cum_out + 2 * (q0 + l) * w;
          if (args.b[q0 + l]) rows_b[l] = args.cum_out + (2 * (q0 + l) + 1) * w;
        }
        rows_a[l][0] = 0.0;
        if (rows_b[l]) rows_b[l][0] = 0.0;
      }
      for (int k = 0; k < nb; ++k) {
        const int kn = k == 0 ? 0 : n - k;
        const V sr = r[k] + r[kn], di = m[k] - m[kn];
        const V dr = r[k] - r[kn], si = m[k] + m[kn];
        const V pa = 0.25 * (sr * sr + di * di);
        const V pb = 0.25 * (dr * dr + si * si);
        if (args.cum_sum) {
          ca += pa + pb;
        } else {
          ca += pa;
          cb += pb;
        }
        for (int l = 0; l < lanes; ++l) {
          rows_a[l][k + 1] = ca[l];
          if (rows_b[l]) rows_b[l][k + 1] = cb[l];
        }
      }
      continue;
    }
    for (int k = 0; k < nb; ++k) {
      const int kn = k == 0 ? 0 : n - k;
      const V sr = r[k] + r[kn], di = m[k] - m[kn];  // 2 A
      const V dr = r[k] - r[kn], si = m[k] + m[kn];  // 2 i B -> |B| from (dr, si)
      const V pa = 0.25 * (sr * sr + di * di);
      const V pb = 0.25 * (dr * dr + si * si);
      for (int l = 0; l < lanes; ++l) {
        args.pa[(q0 + l) * nb + k] = pa[l];
        if (args.b[q0 + l]) args.pb[(q0 + l) * nb + k] = pb[l];
      }
    }
  }
}

void frame_filter(const FftView& p, const FilterArgs& args, double* scratch) {
  const int n = p.n, lo = args.lo, hi = args.hi;
  V* re = aligned(scratch);
  V* im = re + n;
  V* re2 = im + n;
  V* im2 = re2 + n;
  const double inv_n = 1.0 / n;
  for (std::size_t q0 = 0; q0 < args.npairs; q0 += kLanes) {
    const int lanes = static_cast<int>(args.npairs - q0 < std::size_t(kLanes) ? args.npairs - q0 : kLanes);
    load_pairs(args.win, args.a, args.b, q0, lanes, n, re, im);
    V *r = re, *m = im, *r2 = re2, *m2 = im2;
    fft_run(p, r, m, r2, m2);
    // G Z, conjugated (ifft(Y) = conj(fft(conj(Y))) / n), zero outside the band range; into (r2, m2).
    // zeros on [0, lo), [hi, n - hi], [n - lo + 1, n); the band products below fill the rest
    for (int k = 0; k < lo; ++k) r2[k] = m2[k] = V{};
    for (int k = hi; k <= n - hi; ++k) r2[k] = m2[k] = V{};
    for (int k = n - lo + 1; k < n; ++k) r2[k] = m2[k] = V{};
    for (int k = lo; k < hi; ++k) {
      V g{};
      for (int l = 0; l < lanes; ++l) g[l] = args.gains[q0 + l][k];
      r2[k] = g * r[k];
      m2[k] = -(g * m[k]);
      r2[n - k] = g * r[n - k];
      m2[n - k] = -(g * m[n - k]);
    }
    V *u = r2, *v = m2;
    fft_run(p, u, v, r, m);
    accumulate_lanes(args.win, u, inv_n, 1.0, args.da + q0, lanes, n);
    if (args.db) accumulate_lanes(args.win, v, inv_n, -1.0, args.db + q0, lanes, n);
  }
}

}  // namespace provmark::audio::PROVMARK_ISA_NS
