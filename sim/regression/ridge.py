"""Ridge regression in every form the course derives, least squares and min-norm, and their limits.

Contract: every solver takes a data matrix ``x`` of shape [n, d] and targets ``y`` of shape [n] (or [n, k]), is
pure ``jax.numpy`` built on ``jnp.linalg`` (solve, lstsq, svd), keeps the working dtype of its inputs (float32, or
float64 under ``jax.enable_x64(True)``; integers are promoted to the default float), and validates its arguments
before computing, raising :class:`sim.core.validate.InputError` named after the offending parameter. The ridge objective
is the course's ‖y − Xw‖² + λ‖w‖² with λ = ``lam`` > 0, and all of these return the same ŵ_λ:

====================  ============================================================================================
primal                (XᵀX + λI)⁻¹Xᵀy
kernel (dual)         Xᵀ(XXᵀ + λI)⁻¹y
SVD filter            Σ_i σ_i/(σ_i² + λ) v_i u_iᵀy, i.e. the pseudo-inverse with filter factors σ_i²/(σ_i² + λ)
fake data             least squares on [X; √λ I] ≈ [y; 0]
fake features         first d coordinates of the min-norm η solving [X, √λ I] η = y
MAP                   posterior mean of W ~ N(0, I) given Y = XW + √λ N = y (N ~ N(0, I)), exact or Monte Carlo
Tikhonov              min ‖W₁(Ax − b)‖² + ‖W₂(x − c)‖² with W₁ = I, W₂ = √λ I, c = 0
====================  ============================================================================================

Limits: λ → 0 gives the pseudo-inverse solution (least squares for tall X of full rank, min-norm for wide X), with
‖ŵ_λ − ŵ₀‖ ≤ (λ/σ_min²)‖ŵ₀‖; λ → ∞ gives 0 like Xᵀy/λ, with ‖ŵ_λ − Xᵀy/λ‖ ≤ σ_max²‖Xᵀy‖/λ².

References: EECS 182 Sp25 HW0 Q3 (least squares and min-norm via the SVD), Sp25 HW0 Q4 (the five interpretations of
ridge and its limits), Sp25 HW1 Q2 (general Tikhonov), Sp25 HW1 Q3 (MAP as a Gaussian conditional mean).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from sim.core.validate import InputError, check_in_interval, check_int, check_positive_finite

# --------------------------------------------------------------------------------------------------------------
# Validation


def _data(x, y, *, xname="x", yname="y"):
    """Check X is 2-D and y has X's rows; return both as arrays of one float dtype."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 2:
        raise InputError(xname, f"must be a 2-D array of shape [n, d], got shape {x.shape}")
    if 0 in x.shape:
        raise InputError(xname, f"must be non-empty, got shape {x.shape}")
    if y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
        raise InputError(
            yname,
            f"must have shape [{x.shape[0]}] or [{x.shape[0]}, k] (one row per row of {xname}), got shape {y.shape}",
        )
    _check_finite(xname, x)
    _check_finite(yname, y)
    dtype = jnp.promote_types(jnp.result_type(x, y), jnp.float32)
    return x.astype(dtype), y.astype(dtype)


def _check_finite(name, a):
    # numpy, not jnp: no per-shape compilation for a check on concrete inputs
    if not isinstance(a, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(a))):
        raise InputError(name, "must be finite (contains NaN or inf)")


def _lam(lam) -> float:
    arr = check_positive_finite("lam", lam)
    if arr.ndim != 0:
        raise InputError("lam", f"must be a scalar, got shape {arr.shape}")
    return float(arr)


def _expand(gain, y):
    """Reshape a per-mode vector to multiply the mode axis of y (shape [r] or [r, k])."""
    return gain.reshape(gain.shape + (1,) * (y.ndim - 1))


# --------------------------------------------------------------------------------------------------------------
# The five forms of ridge (Sp25 HW0 Q4)


def ridge_primal(x: ArrayLike, y: ArrayLike, *, lam: float) -> jax.Array:
    """Ridge by the normal equations: ŵ = (XᵀX + λI)⁻¹Xᵀy, a d × d solve.

    Args:
      x: X, array of shape [n, d].
      y: array of shape [n] or [n, k].
      lam: λ > 0.

    Returns:
      ŵ, array of shape [d] (or [d, k]).

    References:
      EECS 182 Sp25 HW0 Q4(a) (setting the gradient of ‖y − Xw‖² + λ‖w‖² to zero).
    """
    x, y = _data(x, y)
    return _primal(x, y, _lam(lam))


