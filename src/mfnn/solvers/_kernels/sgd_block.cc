// Online SGD for projection units a sigma(<w, x> + b) over a block of pre-drawn steps, as one
// XLA FFI call (mfnn/solvers/_sgd_kernel.py builds and registers it).
//
// PNAS 2018 eq. 6 (noiseless, weight decay lambda, batch B, alpha scaling):
//   theta_{k+1} = (1 - 2 lambda s_k) theta_k + (2 s_k / (alpha B)) sum_m (y_m - yhat(x_m)) grad sigma_*(x_m; theta_k)
// with grad_a = sigma(u), grad_b = a sigma'(u), grad_w = a sigma'(u) x, u = <w, x> + b.
//
// Layout: W is carried transposed, wT (d x N), so that every loop over neurons is a contiguous
// vector loop.  One pass over wT per step fuses the rank-B update of step k with the
// pre-activations of step k + 1 (z = X_{k+1} wT), and a tile of neurons then evaluates sigma,
// sigma' and its share of yhat for step k + 1 while the tile is in registers.  The data (X, Y,
// step sizes S) are drawn by JAX with the generic step's keys; only the first n steps are run.
//
// Leading (vmapped) dimensions are replicas; they are split across threads.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int kVecBytes = 64;  // 512-bit vectors (AVX-512; GCC splits them elsewhere)
constexpr int kNV = 4;  // vectors per tile: 32 float64 neurons (measured at N = 800, d = 40: 2.6 us per
                        // step against 3.0 for 2 x 512-bit and 3.7 for 4 x 256-bit vectors)

template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(kVecBytes)));
  static constexpr int lanes = kVecBytes / sizeof(T);
};

template <typename VT>
inline VT load(const void* p) {
  VT v;
  std::memcpy(&v, p, sizeof(VT));
  return v;
}
template <typename VT>
inline void store(void* p, const VT& v) {
  std::memcpy(p, &v, sizeof(VT));
}
template <typename VT>
inline VT vmin(VT a, VT b) { return a < b ? a : b; }
template <typename VT>
inline VT vmax(VT a, VT b) { return a > b ? a : b; }

enum Kind { PWL = 0, TANH = 1, SIGMOID = 2, ERF = 3 };

// sigma and sigma' on a vector (or scalar) of pre-activations.  Piecewise linear: the same
// formula as mfnn.problem.activations.PiecewiseLinear (pieces lo, hi, slope, anchor_v, P + 1).
template <typename T, typename VT, int KIND>
inline void act(VT u, VT* v, VT* dv, const T* pw, int np, int kind) {
  const VT zero = VT{} * T(0);
  if constexpr (KIND == PWL) {
    const T* lo = pw;
    const T* hi = pw + np;
    const T* sl = pw + 2 * np;
    const T* av = pw + 3 * np;
    VT out = (zero + av[0]) + sl[0] * vmin<VT>(u - lo[0], zero);
    VT der = (u <= hi[0]) ? zero + sl[0] : zero;
    for (int j = 1; j < np; ++j) {
      VT part = (j == np - 1) ? vmax<VT>(u - lo[j], zero)
                              : vmin<VT>(vmax<VT>(u, zero + lo[j]), zero + hi[j]) - lo[j];
      out = out + sl[j] * part;
      VT in = (j == np - 1) ? ((u > lo[j]) ? zero + sl[j] : zero)
                            : ((u > lo[j]) & (u <= hi[j])) ? zero + sl[j] : zero;
      der = der + in;
    }
    *v = out;
    *dv = der;
  } else {  // smooth sigma through libm, lane by lane (kind: TANH, SIGMOID or ERF)
    constexpr int n = sizeof(VT) / sizeof(T);
    T a[n], r[n], q[n];
    std::memcpy(a, &u, sizeof(VT));
    for (int l = 0; l < n; ++l) {
      T t = a[l];
      if (kind == TANH) {
        T th = std::tanh(t);
        r[l] = th;
        q[l] = T(1) - th * th;
      } else if (kind == SIGMOID) {
        T sg = T(1) / (T(1) + std::exp(-t));
        r[l] = sg;
        q[l] = sg * (T(1) - sg);
      } else {
        r[l] = std::erf(t);
        q[l] = T(1.1283791670955126) * std::exp(-t * t);  // 2 / sqrt(pi)
      }
    }
    std::memcpy(v, r, sizeof(VT));
    std::memcpy(dv, q, sizeof(VT));
  }
}

