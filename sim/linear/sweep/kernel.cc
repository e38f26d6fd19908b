// The sweep kernel for CPUs as an XLA FFI handler: sim.linear.sweep.native builds this file with the system's C++ compiler on
// first use and sim.linear.sweep.xla.chunk_summary calls it in place of its XLA computation. It computes what that computation
// does (the same operations in the same order: the transition matrices' spectral radius and power bound, the time
// loop with the same block-end checks and freezing, the final-error powering and the summaries; the two compilers
// may fuse different multiply-adds into FMAs), point by point, so the XLA version stays the reference (and the path
// on GPUs).
//
// Why by hand: XLA's fused loop takes one vector of points through every step of a block before the next vector, so
// each step waits for the previous one (latency-bound). Here the time loop is innermost over a tile of TILE vectors
// whose whole state stays in registers, and the TILE independent updates hide each other's latency. A tile stops as
// soon as none of its points is running (each point still freezes at its own block end, as in the XLA loop). Why the
// summaries too: with XLA computing them around this call, XLA split its elementwise work into tasks on its shared
// thread pool, which waited behind the other device's call (measured: two devices ran 1.46x one instead of 2x).
//
// Arguments (T = float or double, n points, M modes):
//   hyper  [2, n]  learning rate; beta (momentum) or m (heavy_ball, nesterov); row 1 unused by GD
//   sigma2 [M, n]  squared singular value of each mode (the Hessian eigenvalue is 2 sigma2)
//   x0     [M, n]  initial relative error coordinates (velocity starts at 0)
//   tol, bound     scalars: relative-error tolerance and divergence bound on the relative state norm
//   count          int32 scalar: the points from index count on are padding; they are not run and their results are 0
// Results, each [n], as sim.linear.sweep.fields.FIELDS: settle_step, final_error, max_error, diverged (bool), diverge_step, rate,
// contraction, simulated_steps.
// Attributes: method (0 gd, 1 momentum (EMA), 2 heavy_ball, 3 nesterov), steps, block.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

enum Method : int32_t { GD = 0, MOMENTUM = 1, HEAVY_BALL = 2, NESTEROV = 3 };

constexpr int BYTES = 64;  // one 512-bit vector (split into narrower ones by the compiler where needed)
constexpr int TILE = 4;    // independent vectors per tile: enough to hide the FMA latency

template <typename T>
struct Vec {
  using I = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;  // masks have the width of T
  typedef T v __attribute__((vector_size(BYTES)));
  typedef I vi __attribute__((vector_size(BYTES)));
  static constexpr int lanes = BYTES / sizeof(T);
};

// whether any lane of a mask is set
template <typename VI>
inline bool any(VI mask) {
  uint64_t words[BYTES / 8], bits = 0;
  std::memcpy(words, &mask, sizeof words);
  for (uint64_t word : words) bits |= word;
  return bits != 0;
}

// elementwise functions of vectors with XLA's semantics (abs(-0) = +0, NaN-propagating maximum). Per point, not
// per step: sqrt is written lane by lane (the compiler vectorizes it), pow is a call per lane.
template <typename V>
inline V vabs(V x) {
  return x < 0 ? -x : x + 0;
}

template <typename V>
inline V vmax(V a, V b) {
  return a != a ? a : (b != b ? b : (a > b ? a : b));
}

template <typename V>
inline V vsqrt(V x) {
  for (int l = 0; l < static_cast<int>(sizeof x / sizeof x[0]); l++) x[l] = std::sqrt(x[l]);
  return x;
}

// sim.linear.theory.spectral_radius of d x d matrices (d = 1, 2), one per lane: the same operations in the same order
template <typename V, int D>
V spectral_radius(const V (&r)[D][D]) {
  if constexpr (D == 1) {
    return vabs(r[0][0]);
  } else {
    const V tr = r[0][0] + r[1][1];
    const V det = r[0][0] * r[1][1] - r[0][1] * r[1][0];
    const V disc = tr * tr - 4 * det;
    const V sq = vsqrt(vabs(disc));
    const V real_case = vmax(vabs(tr + sq), vabs(tr - sq)) / 2;
    return disc >= 0 ? real_case : vsqrt(vabs(det));
  }
}

