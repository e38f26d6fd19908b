// The sweep kernel's time loop as an XLA FFI handler for CPUs: sim.native builds this file with the system's C++
// compiler on first use and sim.kernel.chunk_summary calls it in place of its XLA while_loop. It does what that loop
// does (the same operations in the same order, the same block-end checks and freezing; the two compilers may fuse
// different multiply-adds into FMAs), point by point, so the Python side keeps one definition of the summaries and
// the XLA loop stays the reference (and the path on GPUs).
//
// Why by hand: XLA's fused loop takes one vector of points through every step of a block before the next vector, so
// each step waits for the previous one (latency-bound). Here the time loop is innermost over a tile of TILE vectors
// whose whole state stays in registers, and the TILE independent updates hide each other's latency. A tile stops as
// soon as none of its points is running (each point still freezes at its own block end, as in the XLA loop).
//
// Arguments (T = float or double, n points, M modes, D = 1 for GD and 2 for the momentum methods):
//   hyper [2, n]  learning rate; beta (momentum) or m (heavy_ball, nesterov); row 1 unused by GD
//   h     [M, n]  Hessian eigenvalue 2 sigma_i^2 of each mode
//   x0    [M, n]  initial relative error coordinates (velocity starts at 0)
//   g2    [M, n]  squared bound G_i^2 >= ||R_i^s||^2 for all s >= 1
//   tol2, bound2  scalars: squared tolerance and squared divergence bound
//   count         int32 scalar: the points from index count on are padding; they are not run and their results are 0
// Results: u [D, M, n] (state where the point stopped: error, then velocity), emax [n] (max squared error), last [n]
// (last step with squared error >= tol2), status [n] (0 ran to the end, 1 provably settled, 2 diverged), stop [n]
// (block end of the status), final2 [n] (squared error after the last step: for a settled point, sum_i of the error
// component of R_i^(steps - stop) u_i squared, by binary powering as sim.kernel._final_error2 does it for the XLA
// loop).
// Attributes: method (0 gd, 1 momentum (EMA), 2 heavy_ball, 3 nesterov), steps, block.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
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

// One tile: TILE x lanes points with M modes, from loaded inputs to stored results. Everything is a local array
// indexed by compile-time constants after unrolling, so the state lives in registers through each block's steps.
template <typename T, int METHOD, int M>
struct Tile {
  using V = typename Vec<T>::v;
  using VI = typename Vec<T>::vi;
  using I = typename Vec<T>::I;
  static constexpr bool velocity = METHOD != GD;

  V lr[TILE], b[TILE], decay[TILE], h[M][TILE], g2[M][TILE];  // inputs
  V w[M][TILE], v[M][TILE], emax[TILE];                       // state
  VI last[TILE], status[TILE], stop[TILE];

  // one step of the method on one mode: the same operations in the same order as sim.dynamics
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