template <typename VT, typename T>
inline T hsum(VT v) {
  constexpr int n = sizeof(VT) / sizeof(T);
  T a[n];
  std::memcpy(a, &v, sizeof(VT));
  T s = 0;
  for (int l = 0; l < n; ++l) s += a[l];
  return s;
}

template <typename T>
struct Replica {
  T* wT;        // (d, N)
  T* a;         // (N)
  T* b;         // (N)
  const T* X;   // (L B, d)
  const T* Y;   // (L B)
  const T* S;   // (L)
  int64_t n;    // steps to run (<= L)
  T alpha, lam;
  const T* pw;  // activation pieces
};

struct Shape {
  int64_t N, d, B;
  int np, kind;
  bool tr_w, tr_a, tr_b, decay;
};

// One pass over a tile of NV vectors of neurons starting at i0.  UPDATE: apply step k's update
// (coefficients coef[m], data Xk) to a, b, wT; NEXT: pre-activations of the next step (data Xn),
// then sigma, sigma' into val / der and the tile's share of sum_i a_i sigma(u_i) into acc.
template <typename T, typename VT, int NV, int KIND, bool UPDATE, bool NEXT, bool DECAY, int BS>
inline void tile(const Shape& sh, const Replica<T>& r, int64_t i0, const T* coef, const T* Xk,
                 const T* Xn, T dl, T* val, T* der, VT* acc, VT* scratch) {
  constexpr int W = sizeof(VT) / sizeof(T);
  const int64_t N = sh.N, d = sh.d;
  const int B = BS ? BS : int(sh.B);
  const VT zero = VT{} * T(0);
  VT cw_local[BS ? BS * NV : 1], z_local[BS ? BS * NV : 1];
  VT* cw = BS ? cw_local : scratch;
  VT* z = BS ? z_local : scratch + B * NV;
  VT a_new[NV], b_new[NV];
  for (int v = 0; v < NV; ++v) {
    VT av = load<VT>(r.a + i0 + v * W), bv = load<VT>(r.b + i0 + v * W);
    a_new[v] = av;
    b_new[v] = bv;
    if constexpr (UPDATE) {
      VT sa = zero, sb = zero;
      for (int m = 0; m < B; ++m) {
        VT c = coef[m] * (av * load<VT>(der + m * N + i0 + v * W));  // coef * grad_b
        cw[m * NV + v] = c;
        sb = sb + c;
        sa = sa + coef[m] * load<VT>(val + m * N + i0 + v * W);
      }
      if (sh.tr_a) a_new[v] = (DECAY ? dl * av : av) + sa;
      if (sh.tr_b) b_new[v] = (DECAY ? dl * bv : bv) + sb;
    }
  }
  if constexpr (NEXT)
    for (int m = 0; m < B * NV; ++m) z[m] = zero;
  if ((UPDATE && sh.tr_w) || NEXT) {
    for (int64_t j = 0; j < d; ++j) {
      T* wrow = r.wT + j * N + i0;
      VT w[NV];
      for (int v = 0; v < NV; ++v) w[v] = load<VT>(wrow + v * W);
      if (UPDATE && sh.tr_w) {
        for (int v = 0; v < NV; ++v) {
          if (DECAY) w[v] = dl * w[v];
        }
        for (int m = 0; m < B; ++m) {
          const T x = Xk[m * d + j];
          for (int v = 0; v < NV; ++v) w[v] = w[v] + x * cw[m * NV + v];
        }
        for (int v = 0; v < NV; ++v) store<VT>(wrow + v * W, w[v]);
      }
      if constexpr (NEXT) {
        for (int m = 0; m < B; ++m) {
          const T x = Xn[m * d + j];
          for (int v = 0; v < NV; ++v) z[m * NV + v] = z[m * NV + v] + x * w[v];
        }
      }
    }
  }
  for (int v = 0; v < NV; ++v) {
    if constexpr (UPDATE) {
      store<VT>(r.a + i0 + v * W, a_new[v]);
      store<VT>(r.b + i0 + v * W, b_new[v]);
    }
    if constexpr (NEXT) {
      for (int m = 0; m < B; ++m) {
        VT s, ds;
        act<T, VT, KIND>(z[m * NV + v] + b_new[v], &s, &ds, r.pw, sh.np, sh.kind);
        store<VT>(val + m * N + i0 + v * W, s);
        store<VT>(der + m * N + i0 + v * W, ds);
        acc[m] = acc[m] + a_new[v] * s;
      }
    }
  }
}