// sim.linear.theory.power_bound of d x d matrices with spectral radius rho: G >= ||R^s|| for all s >= 1 (inf if rho >= 1)
template <typename V, int D>
V power_bound(const V (&r)[D][D], V rho) {
  using T = std::remove_reference_t<decltype(rho[0])>;
  const V inf = V{} + std::numeric_limits<T>::infinity();
  if constexpr (D == 1) {
    return rho < 1 ? rho : inf;
  } else {
    V frob2 = r[0][0] * r[0][0];
    for (int e = 1; e < 4; e++) frob2 = frob2 + r[e / 2][e % 2] * r[e / 2][e % 2];
    const V peak = rho <= static_cast<T>(std::exp(-1.0)) ? V{} + 1 : 1 / (static_cast<T>(M_E) * rho * (1 - rho));
    return rho < 1 ? peak * (vsqrt(frob2) + static_cast<T>(M_SQRT2) * rho) : inf;
  }
}

// one call's buffers: rows of n points, of which the first `valid` are real
template <typename T>
struct Io {
  int64_t n, valid;
  int32_t steps, block;
  T tol2, bound, bound2;
  const T *hyper, *sigma2, *x0;
  int32_t* settle_step;
  T *final_error, *max_error;
  bool* diverged;
  int32_t* diverge_step;
  T *rate, *contraction;
  int32_t* simulated_steps;
};

// One tile: TILE x lanes points with M modes, from loaded inputs to stored results. Everything is a local array
// indexed by compile-time constants after unrolling, so the state lives in registers through each block's steps.
template <typename T, int METHOD, int M>
struct Tile {
  using V = typename Vec<T>::v;
  using VI = typename Vec<T>::vi;
  using I = typename Vec<T>::I;
  static constexpr bool velocity = METHOD != GD;
  static constexpr int D = velocity ? 2 : 1;  // state components per mode

  V lr[TILE], b[TILE], decay[TILE], h[M][TILE], g2[M][TILE];  // per point, fixed
  V w[M][TILE], v[M][TILE], emax[TILE];                       // state
  VI last[TILE], status[TILE], stop[TILE];

  // one step of the method on one mode: the same operations in the same order as sim.linear.dynamics
  void update(V& w, V& v, const V& h, int k) const {
    const V g = h * w;  // the gradient of ||y - Xw||^2 along the mode
    if constexpr (METHOD == GD) {
      w = w - lr[k] * g;
    } else if constexpr (METHOD == MOMENTUM) {
      v = decay[k] * v + b[k] * g;
      w = w - lr[k] * v;
    } else if constexpr (METHOD == HEAVY_BALL) {
      v = b[k] * v + g;
      w = w - lr[k] * v;
    } else {
      v = b[k] * v + g;
      w = w - lr[k] * (b[k] * v + g);
    }
  }

  void start() {
    for (int k = 0; k < TILE; k++) {
      decay[k] = T(1) - b[k];
      last[k] = status[k] = stop[k] = VI{};
      for (int m = 0; m < M; m++) {
        v[m][k] = V{};
        emax[k] = m ? emax[k] + w[m][k] * w[m][k] : w[m][k] * w[m][k];
      }
    }
  }

  // the steps t + 1 ... t + length, then the block-end checks; returns whether any point is still running
  bool block(int32_t t, int32_t length, T tol2, T bound2) {
    V w0[M][TILE], v0[M][TILE], emax0[TILE];
    VI last0[TILE];
    std::memcpy(w0, w, sizeof w);
    std::memcpy(v0, v, sizeof v);
    std::memcpy(emax0, emax, sizeof emax);
    std::memcpy(last0, last, sizeof last);
    for (int32_t step = t + 1; step <= t + length; step++) {
      for (int k = 0; k < TILE; k++) {
        V e2 = V{};
        for (int m = 0; m < M; m++) {
          update(w[m][k], v[m][k], h[m][k], k);
          e2 = m ? e2 + w[m][k] * w[m][k] : w[m][k] * w[m][k];
        }
        emax[k] = e2 > emax[k] ? e2 : emax[k];
        last[k] = e2 >= tol2 ? VI{} + static_cast<I>(step) : last[k];
      }
    }
    // block end: points that diverged are frozen at the block's start, points that provably settled at its end
    VI diverged[TILE], settled[TILE], events = VI{};
    for (int k = 0; k < TILE; k++) {
      V total = V{}, weighted = V{};
      for (int m = 0; m < M; m++) {
        const V u2 = velocity ? w[m][k] * w[m][k] + v[m][k] * v[m][k] : w[m][k] * w[m][k];
        total = m ? total + u2 : u2;
        weighted = m ? weighted + g2[m][k] * u2 : g2[m][k] * u2;
      }
      diverged[k] = ~(total <= bound2);  // NaN counts as diverged
      settled[k] = weighted < tol2;
      events |= status[k] | diverged[k] | settled[k];
    }
    if (!any(events)) return true;  // every point is still running: nothing to freeze
    VI running = VI{};
    for (int k = 0; k < TILE; k++) {
      const VI active = status[k] == 0;
      const VI take = active & ~diverged[k];
      for (int m = 0; m < M; m++) {
        w[m][k] = take ? w[m][k] : w0[m][k];
        v[m][k] = take ? v[m][k] : v0[m][k];
      }
      emax[k] = take ? emax[k] : emax0[k];
      last[k] = take ? last[k] : last0[k];
      status[k] = active ? (diverged[k] ? VI{} + 2 : (settled[k] ? VI{} + 1 : VI{})) : status[k];
      stop[k] = active & (diverged[k] | settled[k]) ? VI{} + static_cast<I>(t + length) : stop[k];
      running |= status[k] == 0;
    }
    return any(running);
  }

