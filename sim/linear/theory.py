"""Closed forms for the linear dynamics of GD and momentum on least squares, beside the simulators.

Contract: every function is pure ``jax.numpy`` (vectorizes over any broadcastable inputs) and follows the package
conventions: the loss is L(w) = ‖y − Xw‖² (no ½), ``sigma2`` is a squared singular value σ², ``learning_rate`` is
η and ``beta`` is the EMA momentum weight of the new gradient. In the singular basis each mode is an independent
linear recursion u ← R u; :func:`transition_matrix` derives R from a dynamics' own ``step`` (so theory and simulator
cannot drift apart) and :func:`momentum_matrix` states the course's closed form for the EMA case. For momentum the
module also gives R's eigenvalues, discriminant and regime (:data:`REGIMES`), the three η thresholds of a mode, the
rate over a spectrum, the best-rate η interval for a β, the joint optimum over (η, β) and the exact transient growth
max_t ‖Rᵗ‖₂. :mod:`sim.linear.symbolic` derives the same formulas with sympy and the tests hold the two together.

References: EECS 182 Sp25 HW1 Q1 / Sp23 HW2 Q1 (GD), Sp23 HW2 Q2 (momentum).
"""

from __future__ import annotations

import math

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from sim.linear.dynamics import Dynamics

# --------------------------------------------------------------------------------------------------------------
# Gradient descent


def gd_factor(learning_rate, sigma2):
    """Per-mode GD error factor 1 − 2ησ²: the error of mode i is multiplied by it every step."""
    return 1 - 2 * learning_rate * sigma2


def gd_rate(learning_rate, spectrum):
    """Asymptotic GD rate max_i |1 − 2ησ_i²| over the last axis of ``spectrum``."""
    return jnp.max(jnp.abs(gd_factor(jnp.asarray(learning_rate)[..., None], spectrum)), axis=-1)


def gd_stable_lr(spectrum):
    """Largest stable learning rate 1/σ_max² (GD converges iff 0 < η < 1/σ_max²)."""
    return 1 / jnp.max(spectrum, axis=-1)


def gd_optimal_lr(spectrum):
    """Rate-optimal learning rate η* = 1/(σ_max² + σ_min²)."""
    return 1 / (jnp.max(spectrum, axis=-1) + jnp.min(spectrum, axis=-1))


def gd_optimal_rate(spectrum):
    """Optimal GD rate (κ² − 1)/(κ² + 1) with κ² = σ_max²/σ_min²."""
    k2 = jnp.max(spectrum, axis=-1) / jnp.min(spectrum, axis=-1)
    return (k2 - 1) / (k2 + 1)


def steps_to_tolerance(rate, tol):
    """Predicted steps ⌈log ε / log ρ⌉ for a geometric decay at ``rate`` ρ to relative error ``tol`` ε.

    Exact for a single GD mode started at relative error 1; the asymptotic prediction otherwise. Returns ``inf``
    for ρ ≥ 1 and 1 for ρ = 0.
    """
    rate = jnp.asarray(rate)
    steps = jnp.ceil(jnp.log(tol) / jnp.log(jnp.where(rate > 0, rate, 0.5)))
    return jnp.where(rate >= 1, jnp.inf, jnp.where(rate > 0, steps, 1.0))


# --------------------------------------------------------------------------------------------------------------
# Momentum (EMA form)


def momentum_matrix(learning_rate, beta, sigma2):
    """The course's per-mode momentum matrix R acting on (a, x) = (velocity, error), array of shape [..., 2, 2].

    R = [[1 − β, 2βσ²], [−η(1 − β), 1 − 2ηβσ²]]; det R = 1 − β, tr R = 2 − β − 2ηβσ².
    """
    lr, beta, s = jnp.broadcast_arrays(jnp.asarray(learning_rate), jnp.asarray(beta), jnp.asarray(sigma2))
    row0 = jnp.stack([1 - beta, 2 * beta * s], axis=-1)
    row1 = jnp.stack([-lr * (1 - beta), 1 - 2 * lr * beta * s], axis=-1)
    return jnp.stack([row0, row1], axis=-2)


def momentum_trace(learning_rate, beta, sigma2):
    """Trace 2 − β − 2ηβσ² of the per-mode momentum matrix R."""
    return 2 - beta - 2 * learning_rate * beta * sigma2