// One pass over all neurons (full tiles of vectors, then a scalar tail); returns the sums
// sum_i a_i sigma(u_{m,i}) in yacc when NEXT.
template <typename T, int KIND, bool UPDATE, bool NEXT, bool DECAY, int BS>
void pass(const Shape& sh, const Replica<T>& r, const T* coef, const T* Xk, const T* Xn, T dl,
          T* val, T* der, T* yacc, std::vector<typename Vec<T>::type>& vs, std::vector<T>& ss) {
  typedef typename Vec<T>::type V;
  constexpr int W = Vec<T>::lanes;
  const int B = BS ? BS : int(sh.B);
  const int64_t tileN = int64_t(W) * kNV;
  const int64_t full = (sh.N / tileN) * tileN;
  V vacc_local[BS ? BS : 1];
  V* vacc = BS ? vacc_local : vs.data() + 2 * B * kNV;
  T sacc_local[BS ? BS : 1];
  T* sacc = BS ? sacc_local : ss.data() + 2 * B;
  for (int m = 0; m < B; ++m) {
    vacc[m] = V{} * T(0);
    sacc[m] = 0;
  }
  for (int64_t i0 = 0; i0 < full; i0 += tileN)
    tile<T, V, kNV, KIND, UPDATE, NEXT, DECAY, BS>(sh, r, i0, coef, Xk, Xn, dl, val, der, vacc, vs.data());
  for (int64_t i0 = full; i0 < sh.N; ++i0)
    tile<T, T, 1, KIND, UPDATE, NEXT, DECAY, BS>(sh, r, i0, coef, Xk, Xn, dl, val, der, sacc, ss.data());
  if (NEXT)
    for (int m = 0; m < B; ++m) yacc[m] = hsum<V, T>(vacc[m]) + sacc[m];
}

template <typename T, int KIND, bool DECAY, int BS>
void run(const Shape& sh, const Replica<T>& r) {
  typedef typename Vec<T>::type V;
  const int64_t N = sh.N, d = sh.d, B = sh.B;
  if (r.n <= 0) return;
  std::vector<T> val(B * N), der(B * N), coef(B), yacc(B), ss(3 * B + 1);
  std::vector<V> vs(3 * B * kNV + B + 1);
  const T inv_n = T(1) / T(N);
  (void)inv_n;
  // pre-activations, sigma and sigma' of step 0
  pass<T, KIND, false, true, false, BS>(sh, r, nullptr, nullptr, r.X, T(1), val.data(), der.data(),
                                             yacc.data(), vs, ss);
  for (int64_t k = 0; k < r.n; ++k) {
    const T s = r.S[k];
    const T dl = DECAY ? T(1) - T(2) * r.lam * s : T(1);
    for (int64_t m = 0; m < B; ++m) {
      const T err = r.Y[k * B + m] - r.alpha * (yacc[m] / T(N));
      coef[m] = (T(2) / r.alpha) * s * err / T(B);
    }
    const T* Xk = r.X + k * B * d;
    if (k + 1 < r.n)
      pass<T, KIND, true, true, DECAY, BS>(sh, r, coef.data(), Xk, Xk + B * d, dl, val.data(), der.data(),
                                                yacc.data(), vs, ss);
    else
      pass<T, KIND, true, false, DECAY, BS>(sh, r, coef.data(), Xk, nullptr, dl, val.data(), der.data(),
                                                 yacc.data(), vs, ss);
  }
}