  // R_m's columns for vector k: R e_c is one `update` of the basis state e_c, as sim.linear.theory.transition_matrix
  // derives R from the method's own step
  void matrix(int m, int k, V (&r)[D][D]) const {
    for (int c = 0; c < D; c++) {
      V e[2] = {V{} + T(c == 0), V{} + T(c == 1)};  // (error, velocity) = e_c
      update(e[0], e[1], h[m][k], k);
      for (int a = 0; a < D; a++) r[a][c] = e[a];
    }
  }

  // before the loop: each mode's squared power bound G_m^2 (the settle check's weights) and the rate, the largest
  // spectral radius over the modes. Per point, so not in the time loop's registers (noinline, as final_error2).
  __attribute__((noinline)) void bounds(V* rate) {
    for (int k = 0; k < TILE; k++) {
      for (int m = 0; m < M; m++) {
        V r[D][D];
        matrix(m, k, r);
        const V rho = spectral_radius<V, D>(r);
        const V g = power_bound<V, D>(r, rho);
        g2[m][k] = g * g;
        rate[k] = m ? vmax(rate[k], rho) : rho;
      }
    }
  }

  // the squared error after step `steps`: settled points advance from their stopping block by binary powering of
  // their transition matrices (the same products in the same order as sim.linear.sweep.xla._apply_power). Not inlined:
  // inlined into `run`, it changed the register allocation of the time loop (1.2x slower with 2 modes).
  __attribute__((noinline)) void final_error2(int32_t steps, V* out) const {
    VI left[TILE], pending = VI{};
    for (int k = 0; k < TILE; k++) {
      left[k] = status[k] == 1 ? (VI{} + static_cast<I>(steps)) - stop[k] : VI{};
      pending |= left[k];
    }
    for (int k = 0; k < TILE; k++) out[k] = V{};
    for (int m = 0; m < M; m++) {
      for (int k = 0; k < TILE; k++) {
        V base[D][D], res[D] = {w[m][k]};
        if (velocity) res[D - 1] = v[m][k];
        matrix(m, k, base);
        for (int bit = 0; any(pending >> bit); bit++) {
          const VI take = ((left[k] >> bit) & 1) != 0;
          V next[D], square[D][D];
          for (int a = 0; a < D; a++) {
            next[a] = base[a][0] * res[0];
            for (int c = 1; c < D; c++) next[a] = next[a] + base[a][c] * res[c];
          }
          for (int a = 0; a < D; a++) {
            for (int b = 0; b < D; b++) {
              square[a][b] = base[a][0] * base[0][b];
              for (int c = 1; c < D; c++) square[a][b] = square[a][b] + base[a][c] * base[c][b];
            }
          }
          for (int a = 0; a < D; a++) res[a] = take ? next[a] : res[a];
          std::memcpy(base, square, sizeof base);
        }
        out[k] = m ? out[k] + res[0] * res[0] : res[0] * res[0];
      }
    }
  }

