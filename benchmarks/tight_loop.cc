// The tight-loop reference of benchmarks/sweep_throughput.py: the sweep kernel's per-step work written as a plain
// C++ loop, so that "what a tight in-cache loop can do" is measured on this machine rather than assumed.
//
// Per point and step, exactly what sim.linear.sweep.xla.chunk_summary does on a dense grid (no point settles or diverges):
// the update (GD: w -= lr (h w); EMA momentum: z = (1 - beta) z + beta (h w), w -= lr z; h = 2 sigma^2 per mode),
// the squared error e2 = sum_i w_i^2, its running max, and the last step with e2 >= tol2. No early exit and no
// divergence check (the kernel's are per block of steps, not per step).
//
// Layout: the time loop is innermost over a tile of TILE x LANES points whose whole state lives in vector registers
// (GCC vector extensions), tiles are split over OpenMP threads. Built by the benchmark with
// `c++ -O3 -march=native -fopenmp -shared -fPIC` (GCC or Clang); the compiler contracts a * b + c into FMAs.
#include <cstdint>
#include <cstring>

namespace {

constexpr int LANES = 16;  // one 512-bit vector of float32
constexpr int TILE = 4;    // independent vectors per tile, enough to hide the FMA latency
typedef float vf __attribute__((vector_size(LANES * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(LANES * sizeof(int32_t))));

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename V>
inline void store(void* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

template <int MODES, bool MOMENTUM>
void sweep(int64_t n, int32_t steps, const float* lr, const float* beta, const float* h, const float* x0, float tol2,
           float* final_e2, float* max_e2, int32_t* last) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < n; p += LANES * TILE) {
    vf eta[TILE], b[TILE], decay[TILE], hh[TILE][MODES], w[TILE][MODES], z[TILE][MODES], emax[TILE];
    vi ls[TILE];
    for (int k = 0; k < TILE; k++) {
      const int64_t q = p + k * LANES;
      eta[k] = load(lr + q);
      b[k] = MOMENTUM ? load(beta + q) : vf{};
      decay[k] = 1.0f - b[k];
      emax[k] = vf{};
      for (int m = 0; m < MODES; m++) {
        hh[k][m] = load(h + m * n + q);
        w[k][m] = load(x0 + m * n + q);
        z[k][m] = vf{};
        emax[k] += w[k][m] * w[k][m];
      }
      ls[k] = vi{};
    }
    for (int32_t t = 1; t <= steps; t++) {
      for (int k = 0; k < TILE; k++) {
        vf e2 = vf{};
        for (int m = 0; m < MODES; m++) {
          if (MOMENTUM) {
            z[k][m] = decay[k] * z[k][m] + b[k] * (hh[k][m] * w[k][m]);
            w[k][m] = w[k][m] - eta[k] * z[k][m];
          } else {
            w[k][m] = w[k][m] - eta[k] * (hh[k][m] * w[k][m]);
          }
          e2 += w[k][m] * w[k][m];
        }
        emax[k] = e2 > emax[k] ? e2 : emax[k];
        ls[k] = e2 >= tol2 ? vi{} + t : ls[k];
      }
    }
    for (int k = 0; k < TILE; k++) {
      const int64_t q = p + k * LANES;
      vf e2 = vf{};
      for (int m = 0; m < MODES; m++) e2 += w[k][m] * w[k][m];
      store(final_e2 + q, e2);
      store(max_e2 + q, emax[k]);
      store(last + q, ls[k]);
    }
  }
}

}  // namespace

extern "C" {

// n must be a multiple of LANES * TILE = 64; h and x0 are [modes, n], row-major.
int32_t tile_points() { return LANES * TILE; }

void gd_1(int64_t n, int32_t steps, const float* lr, const float* beta, const float* h, const float* x0, float tol2,
          float* final_e2, float* max_e2, int32_t* last) {
  sweep<1, false>(n, steps, lr, beta, h, x0, tol2, final_e2, max_e2, last);
}

void momentum_1(int64_t n, int32_t steps, const float* lr, const float* beta, const float* h, const float* x0,
                float tol2, float* final_e2, float* max_e2, int32_t* last) {
  sweep<1, true>(n, steps, lr, beta, h, x0, tol2, final_e2, max_e2, last);
}

void momentum_2(int64_t n, int32_t steps, const float* lr, const float* beta, const float* h, const float* x0,
                float tol2, float* final_e2, float* max_e2, int32_t* last) {
  sweep<2, true>(n, steps, lr, beta, h, x0, tol2, final_e2, max_e2, last);
}
}
