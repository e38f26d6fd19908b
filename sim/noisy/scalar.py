"""Scalar SGD with noisy inputs: the exact moments of w_t and their thresholds, and the Monte Carlo simulator.

Contract: the closed forms (:func:`mean`, :func:`variance`, :func:`second_moment`, the thresholds,
:func:`lyapunov_exponent`, …) are float64 NumPy functions of the problem (x, y, σ) and the learning rate η,
broadcasting over arrays; the simulators (:func:`scalar`, :func:`scalar_sweep`), their tests and figures use them as
the oracle. The simulators validate everything first (raising :class:`sim.core.validate.InputError` named after the
offending parameter, before any compilation), run on :func:`sim.noisy.engine.monte_carlo` (so their estimates do not
depend on chunk size or device count) and return an ``xarray.Dataset`` of Monte Carlo estimates beside the closed
forms, with the thresholds, settings and provenance in its attrs. :mod:`sim.noisy.vector` is the same problem with m
points in n dimensions.

The problem (EECS 182 Sp23 HW2 Q3 = Sp25 HW1 Q4, "Regularization and Instance Noise", parts (b)–(d) give the mean;
the second moment is derived here). One scalar data point (x, y); at every step SGD sees a freshly perturbed input
x̃_t = x + N_t with N_t ~ N(0, σ²) i.i.d., and takes a step on ℓ(w) = ½(x̃_t w − y)² from w₀ = 0:

    w_{t+1} = w_t − η x̃_t (x̃_t w_t − y) = A_t w_t + B_t,    A_t = 1 − η x̃_t²,   B_t = η x̃_t y.

(A_t, B_t) is independent of w_t (w_t depends on N_0 … N_{t−1} only). The Gaussian moments of x̃ are

    a = E x̃² = x² + σ²,   c = E x̃³ = x³ + 3xσ²,   b = E x̃⁴ = x⁴ + 6x²σ² + 3σ⁴,

so E A = 1 − ηa =: p, E B = ηxy, E A² = 1 − 2ηa + η²b =: q, E AB = ηy(x − ηc), E B² = η²y²a.

Mean. Taking expectations, m_t = E w_t obeys m_{t+1} = p m_t + ηxy, hence

    m_t = m* (1 − p^t),   m* = xy / (x² + σ²),

which converges iff |p| < 1, i.e. 0 < η < 2/(x² + σ²) (:func:`mean_threshold`). m* is the ridge solution with
λ = σ²: noisy inputs regularize.

Second moment. Squaring the update and using the independence of (A_t, B_t) from w_t,

    s_{t+1} = E w_{t+1}² = q s_t + 2ηy(x − ηc) m_t + η²y²a,

so (m_t, s_t) follows the affine 2-D recursion (m, s) ← M (m, s) + h with M = [[p, 0], [2ηy(x − ηc), q]] and
h = (ηxy, η²y²a) (:func:`moment_recursion`). Its eigenvalues are p and q, and q ≥ p² (q − p² = η² Var x̃²), so the
second moment stays bounded iff q < 1:

    1 − 2η(x² + σ²) + η²(x⁴ + 6x²σ² + 3σ⁴) < 1   ⟺   0 < η < 2(x² + σ²) / (x⁴ + 6x²σ² + 3σ⁴)

(:func:`variance_threshold`). Since x⁴ + 6x²σ² + 3σ⁴ ≥ (x² + σ²)², this is never larger than the mean's threshold
and is strictly smaller when σ > 0: for learning rates between the two, E w_t → m* while E w_t² → ∞.

Variance. v_t = Var w_t = Var(A w + B) = E[A²] E[w²] + 2 E[AB] m + E[B²] − (p m + ηxy)² simplifies, with
q − p² = η²(4x²σ² + 2σ⁴), E AB − p ηxy = −2η²xyσ² and E B² − (ηxy)² = η²y²σ², to

    v_{t+1} = q v_t + f(m_t),   f(m) = η²σ² [(2xm − y)² + 2σ²m²] = η² Var(x̃ (x̃ m − y)),

the variance of the stochastic gradient at the mean (no cancellation: f ≥ 0, v_t ≥ 0). With m_k = m*(1 − p^k),
f(m_k) = F₀ + F₁ p^k + F₂ p^{2k} and v_t = Σ_{k<t} q^{t−1−k} f(m_k) is, in closed form,

    v_t = F₀ D_t(1, q) + F₁ D_t(p, q) + F₂ D_t(p², q),   D_t(r, q) = (r^t − q^t) / (r − q) = Σ_{k<t} r^k q^{t−1−k},

F₂ = α m*², F₁ = −(2α m*² + β m*), F₀ = f(m*) with f(m) = α m² + β m + γ (α = η²σ²(4x² + 2σ²), β = −4η²σ²xy,
γ = η²σ²y²). The stationary variance (q < 1) is

    v* = f(m*) / (1 − q) = η σ² y² (x⁴ + σ⁴) / ((x² + σ²)² (2(x² + σ²) − η(x⁴ + 6x²σ² + 3σ⁴))).

D_t is evaluated without cancellation or overflow-induced NaN (:func:`_power_difference`), so every t is exact to
float64 rounding; :func:`iterate_moments` runs the recursion itself as a cross-check.

Fourth moment. The same expansion to fourth powers gives E w_{t+1}⁴ = r E w_t⁴ + (terms in E w_t³, E w_t², E w_t)
with r = E A⁴ = 1 − 4ηa + 6η²b − 4η³ E x̃⁶ + η⁴ E x̃⁸ (:func:`fourth_moment_factor`; E x̃^k = Σ_j C(k, 2j)
x^(k−2j) σ^(2j) (2j − 1)!!, :func:`gaussian_moment`), so E w_t⁴ stays bounded iff r < 1 (r ≥ q², so this implies
q < 1): η below :func:`fourth_moment_threshold` (≤ the variance threshold, equal only at σ = 0). The
normal-approximation interval of the sample variance has a width set by the fourth moment; where r ≥ 1 it rests on
rare runs and is too narrow (the simulator flags it: ``variance_ci_valid``).

Single runs. The moments are averages over runs; a single run is the random product Π A_k applied to the injected
B's, and it settles (to a stationary, heavy-tailed law) iff the Lyapunov exponent λ = E log|1 − η x̃²| is negative
(:func:`lyapunov_exponent`). By Jensen λ ≤ ½ log q, so runs settle wherever the variance is bounded; numerically
(x = 1, σ ∈ [0.25, 2]) λ = 0 lies beyond BOTH moment thresholds, so between them typical runs settle while rare
large excursions carry an unbounded variance (stationary tail P(|w| > u) ~ u^(−κ) with E|A|^κ = 1, κ < 2).
"""