@jax.jit
def _primal(x, y, lam):
    gram = x.T @ x + lam * jnp.eye(x.shape[1], dtype=x.dtype)
    return jnp.linalg.solve(gram, x.T @ y)


def ridge_kernel(x: ArrayLike, y: ArrayLike, *, lam: float) -> jax.Array:
    """Ridge in kernel (dual) form: ŵ = Xᵀ(XXᵀ + λI)⁻¹y, an n × n solve (cheaper when n < d).

    References:
      EECS 182 Sp25 HW0 Q4(f), Sp25 HW1 Q3 (the kernel ridge form).
    """
    x, y = _data(x, y)
    return _kernel(x, y, _lam(lam))


@jax.jit
def _kernel(x, y, lam):
    kernel = x @ x.T + lam * jnp.eye(x.shape[0], dtype=x.dtype)
    return x.T @ jnp.linalg.solve(kernel, y)


def ridge_svd(x: ArrayLike, y: ArrayLike, *, lam: float) -> jax.Array:
    """Ridge through the thin SVD X = U Σ Vᵀ: ŵ = Σ_i σ_i/(σ_i² + λ) v_i u_iᵀy.

    Each singular value is replaced by σ/(σ² + λ): ≈ 1/σ (the pseudo-inverse) when σ² ≫ λ and ≈ σ/λ → 0 when
    σ² ≪ λ, the "shifted singular values" reading; equivalently the pseudo-inverse times the filter factors
    :func:`ridge_filter_factors`.

    References:
      EECS 182 Sp25 HW0 Q4(b).
    """
    x, y = _data(x, y)
    return _svd(x, y, _lam(lam))


@jax.jit
def _svd(x, y, lam):
    u, s, vt = jnp.linalg.svd(x, full_matrices=False)
    return vt.T @ (_expand(s / (s * s + lam), y) * (u.T @ y))


def ridge_fake_data(x: ArrayLike, y: ArrayLike, *, lam: float) -> jax.Array:
    """Ridge as ordinary least squares on d fake data points: argmin_w ‖[y; 0] − [X; √λ I] w‖².

    References:
      EECS 182 Sp25 HW0 Q4(d).
    """
    x, y = _data(x, y)
    return _fake_data(x, y, _lam(lam))


@jax.jit
def _fake_data(x, y, lam):
    d = x.shape[1]
    x_aug = jnp.concatenate([x, jnp.sqrt(lam) * jnp.eye(d, dtype=x.dtype)], axis=0)
    y_aug = jnp.concatenate([y, jnp.zeros((d,) + y.shape[1:], dtype=y.dtype)], axis=0)
    return jnp.linalg.lstsq(x_aug, y_aug)[0]


def ridge_fake_features(x: ArrayLike, y: ArrayLike, *, lam: float) -> jax.Array:
    """Ridge as min-norm interpolation with n fake features: the first d coordinates of the min-norm η solving
    [X, √λ I] η = y (the augmented matrix is wide with full row rank for λ > 0, so it interpolates exactly).

    References:
      EECS 182 Sp25 HW0 Q4(e)–(f).
    """
    x, y = _data(x, y)
    return _fake_features(x, y, _lam(lam))


@jax.jit
def _fake_features(x, y, lam):
    n, d = x.shape
    x_aug = jnp.concatenate([x, jnp.sqrt(lam) * jnp.eye(n, dtype=x.dtype)], axis=1)
    return jnp.linalg.lstsq(x_aug, y)[0][:d]


def ridge_map(x: ArrayLike, y: ArrayLike, *, lam: float) -> jax.Array:
    """Ridge as the MAP estimate of W ~ N(0, I) from Y = XW + √λ N, N ~ N(0, I), by Bayes' rule in information form.

    The log posterior is −‖y − Xw‖²/(2λ) − ‖w‖²/2 + const, a Gaussian with precision P = I + XᵀX/λ and mean
    P⁻¹Xᵀy/λ; its mode (the MAP) is its mean. :func:`posterior` gets the same mean by conditioning the joint
    Gaussian instead.

    References:
      EECS 182 Sp25 HW0 Q4(c).
    """
    x, y = _data(x, y)
    return _map(x, y, _lam(lam))


