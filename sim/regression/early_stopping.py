"""Early-stopped GD as a regularizer: GD filter factors and the ill-conditioned early-stopping experiment (EECS 182 HW0
Q1).

Contract: :func:`gd_filter_factors` gives GD's per-mode factor 1 − (1 − ησ²)ᵗ (the pseudo-inverse with mode i scaled
by it), to set beside ``sim.regression.ridge.ridge_filter_factors`` (t steps act like λ ≈ 1/(ηt)).
:func:`early_stopping` runs the early-stopping experiment of EECS 182 HW0 Q1: a square F = U diag(s) Vᵀ with a tiny
σ_min, y = F w* + e; F⁻¹y's error explodes like ‖e‖/σ_min while GD from w₀ = 0, stopped early, stays bounded. Everything
is closed form per SVD mode, with a plain GD loop (``lax.scan``) to check it. Inputs are validated first
(:class:`sim.core.validate.InputError`).

Convention: EECS 182 HW0 Q1 writes J(w) = ½‖y − Fw‖², *with* the ½, so its GD filter factor is 1 − (1 − ησ²)ᵗ and GD is
stable iff η < 2/α² (α = σ_max); the package's GD convention L = ‖y − Xw‖² (no ½) is the same iteration at half the
learning rate.

References: EECS 182 HW0 Q1 (an early-stopping problem: GD on an ill-conditioned square system stays bounded where F⁻¹y
does not); EECS 182 Sp25 HW1 Q1 (per-mode GD).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from sim.core.validate import InputError, check_in_interval, check_int, check_positive_finite
from sim.regression.designs import haar_orthonormal


def gd_filter_factors(singular_values: ArrayLike, *, learning_rate: ArrayLike, steps: ArrayLike) -> jax.Array:
    """GD filter factors 1 − (1 − ησ²)ᵗ after t steps from w₀ = 0 on J(w) = ½‖y − Xw‖² (broadcast).

    GD's iterate is the pseudo-inverse with mode i scaled by this factor. For ησ² < 1 it is evaluated as
    −expm1(t log1p(−ησ²)), exact even when ησ² is far below machine epsilon. Comparing with
    :func:`ridge_filter_factors`, t steps act like λ ≈ 1/(ηt).

    References:
      EECS 182 HW0 Q1 (GD on J = ½‖y − Fw‖²); EECS 182 Sp25 HW1 Q1 (per-mode GD).
    """
    s = check_positive_finite("singular_values", singular_values, allow_zero=True)
    eta = check_positive_finite("learning_rate", learning_rate)
    t = check_positive_finite("steps", steps, allow_zero=True)
    if np.any((eta * s * s > 1) & (t % 1 != 0)):  # 1 − ησ² < 0 has no real power of a fractional t
        raise InputError("steps", "must be whole numbers where learning_rate * singular_values^2 > 1")
    return _gd_factors(*(jnp.asarray(v) for v in (singular_values, learning_rate, steps)))


@jax.jit
def _gd_factors(sigma, eta, t):
    dtype = jnp.promote_types(jnp.result_type(sigma, eta, t), jnp.float32)
    u = (eta * sigma * sigma).astype(dtype)
    t = t.astype(dtype)
    below = -jnp.expm1(t * jnp.log1p(-jnp.minimum(u, 0.5)))
    return jnp.where(u < 0.5, below, 1 - jnp.power(1 - u, t))


# --------------------------------------------------------------------------------------------------------------
# EECS 182 HW0 Q1: early-stopped GD on an ill-conditioned square system


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class IllConditioned:
    """A square system y = F w* + e with F = U diag(s) Vᵀ.

    Attributes:
      f: F, array of shape [d, d].
      y: observations, shape [d].
      w_star: the true weights w*, shape [d].
      noise: e, shape [d].
      u: U, orthogonal, shape [d, d].
      s: singular values, shape [d] (in the order given).
      v: V, orthogonal, shape [d, d].
    """

    f: jax.Array
    y: jax.Array
    w_star: jax.Array
    noise: jax.Array
    u: jax.Array
    s: jax.Array
    v: jax.Array


def ill_conditioned_problem(
    singular_values: ArrayLike, *, noise_std: float, key: jax.Array, source_power: float = 0.0, dtype=None
) -> IllConditioned:
    """Draw F = U diag(s) Vᵀ with Haar-random orthogonal U, V, a unit-norm w*, and y = F w* + e, e ~ N(0, noise_std² I).

    w* has coordinates c_i ∝ (s_i/max s)^p z_i, z ~ N(0, I), in V's basis (p = ``source_power``; 0: an isotropic
    random direction, 1: w* = Fᵀz, the "smooth" signal that early stopping recovers best), normalized to ‖w*‖ = 1.

    Args:
      singular_values: s, positive, shape [d].
      noise_std: standard deviation of each noise entry, ≥ 0.
      key: a ``jax.random.key``.
      source_power: p ≥ 0.
      dtype: float dtype of the draws; default float64 under x64, else float32.
    """
    s = check_positive_finite("singular_values", singular_values)
    if s.ndim != 1:
        raise InputError("singular_values", f"must be a 1-D list, got shape {s.shape}")
    noise_std = float(check_positive_finite("noise_std", noise_std, allow_zero=True))
    p = float(check_positive_finite("source_power", source_power, allow_zero=True))
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)
    return _draw_problem(key, jnp.asarray(s, dtype=dtype), noise_std, p)


@jax.jit
def _draw_problem(key, s, noise_std, p):
    d = s.size
    # one draw and one batched QR: the fewer random and LAPACK calls, the faster this compiles
    z = jax.random.normal(key, (2 * d * d + 2 * d,), dtype=s.dtype)
    u, v = haar_orthonormal(z[: 2 * d * d].reshape(2, d, d))
    c = z[2 * d * d : 2 * d * d + d] * (s / jnp.max(s)) ** p
    w_star = v @ (c / jnp.linalg.norm(c))
    f = (u * s) @ v.T
    noise = noise_std * z[2 * d * d + d :]
    return IllConditioned(f=f, y=f @ w_star + noise, w_star=w_star, noise=noise, u=u, s=s, v=v)


def _modes(problem: IllConditioned):
    """Coordinates b = Uᵀy of y and c = Vᵀw* of w*: mode i of y is b_i = s_i c_i + (Uᵀe)_i."""
    return problem.u.T @ problem.y, problem.v.T @ problem.w_star


def _alpha(problem: IllConditioned) -> float:
    return float(np.max(np.asarray(problem.s)))


def _check_lr(problem: IllConditioned, learning_rate) -> float:
    if learning_rate is None:
        return 1 / _alpha(problem) ** 2
    limit = 2 / _alpha(problem) ** 2
    return float(check_in_interval("learning_rate", learning_rate, 0.0, limit, closed_high=False))


def _check_steps(steps) -> np.ndarray:
    arr = np.asarray(steps, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr % 1):
        raise InputError("steps", "must be a non-empty 1-D list of non-negative integers")
    return arr


def _check_lams(lams) -> np.ndarray:
    arr = check_positive_finite("lams", lams)
    if arr.ndim != 1:
        raise InputError("lams", f"must be a 1-D list, got shape {arr.shape}")
    return arr


def gd_error(problem: IllConditioned, steps: ArrayLike, *, learning_rate: float | None = None) -> jax.Array:
    """Closed-form error ‖w_t − w*‖ of GD on J(w) = ½‖y − Fw‖² from w₀ = 0, at each of ``steps``.

    Mode by mode (V's basis) w_t = Σ_i φ_i(t) (b_i/s_i) v_i with the GD filter factor φ_i(t) = 1 − (1 − ηs_i²)ᵗ
    (:func:`gd_filter_factors`), b = Uᵀy; the error's coordinates are φ_i b_i/s_i − c_i.

    Args:
      problem: the system.
      steps: t ≥ 0, integers, shape [T].
      learning_rate: η in (0, 2/α²), α = max s; default 1/α² (every mode then decays monotonically).

    Returns:
      Array of shape [T].
    """
    eta = _check_lr(problem, learning_rate)
    return _gd_error(problem, jnp.asarray(_check_steps(steps), dtype=problem.s.dtype), eta)


@jax.jit
def _gd_error(problem, t, eta):
    b, c = _modes(problem)
    phi = _gd_factors(problem.s, eta, t[:, None])
    return jnp.linalg.norm(phi * (b / problem.s) - c, axis=-1)


def gd_error_bound(problem: IllConditioned, steps: ArrayLike, *, learning_rate: float | None = None) -> jax.Array:
    """Upper bound ‖e^{−ηts²} ∘ c‖ + √(ηt)‖e‖ on the GD error ‖w_t − w*‖ (c = Vᵀw*) for η ≤ 1/α².

    Derivation: the error's mode i is −(1 − φ_i) c_i + φ_i (Uᵀe)_i/s_i. For 0 < ηs_i² ≤ 1, 1 − φ_i = (1 − ηs_i²)ᵗ ≤
    e^{−ηts_i²} and φ_i ≤ min(1, tηs_i²) (Bernoulli), so φ_i/s_i ≤ min(1/s_i, ηts_i) ≤ √(ηt); the triangle
    inequality and ‖Uᵀe‖ = ‖e‖ finish it. It does not depend on s_min, unlike the inverse's error
    ‖diag(1/s) Uᵀe‖ ≈ ‖e‖/s_min.

    Returns:
      Array of shape [T].
    """
    eta = _check_lr(problem, learning_rate)
    if eta * _alpha(problem) ** 2 > 1:
        raise InputError("learning_rate", f"must be <= 1/alpha^2 = {1 / _alpha(problem) ** 2:g} for this bound")
    return _gd_bound(problem, jnp.asarray(_check_steps(steps), dtype=problem.s.dtype), eta)


@jax.jit
def _gd_bound(problem, t, eta):
    _, c = _modes(problem)
    bias = jnp.linalg.norm(jnp.exp(-eta * t[:, None] * problem.s**2) * c, axis=-1)
    return bias + jnp.sqrt(eta * t) * jnp.linalg.norm(problem.noise)


def ridge_error(problem: IllConditioned, lams: ArrayLike) -> jax.Array:
    """Ridge path error ‖ŵ_λ − w*‖ for each λ in ``lams`` (shape [L]), mode by mode: s_i b_i/(s_i² + λ) − c_i.

    Bound, by the argument of :func:`gd_error_bound`: ‖λ/(s² + λ) ∘ c‖ + ‖e‖/(2√λ), as s/(s² + λ) ≤ 1/(2√λ)
    (:func:`ridge_error_bound`).
    """
    return _ridge_error(problem, jnp.asarray(_check_lams(lams), dtype=problem.s.dtype))


@jax.jit
def _ridge_error(problem, lams):
    b, c = _modes(problem)
    s = problem.s
    return jnp.linalg.norm(s * b / (s * s + lams[:, None]) - c, axis=-1)


def ridge_error_bound(problem: IllConditioned, lams: ArrayLike) -> jax.Array:
    """Upper bound ‖λ/(s² + λ) ∘ c‖ + ‖e‖/(2√λ) on the ridge path error, shape [L] (see :func:`ridge_error`)."""
    return _ridge_bound(problem, jnp.asarray(_check_lams(lams), dtype=problem.s.dtype))


@jax.jit
def _ridge_bound(problem, lams):
    _, c = _modes(problem)
    s2 = problem.s**2
    bias = jnp.linalg.norm(lams[:, None] / (s2 + lams[:, None]) * c, axis=-1)
    return bias + jnp.linalg.norm(problem.noise) / (2 * jnp.sqrt(lams))


def gd_simulate(problem: IllConditioned, num_steps: int, *, learning_rate: float | None = None):
    """Run plain GD w ← w − ηFᵀ(Fw − y) from w₀ = 0 with F itself (no SVD), in a ``lax.scan``.

    Returns:
      ``(error, norm)``: ‖w_t − w*‖ and ‖w_t‖ for t = 0 … num_steps, arrays of shape [num_steps + 1].
    """
    eta = _check_lr(problem, learning_rate)
    return _gd_scan(problem, eta, check_int("num_steps", num_steps, minimum=0))


@functools.partial(jax.jit, static_argnums=2)
def _gd_scan(problem, eta, num_steps):
    f, y, w_star = problem.f, problem.y, problem.w_star

    def step(w, _):
        w = w - eta * (f.T @ (f @ w - y))
        return w, (jnp.linalg.norm(w - w_star), jnp.linalg.norm(w))

    w0 = jnp.zeros_like(w_star)
    _, (err, norm) = jax.lax.scan(step, w0, None, length=num_steps)
    zero = jnp.zeros((1,), dtype=w0.dtype)
    return jnp.concatenate([zero + jnp.linalg.norm(w_star), err]), jnp.concatenate([zero, norm])


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """Result of :func:`early_stopping` (arrays; ``best_*`` are scalars, the optima over the evaluated grids).

    Attributes:
      learning_rate: η used.
      steps: t, shape [T].
      gd_error: ‖w_t − w*‖ in closed form, shape [T].
      gd_bound: :func:`gd_error_bound` (NaN for η > 1/α², where it does not apply), shape [T].
      inverse_error: ‖F⁻¹y − w*‖ (F⁻¹y by ``jnp.linalg.solve``).
      lams: λ, shape [L].
      ridge_error: ‖ŵ_λ − w*‖, shape [L].
      ridge_bound: :func:`ridge_error_bound`, shape [L].
      best_step, best_gd_error, best_lam, best_ridge_error: the minimizers and minima on the grids.
      sim_error: ‖w_t − w*‖ of a simulated GD loop for t = 0 … sim_steps, shape [sim_steps + 1].
    """

    learning_rate: jax.Array
    steps: jax.Array
    gd_error: jax.Array
    gd_bound: jax.Array
    inverse_error: jax.Array
    lams: jax.Array
    ridge_error: jax.Array
    ridge_bound: jax.Array
    best_step: jax.Array
    best_gd_error: jax.Array
    best_lam: jax.Array
    best_ridge_error: jax.Array
    sim_error: jax.Array


def early_stopping(
    problem: IllConditioned,
    *,
    steps: ArrayLike,
    lams: ArrayLike,
    sim_steps: int = 0,
    learning_rate: float | None = None,
) -> EarlyStopping:
    """The early-stopping experiment (EECS 182 HW0 Q1): GD error over steps against the inverse's error and the ridge
    path.

    GD runs on J(w) = ½‖y − Fw‖² (the seed's ½) from w₀ = 0 at step size η = 1/α² by default (α = max singular
    value; GD is stable iff η < 2/α², and η ≤ 1/α² makes every mode's error decay monotonically). The GD errors are
    the closed form of :func:`gd_error` at ``steps``; a plain loop (:func:`gd_simulate`) gives the first
    ``sim_steps`` for comparison. The inverse F⁻¹y amplifies the noise by 1/s_min; early-stopped GD (and ridge) do
    not (:func:`gd_error_bound`). Since 1 − (1 − ηs²)ᵗ ≈ 1 − e^{−ηts²} and s²/(s² + λ) both switch from 0 to 1 near
    s² = 1/(ηt) resp. s² = λ, stopping at step t acts like ridge with λ ≈ 1/(ηt).

    Args:
      problem: from :func:`ill_conditioned_problem`.
      steps: GD steps to evaluate, non-negative integers, shape [T] (the best step is chosen among them).
      lams: ridge λ > 0, shape [L] (the best λ is chosen among them).
      sim_steps: length of the simulated loop (0: none).
      learning_rate: η in (0, 2/α²); default 1/α².

    Returns:
      An :class:`EarlyStopping`.

    References:
      EECS 182 HW0 Q1 (its claim ‖w_t‖ ≤ ‖w_{t−1}‖ + ηα‖y‖ is checked in the tests).
    """
    eta = _check_lr(problem, learning_rate)
    steps, lams = _check_steps(steps), _check_lams(lams)
    sim_steps = check_int("sim_steps", sim_steps, minimum=0)
    dtype = problem.s.dtype
    steps, lams = jnp.asarray(steps, dtype=dtype), jnp.asarray(lams, dtype=dtype)
    return _early_stopping(problem, steps, lams, eta, eta * _alpha(problem) ** 2 <= 1, sim_steps)


@functools.partial(jax.jit, static_argnums=(4, 5))
def _early_stopping(problem, steps, lams, eta, bound_applies, sim_steps):
    err = _gd_error(problem, steps, eta)
    bound = _gd_bound(problem, steps, eta) if bound_applies else jnp.full_like(err, jnp.nan)
    r_err = _ridge_error(problem, lams)
    i, j = jnp.argmin(err), jnp.argmin(r_err)
    return EarlyStopping(
        learning_rate=jnp.asarray(eta, dtype=err.dtype),
        steps=steps,
        gd_error=err,
        gd_bound=bound,
        inverse_error=jnp.linalg.norm(jnp.linalg.solve(problem.f, problem.y) - problem.w_star),
        lams=lams,
        ridge_error=r_err,
        ridge_bound=_ridge_bound(problem, lams),
        best_step=steps[i],
        best_gd_error=err[i],
        best_lam=lams[j],
        best_ridge_error=r_err[j],
        sim_error=_gd_scan(problem, eta, sim_steps)[0],
    )