  // the summaries of points p ... p + count - 1, as sim.linear.sweep.xla.chunk_summary reduces the XLA loop's state
  __attribute__((noinline)) void summarize(const Io<T>& io, int64_t p, int64_t count, const V* rate) const {
    V final2[TILE], final_error[TILE], max_error[TILE], contraction[TILE];
    VI settle_step[TILE], diverged[TILE], diverge_step[TILE], simulated_steps[TILE];
    final_error2(io.steps, final2);
    const VI steps = VI{} + static_cast<I>(io.steps);
    for (int k = 0; k < TILE; k++) {
      diverged[k] = status[k] == 2;
      simulated_steps[k] = status[k] == 0 ? steps : stop[k];
      settle_step[k] = ~diverged[k] & (last[k] < steps) ? last[k] + 1 : VI{} - 1;
      diverge_step[k] = diverged[k] ? stop[k] : VI{} - 1;
      final_error[k] = vsqrt(final2[k]);
      max_error[k] = vsqrt(emax[k]);
      // ||u||, scaled by the largest |component| first (the squares of a settled point's state would underflow)
      V parts[M * D];
      for (int m = 0; m < M; m++) {
        parts[m * D] = w[m][k];
        if (velocity) parts[m * D + D - 1] = v[m][k];
      }
      V scale = vabs(parts[0]);
      for (int c = 1; c < M * D; c++) scale = vmax(scale, vabs(parts[c]));
      const V safe = scale > 0 ? scale : V{} + 1;
      V sum = (parts[0] / safe) * (parts[0] / safe);
      for (int c = 1; c < M * D; c++) sum = sum + (parts[c] / safe) * (parts[c] / safe);
      // the measured rate over the simulated steps; for diverged points the growth bound^(1 / diverge step)
      const V base = diverged[k] ? V{} + io.bound : scale * vsqrt(sum);
      const VI t = simulated_steps[k] > 1 ? simulated_steps[k] : VI{} + 1;
      const V exponent = 1 / __builtin_convertvector(t, V);
      for (int l = 0; l < Vec<T>::lanes; l++) contraction[k][l] = std::pow(base[l], exponent[l]);
    }
    auto put = [&](auto* row, const auto* values) {
      using R = std::remove_pointer_t<decltype(row)>;
      const auto* lanes = reinterpret_cast<const std::remove_reference_t<decltype(values[0][0])>*>(values);
      for (int64_t i = 0; i < count; i++) row[p + i] = static_cast<R>(lanes[i]);
    };
    put(io.settle_step, settle_step);
    put(io.final_error, final_error);
    put(io.max_error, max_error);
    put(io.diverged, diverged);
    put(io.diverge_step, diverge_step);
    put(io.rate, rate);
    put(io.contraction, contraction);
    put(io.simulated_steps, simulated_steps);
  }
};

template <typename T, int METHOD, int M>
void run(const Io<T>& io) {
  using V = typename Vec<T>::v;
  constexpr int P = TILE * Vec<T>::lanes;  // points per tile
  const int64_t n = io.n;

  // a tile's rows; the last tile is padded with copies of the last point (and only its real points are stored)
  T buf[P];
  auto load = [&](const T* row, int64_t p, int64_t count, V* out) {
    if (count == P) {
      std::memcpy(out, row + p, sizeof buf);
      return;
    }
    for (int64_t i = 0; i < P; i++) buf[i] = row[p + (i < count ? i : count - 1)];
    std::memcpy(out, buf, sizeof buf);
  };

  const int32_t full = io.steps / io.block * io.block;
  for (int64_t p = 0; p < io.valid; p += P) {  // rows have length n; the points from valid on are padding
    const int64_t count = io.valid - p < P ? io.valid - p : P;
    Tile<T, METHOD, M> s;
    load(io.hyper, p, count, s.lr);
    load(io.hyper + n, p, count, s.b);
    for (int m = 0; m < M; m++) {
      load(io.sigma2 + m * n, p, count, s.h[m]);
      for (int k = 0; k < TILE; k++) s.h[m][k] = T(2) * s.h[m][k];  // L = ||y - Xw||^2: dL/dw_i = 2 sigma_i^2 w_i
      load(io.x0 + m * n, p, count, s.w[m]);
    }
    s.start();
    V rate[TILE];
    s.bounds(rate);
    int32_t t = 0;
    bool running = true;
    for (; running && t < full; t += io.block) running = s.block(t, io.block, io.tol2, io.bound2);
    if (running && io.steps % io.block) s.block(t, io.steps % io.block, io.tol2, io.bound2);
    s.summarize(io, p, count, rate);
  }
}

// modes 1 to MAX_MODES have their own instance; sim.linear.sweep.native sends larger problems to the XLA loop
constexpr int MAX_MODES = 4;

template <typename T, int METHOD, int M = 1>
void dispatch_modes(int modes, const Io<T>& io) {
  if constexpr (M < MAX_MODES) {
    if (modes != M) return dispatch_modes<T, METHOD, M + 1>(modes, io);
  }
  run<T, METHOD, M>(io);
}

