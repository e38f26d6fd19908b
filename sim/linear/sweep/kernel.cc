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
// Results, each [n], as sim.linear.sweep.fields.FIELDS: settle_step, final_error, max_error, diverged (bool),
// unstable (bool), diverge_step, rate, contraction, simulated_steps.
// After the time loop, per tile and only where needed (so never on a dense grid): diverged points replay the block
// that left the bound from its start, up to their last state within it (`escape`), and points whose state fell below
// the normal range (flushed to 0 on the way) run again from the start, rescaled by a power of two after every step
// (`rescaled_rerun`), so that every summary is measured, finite, and free of the squares' underflow.
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

// 2^k for integers k in the normal range, built from its bits (exact), as sim.linear.sweep.xla._pow2
template <typename T>
inline T pow2(int k) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  const U bits = static_cast<U>(k + std::numeric_limits<T>::max_exponent - 1) << (std::numeric_limits<T>::digits - 1);
  T out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// m 2^e for m >= 0 (0 or normal), flushed to 0 below the normal range, as sim.linear.sweep.xla._ldexp_flush
template <typename T>
inline T ldexp_flush(T m, int e) {
  if (e == 0) return m;
  int shift;
  const T f = std::frexp(m, &shift);  // m = f 2^shift, f in [0.5, 1)
  const int k = shift + e;
  constexpr int lo = std::numeric_limits<T>::min_exponent, hi = std::numeric_limits<T>::max_exponent - 1;
  return k >= lo ? f * pow2<T>(std::min(k, hi)) : T(0);
}