from __future__ import annotations

import functools
import json
import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from sim.core import cluster, io, runtime
from sim.core import engine as run_engine
from sim.core.grid import MAX_POINTS, Grid
from sim.core.validate import InputError, check_finite, check_int, check_positive_finite
from sim.noisy.engine import (
    DEFAULT_BINS,
    DEFAULT_BLOCK,
    DEFAULT_BOUND,
    DEFAULT_CHUNK,
    DEFAULT_PRNG,
    DEFAULT_QUANTILES,
    MAX_STEPS,
    check_dtype,
    check_steps,
    monte_carlo,
    prepare,
    simulate,
)

__all__ = [
    "fourth_moment_factor",
    "fourth_moment_threshold",
    "gaussian_moment",
    "gaussian_moments",
    "iterate_moments",
    "lyapunov_exponent",
    "lyapunov_threshold",
    "mean",
    "mean_factor",
    "mean_limit",
    "mean_threshold",
    "moment_recursion",
    "scalar",
    "scalar_sweep",
    "second_moment",
    "second_moment_factor",
    "variance",
    "variance_limit",
    "variance_threshold",
]


def _f64(*values):
    return tuple(np.asarray(v, dtype=np.float64) for v in values)


def gaussian_moments(x: ArrayLike, sigma: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E x̃², E x̃³, E x̃⁴) = (x² + σ², x³ + 3xσ², x⁴ + 6x²σ² + 3σ⁴) for x̃ ~ N(x, σ²)."""
    x, s = _f64(x, sigma)
    s2 = s * s
    x2 = x * x
    return x2 + s2, x * (x2 + 3 * s2), x2 * x2 + 6 * x2 * s2 + 3 * s2 * s2


def gaussian_moment(x: ArrayLike, sigma: ArrayLike, k: int) -> np.ndarray:
    """E x̃^k for x̃ = x + σN, N ~ N(0, 1): Σ_j C(k, 2j) x^(k−2j) σ^(2j) (2j − 1)!! (E N^(2j) = (2j − 1)!!, odd 0)."""
    k = check_int("k", k, minimum=0)
    x, s = _f64(x, sigma)
    total = np.zeros(np.broadcast_shapes(x.shape, s.shape))
    double_factorial = 1  # (2j − 1)!!, with (−1)!! = 1
    for j in range(k // 2 + 1):
        double_factorial *= max(2 * j - 1, 1)
        total = total + math.comb(k, 2 * j) * double_factorial * x ** (k - 2 * j) * s ** (2 * j)
    return total


def mean_factor(x: ArrayLike, sigma: ArrayLike, learning_rate: ArrayLike) -> np.ndarray:
    """p = E[1 − η x̃²] = 1 − η(x² + σ²), the per-step factor of E w_t − m*."""
    a, _, _ = gaussian_moments(x, sigma)
    return 1 - np.asarray(learning_rate, dtype=np.float64) * a


def second_moment_factor(x: ArrayLike, sigma: ArrayLike, learning_rate: ArrayLike) -> np.ndarray:
    """q = E[(1 − η x̃²)²] = 1 − 2η(x² + σ²) + η²(x⁴ + 6x²σ² + 3σ⁴), the growth factor of E w_t² and Var w_t."""
    a, _, b = gaussian_moments(x, sigma)
    eta = np.asarray(learning_rate, dtype=np.float64)
    return 1 - eta * (2 * a - eta * b)


def fourth_moment_factor(x: ArrayLike, sigma: ArrayLike, learning_rate: ArrayLike) -> np.ndarray:
    """r = E[(1 − η x̃²)⁴] = 1 − 4η E x̃² + 6η² E x̃⁴ − 4η³ E x̃⁶ + η⁴ E x̃⁸, the growth factor of E w_t⁴.

    w_t has a bounded fourth moment iff r < 1 (the fourth-moment analogue of q; r ≥ q² by Jensen, so r < 1 implies
    q < 1). It decides whether the normal-approximation interval of the sample variance (whose standard error is
    set by the fourth moment) can be trusted: where r ≥ 1 the sample fourth moment is carried by rare runs and the
    interval is too narrow.
    """
    eta = np.asarray(learning_rate, dtype=np.float64)
    m2, m4, m6, m8 = (gaussian_moment(x, sigma, k) for k in (2, 4, 6, 8))
    return 1 - eta * (4 * m2 - eta * (6 * m4 - eta * (4 * m6 - eta * m8)))


def fourth_moment_threshold(x: ArrayLike, sigma: ArrayLike) -> np.ndarray:
    """The learning rate where r = E[(1 − η x̃²)⁴] = 1: E w_t⁴ stays bounded iff 0 < η below it.

    r(η) is convex with r(0) = 1 and r'(0) = −4(x² + σ²) < 0, so it crosses 1 once for η > 0, at the root of the
    cubic 4 E x̃² − 6η E x̃⁴ + 4η² E x̃⁶ − η³ E x̃⁸ ((1 − r)/η), found by bisection on (0, variance_threshold]
    (r ≥ q² = 1 there, so the root is never beyond the variance threshold). σ = 0: 2/x², like the others.
    """
    m2, m4, m6, m8 = (gaussian_moment(x, sigma, k) for k in (2, 4, 6, 8))
    with np.errstate(divide="ignore", invalid="ignore"):
        hi = np.where(m2 > 0, 2 * m2 / np.where(m4 > 0, m4, 1), np.inf)
    lo = np.zeros(hi.shape)
    hi_finite = np.where(np.isfinite(hi), hi, 0.0)
    for _ in range(200):  # the bracket halves each time: 200 halvings reach float64 resolution for any root
        mid = (lo + hi_finite) / 2
        below = 4 * m2 - mid * (6 * m4 - mid * (4 * m6 - mid * m8)) > 0  # r(mid) < 1
        lo, hi_finite = np.where(below, mid, lo), np.where(below, hi_finite, mid)
    return np.where(np.isfinite(hi), (lo + hi_finite) / 2, np.inf)


def mean_limit(x: ArrayLike, y: ArrayLike, sigma: ArrayLike) -> np.ndarray:
    """m* = xy / (x² + σ²): the limit of E w_t (the ridge solution with λ = σ²)."""
    a, _, _ = gaussian_moments(x, sigma)
    x, y = _f64(x, y)
    return x * y / a


def mean_threshold(x: ArrayLike, sigma: ArrayLike) -> np.ndarray:
    """E w_t converges iff 0 < η < 2 / (x² + σ²)."""
    a, _, _ = gaussian_moments(x, sigma)
    return 2 / a


def variance_threshold(x: ArrayLike, sigma: ArrayLike) -> np.ndarray:
    """E w_t² (and Var w_t) stays bounded iff 0 < η < 2(x² + σ²) / (x⁴ + 6x²σ² + 3σ⁴) (≤ the mean's threshold)."""
    a, _, b = gaussian_moments(x, sigma)
    return 2 * a / b


def moment_recursion(x, y, sigma, learning_rate) -> tuple[np.ndarray, np.ndarray]:
    """The affine map (E w_{t+1}, E w_{t+1}²) = M (E w_t, E w_t²) + h.

    Returns:
      ``(M, h)``: arrays of shape [..., 2, 2] and [..., 2] (leading dims from broadcasting the inputs), with
      M = [[p, 0], [2ηy(x − ηc), q]] and h = (ηxy, η²y²a).
    """
    a, c, b = gaussian_moments(x, sigma)
    x, y, eta = np.broadcast_arrays(*_f64(x, y, learning_rate))
    p = 1 - eta * a
    q = 1 - eta * (2 * a - eta * b)
    mat = np.stack([np.stack([p, np.zeros_like(p)], -1), np.stack([2 * eta * y * (x - eta * c), q], -1)], -2)
    return mat, np.stack([eta * x * y, eta * eta * y * y * a * np.ones_like(p)], -1)


def _power_difference(r, q, diff, t):
    """D_t(r, q) = (r^t − q^t) / (r − q) = Σ_{k<t} r^k q^{t−1−k}, for q ≥ 0, with ``diff`` = r − q given accurately.

    Both positive: M^{t−1} (1 − ρ^t) / (1 − ρ) with M = max, ρ = min/max, via expm1/log1p (no cancellation near
    r = q, limit t M^{t−1}). Otherwise (r ≤ 0 or q = 0, where |r − q| ≥ max(|r|, q)): M^{t−1} ((r/M)^t − (q/M)^t) /
    (diff/M) with M = max(|r|, q), so only the common factor M^{t−1} can overflow (to ±inf, never inf − inf = NaN).
    """
    r, q, diff, t = np.broadcast_arrays(*_f64(r, q, diff, t))
    out = np.zeros(r.shape)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        big = np.maximum(np.abs(r), q)
        scale = np.power(big, t - 1)
        pos = (r > 0) & (q > 0)
        gap = np.abs(diff) / big  # 1 − ρ ∈ [0, 1)
        geometric = np.where(gap > 0, -np.expm1(t * np.log1p(-gap)) / np.where(gap > 0, gap, 1), t)
        mixed = (np.power(r / big, t) - np.power(q / big, t)) / (diff / big)
        out = np.where(pos, scale * geometric, scale * mixed)
        out = np.where(big == 0, (t == 1).astype(np.float64), out)  # r = q = 0: only the k = 0 term of t = 1
    return np.where(t == 0, 0.0, out)


def _coefficients(x, y, sigma, learning_rate):
    a, c, b = gaussian_moments(x, sigma)
    x, y, s, eta = _f64(x, y, sigma, learning_rate)
    s2 = s * s
    return {
        "a": a,
        "b": b,
        "p": 1 - eta * a,
        "q": 1 - eta * (2 * a - eta * b),
        "one_minus_p": eta * a,
        "one_minus_q": eta * (2 * a - eta * b),
        "p_minus_q": eta * (a - eta * b),
        "p2_minus_q": -eta * eta * (b - a * a),
        "m_star": x * y / a,
        "alpha": eta * eta * s2 * (4 * x * x + 2 * s2),
        "beta": -4 * eta * eta * s2 * x * y,
        "gamma": eta * eta * s2 * y * y,
        "eta_xy": eta * x * y,
    }


def mean(t: ArrayLike, *, x, y, sigma, learning_rate) -> np.ndarray:
    """E w_t = m*(1 − p^t) = ηxy D_t(1, p) for integer t ≥ 0 (broadcast against the parameters)."""
    k = _coefficients(x, y, sigma, learning_rate)
    return k["eta_xy"] * _power_difference(1.0, k["p"], k["one_minus_p"], t)


def variance(t: ArrayLike, *, x, y, sigma, learning_rate) -> np.ndarray:
    """Var w_t = F₀ D_t(1, q) + F₁ D_t(p, q) + F₂ D_t(p², q) (module docstring); +inf where it overflows."""
    k = _coefficients(x, y, sigma, learning_rate)
    m = k["m_star"]
    f2 = k["alpha"] * m * m
    f1 = -(2 * f2 + k["beta"] * m)
    f0 = f2 + k["beta"] * m + k["gamma"]
    p, q = k["p"], k["q"]
    with np.errstate(invalid="ignore", over="ignore"):
        total = (
            f0 * _power_difference(1.0, q, k["one_minus_q"], t)
            + f1 * _power_difference(p, q, k["p_minus_q"], t)
            + f2 * _power_difference(p * p, q, k["p2_minus_q"], t)
        )
    # past the threshold the three terms can overflow with opposite signs (inf − inf); the variance is then +inf
    return np.where(np.isnan(total), np.inf, np.maximum(total, 0.0))


def second_moment(t: ArrayLike, *, x, y, sigma, learning_rate) -> np.ndarray:
    """E w_t² = Var w_t + (E w_t)²."""
    kw = {"x": x, "y": y, "sigma": sigma, "learning_rate": learning_rate}
    m = mean(t, **kw)
    with np.errstate(over="ignore"):
        return variance(t, **kw) + m * m


def variance_limit(x, y, sigma, learning_rate) -> np.ndarray:
    """v* = ησ²y²(x⁴ + σ⁴) / ((x² + σ²)²(2(x² + σ²) − η(x⁴ + 6x²σ² + 3σ⁴))); +inf at or past the threshold."""
    a, _, b = gaussian_moments(x, sigma)
    x, y, s, eta = _f64(x, y, sigma, learning_rate)
    s2 = s * s
    room = 2 * a - eta * b
    with np.errstate(divide="ignore", invalid="ignore"):
        v = eta * s2 * y * y * (x**4 + s2 * s2) / (a * a * room)
    return np.where(room > 0, v, np.inf)


def iterate_moments(steps: int, *, x, y, sigma, learning_rate) -> dict[str, np.ndarray]:
    """Run the exact recursions step by step in float64 (a cross-check of the closed forms).

    Returns:
      ``{"mean", "second_moment", "variance"}``, each of shape [steps + 1, *broadcast shape of the parameters]:
      m_{t+1} = p m_t + ηxy, s_{t+1} = q s_t + 2ηy(x − ηc) m_t + η²y²a and v_{t+1} = q v_t + f(m_t).
    """
    a, c, b = gaussian_moments(x, sigma)
    x, y, s, eta = np.broadcast_arrays(*_f64(x, y, sigma, learning_rate))
    p = 1 - eta * a
    q = 1 - eta * (2 * a - eta * b)
    s2 = s * s
    m = np.zeros(x.shape)
    sec = np.zeros(x.shape)
    var = np.zeros(x.shape)
    out = {k: np.zeros((steps + 1, *x.shape)) for k in ("mean", "second_moment", "variance")}
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            grad_var = eta * eta * s2 * ((2 * x * m - y) ** 2 + 2 * s2 * m * m)
            sec = q * sec + 2 * eta * y * (x - eta * c) * m + eta * eta * y * y * a
            var = q * var + grad_var
            m = p * m + eta * x * y
            out["mean"][t], out["second_moment"][t], out["variance"][t] = m, sec, var
    return out


_LYAPUNOV_NODES, _LYAPUNOV_WEIGHTS = np.polynomial.legendre.leggauss(24)


def _graded_panels(lo: float, hi: float, grade_lo: bool, grade_hi: bool, levels: int = 36):
    """Sub-intervals of [lo, hi] refined geometrically (ratio ½) toward the ends marked as log singularities."""
    mid = (lo + hi) / 2
    cuts = [lo]
    half = mid - lo
    if grade_lo:
        cuts += [lo + half * 0.5**k for k in range(levels, 0, -1)]
    cuts.append(mid)
    if grade_hi:
        cuts += [hi - half * 0.5**k for k in range(1, levels + 1)]
    cuts.append(hi)
    return np.asarray(cuts)


def _lyapunov_one(x: float, sigma: float, eta: float) -> float:
    if sigma == 0:
        return float(np.log(abs(1 - eta * x * x))) if eta * x * x != 1 else -np.inf
    roots = sorted(((r / np.sqrt(eta)) - x) / sigma for r in (-1.0, 1.0))  # 1 − η(x + σn)² = 0
    width = 12.0  # standard-normal mass beyond ±12 is < 1e-32
    points = [-width, *[r for r in roots if -width < r < width], width]
    singular = set(points[1:-1])
    total = 0.0
    for lo, hi in zip(points[:-1], points[1:], strict=True):
        cuts = _graded_panels(lo, hi, lo in singular, hi in singular)
        a, b = cuts[:-1, None], cuts[1:, None]
        n = (a + b) / 2 + (b - a) / 2 * _LYAPUNOV_NODES
        # nodes a few ulps from a root can round 1 − ηx̃² to 0: floor |·| (those sub-panels weigh < 1e-12)
        a_abs = np.maximum(np.abs(1 - eta * (x + sigma * n) ** 2), 1e-300)
        f = np.log(a_abs) * np.exp(-n * n / 2) / np.sqrt(2 * np.pi)
        total += float(np.sum((b - a) / 2 * _LYAPUNOV_WEIGHTS * f))
    return total


def lyapunov_exponent(x: ArrayLike, sigma: ArrayLike, learning_rate: ArrayLike) -> np.ndarray:
    """λ = E log|1 − η x̃²|, the growth rate of a single run's sensitivity Π|A_k| (runs settle iff λ < 0).

    Deterministic quadrature over the noise N ~ N(0, 1): Gauss–Legendre on [−12, 12] split at the roots of
    1 − η(x + σN)², with panels refined geometrically toward those integrable log singularities (error < 1e-10).
    """
    x, s, eta = np.broadcast_arrays(*_f64(x, sigma, learning_rate))
    out = np.array(
        [_lyapunov_one(float(a), float(b), float(c)) for a, b, c in zip(x.ravel(), s.ravel(), eta.ravel(), strict=True)]
    )
    return out.reshape(x.shape)


def lyapunov_threshold(x: float, sigma: float, *, rtol: float = 1e-10) -> float:
    """The learning rate beyond the variance threshold where λ(η) = E log|1 − η x̃²| crosses 0 (bisection).

    λ < 0 on (0, variance_threshold] (λ ≤ ½ log q by Jensen) and λ → ∞ as η → ∞; the bisection assumes one
    crossing beyond the variance threshold (checked on a grid in the tests).
    """
    lo = float(variance_threshold(x, sigma))
    hi = 2 * lo
    while lyapunov_exponent(x, sigma, hi) < 0:
        lo, hi = hi, 2 * hi
    while hi - lo > rtol * hi:
        mid = (lo + hi) / 2
        if lyapunov_exponent(x, sigma, mid) < 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# --------------------------------------------------------------------------------------------------------------
# The simulator: Monte Carlo runs on the engine, beside the closed forms above

# fewer runs than this and no interval is reported (CLI) or trusted (file): the normal approximation's z = 1.96 is
# already 4 % narrower than Student's t with 29 degrees of freedom, and the variance's interval needs far more
CI_MIN_COUNT = 30


def _check_problem(x, y, sigma, learning_rate, dtype):
    check_finite("x", x)
    check_finite("y", y)
    sigma = check_positive_finite("sigma", sigma, allow_zero=True)
    check_positive_finite("learning_rate", learning_rate)
    check_dtype(dtype)
    x = np.asarray(x, dtype=np.float64)
    # the exact moments use E x~^4 and the kernel squares x~ (a few sigma from x) in the working dtype
    limit = float(np.finfo(dtype).max) ** 0.25 / 10
    for name, value in (("x", x), ("sigma", sigma)):
        if np.any(np.abs(value) > limit):
            raise InputError(name, f"must be at most {limit:.3g} in absolute value in {dtype} (x~^4 must not overflow)")
    if np.any(np.broadcast_arrays(x * x + sigma * sigma)[0] == 0):
        raise InputError("sigma", "x and sigma cannot both be 0 (the gradient would vanish)")


@functools.lru_cache(maxsize=64)
def _scalar_trajectory(steps: int, record: tuple[int, ...], block: int):
    def trajectory(key, params):
        x, y, sigma, eta, bound = (params[i] for i in range(5))

        def step(w, z):
            xt = x + sigma * z
            return jnp.where(jnp.abs(w) <= bound, w - eta * xt * (xt * w - y), w)  # frozen once beyond the bound

        w0 = jnp.zeros((), params.dtype)
        return {"w": simulate(step, w0, key, steps=steps, record_steps=record, block=block)}

    return trajectory


def scalar(
    *,
    x: float,
    y: float,
    sigma: float,
    learning_rate: float,
    steps: int,
    trajectories: int,
    record_steps=None,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK,
    quantiles=DEFAULT_QUANTILES,
    sample_paths: int = 0,
    divergence_bound: float = DEFAULT_BOUND,
    confidence: float = 0.95,
    block: int = DEFAULT_BLOCK,
    bins: int = DEFAULT_BINS,
    dtype: str = "float32",
    prng: str = DEFAULT_PRNG,
    progress: bool = True,
) -> xr.Dataset:
    """Monte Carlo of scalar SGD with noisy inputs beside the exact moments of the closed forms above.

    w_{t+1} = w_t − η x̃_t (x̃_t w_t − y), x̃_t = x + σ N_t, N_t ~ N(0, 1) i.i.d., w₀ = 0 (EECS 182 Sp23 HW2 Q3).
    A run with |w| > ``divergence_bound`` × scale is frozen there and counted as diverged (excluded from the estimates);
    the divergence_bound is RELATIVE to the problem's scale = max(|m*|, |y|/√(x² + σ²)) (floored at 1e-30), so a stable
    problem with a large target is not called diverged. The absolute divergence_bound (capped at the working dtype's
    largest value) is ``attrs["divergence_bound"]``; ``divergence_bound_relative`` and ``divergence_scale`` are attrs
    too.

    Args:
      x, y: the data point; sigma: the input-noise standard deviation σ ≥ 0; learning_rate: η > 0.
      steps: T ≥ 1; trajectories: N ≥ 1.
      record_steps: steps in [0, T] to estimate at (default: about 100 evenly spaced, with 0 and T).
      block: steps per noise draw. Other arguments as in :func:`monte_carlo`.

    Returns:
      The :func:`monte_carlo` dataset for ``w`` (``w_mean``, ``w_var``, their CIs, ``w_quantile``, …) plus
      ``exact_mean``, ``exact_var`` and ``exact_second_moment`` at the recorded steps (+inf where the exact
      variance overflows float64), and the thresholds and limits as attrs. Where the fourth-moment factor
      ``fourth_moment_factor`` = E(1 − η x̃²)⁴ is ≥ 1, ``variance_ci_valid`` is 0 and ``variance_ci_note`` (also in
      the descriptions of ``w_var_ci_low``/``w_var_ci_high``) says why: E w_t⁴ is unbounded and the variance's
      normal-approximation interval is too narrow. Intervals over fewer than ``ci_min_count`` runs (``w_count``)
      are not to be trusted either.
    """
    _check_problem(x, y, sigma, learning_rate, dtype)
    for name, value in (("x", x), ("y", y), ("sigma", sigma), ("learning_rate", learning_rate)):
        if np.ndim(value) != 0:
            raise InputError(name, "must be a scalar (use scalar_sweep for a grid)")
    steps, record, block = check_steps(steps, record_steps, block)
    check_positive_finite("divergence_bound", divergence_bound)
    kw = {"x": float(x), "y": float(y), "sigma": float(sigma), "learning_rate": float(learning_rate)}
    a = kw["x"] ** 2 + kw["sigma"] ** 2
    m_star = float(mean_limit(kw["x"], kw["y"], kw["sigma"]))
    scale = max(abs(m_star), abs(kw["y"]) / np.sqrt(a), 1e-30)  # the size of typical w: where bins turn logarithmic
    relative = float(divergence_bound)
    # the kernel's freeze and the engine's check use the same value, representable in the working dtype
    divergence_bound = float(np.asarray(min(relative * scale, float(np.finfo(dtype).max)), dtype))
    params = np.asarray([kw["x"], kw["y"], kw["sigma"], kw["learning_rate"], divergence_bound], dtype=dtype)
    ds = monte_carlo(
        _scalar_trajectory(steps, record, block),
        trajectories=trajectories,
        record_steps=record,
        args=(params,),
        seed=seed,
        chunk_size=chunk_size,
        quantiles=quantiles,
        quantile_scale=scale,
        bins=bins,
        sample_paths=sample_paths,
        divergence_bound=divergence_bound,
        confidence=confidence,
        prng=prng,
        progress=progress,
        desc="noisy-input SGD",
    )
    t = np.asarray(record, dtype=np.float64)
    r = float(fourth_moment_factor(kw["x"], kw["sigma"], kw["learning_rate"]))
    r_threshold = float(fourth_moment_threshold(kw["x"], kw["sigma"]))
    var_ci_valid, var_ci_note = _variance_ci_validity(r, r_threshold, confidence)
    few = f"; not reported where w_count < ci_min_count = {CI_MIN_COUNT} (too few runs for a normal approximation)"
    for side in ("low", "high"):
        ds[f"w_mean_ci_{side}"].attrs["description"] = f"normal-approximation {confidence:g} interval of w_mean{few}"
        ds[f"w_var_ci_{side}"].attrs["description"] = (
            f"normal-approximation {confidence:g} interval of w_var{few}; "
            + ("valid: " if var_ci_valid else "NOT VALID here (variance_ci_valid = 0): ")
            + var_ci_note
        )
    ds = ds.assign(
        exact_mean=("step", mean(t, **kw), {"description": "E w_t, closed form (sim.noisy.scalar.mean)"}),
        exact_var=(
            "step",
            variance(t, **kw),
            {"description": "Var w_t, closed form (sim.noisy.scalar.variance)"},
        ),
        exact_second_moment=("step", second_moment(t, **kw), {"description": "E w_t^2, closed form"}),
    )
    return ds.assign_attrs(
        problem="noisy-input SGD: w <- w - eta x~ (x~ w - y), x~ = x + sigma N(0,1), w0 = 0 (EECS 182 Sp23 HW2 Q3)",
        **kw,
        steps=steps,
        block=block,
        dtype=dtype,
        divergence_bound_relative=relative,
        divergence_scale=scale,
        mean_limit=m_star,
        variance_limit=float(variance_limit(kw["x"], kw["y"], kw["sigma"], kw["learning_rate"])),
        mean_threshold=float(mean_threshold(kw["x"], kw["sigma"])),
        variance_threshold=float(variance_threshold(kw["x"], kw["sigma"])),
        mean_factor=float(mean_factor(kw["x"], kw["sigma"], kw["learning_rate"])),
        second_moment_factor=float(second_moment_factor(kw["x"], kw["sigma"], kw["learning_rate"])),
        lyapunov_exponent=float(lyapunov_exponent(kw["x"], kw["sigma"], kw["learning_rate"])),
        fourth_moment_factor=r,
        fourth_moment_threshold=r_threshold,
        variance_ci_valid=int(var_ci_valid),
        variance_ci_note=var_ci_note,
        ci_min_count=CI_MIN_COUNT,
    )


def _variance_ci_validity(r: float, r_threshold: float, confidence: float) -> tuple[bool, str]:
    """(valid, reason): the variance's normal-approximation interval needs a bounded fourth moment, r < 1."""
    if r < 1:
        return True, f"E(1 - eta x~^2)^4 = {r:.6g} < 1 (eta < {r_threshold:.6g}): w_t has a bounded fourth moment"
    return False, (
        f"fourth moment unbounded: E(1 - eta x~^2)^4 = {r:.6g} >= 1 (eta >= {r_threshold:.6g}), so E w_t^4 grows "
        "without bound; the interval's width rests on a sample fourth moment carried by rare runs and is too narrow "
        f"(well under {confidence:.0%} coverage once t is more than a few steps)"
    )


SWEEP_AXES = ("learning_rate", "sigma", "x")
SWEEP_FIELDS = {
    "mean_factor": "Monte Carlo estimate of p = E[1 - eta x~^2] over all N T draws (E w_t - m* shrinks by p per step)",
    "second_moment_factor": "Monte Carlo estimate of q = E[(1 - eta x~^2)^2] over all N T draws (growth of E w^2)",
    "lyapunov": "Monte Carlo estimate of lambda = E log|1 - eta x~^2| over all N T draws (|A| floored at the dtype's "
    "eps): single runs settle iff lambda < 0",
    "mean_converges": "|mean_factor| < 1 (False where no run gave a finite estimate: factor_count 0)",
    "variance_bounded": "second_moment_factor < 1 (False where no run gave a finite estimate: factor_count 0)",
    "runs_settle": "lyapunov < 0 (False where no run gave a finite estimate: factor_count 0)",
    "factor_count": "runs whose running sums of A, A^2 and log|A| all stayed finite (the factors are over these; "
    "the divergence bound does not apply to them)",
    "w_mean": "sample mean of w_T over non-diverged runs",
    "w_var": "sample variance of w_T over non-diverged runs (unreliable where the variance is heavy-tailed)",
    "w_second_moment_growth": "log(sample E w_T^2 / sample E w_{T/2}^2) / (T - T/2): the naive pathwise growth rate "
    "of the second moment (biased low where rare runs carry it; compare log q)",
    "diverged_fraction": "fraction of runs with |w| beyond the bound by step T",
    "exact_mean_factor": "p = 1 - eta (x^2 + sigma^2)",
    "exact_second_moment_factor": "q = 1 - 2 eta (x^2 + sigma^2) + eta^2 (x^4 + 6 x^2 sigma^2 + 3 sigma^4)",
    "theory_mean_converges": "eta < 2 / (x^2 + sigma^2)",
    "theory_variance_bounded": "eta < 2 (x^2 + sigma^2) / (x^4 + 6 x^2 sigma^2 + 3 sigma^4)",
    "exact_mean": "E w_T (closed form)",
    "exact_var": "Var w_T (closed form; inf where it overflows)",
}


FACTOR_LEAVES = ("A", "A2", "logA")  # per-run sums over the T steps of A = 1 - eta x~^2, A^2 and log|A|


@functools.lru_cache(maxsize=16)
def _sweep_trajectory(steps: int, record: tuple[int, ...], block: int):
    def trajectory(key, points, y, bound):
        eps = jnp.finfo(points.dtype).eps

        def one(point):
            x, sigma, eta = point[0], point[1], point[2]

            def step(state, z):
                w, sa, sa2, slog = state
                xt = x + sigma * z
                a = 1 - eta * xt * xt
                w = jnp.where(jnp.abs(w) <= bound, a * w + eta * xt * y, w)
                return w, sa + a, sa2 + a * a, slog + jnp.log(jnp.maximum(jnp.abs(a), eps))

            zero = jnp.zeros((), points.dtype)
            # the key is shared by every point: common random numbers, drawn once per trajectory and block
            w, sa, sa2, slog = simulate(step, (zero,) * 4, key, steps=steps, record_steps=record, block=block)
            return {"w": w, "A": sa, "A2": sa2, "logA": slog}

        return {k: v.T for k, v in jax.vmap(one)(points).items()}  # [record, point]

    return trajectory


def scalar_sweep(
    grid: Grid,
    *,
    steps: int,
    trajectories: int,
    x: float | None = None,
    y: float = 1.0,
    seed: int = 0,
    chunk_size: int = 256,
    point_chunk: int = 256,
    divergence_bound: float = DEFAULT_BOUND,
    confidence: float = 0.95,
    quantiles=(0.05, 0.5, 0.95, 0.99),
    bins: int = 2048,
    block: int = DEFAULT_BLOCK,
    dtype: str = "float32",
    prng: str = DEFAULT_PRNG,
    max_points: int = MAX_POINTS,
    progress: bool = True,
    output=None,
    resume: bool = False,
    attrs=None,
) -> xr.Dataset:
    """Monte Carlo over a grid of (learning_rate, sigma[, x]): do the mean and the variance settle?

    Every grid point runs the same N keys (common random numbers) for T steps. Per point it estimates, from all
    N·T draws of A = 1 − η x̃², the factors p = E A (E w_t − m* shrinks by p per step) and q = E A² (E w_t² grows
    by q), each with a confidence interval, and λ = E log|A| (single runs settle iff λ < 0); and, pathwise,
    the mean, variance, quantiles and diverged fraction of w_T, with the naive growth rate of the sample second
    moment between T/2 and T.

    Why the factors and not only the sample moments of w_T: between the two thresholds Var w_t → ∞ but it is
    carried by rare runs (λ < 0 there: typical runs settle into a heavy-tailed stationary law), so the sample
    second moment of N runs underestimates E w_T² by orders of magnitude once T is more than a few steps; the
    per-step factors are plain averages of light-tailed draws and locate both thresholds to within their CIs.

    How it runs: the grid is cut into blocks of at most ``point_chunk`` points (:func:`sim.core.engine.blocks`), run
    by :func:`sim.core.engine.run` on every device (one host thread each); a block's N trajectories run on its
    device in calls of ``chunk_size`` trajectories × ``SWEEP_WIDTH`` points and are reduced by
    :class:`sim.noisy.streaming.Accumulator`, so every estimate is bitwise the same for any ``chunk_size``,
    ``point_chunk`` and device count. The results are kept by
    :class:`sim.core.io.Results`: in memory, or streamed block by block to a Zarr store (``output="run.zarr"``) that a
    killed run can ``resume``. A run stopped by SIGINT or SIGTERM keeps its finished blocks (``attrs["complete"]`` 0,
    ``attrs["stopped_by_signal"]``); the other points hold fill values (NaN, −1, False) beside ``computed``.

    Args:
      grid: axes ``learning_rate`` and ``sigma`` (and optionally ``x``), e.g. from :func:`sim.core.grid.parse_axis`.
      steps: T ≥ 2 (records at T/2 and T). trajectories: N ≥ 1 per point.
      x: the data point when the grid has no ``x`` axis (default 1). y: the target.
      chunk_size: trajectories per compiled call; point_chunk: grid points per block (the unit of progress, of
        interruption and of the store's chunks; each call runs ``SWEEP_WIDTH`` points of a block, padded: one
        compile for any grid).
      output: a ``.zarr`` path: stream the results there as blocks finish.
      resume: continue the store at ``output`` left by a run of the same arguments (refused if they differ).
      attrs: extra attrs to record (e.g. the command line).
      Other arguments as in :func:`monte_carlo`.

    Returns:
      ``xarray.Dataset`` over the grid's dimensions with the variables of ``SWEEP_FIELDS`` (factors with
      ``_ci_low``/``_ci_high``), ``w_count``, ``w_quantile`` (dims quantile × grid), ``computed`` and attrs (lazily
      backed by the store when ``output`` is given).
    """
    names = grid.names
    for name in names:
        if name not in SWEEP_AXES:
            raise InputError(name, f"is not an axis of the noisy-input sweep (axes: {', '.join(SWEEP_AXES)})")
    for name in ("learning_rate", "sigma"):
        if name not in names:
            raise InputError(name, "the sweep needs a value or an axis for it")
    if "x" in names and x is not None:
        raise InputError("x", "give either an x axis or the keyword x, not both")
    x = 1.0 if x is None else x
    for axis in grid.axes:
        if axis.name == "learning_rate":
            check_positive_finite("learning_rate", axis.values)
        elif axis.name == "sigma":
            check_positive_finite("sigma", axis.values, allow_zero=True)
    if np.ndim(x) != 0 or np.ndim(y) != 0:
        raise InputError("x" if np.ndim(x) else "y", "must be a scalar (use an x axis to vary x)")
    steps = check_int("steps", steps, minimum=2, maximum=MAX_STEPS)
    steps, record, block = check_steps(steps, (steps // 2, steps), block)
    point_chunk = min(check_int("point_chunk", point_chunk, minimum=1), grid.size)  # no padding past the grid
    check_positive_finite("divergence_bound", divergence_bound)
    if output is not None and not io.is_store(output):
        raise InputError("output", f"must be a .zarr store to stream to, got {output!r} (write a .nc with sim.core.io)")
    if resume and output is None:
        raise InputError("resume", "needs an output store to resume")
    cluster.check_output(output)
    grid.check_budget(max_points)
    vals = grid.values_at(np.arange(grid.size))
    xs = vals.get("x", np.full(grid.size, float(x)))
    _check_problem(xs, y, vals["sigma"], vals["learning_rate"], dtype)

    divergence_bound = float(np.asarray(divergence_bound, dtype))  # the kernel's freeze and the engine's check agree
    points = np.stack([xs, vals["sigma"], vals["learning_rate"]], axis=1)
    bshape = run_engine.block_shape(grid.shape, point_chunk)
    shared = (np.asarray(y, dtype), np.asarray(divergence_bound, dtype))
    plan = prepare(
        _sweep_trajectory(steps, record, block),
        trajectories=trajectories,
        record_steps=record,
        args=(np.ones((SWEEP_WIDTH, 3), dtype), *shared),
        seed=seed,
        chunk_size=chunk_size,
        quantiles=quantiles,
        quantile_of=("w",),
        quantile_scale=max(abs(float(y)), 1e-30),
        bins=bins,
        divergence_bound=divergence_bound,
        bounds={k: np.inf for k in FACTOR_LEAVES},  # sums of A: their size is the result, never excluded
        confidence=confidence,
        prng=prng,
        dims={k: ("point",) for k in ("w", *FACTOR_LEAVES)},
    )
    q = plan.spec["quantiles"]
    record_attrs = _sweep_attrs(grid, plan, x, y, steps, block, dtype, point_chunk) | dict(attrs or {})
    if output is not None:
        io.check_output(output, resume=resume, overwrite=not resume, spec=record_attrs["spec"])
    layout = {
        "dims": names,
        "shape": grid.shape,
        "coords": grid.coords(),
        "variables": _SWEEP_VARIABLES,
        "attrs": record_attrs,
        "block_shape": bshape,
    }
    # process 0 writes the store's template, quantiles included
    results = cluster.open_results(output, layout, resume=resume, template=lambda r: _QuantileStore.create(r, q))
    quantile = _QuantileStore(results, q)
    blocks = run_engine.blocks(grid.shape, point_chunk)
    chunks = cluster.share(blocks, results)

    def launch(chunk, device):  # nothing yet: a block's work runs in collect, so a signal stops the next block
        return device

    def collect(chunk, device):  # the block's points SWEEP_WIDTH at a time, every trajectory, on its device
        pts = points[chunk.start : chunk.stop]
        parts = []
        for start in range(0, len(pts), SWEEP_WIDTH):
            group = pts[start : start + SWEEP_WIDTH]
            padded = np.pad(group, ((0, SWEEP_WIDTH - len(group)), (0, 0)), mode="edge").astype(dtype)
            acc = plan.run_on(device, (padded, *shared))
            parts.append({k: v[..., : len(group)] for k, v in _sweep_summaries(plan.estimates(acc), steps).items()})
        values = {k: np.concatenate([p[k] for p in parts], axis=-1) for k in parts[0]}
        return values | _sweep_exact(pts, float(y), steps)

    stored = []  # the points of each stored block (list.append is atomic: worker threads share it)

    def store(chunk, values):
        quantile.store(chunk, values.pop("w_quantile", None))
        results.store(chunk, values)  # its done marker last
        stored.append(chunk.size)

    one = jax.process_count() == 1
    outcome = run_engine.run(
        chunks,
        launch,
        collect,
        store,
        devices=jax.local_devices()[: max(len(chunks), 1)],
        size=lambda chunk: chunk.size,
        total=grid.size if one else None,
        done=grid.size - sum(c.size for c in chunks) if one else 0,
        progress=progress,
        desc="noisy-input sweep",
        unit="pt",
    )
    cluster.finish_results(results, blocks, outcome)
    if not outcome.complete:
        kept = grid.size - sum(c.size for c in chunks) + sum(stored)
        print(f"noisy-input sweep: stopped by a signal, keeping {kept:,} of {grid.size:,} points", file=sys.stderr)
    return quantile.attach(results.dataset())


# points per compiled call, whatever the blocks: XLA's CPU code for the vmapped points can round differently for
# different widths (measured: width 8 differed in the last bits from widths 1, 2, 16, 32, 63 and 64 with 256-bit
# vectors), while within one width a point's results do not depend on its lane or the trajectory chunk
SWEEP_WIDTH = 32
_SWEEP_DTYPES = {"factor_count": np.int64, "w_count": np.int64}
_SWEEP_FLAGS = ("mean_converges", "variance_bounded", "runs_settle", "theory_mean_converges", "theory_variance_bounded")
_SWEEP_NAMES = (
    *(f"{f}{s}" for f in ("mean_factor", "second_moment_factor", "lyapunov") for s in ("", "_ci_low", "_ci_high")),
    "factor_count",
    "mean_converges",
    "variance_bounded",
    "runs_settle",
    "w_mean",
    "w_var",
    "w_second_moment_growth",
    "w_count",
    "diverged_fraction",
    "exact_mean_factor",
    "exact_second_moment_factor",
    "theory_mean_converges",
    "theory_variance_bounded",
    "exact_mean",
    "exact_var",
)
_W_COUNT_DOC = "non-diverged runs at T (the runs behind w_mean and w_var)"
_SWEEP_VARIABLES = {
    name: (
        np.bool_ if name in _SWEEP_FLAGS else _SWEEP_DTYPES.get(name, np.float64),
        {"description": SWEEP_FIELDS.get(name.removesuffix("_ci_low").removesuffix("_ci_high"), _W_COUNT_DOC)},
    )
    for name in _SWEEP_NAMES
}
_QUANTILE_DOC = "histogram quantile of w_T over non-diverged runs (0: no data)"


class _QuantileStore:
    """``w_quantile`` (dims quantile × grid) beside :class:`sim.core.io.Results`, which holds per-point variables
    only: a NumPy array in memory, or an array of the same store chunked (quantile, block) so that each block is one
    whole-chunk write, made before the block's ``computed`` marker (so a resumed store never lacks a block's
    quantiles)."""

    def __init__(self, results, q):
        self.q, self.results = q, results
        if not q.size:
            self.array = None
        elif results.path is None:
            self.array = np.full((q.size, *results.shape), np.nan)
        else:
            self.array = results.group["w_quantile"]

    @staticmethod
    def create(results, q) -> None:
        """Add ``quantile`` and ``w_quantile`` (chunked like the blocks) to a new store."""
        if results.path is None or not q.size:
            return
        coord = results.group.create_array("quantile", shape=q.shape, dtype=q.dtype, dimension_names=["quantile"])
        coord[:] = q
        arr = results.group.create_array(
            "w_quantile",
            shape=(q.size, *results.shape),
            chunks=(q.size, *results.block_shape),
            dtype=np.float64,
            fill_value=np.nan,
            dimension_names=("quantile", *results.dims),
        )
        arr.attrs.update({"description": _QUANTILE_DOC})

    def store(self, block, values) -> None:
        if self.array is not None:
            bshape = tuple(r.stop - r.start for r in block.region)
            self.array[(slice(None), *block.region)] = np.asarray(values).reshape((self.q.size, *bshape))

    def attach(self, ds: xr.Dataset) -> xr.Dataset:
        if self.array is None or self.results.path is not None:  # a store holds it already
            return ds
        dims = ("quantile", *self.results.dims)
        return ds.assign_coords(quantile=self.q).assign(w_quantile=(dims, self.array, {"description": _QUANTILE_DOC}))


def _sweep_attrs(grid, plan, x, y, steps, block, dtype, point_chunk) -> dict:
    """The sweep's attrs: the settings (recorded as ``spec`` too, which a resumed store must match) and provenance."""
    engine_attrs = plan.attrs()
    recorded = {
        "axes": json.dumps({a.name: a.spec for a in grid.axes}),
        "x": "axis" if "x" in grid.names else float(x),
        "y": float(y),
        "steps": steps,
        "trajectories": plan.trajectories,
        "seed": plan.seed,
        "prng": plan.prng,
        "block": block,
        "dtype": dtype,
        "divergence_bound": plan.divergence_bound,
        "confidence": plan.confidence,
        "quantiles": [float(v) for v in plan.spec["quantiles"]],
        "bins": plan.bins,
        "point_chunk": point_chunk,  # the store's chunks
    }
    out = {k: engine_attrs[k] for k in ("key_derivation", "ci_method", "divergence")}
    out |= {k: v for k, v in recorded.items() if k != "x" or "x" not in grid.names}  # x: a value, or the axis
    out.update(
        problem="noisy-input SGD sweep: w <- w - eta x~ (x~ w - y), x~ = x + sigma N(0,1), w0 = 0",
        chunk_size=plan.size,
        common_random_numbers="every grid point uses the same N trajectory keys",
        spec=recorded,
        complete=0,
        stopped_by_signal=0,
        **runtime.provenance(),
    )
    return out


def _sweep_exact(points, y, steps) -> dict[str, np.ndarray]:
    """The closed forms at the points (rows x, σ, η)."""
    xs, sigma, eta = points[:, 0], points[:, 1], points[:, 2]
    kw = {"x": xs, "y": y, "sigma": sigma, "learning_rate": eta}
    return {
        "exact_mean_factor": mean_factor(xs, sigma, eta),
        "exact_second_moment_factor": second_moment_factor(xs, sigma, eta),
        "theory_mean_converges": eta < mean_threshold(xs, sigma),
        "theory_variance_bounded": eta < variance_threshold(xs, sigma),
        "exact_mean": mean(float(steps), **kw),
        "exact_var": variance(float(steps), **kw),
    }


def _sweep_summaries(ds: xr.Dataset, steps: int) -> dict[str, np.ndarray]:
    last = {k: ds[k].values[-1] for k in ds.data_vars if k.startswith(("A", "logA", "w_")) and "paths" not in k}
    res = {}
    for leaf, name in (("A", "mean_factor"), ("A2", "second_moment_factor"), ("logA", "lyapunov")):
        res[name] = last[f"{leaf}_mean"] / steps
        res[f"{name}_ci_low"] = last[f"{leaf}_mean_ci_low"] / steps
        res[f"{name}_ci_high"] = last[f"{leaf}_mean_ci_high"] / steps
    count = np.min([last[f"{leaf}_count"] for leaf in FACTOR_LEAVES], axis=0)
    known = count > 0  # a count of 0 (every sum overflowed) leaves the factors at 0: never read that as "converges"
    res["factor_count"] = count
    res["mean_converges"] = known & (np.abs(res["mean_factor"]) < 1)
    res["variance_bounded"] = known & (res["second_moment_factor"] < 1)
    res["runs_settle"] = known & (res["lyapunov"] < 0)
    n = ds["w_count"].values
    second = ds["w_mean"].values ** 2 + ds["w_var"].values * np.where(n > 1, (n - 1) / np.maximum(n, 1), 0)
    half, end = second
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where((half > 0) & (end > 0), np.log(end / half) / (steps - steps // 2), 0.0)
    res.update(
        w_mean=last["w_mean"],
        w_var=last["w_var"],
        w_second_moment_growth=growth,
        w_count=last["w_count"],
        diverged_fraction=last["w_diverged_fraction"],
    )
    if "w_quantile" in ds:
        res["w_quantile"] = ds["w_quantile"].values[:, -1]
    return res
