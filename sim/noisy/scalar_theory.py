"""Closed forms for scalar SGD with noisy inputs: the exact first and second moments of w_t and their thresholds.

Contract: float64 NumPy functions of the problem (x, y, σ) and the learning rate η, broadcasting over arrays; the
Monte Carlo simulator (:mod:`sim.noisy.scalar`), its tests and figures use them as the oracle. No JAX here.

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

Single runs. The moments are averages over runs; a single run is the random product Π A_k applied to the injected
B's, and it settles (to a stationary, heavy-tailed law) iff the Lyapunov exponent λ = E log|1 − η x̃²| is negative
(:func:`lyapunov_exponent`). By Jensen λ ≤ ½ log q, so runs settle wherever the variance is bounded; numerically
(x = 1, σ ∈ [0.25, 2]) λ = 0 lies beyond BOTH moment thresholds, so between them typical runs settle while rare
large excursions carry an unbounded variance (stationary tail P(|w| > u) ~ u^(−κ) with E|A|^κ = 1, κ < 2).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "gaussian_moments",
    "iterate_moments",
    "lyapunov_exponent",
    "lyapunov_threshold",
    "mean",
    "mean_factor",
    "mean_limit",
    "mean_threshold",
    "moment_recursion",
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


def mean_factor(x: ArrayLike, sigma: ArrayLike, learning_rate: ArrayLike) -> np.ndarray:
    """p = E[1 − η x̃²] = 1 − η(x² + σ²), the per-step factor of E w_t − m*."""
    a, _, _ = gaussian_moments(x, sigma)
    return 1 - np.asarray(learning_rate, dtype=np.float64) * a


def second_moment_factor(x: ArrayLike, sigma: ArrayLike, learning_rate: ArrayLike) -> np.ndarray:
    """q = E[(1 − η x̃²)²] = 1 − 2η(x² + σ²) + η²(x⁴ + 6x²σ² + 3σ⁴), the growth factor of E w_t² and Var w_t."""
    a, _, b = gaussian_moments(x, sigma)
    eta = np.asarray(learning_rate, dtype=np.float64)
    return 1 - eta * (2 * a - eta * b)


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