  // the squared error after step `steps`: settled points advance from their stopping block by binary powering of
  // their transition matrices (the same products in the same order as sim.kernel._apply_power), each column R e_j
  // one `update` of the basis state e_j, as sim.theory.transition_matrix derives R from the method's own step. Not
  // inlined: inlined into `run`, it changed the register allocation of the time loop (1.2x slower with 2 modes).
  __attribute__((noinline)) void final_error2(int32_t steps, V* out) const {
    constexpr int D = velocity ? 2 : 1;
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
        for (int c = 0; c < D; c++) {
          V e[2] = {V{} + T(c == 0), V{} + T(c == 1)};  // (error, velocity) = e_c
          update(e[0], e[1], h[m][k], k);
          for (int a = 0; a < D; a++) base[a][c] = e[a];
        }
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
};

template <typename T, int METHOD, int M>
void run(int64_t n, int64_t valid, int32_t steps, int32_t block, const T* hyper, const T* h, const T* x0, const T* g2,
         T tol2, T bound2, T* u_out, T* emax_out, int32_t* last_out, int32_t* status_out,
         int32_t* stop_out, T* final2_out) {
  using V = typename Vec<T>::v;
  using VI = typename Vec<T>::vi;
  using I = typename Vec<T>::I;
  constexpr int P = TILE * Vec<T>::lanes;  // points per tile

  // tile rows in and out; the last tile is padded with copies of the last point and only its real points are stored
  T buf[P];
  I ibuf[P];
  auto load = [&](const T* row, int64_t p, int64_t count, V* out) {
    if (count == P) {
      std::memcpy(out, row + p, sizeof buf);
      return;
    }
    for (int64_t i = 0; i < P; i++) buf[i] = row[p + (i < count ? i : count - 1)];
    std::memcpy(out, buf, sizeof buf);
  };
  auto store = [&](T* row, int64_t p, int64_t count, const V* in) {
    std::memcpy(buf, in, sizeof buf);
    std::memcpy(row + p, buf, count * sizeof(T));
  };
  auto store_int = [&](int32_t* row, int64_t p, int64_t count, const VI* in) {
    std::memcpy(ibuf, in, sizeof ibuf);
    for (int64_t i = 0; i < count; i++) row[p + i] = static_cast<int32_t>(ibuf[i]);
  };

  const int32_t full = steps / block * block;
  for (int64_t p = 0; p < valid; p += P) {  // rows have length n; the points from valid on are padding
    const int64_t count = valid - p < P ? valid - p : P;
    Tile<T, METHOD, M> s;
    load(hyper, p, count, s.lr);
    load(hyper + n, p, count, s.b);
    for (int m = 0; m < M; m++) {
      load(h + m * n, p, count, s.h[m]);
      load(g2 + m * n, p, count, s.g2[m]);
      load(x0 + m * n, p, count, s.w[m]);
    }
    s.start();
    int32_t t = 0;
    bool running = true;
    for (; running && t < full; t += block) running = s.block(t, block, tol2, bound2);
    if (running && steps % block) s.block(t, steps % block, tol2, bound2);
    for (int m = 0; m < M; m++) {
      store(u_out + m * n, p, count, s.w[m]);
      if (s.velocity) store(u_out + (M + m) * n, p, count, s.v[m]);
    }
    V final2[TILE];
    s.final_error2(steps, final2);
    store(final2_out, p, count, final2);
    store(emax_out, p, count, s.emax);
    store_int(last_out, p, count, s.last);
    store_int(status_out, p, count, s.status);
    store_int(stop_out, p, count, s.stop);
  }
}

// modes 1 to MAX_MODES have their own instance; sim.native sends larger problems to the XLA loop
constexpr int MAX_MODES = 4;

template <typename T, int METHOD, int M = 1>
void dispatch_modes(int modes, int64_t n, int64_t valid, int32_t steps, int32_t block, const T* hyper, const T* h,
                    const T* x0, const T* g2, T tol2, T bound2, T* u, T* emax, int32_t* last,
                    int32_t* status, int32_t* stop, T* final2) {
  if constexpr (M < MAX_MODES) {
    if (modes != M) {
      dispatch_modes<T, METHOD, M + 1>(modes, n, valid, steps, block, hyper, h, x0, g2, tol2, bound2, u, emax,
                                       last, status, stop, final2);
      return;
    }
  }
  run<T, METHOD, M>(n, valid, steps, block, hyper, h, x0, g2, tol2, bound2, u, emax, last, status, stop, final2);
}

template <ffi::DataType DT>
ffi::Error sweep(ffi::Buffer<DT> hyper, ffi::Buffer<DT> h, ffi::Buffer<DT> x0, ffi::Buffer<DT> g2,
                 ffi::Buffer<DT> tol2, ffi::Buffer<DT> bound2, ffi::Buffer<ffi::S32> count,
                 ffi::ResultBuffer<DT> u, ffi::ResultBuffer<DT> emax, ffi::ResultBuffer<ffi::S32> last,
                 ffi::ResultBuffer<ffi::S32> status, ffi::ResultBuffer<ffi::S32> stop, ffi::ResultBuffer<DT> final2,
                 int32_t method, int32_t steps, int32_t block) {
  using T = ffi::NativeType<DT>;
  const auto dims = h.dimensions();
  if (dims.size() != 2 || hyper.dimensions().size() != 2 || hyper.dimensions()[0] != 2 ||
      hyper.dimensions()[1] != dims[1] || x0.element_count() != h.element_count() ||
      g2.element_count() != h.element_count() || emax->element_count() != static_cast<size_t>(dims[1])) {
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
  const int64_t valid = std::clamp<int64_t>(*count.typed_data(), 0, n);
  const int velocity = method == GD ? 1 : 2;
  for (int64_t row = 0; row < velocity * modes; row++) std::fill_n(u->typed_data() + row * n + valid, n - valid, T(0));
  for (auto* out : {emax->typed_data(), final2->typed_data()}) std::fill_n(out + valid, n - valid, T(0));
  for (auto* out : {last->typed_data(), status->typed_data(), stop->typed_data()}) std::fill_n(out + valid, n - valid, 0);
  if (valid == 0) return ffi::Error::Success();
  const T t2 = *tol2.typed_data(), b2 = *bound2.typed_data();
#if defined(__SSE__)
  // flush subnormals to zero, as XLA does (decaying modes would otherwise crawl through them and round differently)
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040);  // FTZ | DAZ
#endif
  auto args = std::make_tuple(modes, n, valid, steps, block, hyper.typed_data(), h.typed_data(), x0.typed_data(),
                              g2.typed_data(), t2, b2, u->typed_data(), emax->typed_data(),
                              last->typed_data(), status->typed_data(), stop->typed_data(), final2->typed_data());
  switch (method) {
    case GD:
      std::apply(dispatch_modes<T, GD>, args);
      break;
    case MOMENTUM:
      std::apply(dispatch_modes<T, MOMENTUM>, args);
      break;
    case HEAVY_BALL:
      std::apply(dispatch_modes<T, HEAVY_BALL>, args);
      break;
    default:
      std::apply(dispatch_modes<T, NESTEROV>, args);
  }
#if defined(__SSE__)
  _mm_setcsr(csr);
#endif
  return ffi::Error::Success();
}

}  // namespace

// the handlers' signature, one per dtype
#define SIM_SWEEP_HANDLER(NAME, DT)             \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(NAME, sweep<DT>, \
                                ffi::Ffi::Bind()  \
                                    .Arg<ffi::Buffer<DT>>()        \
                                    .Arg<ffi::Buffer<DT>>()        \
                                    .Arg<ffi::Buffer<DT>>()        \
                                    .Arg<ffi::Buffer<DT>>()        \
                                    .Arg<ffi::Buffer<DT>>()        \
                                    .Arg<ffi::Buffer<DT>>()        \
                                    .Arg<ffi::Buffer<ffi::S32>>()  \
                                    .Ret<ffi::Buffer<DT>>()        \
                                    .Ret<ffi::Buffer<DT>>()        \
                                    .Ret<ffi::Buffer<ffi::S32>>()  \
                                    .Ret<ffi::Buffer<ffi::S32>>()  \
                                    .Ret<ffi::Buffer<ffi::S32>>()  \
                                    .Ret<ffi::Buffer<DT>>()        \
                                    .Attr<int32_t>("method")       \
                                    .Attr<int32_t>("steps")        \
                                    .Attr<int32_t>("block"))

SIM_SWEEP_HANDLER(SimSweepF32, ffi::F32);
SIM_SWEEP_HANDLER(SimSweepF64, ffi::F64);