def momentum_determinant(beta):
    """Determinant 1 − β of the per-mode momentum matrix R (independent of η and σ²)."""
    return 1 - jnp.asarray(beta)


def momentum_discriminant(learning_rate, beta, sigma2):
    """Discriminant D = tr² − 4 det = (2 − β − 2ηβσ²)² − 4(1 − β) of R's characteristic polynomial.

    D > 0: two real eigenvalues; D = 0: a repeated one; D < 0: a complex pair of modulus √(1 − β).

    References:
      EECS 182 Sp23 HW2 Q2(c)–(e).
    """
    tr = momentum_trace(learning_rate, beta, sigma2)
    return tr * tr - 4 * momentum_determinant(beta)


def momentum_eigenvalues(learning_rate, beta, sigma2):
    """Eigenvalues λ± = (tr ± √D)/2 of the per-mode momentum matrix R, complex array of shape [..., 2].

    λ₊ (index 0) takes the principal square root of D, so a complex pair is ordered (+ imaginary part, −). For
    real roots the one of larger modulus is computed as (tr ± sign(tr)√D)/2 and the other as det/that one, which
    avoids the cancellation in tr − √D when det is small.

    Args:
      learning_rate: η.
      beta: β, the EMA weight of the new gradient.
      sigma2: σ² of the mode.

    Returns:
      Complex array (complex128 under x64, else complex64), inputs broadcast, eigenvalue on the last axis.

    References:
      EECS 182 Sp23 HW2 Q2(c) ("use the computer to symbolically find the eigenvalues").
    """
    lr, beta, s = jnp.broadcast_arrays(*(jnp.asarray(v) for v in (learning_rate, beta, sigma2)))
    tr = momentum_trace(lr, beta, s)
    det = momentum_determinant(beta)
    disc = tr * tr - 4 * det
    sq = jnp.sqrt(jnp.abs(disc))
    real = disc >= 0
    sign = jnp.where(tr >= 0, 1.0, -1.0)
    big = (tr + sign * sq) / 2
    small = jnp.where(big == 0, 0.0, det / jnp.where(big == 0, 1.0, big))
    plus_re = jnp.where(real, jnp.where(tr >= 0, big, small), tr / 2)
    minus_re = jnp.where(real, jnp.where(tr >= 0, small, big), tr / 2)
    im = jnp.where(real, 0.0, sq / 2)
    return jnp.stack([jax.lax.complex(plus_re, im), jax.lax.complex(minus_re, -im)], axis=-1)


REGIMES = {0: "real distinct", 1: "repeated", 2: "complex", 3: "unstable"}
"""Codes returned by :func:`momentum_regime`."""


def momentum_regime(learning_rate, beta, sigma2, *, rtol=None):
    """Regime of one momentum mode as an integer code (see :data:`REGIMES`).

    3 "unstable" when the spectral radius ρ ≥ 1 (this includes η ≤ 0, where ρ = 1 and nothing converges); else
    1 "repeated" when |D| ≤ rtol · (tr² + 4|det|) (D = tr² − 4 det); else 2 "complex" when D < 0; else
    0 "real distinct". The checks are made in that order.

    Args:
      learning_rate: η.
      beta: β.
      sigma2: σ².
      rtol: relative tolerance on the discriminant; default 256 machine epsilons of the working dtype
        (≈ 3e-5 in float32, 6e-14 in float64), enough that an η set to a threshold of
        :func:`momentum_thresholds` computed in the same precision classifies as repeated.

    Returns:
      int32 array of the broadcast shape.

    References:
      EECS 182 Sp23 HW2 Q2(d)–(f); Goh, "Why Momentum Really Works", Distill (2017).
    """
    lr, beta, s = jnp.broadcast_arrays(*(jnp.asarray(v) for v in (learning_rate, beta, sigma2)))
    tr = momentum_trace(lr, beta, s)
    det = momentum_determinant(beta)
    disc = tr * tr - 4 * det
    if rtol is None:
        rtol = 256 * float(jnp.finfo(jnp.result_type(disc, float)).eps)
    rho = spectral_radius(momentum_matrix(lr, beta, s))
    code = jnp.where(disc < 0, 2, 0)
    code = jnp.where(jnp.abs(disc) <= rtol * (tr * tr + 4 * jnp.abs(det)), 1, code)
    return jnp.where(rho >= 1, 3, code).astype(jnp.int32)