// ---------------------------------------------------------------------------------------------
// Two-level blocking (batch 1, no weight decay, w trained): S steps per pass over wT.
// With c_t = coef_t a_i sigma'(u_{i,t}) (the grad_w coefficient of step t) the weights after t
// steps of a block are w^(t) = w^(0) + sum_{m<t} c_m x_m, so
//   u_{i,t} = <w_i^(0), x_t> + sum_{m<t} c_{m,i} <x_m, x_t> + b_i^(t)
// (the blocked engine's reassociation, at register level): one pass computes the raw
// pre-activations <w^(0), x_t> of the S steps of the next block, the steps are then resolved
// in order over O(N) arrays (sigma, yhat, the coefficients; a and b updated every step), and the
// next pass applies the S rank-one updates to wT while it computes the following block's raw
// pre-activations: one read and write of wT per S steps instead of per step.

template <typename T, typename VT, int NV, int S>
inline void tile_fused(int64_t N, int64_t d, T* wT, int64_t i0, const T* c, const T* const* Xk, bool update,
                       const T* const* Xn, T* zraw) {
  constexpr int W = sizeof(VT) / sizeof(T);
  const VT zero = VT{} * T(0);
  VT cw[S][NV], z[S][NV];
  for (int t = 0; t < S; ++t)
    for (int v = 0; v < NV; ++v) {
      cw[t][v] = update ? load<VT>(c + t * N + i0 + v * W) : zero;
      z[t][v] = zero;
    }
  for (int64_t j = 0; j < d; ++j) {
    T* wrow = wT + j * N + i0;
    VT w[NV];
    for (int v = 0; v < NV; ++v) w[v] = load<VT>(wrow + v * W);
    if (update) {
      for (int t = 0; t < S; ++t) {
        const T x = Xk[t][j];
        for (int v = 0; v < NV; ++v) w[v] = w[v] + x * cw[t][v];
      }
      for (int v = 0; v < NV; ++v) store<VT>(wrow + v * W, w[v]);
    }
    for (int t = 0; t < S; ++t) {
      const T x = Xn[t][j];
      for (int v = 0; v < NV; ++v) z[t][v] = z[t][v] + x * w[v];
    }
  }
  for (int t = 0; t < S; ++t)
    for (int v = 0; v < NV; ++v) store<VT>(zraw + t * N + i0 + v * W, z[t][v]);
}

template <typename T, int S>
void pass_fused(const Shape& sh, T* wT, const T* c, const T* const* Xk, bool update, const T* const* Xn, T* zraw) {
  typedef typename Vec<T>::type V;
  constexpr int W = Vec<T>::lanes;
  constexpr int NV = S <= 2 ? kNV : 2;  // S x NV update coefficients and accumulators in registers
  const int64_t tileN = int64_t(W) * NV;
  const int64_t full = (sh.N / tileN) * tileN;
  for (int64_t i0 = 0; i0 < full; i0 += tileN) tile_fused<T, V, NV, S>(sh.N, sh.d, wT, i0, c, Xk, update, Xn, zraw);
  for (int64_t i0 = full; i0 < sh.N; ++i0) tile_fused<T, T, 1, S>(sh.N, sh.d, wT, i0, c, Xk, update, Xn, zraw);
}