@jax.jit
def _map(x, y, lam):
    precision = jnp.eye(x.shape[1], dtype=x.dtype) + x.T @ x / lam
    return jnp.linalg.solve(precision, x.T @ y / lam)


def posterior(x: ArrayLike, y: ArrayLike, *, lam: float) -> tuple[jax.Array, jax.Array]:
    """Posterior of W ~ N(0, I) given Y = XW + √λ N = y, by conditioning the zero-mean joint Gaussian (W, Y).

    Σ_WY = E[WYᵀ] = Xᵀ and Σ_YY = XXᵀ + λI, so E[W | Y = y] = Σ_WY Σ_YY⁻¹ y = Xᵀ(XXᵀ + λI)⁻¹y (the kernel ridge
    form) and Cov[W | Y] = I − Σ_WY Σ_YY⁻¹ Σ_YW.

    Returns:
      ``(mean, cov)``: arrays of shape [d] (or [d, k]) and [d, d].

    References:
      EECS 182 Sp25 HW1 Q3.
    """
    x, y = _data(x, y)
    return _posterior(x, y, _lam(lam))


@jax.jit
def _posterior(x, y, lam):
    s_yy = x @ x.T + lam * jnp.eye(x.shape[0], dtype=x.dtype)
    gain = jnp.linalg.solve(s_yy, x).T  # Σ_WY Σ_YY⁻¹, shape [d, n] (Σ_YY is symmetric)
    return gain @ y, jnp.eye(x.shape[1], dtype=x.dtype) - gain @ x


def posterior_mean_mc(
    x: ArrayLike, y: ArrayLike, *, lam: float, key: jax.Array, num_samples: int = 100_000
) -> tuple[jax.Array, jax.Array]:
    """Monte Carlo estimate of E[W | Y = y] from joint samples of (W, N), with its standard error.

    Draws S samples W_s ~ N(0, I_d), N_s ~ N(0, I_n), forms Y_s = XW_s + √λ N_s and regresses W on Y through the
    origin (the empirical Σ̂_WY Σ̂_YY⁻¹, both uncentered since the means are known to be 0); the estimate is that
    regression evaluated at y. Given the sampled Y's, the regression residuals W_s − B Y_s (B the true
    Σ_WY Σ_YY⁻¹) are i.i.d. N(0, C) with C the posterior covariance and independent of the Y's, so the estimate's
    error is exactly N(0, q C) with q = yᵀ(Σ_s Y_s Y_sᵀ)⁻¹y; the standard error returned is √(q diag Ĉ) with Ĉ the
    residual covariance (S − n degrees of freedom).

    Args:
      x: X, array of shape [n, d].
      y: array of shape [n].
      lam: λ > 0 (the noise variance).
      key: a ``jax.random.key``.
      num_samples: S ≥ n + 2.

    Returns:
      ``(mean, stderr)``, arrays of shape [d].

    References:
      EECS 182 Sp25 HW1 Q3 (the conditional-mean formula Σ_WY Σ_YY⁻¹ y, here with sampled covariances).
    """
    x, y = _data(x, y)
    if y.ndim != 1:
        raise InputError("y", f"must be a vector of shape [{x.shape[0]}], got shape {y.shape}")
    lam = _lam(lam)
    n, d = x.shape
    num_samples = check_int("num_samples", num_samples, minimum=n + 2)
    return _posterior_mc(x, y, lam, key, num_samples)


@functools.partial(jax.jit, static_argnums=4)
def _posterior_mc(x, y, lam, key, num_samples):
    n, d = x.shape
    key_w, key_n = jax.random.split(key)
    w = jax.random.normal(key_w, (num_samples, d), dtype=x.dtype)
    obs = w @ x.T + jnp.sqrt(lam) * jax.random.normal(key_n, (num_samples, n), dtype=x.dtype)
    # one solve with the sampled Gram Σ_s Y_s Y_sᵀ (n × n) for the coefficients (Σ Y Yᵀ)⁻¹ Σ Y Wᵀ and for q
    sol = jnp.linalg.solve(obs.T @ obs, jnp.concatenate([obs.T @ w, y[:, None]], axis=1))
    coef, q = sol[:, :d], y @ sol[:, d]
    resid = w - obs @ coef
    cov = resid.T @ resid / (num_samples - n)
    return y @ coef, jnp.sqrt(q * jnp.diag(cov))