def momentum_repeated_root_lrs(beta, sigma2):
    """The two learning rates (2 − β ∓ 2√(1 − β)) / (2βσ²) where R has a repeated eigenvalue ±√(1 − β).

    Between them the eigenvalues are complex with modulus √(1 − β). Evaluated as β / (2σ²(1 + √(1 − β))²) and
    (1 + √(1 − β))² / (2βσ²), the same numbers without the cancellation in 2 − β − 2√(1 − β) ≈ β²/4 at small β.
    """
    one_plus = 1 + jnp.sqrt(1 - jnp.asarray(beta))
    return beta / (2 * sigma2 * one_plus**2), one_plus**2 / (2 * beta * sigma2)


def momentum_stable_lr(beta, sigma2):
    """Largest stable learning rate (2 − β)/(βσ²) of one momentum mode.

    From the Jury conditions for a 2×2 real matrix, |det| < 1 and |tr| < 1 + det: with det = 1 − β ∈ [0, 1) they
    reduce to 0 < η < (2 − β)/(βσ²).
    """
    return (2 - beta) / (beta * sigma2)


def momentum_thresholds(beta, sigma2):
    """The three η thresholds of one momentum mode: lower repeated root, upper repeated root, stability limit.

    For 0 < η < η₁ the eigenvalues are real and positive, at η₁ and η₂ repeated (±√(1 − β)), between them complex
    of modulus √(1 − β), from η₂ real and negative, and from η₃ on the mode diverges.

    Args:
      beta: β.
      sigma2: σ².

    Returns:
      ``(eta_1, eta_2, eta_3)`` = ((2 − β − 2√(1 − β))/(2βσ²), (2 − β + 2√(1 − β))/(2βσ²), (2 − β)/(βσ²)),
      arrays of the broadcast shape.

    References:
      EECS 182 Sp23 HW2 Q2(e)–(f).
    """
    lo, hi = momentum_repeated_root_lrs(beta, sigma2)
    return lo, hi, jnp.asarray(momentum_stable_lr(beta, sigma2))


def momentum_rate(learning_rate, beta, spectrum):
    """Asymptotic momentum rate: the spectral radius of R maximized over the last axis of ``spectrum``.

    Args:
      learning_rate: η, broadcastable against ``beta`` and ``spectrum[..., 0]``.
      beta: β.
      spectrum: squared singular values σ_i², modes on the last axis.

    Returns:
      Array of the broadcast shape of ``learning_rate``, ``beta`` and ``spectrum[..., 0]``.

    References:
      EECS 182 Sp23 HW2 Q2(g).
    """
    lr = jnp.asarray(learning_rate)[..., None]
    beta = jnp.asarray(beta)[..., None]
    return jnp.max(spectral_radius(momentum_matrix(lr, beta, jnp.asarray(spectrum))), axis=-1)


def momentum_best_interval(beta, spectrum):
    """The η interval attaining the best momentum rate for a fixed β, and that rate.

    Every mode has ρ ≥ √det = √(1 − β), and ρ depends on η only through u = ησ²: it falls on (0, η₁], equals
    √(1 − β) on [η₁, η₂] and rises after, so only σ_min² and σ_max² matter. If their complex intervals overlap
    (η₁(σ_min²) ≤ η₂(σ_max²)) every η in between attains ρ = √(1 − β). Otherwise the optimum is the single η where
    the two extreme modes' real roots have equal modulus, i.e. tr(σ_min²) = −tr(σ_max²):
    η = (2 − β)/(β(σ_min² + σ_max²)), with ρ = (t + √(t² − 4(1 − β)))/2, t = (2 − β)(κ² − 1)/(κ² + 1). β = 1
    gives back GD's η* and rate.

    Args:
      beta: β.
      spectrum: squared singular values σ_i², modes on the last axis.

    Returns:
      ``(eta_lo, eta_hi, rate)``, arrays of the broadcast shape of ``beta`` and ``spectrum[..., 0]``;
      ``eta_lo == eta_hi`` when the best rate is attained at one η only.

    References:
      EECS 182 Sp23 HW2 Q2(g) (β = 0.1, σ² ∈ {5, 0.05}: [0.2633, 3.797], ρ = √0.9).
    """
    spectrum = jnp.asarray(spectrum)
    beta = jnp.asarray(beta)
    smax, smin = jnp.max(spectrum, axis=-1), jnp.min(spectrum, axis=-1)
    lo, _ = momentum_repeated_root_lrs(beta, smin)
    _, hi = momentum_repeated_root_lrs(beta, smax)
    overlap = lo <= hi
    balance = (2 - beta) / (beta * (smin + smax))
    t = (2 - beta) * (smax - smin) / (smax + smin)
    det = momentum_determinant(beta)
    real_rate = (t + jnp.sqrt(jnp.maximum(t * t - 4 * det, 0))) / 2
    rate = jnp.where(overlap, jnp.sqrt(det), real_rate)
    return jnp.where(overlap, lo, balance), jnp.where(overlap, hi, balance), rate