// step t of a block: u = zraw_t + sum_{m<t} c_m G_{m,t} + b, sigma and sigma' (into val, der),
// returns sum_i a_i sigma(u_i)
template <typename T, typename VT, int KIND, int S>
inline VT resolve_sigma(const Shape& sh, const Replica<T>& r, int64_t i, int t, const T* zraw, const T* c,
                        const T* G, T* val, T* der) {
  const int64_t N = sh.N;
  VT u = load<VT>(zraw + t * N + i) + load<VT>(r.b + i);
  for (int m = 0; m < t; ++m) u = u + G[m * S + t] * load<VT>(c + m * N + i);
  VT sv, dv;
  act<T, VT, KIND>(u, &sv, &dv, r.pw, sh.np, sh.kind);
  store<VT>(val + i, sv);
  store<VT>(der + i, dv);
  return load<VT>(r.a + i) * sv;
}

template <typename T, typename VT>
inline void resolve_update(const Shape& sh, const Replica<T>& r, int64_t i, int t, T coef, T* c, const T* val,
                           const T* der) {
  const int64_t N = sh.N;
  const VT av = load<VT>(r.a + i);
  const VT ct = coef * (av * load<VT>(der + i));
  store<VT>(c + t * N + i, ct);
  if (sh.tr_a) store<VT>(r.a + i, av + coef * load<VT>(val + i));
  if (sh.tr_b) store<VT>(r.b + i, load<VT>(r.b + i) + ct);
}

template <typename T, int KIND, int S>
void run_fused(const Shape& sh, const Replica<T>& r) {
  typedef typename Vec<T>::type V;
  constexpr int W = Vec<T>::lanes;
  const int64_t N = sh.N, d = sh.d;
  const int64_t vecN = (N / W) * W;
  if (r.n <= 0) return;
  std::vector<T> zraw(S * N), c(S * N, T(0)), val(N), der(N), zero_row(d, T(0));
  T G[S * S];
  const T* Xk[S];
  const T* Xn[S];
  auto rows = [&](int64_t k0, const T** out) {  // data rows of steps k0 .. k0 + S - 1 (zeros past n)
    for (int t = 0; t < S; ++t) out[t] = (k0 + t < r.n) ? r.X + (k0 + t) * d : zero_row.data();
  };
  rows(0, Xn);
  pass_fused<T, S>(sh, r.wT, c.data(), Xn, false, Xn, zraw.data());
  for (int64_t k0 = 0; k0 < r.n; k0 += S) {
    const int cnt = int(std::min<int64_t>(S, r.n - k0));
    rows(k0, Xk);
    for (int m = 0; m < S; ++m)
      for (int t = m + 1; t < S; ++t) {
        T g = 0;
        for (int64_t j = 0; j < d; ++j) g += Xk[m][j] * Xk[t][j];
        G[m * S + t] = g;
      }
    for (int t = 0; t < S; ++t) {
      if (t >= cnt) {  // past the last step: no update
        std::fill(c.begin() + t * N, c.begin() + (t + 1) * N, T(0));
        continue;
      }
      V vacc = V{} * T(0);
      T sacc = 0;
      for (int64_t i = 0; i < vecN; i += W) vacc = vacc + resolve_sigma<T, V, KIND, S>(sh, r, i, t, zraw.data(), c.data(), G, val.data(), der.data());
      for (int64_t i = vecN; i < N; ++i) sacc += resolve_sigma<T, T, KIND, S>(sh, r, i, t, zraw.data(), c.data(), G, val.data(), der.data());
      const T yacc = hsum<V, T>(vacc) + sacc;
      const T err = r.Y[k0 + t] - r.alpha * (yacc / T(N));
      const T coef = (T(2) / r.alpha) * r.S[k0 + t] * err;
      for (int64_t i = 0; i < vecN; i += W) resolve_update<T, V>(sh, r, i, t, coef, c.data(), val.data(), der.data());
      for (int64_t i = vecN; i < N; ++i) resolve_update<T, T>(sh, r, i, t, coef, c.data(), val.data(), der.data());
    }
    rows(k0 + S, Xn);
    pass_fused<T, S>(sh, r.wT, c.data(), Xk, true, Xn, zraw.data());
  }
}