# --------------------------------------------------------------------------------------------------------------
# Tikhonov (Sp25 HW1 Q2)


def _tikhonov_args(a, b, w1, w2, c):
    a, b = _data(a, b, xname="a", yname="b")
    n, d = a.shape
    w1 = jnp.eye(n, dtype=a.dtype) if w1 is None else jnp.asarray(w1, dtype=a.dtype)
    if w1.ndim != 2 or w1.shape[1] != n:
        raise InputError("w1", f"must have shape [k, {n}] (acting on the residual Ax − b), got {w1.shape}")
    w2 = jnp.asarray(w2, dtype=a.dtype)
    if w2.ndim != 2 or w2.shape[1] != d:
        raise InputError("w2", f"must have shape [p, {d}] (acting on x − c), got {w2.shape}")
    c = jnp.zeros((d,) + b.shape[1:], dtype=a.dtype) if c is None else jnp.asarray(c, dtype=a.dtype)
    if c.shape != (d,) + b.shape[1:]:
        raise InputError("c", f"must have shape {(d,) + b.shape[1:]}, got {c.shape}")
    for name, arr in (("w1", w1), ("w2", w2), ("c", c)):
        _check_finite(name, arr)
    return a, b, w1, w2, c


def tikhonov(
    a: ArrayLike, b: ArrayLike, *, w2: ArrayLike, w1: ArrayLike | None = None, c: ArrayLike | None = None
) -> jax.Array:
    """General Tikhonov: argmin_x ‖W₁(Ax − b)‖² + ‖W₂(x − c)‖² = (AᵀW₁ᵀW₁A + W₂ᵀW₂)⁻¹(AᵀW₁ᵀW₁b + W₂ᵀW₂c).

    W₁ = I, W₂ = √λ I, c = 0 gives ridge. The matrix must be invertible (e.g. W₂ of full column rank).

    Args:
      a: A, array of shape [n, d].
      b: array of shape [n] (or [n, k]).
      w2: W₂, array of shape [p, d].
      w1: W₁, array of shape [k, n]; the identity when None.
      c: the prior center, shape [d] (or [d, k]); zero when None.

    Returns:
      x*, array of shape [d] (or [d, k]).

    References:
      EECS 182 Sp25 HW1 Q2(a).
    """
    return _tikhonov(*_tikhonov_args(a, b, w1, w2, c))


@jax.jit
def _tikhonov(a, b, w1, w2, c):
    g1, g2 = w1.T @ w1, w2.T @ w2
    return jnp.linalg.solve(a.T @ g1 @ a + g2, a.T @ g1 @ b + g2 @ c)


def tikhonov_stacked(
    a: ArrayLike, b: ArrayLike, *, w2: ArrayLike, w1: ArrayLike | None = None, c: ArrayLike | None = None
) -> jax.Array:
    """General Tikhonov as one least-squares problem: min ‖Cx − d‖² with C = [W₁A; W₂], d = [W₁b; W₂c].

    Same arguments and result as :func:`tikhonov`.

    References:
      EECS 182 Sp25 HW1 Q2(b).
    """
    return _tikhonov_stacked(*_tikhonov_args(a, b, w1, w2, c))


@jax.jit
def _tikhonov_stacked(a, b, w1, w2, c):
    return jnp.linalg.lstsq(jnp.concatenate([w1 @ a, w2]), jnp.concatenate([w1 @ b, w2 @ c]))[0]


# --------------------------------------------------------------------------------------------------------------
# Least squares, min-norm, filter factors and the limits (Sp25 HW0 Q3, Q4(g)–(h))


def lstsq_svd(x: ArrayLike, y: ArrayLike, *, rcond: float | None = None) -> jax.Array:
    """Pseudo-inverse solution X⁺y = Σ_{σ_i > cutoff} (1/σ_i) v_i u_iᵀy through the thin SVD.

    The minimum-norm minimizer of ‖y − Xw‖²: the least-squares solution for tall X of full rank, the min-norm
    interpolant for wide X of full rank, and the λ → 0⁺ limit of ridge for any X. Singular values at or below
    ``rcond · σ_max`` are treated as zero (default rcond: machine epsilon of the dtype times max(n, d)).

    References:
      EECS 182 Sp25 HW0 Q3(b), (e).
    """
    x, y = _data(x, y)
    if rcond is not None:
        rcond = float(check_in_interval("rcond", rcond, 0.0, 1.0, closed_low=True, closed_high=False))
    else:
        rcond = float(jnp.finfo(x.dtype).eps) * max(x.shape)
    return _pinv(x, y, rcond)