def momentum_optimum(spectrum) -> tuple[float, float, float]:
    """Jointly rate-optimal EMA momentum (η, β, ρ) for a spectrum: Polyak's heavy-ball optimum in EMA form.

    With κ = σ_max/σ_min: ρ = (κ − 1)/(κ + 1), β = 1 − ρ², η = 2/((σ_max + σ_min)² β). In heavy-ball terms
    (Hessian eigenvalues λ = 2σ²) lr = 4/(√λ_max + √λ_min)², m = ρ². There the complex-root intervals of the
    extreme modes just touch: the smaller repeated-root η of σ_min² equals the larger one of σ_max².

    Evaluated in float64 without cancellation: β = (1 − ρ)(1 + ρ) = g(2 − g) with g = 1 − ρ = 2σ_min/(σ_max + σ_min),
    and η = 1/(2σ_max σ_min), the same numbers as 1 − ρ² and 2/((σ_max + σ_min)² β), which lose every digit of β
    once ρ rounds to 1 (κ ≳ 1e16) and about log₁₀ κ of them before.

    Args:
      spectrum: squared singular values σ_i² (any sequence).

    Returns:
      ``(learning_rate, beta, rate)`` as Python floats.
    """
    spectrum = np.asarray(spectrum, dtype=np.float64)
    smax, smin = float(np.sqrt(spectrum.max())), float(np.sqrt(spectrum.min()))
    rho = (smax - smin) / (smax + smin)
    gap = 2 * smin / (smax + smin)
    return 1 / (2 * smax * smin), gap * (2 - gap), rho


# --------------------------------------------------------------------------------------------------------------
# Generic linear-mode facts


def transition_matrix(dynamics: Dynamics, sigma2):
    """The per-mode transition matrix R of ``dynamics`` on L = ‖y − Xw‖², derived from its own ``step``.

    The state of one mode is flattened as [error, velocity...]; R is the Jacobian of one step (the step is linear,
    so R is exact). Works under ``jit``/``vmap`` with traced hyperparameters.

    Args:
      dynamics: the optimizer, e.g. ``momentum(0.1, 0.5)``.
      sigma2: squared singular value σ² of the mode (scalar).

    Returns:
      Array of shape [d, d], d = 1 for GD and 2 for momentum methods.
    """
    sigma2 = jnp.asarray(sigma2)
    state0 = dynamics.init(jnp.zeros((), sigma2.dtype))
    flat0, unravel = jax.flatten_util.ravel_pytree(state0)

    def flat_step(u):
        new = dynamics.step(lambda w: 2 * sigma2 * w, unravel(u))
        return jax.flatten_util.ravel_pytree(new)[0]

    return jax.jacfwd(flat_step)(flat0)


def spectral_radius(matrix):
    """Spectral radius of real matrices of shape [..., d, d] with d ∈ {1, 2}, from trace and determinant."""
    d = matrix.shape[-1]
    if d == 1:
        return jnp.abs(matrix[..., 0, 0])
    if d != 2:
        raise ValueError(f"spectral_radius: only 1x1 and 2x2 matrices are supported, got {d}x{d}")
    tr = matrix[..., 0, 0] + matrix[..., 1, 1]
    det = matrix[..., 0, 0] * matrix[..., 1, 1] - matrix[..., 0, 1] * matrix[..., 1, 0]
    disc = tr * tr - 4 * det
    sq = jnp.sqrt(jnp.abs(disc))
    real_case = jnp.maximum(jnp.abs(tr + sq), jnp.abs(tr - sq)) / 2
    return jnp.where(disc >= 0, real_case, jnp.sqrt(jnp.abs(det)))