template <typename T, int KIND>
void dispatch(const Shape& sh, const Replica<T>& r) {
#define MFNN_RUN(DEC)                              \
  if (sh.B == 1) run<T, KIND, DEC, 1>(sh, r);     \
  else run<T, KIND, DEC, 0>(sh, r);
  if (sh.decay) {
    MFNN_RUN(true)
  } else {
    MFNN_RUN(false)
  }
#undef MFNN_RUN
}

template <typename T>
void run_one(int kind, const Shape& sh, const Replica<T>& r, int fuse) {
  if (fuse >= 2 && sh.B == 1 && !sh.decay && sh.tr_w) {
    if (fuse >= 4) {
      if (kind == PWL)
        run_fused<T, PWL, 4>(sh, r);
      else
        run_fused<T, TANH, 4>(sh, r);
    } else {
      if (kind == PWL)
        run_fused<T, PWL, 2>(sh, r);
      else
        run_fused<T, TANH, 2>(sh, r);
    }
    return;
  }
  if (kind == PWL)
    dispatch<T, PWL>(sh, r);
  else
    dispatch<T, TANH>(sh, r);  // every smooth kind (sh.kind picks the function)
}

template <ffi::DataType DT>
ffi::Error SgdBlockImpl(ffi::Buffer<DT> wT, ffi::Buffer<DT> a, ffi::Buffer<DT> b, ffi::Buffer<DT> X,
                        ffi::Buffer<DT> Y, ffi::Buffer<DT> S, ffi::Buffer<ffi::S64> n, ffi::Buffer<DT> params,
                        ffi::Buffer<DT> pieces, ffi::ResultBuffer<DT> wT_out, ffi::ResultBuffer<DT> a_out,
                        ffi::ResultBuffer<DT> b_out, int64_t kind, int64_t batch, int64_t tr_w, int64_t tr_a,
                        int64_t tr_b, int64_t decay, int64_t threads, int64_t fuse) {
  typedef ffi::NativeType<DT> T;
  auto dims = wT.dimensions();
  if (dims.size() < 2) return ffi::Error::InvalidArgument("wT must have rank >= 2");
  Shape sh;
  sh.d = dims[dims.size() - 2];
  sh.N = dims[dims.size() - 1];
  sh.B = batch;
  sh.kind = int(kind);
  sh.tr_w = tr_w != 0;
  sh.tr_a = tr_a != 0;
  sh.tr_b = tr_b != 0;
  sh.decay = decay != 0;
  const int64_t per_w = sh.d * sh.N;
  if (per_w == 0) return ffi::Error::Success();
  const int64_t R = int64_t(wT.element_count()) / per_w;
  if (R == 0) return ffi::Error::Success();
  const int64_t L = int64_t(S.element_count()) / R;
  const int64_t np4 = int64_t(pieces.element_count()) / R;
  sh.np = int(np4 / 4);
  if (int64_t(X.element_count()) != R * L * sh.B * sh.d || int64_t(Y.element_count()) != R * L * sh.B ||
      int64_t(a.element_count()) != R * sh.N || int64_t(b.element_count()) != R * sh.N ||
      int64_t(n.element_count()) != R || int64_t(params.element_count()) != 2 * R)
    return ffi::Error::InvalidArgument("mfnn_sgd_block: inconsistent buffer sizes");
  T* wo = wT_out->typed_data();
  T* ao = a_out->typed_data();
  T* bo = b_out->typed_data();
  if (wo != wT.typed_data()) std::memcpy(wo, wT.typed_data(), sizeof(T) * R * per_w);
  if (ao != a.typed_data()) std::memcpy(ao, a.typed_data(), sizeof(T) * R * sh.N);
  if (bo != b.typed_data()) std::memcpy(bo, b.typed_data(), sizeof(T) * R * sh.N);
  auto work = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      Replica<T> rep;
      rep.wT = wo + r * per_w;
      rep.a = ao + r * sh.N;
      rep.b = bo + r * sh.N;
      rep.X = X.typed_data() + r * L * sh.B * sh.d;
      rep.Y = Y.typed_data() + r * L * sh.B;
      rep.S = S.typed_data() + r * L;
      rep.n = std::min<int64_t>(n.typed_data()[r], L);
      rep.alpha = params.typed_data()[2 * r];
      rep.lam = params.typed_data()[2 * r + 1];
      rep.pw = pieces.typed_data() + r * np4;
      run_one<T>(int(kind), sh, rep, int(fuse));
    }
  };
  int64_t nt = std::max<int64_t>(1, std::min<int64_t>(threads, R));
  if (nt == 1) {
    work(0, R);
  } else {
    std::vector<std::thread> pool;
    const int64_t chunk = (R + nt - 1) / nt;
    for (int64_t t = 1; t < nt; ++t) {
      const int64_t r0 = t * chunk, r1 = std::min(R, r0 + chunk);
      if (r0 < r1) pool.emplace_back(work, r0, r1);
    }
    work(0, std::min(R, chunk));
    for (auto& th : pool) th.join();
  }
  return ffi::Error::Success();
}