// the Euclidean norm of parts[0..n) per lane, scaled by the largest |part| first (as sim.linear.sweep.xla._norm): the
// squares of a settled point's state or error would underflow
template <typename V>
inline V scaled_norm(const V* parts, int n) {
  if (n == 1) return vabs(parts[0]);  // what the general formula gives, exactly: |c| sqrt((c / |c|)^2) = |c|
  V scale = vabs(parts[0]);
  for (int c = 1; c < n; c++) scale = vmax(scale, vabs(parts[c]));
  const V safe = scale > 0 ? scale : V{} + 1;
  V sum = (parts[0] / safe) * (parts[0] / safe);
  for (int c = 1; c < n; c++) sum = sum + (parts[c] / safe) * (parts[c] / safe);
  return scale * vsqrt(sum);
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
  T tol2, bound2;
  const T *hyper, *sigma2, *x0;
  int32_t* settle_step;
  T *final_error, *max_error;
  bool *diverged, *unstable;
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

  V lr[TILE], b[TILE], decay[TILE], h[M][TILE], g2[M][TILE], x0[M][TILE];  // per point, fixed
  V w[M][TILE], v[M][TILE], emax[TILE];                                    // state
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
    std::memcpy(x0, w, sizeof x0);
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
  // spectral radius over the modes. Per point, so not in the time loop's registers (noinline, as final_errors).
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

  // the error components (one per mode) after step `steps`: settled points advance from their stopping block by binary
  // powering of their transition matrices (the same products in the same order as sim.linear.sweep.xla._apply_power).
  // Not inlined: inlined into `run`, it changed the register allocation of the time loop (1.2x slower with 2 modes).
  __attribute__((noinline)) void final_errors(int32_t steps, V (&out)[M][TILE]) const {
    VI left[TILE], pending = VI{};
    for (int k = 0; k < TILE; k++) {
      left[k] = status[k] == 1 ? (VI{} + static_cast<I>(steps)) - stop[k] : VI{};
      pending |= left[k];
    }
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
        out[m][k] = res[0];
      }
    }
  }

  // the state's components of vector k, as sim.linear.sweep.xla._flat orders them
  static void flat(const V (&w)[M][TILE], const V (&v)[M][TILE], int k, V (&parts)[M * D]) {
    for (int m = 0; m < M; m++) {
      parts[m * D] = w[m][k];
      if (velocity) parts[m * D + D - 1] = v[m][k];
    }
  }

  // diverged points, from the state they were frozen at (the start of the block whose end left the bound) to their last
  // state within the bound, as sim.linear.sweep.xla._escape: w, v and emax become that state's, `inside` its step s,
  // and (w_in, v_in) the state at step max(s, 1) (the contraction's). The others keep theirs (inside = stop).
  __attribute__((noinline)) void escape(int32_t block, T bound2, V (&w_in)[M][TILE], V (&v_in)[M][TILE],
                                        VI (&inside)[TILE]) {
    // local copies, so that the compiler can keep them in registers (the arguments might alias the members)
    V cw[M][TILE], cv[M][TILE], iw[M][TILE], iv[M][TILE], cmax[TILE];
    VI start[TILE], active[TILE], at[TILE], any_active = VI{};
    for (int k = 0; k < TILE; k++) {
      for (int m = 0; m < M; m++) iw[m][k] = cw[m][k] = w[m][k], iv[m][k] = cv[m][k] = v[m][k];
      cmax[k] = emax[k];
      active[k] = status[k] == 2;
      start[k] = (stop[k] - 1) / static_cast<I>(block) * static_cast<I>(block);
      at[k] = active[k] ? start[k] : stop[k];
      any_active |= active[k];
    }
    for (int32_t j = 1; j <= block && any(any_active); j++) {
      any_active = VI{};
      for (int k = 0; k < TILE; k++) {  // the TILE vectors' updates are independent: they hide each other's latency
        V nw[M], nv[M], total = V{}, e2 = V{};
        for (int m = 0; m < M; m++) {
          nw[m] = cw[m][k];
          nv[m] = cv[m][k];
          update(nw[m], nv[m], h[m][k], k);
          const V u2 = velocity ? nw[m] * nw[m] + nv[m] * nv[m] : nw[m] * nw[m];
          total = m ? total + u2 : u2;
          e2 = m ? e2 + nw[m] * nw[m] : nw[m] * nw[m];
        }
        const VI step = start[k] + static_cast<I>(j);
        const VI running = active[k] & (step <= stop[k]);
        const VI within = running & (total <= bound2);  // NaN is outside
        const VI first = running & (step == 1);
        for (int m = 0; m < M; m++) {
          iw[m][k] = within | first ? nw[m] : iw[m][k];
          iv[m][k] = within | first ? nv[m] : iv[m][k];
          cw[m][k] = within ? nw[m] : cw[m][k];
          cv[m][k] = within ? nv[m] : cv[m][k];
        }
        cmax[k] = within ? vmax(cmax[k], e2) : cmax[k];
        at[k] = within ? step : at[k];
        active[k] = within;
        any_active |= within;
      }
    }
    std::memcpy(w, cw, sizeof w);
    std::memcpy(v, cv, sizeof v);
    std::memcpy(w_in, iw, sizeof iw);
    std::memcpy(v_in, iv, sizeof iv);
    std::memcpy(emax, cmax, sizeof emax);
    std::memcpy(inside, at, sizeof at);
  }

  // the points `rerun` run again from x0 for their t_end steps, the state scaled by a power of two after every step so
  // that its largest component lies in [0.5, 1), as sim.linear.sweep.xla._rescaled_rerun: the true state is 2^e (w, v)
  __attribute__((noinline)) void rescaled_rerun(const VI (&rerun)[TILE], const VI (&t_end)[TILE], VI (&e)[TILE]) {
    constexpr int lanes = Vec<T>::lanes;
    constexpr I mant = std::numeric_limits<T>::digits - 1, bias = std::numeric_limits<T>::max_exponent - 1;
    constexpr I exp_mask = 2 * bias + 1;
    for (int k = 0; k < TILE; k++) {
      e[k] = VI{};
      if (!any(rerun[k])) continue;
      V rw[M], rv[M];
      for (int m = 0; m < M; m++) rw[m] = x0[m][k], rv[m] = V{};
      I n = 0;
      for (int l = 0; l < lanes; l++) n = rerun[k][l] && t_end[k][l] > n ? t_end[k][l] : n;
      for (I j = 0; j < n; j++) {
        V nw[M], nv[M];
        for (int m = 0; m < M; m++) {
          nw[m] = rw[m];
          nv[m] = rv[m];
          update(nw[m], nv[m], h[m][k], k);
        }
        V biggest = vabs(nw[0]);
        for (int m = 0; m < M; m++) {
          if (m) biggest = vmax(biggest, vabs(nw[m]));
          if (velocity) biggest = vmax(biggest, vabs(nv[m]));
        }
        // frexp's exponent of the largest component (0 for a zero state; FTZ leaves no subnormal), and 2^-shift
        VI bits;
        std::memcpy(&bits, &biggest, sizeof bits);
        const VI biased = (bits >> mant) & exp_mask;
        const VI shift = biggest > 0 ? biased - (bias - 1) : VI{};
        V factor;
        const VI factor_bits = (VI{} + bias - shift) << mant;
        std::memcpy(&factor, &factor_bits, sizeof factor);
        const VI take = rerun[k] & (j < t_end[k]);
        for (int m = 0; m < M; m++) {
          rw[m] = take ? nw[m] * factor : rw[m];
          rv[m] = take ? nv[m] * factor : rv[m];
        }
        e[k] = take ? e[k] + shift : e[k];
      }
      for (int m = 0; m < M; m++) {
        w[m][k] = rerun[k] ? rw[m] : w[m][k];
        v[m][k] = rerun[k] ? rv[m] : v[m][k];
      }
    }
  }

  // the summaries of points p ... p + count - 1, as sim.linear.sweep.xla.chunk_summary reduces the XLA loop's state
  __attribute__((noinline)) void summarize(const Io<T>& io, int64_t p, int64_t count, const V* rate) {
    V final_error[TILE], max_error[TILE], contraction[TILE], w_in[M][TILE], v_in[M][TILE], errors[M][TILE];
    VI settle_step[TILE], diverged[TILE], unstable[TILE], diverge_step[TILE], simulated_steps[TILE], inside[TILE];
    VI small[TILE], scale_exp[TILE], events = VI{};
    const VI steps = VI{} + static_cast<I>(io.steps);
    for (int k = 0; k < TILE; k++) {
      diverged[k] = status[k] == 2;
      simulated_steps[k] = status[k] == 0 ? steps : stop[k];
      events |= diverged[k];
    }
    if (any(events)) {
      escape(io.block, io.bound2, w_in, v_in, inside);
    } else {
      std::memcpy(w_in, w, sizeof w);
      std::memcpy(v_in, v, sizeof v);
      for (int k = 0; k < TILE; k++) inside[k] = stop[k];
    }
    // a state below the normal range (flushed to 0 on the way) is rerun from the start, rescaled every step
    const V threshold = V{} + std::numeric_limits<T>::min() / std::numeric_limits<T>::epsilon();
    V norm[TILE];
    events = VI{};
    for (int k = 0; k < TILE; k++) {
      V parts[M * D];
      flat(w, v, k, parts);
      norm[k] = scaled_norm(parts, M * D);
      small[k] = ~diverged[k] & (norm[k] < threshold);
      events |= small[k];
    }
    if (any(events)) {
      rescaled_rerun(small, simulated_steps, scale_exp);
      for (int k = 0; k < TILE; k++) {
        V parts[M * D];
        flat(w, v, k, parts);
        norm[k] = scaled_norm(parts, M * D);
      }
    } else {
      for (int k = 0; k < TILE; k++) scale_exp[k] = VI{};
    }
    final_errors(io.steps, errors);
    for (int k = 0; k < TILE; k++) {
      unstable[k] = ~(rate[k] < 1);  // NaN: the transition matrix overflowed
      settle_step[k] = ~diverged[k] & (last[k] < steps) ? last[k] + 1 : VI{} - 1;
      diverge_step[k] = diverged[k] ? stop[k] : VI{} - 1;
      V error_parts[M];
      for (int m = 0; m < M; m++) error_parts[m] = errors[m][k];
      final_error[k] = scaled_norm(error_parts, M);
      if (any(scale_exp[k] != 0)) {
        for (int l = 0; l < Vec<T>::lanes; l++) final_error[k][l] = ldexp_flush(final_error[k][l], scale_exp[k][l]);
      }
      max_error[k] = vsqrt(emax[k]);
      // the measured rate: (||u_t|| / ||u_0||)^(1/t) over the simulated steps, or for diverged points up to their last
      // state within the bound (step s; the first state when already step 1 left it)
      V base = norm[k];
      if (any(diverged[k])) {
        V parts_in[M * D];
        flat(w_in, v_in, k, parts_in);
        base = diverged[k] ? scaled_norm(parts_in, M * D) : base;
      }
      const VI t = diverged[k] ? (inside[k] > 1 ? inside[k] : VI{} + 1)
                               : (simulated_steps[k] > 1 ? simulated_steps[k] : VI{} + 1);
      const V exponent = 1 / __builtin_convertvector(t, V);
      const V rescale = __builtin_convertvector(scale_exp[k], V) / __builtin_convertvector(t, V);
      for (int l = 0; l < Vec<T>::lanes; l++) {
        contraction[k][l] = std::pow(base[l], exponent[l]);
        if (scale_exp[k][l] != 0) contraction[k][l] *= std::exp2(rescale[l]);
      }
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
    put(io.unstable, unstable);
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
                 ffi::ResultBuffer<ffi::PRED> diverged, ffi::ResultBuffer<ffi::PRED> unstable,
                 ffi::ResultBuffer<ffi::S32> diverge_step,
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
           b * b,
           hyper.typed_data(),
           sigma2.typed_data(),
           x0.typed_data(),
           settle_step->typed_data(),
           final_error->typed_data(),
           max_error->typed_data(),
           diverged->typed_data(),
           unstable->typed_data(),
           diverge_step->typed_data(),
           rate->typed_data(),
           contraction->typed_data(),
           simulated_steps->typed_data()};
  const int64_t pad = n - io.valid;
  for (auto* out : {io.final_error, io.max_error, io.rate, io.contraction}) std::fill_n(out + io.valid, pad, T(0));
  for (auto* out : {io.settle_step, io.diverge_step, io.simulated_steps}) std::fill_n(out + io.valid, pad, 0);
  std::fill_n(io.diverged + io.valid, pad, false);
  std::fill_n(io.unstable + io.valid, pad, false);
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