def power_bound(matrix):
    """A constant G with ‖Rˢ‖₂ ≤ G for every s ≥ 1 (``inf`` when the spectral radius ρ ≥ 1).

    For 2×2 matrices, Cayley–Hamilton gives Rˢ = p_s R − det(R) p_{s−1} I with |p_s| ≤ s ρ^{s−1}, so
    ‖Rˢ‖_F ≤ s ρ^{s−1} (‖R‖_F + √2 ρ). Over real s ≥ 1, s ρ^{s−1} peaks at s* = −1/log ρ with the value
    1/(e ρ (−log ρ)) ≤ 1/(e ρ (1 − ρ)) when s* > 1 (ρ > 1/e), and is 1 at s = 1 otherwise: a bound with no
    transcendental function (they are slow on XLA CPU), within a factor 1 + (1 − ρ)/2 of the peak as ρ → 1. It holds
    for real, repeated and complex eigenvalues alike, which is what lets the sweep stop a point early: once
    G‖u_t‖ < tol, no later error can reach tol.
    """
    d = matrix.shape[-1]
    rho = spectral_radius(matrix)
    if d == 1:
        return jnp.where(rho < 1, rho, jnp.inf)
    entries = [matrix[..., i, j] for i in range(2) for j in range(2)]
    frob = jnp.sqrt(sum(e * e for e in entries))  # not jnp.sum over the 2×2 axes: XLA CPU loops over them slowly
    peak = jnp.where(rho <= math.exp(-1), 1.0, 1 / (math.e * rho * (1 - rho)))
    return jnp.where(rho < 1, peak * (frob + math.sqrt(2) * rho), jnp.inf)


def spectral_norm(matrix):
    """Spectral norm ‖M‖₂ of real matrices of shape [..., d, d], d ∈ {1, 2}, in closed form.

    For M = [[a, b], [c, d]]: ‖M‖₂ = (√((a + d)² + (b − c)²) + √((a − d)² + (b + c)²))/2, a sum of non-negative
    terms (no cancellation, unlike √((‖M‖_F² + √(‖M‖_F⁴ − 4 det²))/2)).
    """
    d = matrix.shape[-1]
    if d == 1:
        return jnp.abs(matrix[..., 0, 0])
    if d != 2:
        raise ValueError(f"spectral_norm: only 1x1 and 2x2 matrices are supported, got {d}x{d}")
    a, b, c, e = matrix[..., 0, 0], matrix[..., 0, 1], matrix[..., 1, 0], matrix[..., 1, 1]
    return (jnp.hypot(a + e, b - c) + jnp.hypot(a - e, b + c)) / 2


def transient_growth(matrix, max_steps: int):
    """Exact transient growth max_{1 ≤ t ≤ T} ‖Rᵗ‖₂ of matrices of shape [..., d, d], d ∈ {1, 2}.

    A ``lax.scan`` over t multiplies the powers and takes each 2×2 spectral norm in closed form
    (:func:`spectral_norm`), so the answer is exact up to rounding. Non-normal R (momentum near its repeated roots)
    can have ‖Rᵗ‖ ≫ ρᵗ, even > 1, for many steps before the asymptotic rate takes over; :func:`power_bound` is an
    upper bound on the same quantity over all t.

    Args:
      matrix: R, leading axes are batch axes.
      max_steps: T ≥ 1 (a Python int).

    Returns:
      Array of shape ``matrix.shape[:-2]``.
    """
    if max_steps < 1:
        raise ValueError(f"transient_growth: max_steps must be >= 1, got {max_steps}")
    matrix = jnp.asarray(matrix)

    def body(carry, _):
        power, best = carry
        power = power @ matrix
        return (power, jnp.maximum(best, spectral_norm(power))), None

    (_, best), _ = jax.lax.scan(body, (matrix, spectral_norm(matrix)), None, length=max_steps - 1)
    return best