// ---------------------------------------------------------------------------------------------
// The Mehler pair sum of the exact population risk (mfnn/problem/population.py):
//   P = sum_{i != j} sum_{k < K} A_ki A_kj C_ij^k = 2 sum_{i < j} p_ij(C_ij),
// each polynomial p_ij by Horner from k = K - 1 down, vectorized over j, the strict upper
// triangle only, no (N, N, K) intermediate.  Rows are dealt to kGroups fixed interleaved groups
// (i % kGroups: balanced over the triangle) whose partial sums are added in a fixed order, so the
// result does not depend on the number of threads.  Leading dimensions are replicas.

constexpr int kGroups = 16;

template <typename T>
T pair_rows(const T* A, const T* C, int64_t K, int64_t N, int64_t g) {
  typedef typename Vec<T>::type V;
  constexpr int W = Vec<T>::lanes;
  constexpr int U = 4;  // independent Horner chains per row (hide the FMA latency)
  const V zero = V{} * T(0);
  V vt = zero;
  T st = 0;
  for (int64_t i = g; i < N; i += kGroups) {
    const T* crow = C + i * N;
    int64_t j = i + 1;
    for (; j + U * W <= N; j += U * W) {
      V c[U], acc[U];
      const T a_last = A[(K - 1) * N + i];
      for (int u = 0; u < U; ++u) {
        c[u] = load<V>(crow + j + u * W);
        acc[u] = a_last * load<V>(A + (K - 1) * N + j + u * W);
      }
      for (int64_t k = K - 2; k >= 0; --k) {
        const T* row = A + k * N + j;
        const T aik = A[k * N + i];
        for (int u = 0; u < U; ++u) acc[u] = acc[u] * c[u] + aik * load<V>(row + u * W);
      }
      for (int u = 0; u < U; ++u) vt = vt + acc[u];
    }
    for (; j + W <= N; j += W) {
      const V c = load<V>(crow + j);
      V acc = A[(K - 1) * N + i] * load<V>(A + (K - 1) * N + j);
      for (int64_t k = K - 2; k >= 0; --k) acc = acc * c + A[k * N + i] * load<V>(A + k * N + j);
      vt = vt + acc;
    }
    for (; j < N; ++j) {
      const T c = crow[j];
      T acc = A[(K - 1) * N + i] * A[(K - 1) * N + j];
      for (int64_t k = K - 2; k >= 0; --k) acc = acc * c + A[k * N + i] * A[k * N + j];
      st += acc;
    }
  }
  return hsum<V, T>(vt) + st;
}

