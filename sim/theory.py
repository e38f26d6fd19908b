"""Closed forms for the linear dynamics of GD and momentum on least squares, beside the simulators.

Contract: every function is pure ``jax.numpy`` (vectorizes over any broadcastable inputs) and follows the package
conventions: the loss is L(w) = ‖y − Xw‖² (no ½), ``sigma2`` is a squared singular value σ², ``learning_rate`` is
η and ``beta`` is the EMA momentum weight of the new gradient. In the singular basis each mode is an independent
linear recursion u ← R u; :func:`transition_matrix` derives R from a dynamics' own ``step`` (so theory and simulator
cannot drift apart) and :func:`momentum_matrix` states the seeds' closed form for the EMA case.

References: EECS 182 Sp25 HW1 Q1 / Sp23 HW2 Q1 (GD), Sp23 HW2 Q2 (momentum).
"""

from __future__ import annotations

import math

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from sim.dynamics import Dynamics

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
    """The seeds' per-mode momentum matrix R acting on (a, x) = (velocity, error), array of shape [..., 2, 2].

    R = [[1 − β, 2βσ²], [−η(1 − β), 1 − 2ηβσ²]]; det R = 1 − β, tr R = 2 − β − 2ηβσ².
    """
    lr, beta, s = jnp.broadcast_arrays(jnp.asarray(learning_rate), jnp.asarray(beta), jnp.asarray(sigma2))
    row0 = jnp.stack([1 - beta, 2 * beta * s], axis=-1)
    row1 = jnp.stack([-lr * (1 - beta), 1 - 2 * lr * beta * s], axis=-1)
    return jnp.stack([row0, row1], axis=-2)


def momentum_repeated_root_lrs(beta, sigma2):
    """The two learning rates (2 − β ∓ 2√(1 − β)) / (2βσ²) where R has a repeated eigenvalue ±√(1 − β).

    Between them the eigenvalues are complex with modulus √(1 − β).
    """
    root = 2 * jnp.sqrt(1 - beta)
    return (2 - beta - root) / (2 * beta * sigma2), (2 - beta + root) / (2 * beta * sigma2)


def momentum_stable_lr(beta, sigma2):
    """Largest stable learning rate (2 − β)/(βσ²) of one momentum mode."""
    return (2 - beta) / (beta * sigma2)


def momentum_optimum(spectrum) -> tuple[float, float, float]:
    """Jointly rate-optimal EMA momentum (η, β, ρ) for a spectrum: Polyak's heavy-ball optimum in EMA form.

    With κ = σ_max/σ_min: ρ = (κ − 1)/(κ + 1), β = 1 − ρ², η = 2/((σ_max + σ_min)² β). In heavy-ball terms
    (Hessian eigenvalues λ = 2σ²) lr = 4/(√λ_max + √λ_min)², m = ρ². There the complex-root intervals of the
    extreme modes just touch: the smaller repeated-root η of σ_min² equals the larger one of σ_max².

    Args:
      spectrum: squared singular values σ_i² (any sequence).

    Returns:
      ``(learning_rate, beta, rate)`` as Python floats.
    """
    spectrum = np.asarray(spectrum, dtype=np.float64)
    smax, smin = float(np.sqrt(spectrum.max())), float(np.sqrt(spectrum.min()))
    rho = (smax - smin) / (smax + smin)
    beta = 1 - rho * rho
    return 2 / ((smax + smin) ** 2 * beta), beta, rho


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
    ‖Rˢ‖_F ≤ s ρ^{s−1} (‖R‖_F + √2 ρ); the supremum over integers s is attained next to s* = −1/log ρ. This holds
    for real, repeated and complex eigenvalues alike, which is what lets the sweep stop a point early: once
    G‖u_t‖ < tol, no later error can reach tol.
    """
    d = matrix.shape[-1]
    rho = spectral_radius(matrix)
    if d == 1:
        return jnp.where(rho < 1, rho, jnp.inf)
    frob = jnp.sqrt(jnp.sum(matrix * matrix, axis=(-2, -1)))
    safe = jnp.clip(rho, 1e-30, 1 - 1e-7 if matrix.dtype == jnp.float32 else 1 - 1e-15)
    log_rho = jnp.log(safe)
    s_star = jnp.maximum(-1 / log_rho, 1.0)

    def g(s):
        return jnp.exp(jnp.log(s) + (s - 1) * log_rho)

    sup = jnp.maximum(g(jnp.floor(s_star)), g(jnp.ceil(s_star)))
    sup = jnp.where(rho <= math.exp(-1), 1.0, sup)
    return jnp.where(rho < 1, sup * (frob + math.sqrt(2) * rho), jnp.inf)