@jax.jit
def _pinv(x, y, rcond):
    u, s, vt = jnp.linalg.svd(x, full_matrices=False)
    keep = s > rcond * s[0]
    inv = jnp.where(keep, 1 / jnp.where(keep, s, 1), 0)
    return vt.T @ (_expand(inv, y) * (u.T @ y))


def least_squares(x: ArrayLike, y: ArrayLike) -> jax.Array:
    """Least squares by the normal equations, (XᵀX)⁻¹Xᵀy, for tall X (n ≥ d) of full column rank.

    References:
      EECS 182 Sp25 HW0 Q3(a) (the left inverse).
    """
    x, y = _data(x, y)
    if x.shape[0] < x.shape[1]:
        raise InputError("x", f"must be tall (n >= d) for least squares, got shape {x.shape}; use min_norm")
    return _normal_eq(x, y)


@jax.jit
def _normal_eq(x, y):
    return jnp.linalg.solve(x.T @ x, x.T @ y)


def min_norm(x: ArrayLike, y: ArrayLike) -> jax.Array:
    """Minimum-norm interpolant Xᵀ(XXᵀ)⁻¹y for wide X (n ≤ d) of full row rank.

    References:
      EECS 182 Sp25 HW0 Q3(d) (the right inverse).
    """
    x, y = _data(x, y)
    if x.shape[0] > x.shape[1]:
        raise InputError("x", f"must be wide (n <= d) for min-norm, got shape {x.shape}; use least_squares")
    return _right_inverse(x, y)


@jax.jit
def _right_inverse(x, y):
    return x.T @ jnp.linalg.solve(x @ x.T, y)


def ridge_large_lam(x: ArrayLike, y: ArrayLike, *, lam: float) -> jax.Array:
    """The λ → ∞ asymptote of ridge, Xᵀy/λ: ŵ_λ → 0 at rate 1/λ, with ‖ŵ_λ − Xᵀy/λ‖ ≤ σ_max²‖Xᵀy‖/λ².

    Per mode σ/(σ² + λ) − σ/λ = −σ³/(λ(σ² + λ)), whence the bound.

    References:
      EECS 182 Sp25 HW0 Q4(g) ("shrinkage").
    """
    x, y = _data(x, y)
    return x.T @ y / _lam(lam)


def ridge_filter_factors(singular_values: ArrayLike, *, lam: ArrayLike) -> jax.Array:
    """Ridge filter factors σ²/(σ² + λ) (broadcast over ``singular_values`` σ and ``lam``): ridge is the pseudo-inverse
    with mode i scaled by this factor. 0 for σ = 0.

    References:
      EECS 182 Sp25 HW0 Q4(b).
    """
    check_positive_finite("singular_values", singular_values, allow_zero=True)
    check_positive_finite("lam", lam, allow_zero=True)
    return _ridge_factors(jnp.asarray(singular_values), jnp.asarray(lam))


@jax.jit
def _ridge_factors(sigma, lam):
    s2 = jnp.square(sigma)
    den = s2 + lam
    return jnp.where(den > 0, s2 / jnp.where(den > 0, den, 1), 0)


def recover_filter_factors(x: ArrayLike, y: ArrayLike, w: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Read the per-mode filter factors off a linear estimate w of the form Σ_i f_i (u_iᵀy/σ_i) v_i.

    f_i = σ_i (v_iᵀw)/(u_iᵀy) with X = U Σ Vᵀ (thin SVD, σ descending); y must have u_iᵀy ≠ 0.

    Returns:
      ``(sigma, factors)``, arrays of shape [min(n, d)].
    """
    x, y = _data(x, y)
    w = jnp.asarray(w, dtype=x.dtype)
    if w.shape != (x.shape[1],):
        raise InputError("w", f"must have shape [{x.shape[1]}], got {w.shape}")
    return _recover(x, y, w)


@jax.jit
def _recover(x, y, w):
    u, s, vt = jnp.linalg.svd(x, full_matrices=False)
    return s, s * (vt @ w) / (u.T @ y)