template <ffi::DataType DT>
ffi::Error sweep(ffi::Buffer<DT> hyper, ffi::Buffer<DT> sigma2, ffi::Buffer<DT> x0, ffi::Buffer<DT> tol,
                 ffi::Buffer<DT> bound, ffi::Buffer<ffi::S32> count, ffi::ResultBuffer<ffi::S32> settle_step,
                 ffi::ResultBuffer<DT> final_error, ffi::ResultBuffer<DT> max_error,
                 ffi::ResultBuffer<ffi::PRED> diverged, ffi::ResultBuffer<ffi::S32> diverge_step,
                 ffi::ResultBuffer<DT> rate, ffi::ResultBuffer<DT> contraction,
                 ffi::ResultBuffer<ffi::S32> simulated_steps, int32_t method, int32_t steps, int32_t block) {
  using T = ffi::NativeType<DT>;
  const auto dims = sigma2.dimensions();
  if (dims.size() != 2 || hyper.dimensions().size() != 2 || hyper.dimensions()[0] != 2 ||
      hyper.dimensions()[1] != dims[1] || x0.element_count() != sigma2.element_count() ||
      rate->element_count() != static_cast<size_t>(dims[1])) {
    return ffi::Error::InvalidArgument("sim sweep kernel: inconsistent shapes");
  }
  if (steps < 1 || block < 1 || method < GD || method > NESTEROV) {
    return ffi::Error::InvalidArgument("sim sweep kernel: bad method, steps or block");
  }
  const int64_t n = dims[1];
  const int modes = static_cast<int>(dims[0]);
  if (modes < 1 || modes > MAX_MODES) {
    return ffi::Error::InvalidArgument("sim sweep kernel: 1 to " + std::to_string(MAX_MODES) + " modes");
  }
  const T t = *tol.typed_data(), b = *bound.typed_data();
  Io<T> io{n,
           std::clamp<int64_t>(*count.typed_data(), 0, n),
           steps,
           block,
           t * t,
           b,
           b * b,
           hyper.typed_data(),
           sigma2.typed_data(),
           x0.typed_data(),
           settle_step->typed_data(),
           final_error->typed_data(),
           max_error->typed_data(),
           diverged->typed_data(),
           diverge_step->typed_data(),
           rate->typed_data(),
           contraction->typed_data(),
           simulated_steps->typed_data()};
  const int64_t pad = n - io.valid;
  for (auto* out : {io.final_error, io.max_error, io.rate, io.contraction}) std::fill_n(out + io.valid, pad, T(0));
  for (auto* out : {io.settle_step, io.diverge_step, io.simulated_steps}) std::fill_n(out + io.valid, pad, 0);
  std::fill_n(io.diverged + io.valid, pad, false);
  if (io.valid == 0) return ffi::Error::Success();
#if defined(__SSE__)
  // flush subnormals to zero, as XLA does (decaying modes would otherwise crawl through them and round differently)
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040);  // FTZ | DAZ
#endif
  switch (method) {
    case GD:
      dispatch_modes<T, GD>(modes, io);
      break;
    case MOMENTUM:
      dispatch_modes<T, MOMENTUM>(modes, io);
      break;
    case HEAVY_BALL:
      dispatch_modes<T, HEAVY_BALL>(modes, io);
      break;
    default:
      dispatch_modes<T, NESTEROV>(modes, io);
  }
#if defined(__SSE__)
  _mm_setcsr(csr);
#endif
  return ffi::Error::Success();
}

}  // namespace

// the handlers' signature, one per dtype
#define SIM_SWEEP_HANDLER(NAME, DT)                                \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(NAME, sweep<DT>,                    \
                                ffi::Ffi::Bind()                    \
                                    .Arg<ffi::Buffer<DT>>()         \
                                    .Arg<ffi::Buffer<DT>>()         \
                                    .Arg<ffi::Buffer<DT>>()         \
                                    .Arg<ffi::Buffer<DT>>()         \
                                    .Arg<ffi::Buffer<DT>>()         \
                                    .Arg<ffi::Buffer<ffi::S32>>()   \
                                    .Ret<ffi::Buffer<ffi::S32>>()   \
                                    .Ret<ffi::Buffer<DT>>()         \
                                    .Ret<ffi::Buffer<DT>>()         \
                                    .Ret<ffi::Buffer<ffi::PRED>>()  \
                                    .Ret<ffi::Buffer<ffi::S32>>()   \
                                    .Ret<ffi::Buffer<DT>>()         \
                                    .Ret<ffi::Buffer<DT>>()         \
                                    .Ret<ffi::Buffer<ffi::S32>>()   \
                                    .Attr<int32_t>("method")        \
                                    .Attr<int32_t>("steps")         \
                                    .Attr<int32_t>("block"))

SIM_SWEEP_HANDLER(SimSweepF32, ffi::F32);
SIM_SWEEP_HANDLER(SimSweepF64, ffi::F64);