template <ffi::DataType DT>
ffi::Error PairSumImpl(ffi::Buffer<DT> A, ffi::Buffer<DT> C, ffi::ResultBuffer<DT> out, int64_t threads) {
  typedef ffi::NativeType<DT> T;
  auto ad = A.dimensions();
  auto cd = C.dimensions();
  if (ad.size() < 2 || cd.size() < 2) return ffi::Error::InvalidArgument("pair sum: A (K, N), C (N, N)");
  const int64_t K = ad[ad.size() - 2], N = ad[ad.size() - 1];
  if (cd[cd.size() - 1] != N || cd[cd.size() - 2] != N)
    return ffi::Error::InvalidArgument("pair sum: C must be (N, N) with A (K, N)");
  const int64_t R = int64_t(out->element_count());
  T* o = out->typed_data();
  if (R == 0) return ffi::Error::Success();
  if (K * N == 0 || N < 2) {
    for (int64_t r = 0; r < R; ++r) o[r] = 0;
    return ffi::Error::Success();
  }
  if (int64_t(A.element_count()) != R * K * N || int64_t(C.element_count()) != R * N * N)
    return ffi::Error::InvalidArgument("pair sum: inconsistent buffer sizes");
  const int64_t items = R * kGroups;
  std::vector<T> part(items);
  auto work = [&](int64_t t, int64_t nt) {
    for (int64_t it = t; it < items; it += nt) {
      const int64_t r = it / kGroups, g = it % kGroups;
      part[it] = pair_rows<T>(A.typed_data() + r * K * N, C.typed_data() + r * N * N, K, N, g);
    }
  };
  const int64_t nt = std::max<int64_t>(1, std::min<int64_t>(threads, items));
  if (nt == 1) {
    work(0, 1);
  } else {
    std::vector<std::thread> pool;
    for (int64_t t = 1; t < nt; ++t) pool.emplace_back(work, t, nt);
    work(0, nt);
    for (auto& th : pool) th.join();
  }
  for (int64_t r = 0; r < R; ++r) {
    T s = 0;
    for (int64_t g = 0; g < kGroups; ++g) s += part[r * kGroups + g];
    o[r] = T(2) * s;
  }
  return ffi::Error::Success();
}

}  // namespace

#define MFNN_BIND(DT)                         \
  ffi::Ffi::Bind()                            \
      .Arg<ffi::Buffer<DT>>()                 \
      .Arg<ffi::Buffer<DT>>()                 \
      .Arg<ffi::Buffer<DT>>()                 \
      .Arg<ffi::Buffer<DT>>()                 \
      .Arg<ffi::Buffer<DT>>()                 \
      .Arg<ffi::Buffer<DT>>()                 \
      .Arg<ffi::Buffer<ffi::S64>>()           \
      .Arg<ffi::Buffer<DT>>()                 \
      .Arg<ffi::Buffer<DT>>()                 \
      .Ret<ffi::Buffer<DT>>()                 \
      .Ret<ffi::Buffer<DT>>()                 \
      .Ret<ffi::Buffer<DT>>()                 \
      .Attr<int64_t>("kind")                  \
      .Attr<int64_t>("batch")                 \
      .Attr<int64_t>("tr_w")                  \
      .Attr<int64_t>("tr_a")                  \
      .Attr<int64_t>("tr_b")                  \
      .Attr<int64_t>("decay")                 \
      .Attr<int64_t>("threads")                \
      .Attr<int64_t>("fuse")

XLA_FFI_DEFINE_HANDLER_SYMBOL(MfnnSgdBlockF64, SgdBlockImpl<ffi::F64>, MFNN_BIND(ffi::F64));
XLA_FFI_DEFINE_HANDLER_SYMBOL(MfnnSgdBlockF32, SgdBlockImpl<ffi::F32>, MFNN_BIND(ffi::F32));

#define MFNN_BIND_PAIR(DT)                    \
  ffi::Ffi::Bind()                            \
      .Arg<ffi::Buffer<DT>>()                 \
      .Arg<ffi::Buffer<DT>>()                 \
      .Ret<ffi::Buffer<DT>>()                 \
      .Attr<int64_t>("threads")

XLA_FFI_DEFINE_HANDLER_SYMBOL(MfnnPairSumF64, PairSumImpl<ffi::F64>, MFNN_BIND_PAIR(ffi::F64));
XLA_FFI_DEFINE_HANDLER_SYMBOL(MfnnPairSumF32, PairSumImpl<ffi::F32>, MFNN_BIND_PAIR(ffi::F32));
