"""Noisy-input SGD with m points in n dimensions: its mean is exactly GD on ridge, and runs end near ridge.

Contract: :func:`vector` validates everything first (raising :class:`sim.core.validate.InputError` named after the
offending parameter, before any compilation), runs on :func:`sim.noisy.engine.monte_carlo` (results identical for
any chunk size or device count) and returns an ``xarray.Dataset`` of Monte Carlo estimates beside float64 oracles:
the exact mean (closed form), the exact second moment (recursion), the ridge and least-squares solutions of
:mod:`sim.regression.ridge` and the filter factors. :func:`exact_mean`, :func:`exact_moments`, :func:`mean_threshold`
and
:func:`second_moment_factor` are those oracles (float64 NumPy); :mod:`sim.regression.designs` makes or reads the data X
of shape [m, n] and y of shape [m].

The problem (EECS 182 Sp23 HW2 Q3 = Sp25 HW1 Q4, "Regularization and Instance Noise", in its vector form). At step
t SGD draws a minibatch B_t of b of the m points, uniformly WITHOUT replacement (b = m: every point, full batch),
perturbs each input afresh, x̃ᵢ = xᵢ + Nᵢ with Nᵢ ~ N(0, σ² Iₙ), and steps on the batch average of
ℓᵢ(w) = ½(x̃ᵢᵀw − yᵢ)² with η_t = η (``decay=None``) or η/(1 + t/τ) (``decay=τ``), from w₀ = 0:

    w_{t+1} = w_t − η_t g_t,    g_t = (1/b) Σ_{i∈B_t} x̃ᵢ (x̃ᵢᵀ w_t − yᵢ).

Mean. (B_t, N) are drawn after w_t, so E[g_t | w_t] = (1/m) Σᵢ (E[x̃ᵢx̃ᵢᵀ] w_t − xᵢyᵢ) = A w_t − c with
A = XᵀX/m + σ²I, c = Xᵀy/m, and the mean follows GD on the ridge objective EXACTLY:

    E w_{t+1} = E w_t − η_t (A E w_t − c)  →  w_ridge = A⁻¹c = (XᵀX + mσ²I)⁻¹Xᵀy,

ridge with λ = mσ² for ‖y − Xw‖² + λ‖w‖² (λ = σ² for the 1/m-normalized objective). In X's right singular basis
(X = U diag(s) Vᵀ) mode i of E w_t is f_i(t) (u_iᵀy)/s_i with filter factor f_i(t) = s_i²/(s_i² + mσ²) ·
(1 − Π_{k<t}(1 − η_k a_i)), a_i = s_i²/m + σ²: the ridge factors once t is large, never the least-squares factor 1
(σ > 0). Modes outside X's row space stay at 0. The mean converges iff η < 2/λ_max(A) (:func:`mean_threshold`);
:func:`vector` REFUSES larger η (a constant step would diverge; with decay every mode would still contract only
once η_t < 2/λ_max(A), after a transient that can overflow).

Second moment. S_t = E[w_t w_tᵀ] follows an exact affine recursion (:func:`exact_moments`; Isserlis for the
Gaussian fourth moments, inclusion probabilities b/m and b(b − 1)/(m(m − 1)) for the batch). With μ = E w_t,
G = XᵀX/m and qᵢ = E(xᵢᵀw_t − yᵢ)² = xᵢᵀSxᵢ − 2yᵢxᵢᵀμ + yᵢ²:

    S' = S − η(AS + SA − cμᵀ − μcᵀ) + η² [κ₁ (ASA − Aμcᵀ − cμᵀA + ccᵀ) + κ₂ H + κ₃ C],
    H = Xᵀdiag(q)X + mσ²(GS + SG − cμᵀ − μcᵀ) + mσ⁴S,
    C = mσ² tr(S) G + mσ²(GS + SG − cμᵀ − μcᵀ) + σ² Σᵢqᵢ I + mσ⁴(S + tr(S) I),

κ₁ = m(b − 1)/(b(m − 1)), κ₂ = (m − b)/(bm(m − 1)), κ₃ = 1/(bm) (full batch: 1, 0, 1/m²): E[g gᵀ] is κ₁ times
(E g)(E g)ᵀ, κ₂ times Σᵢ h̄ᵢh̄ᵢᵀ (h̄ᵢ the noise-averaged per-point gradient) and κ₃ times Σᵢ Cov hᵢ. For
m = n = b = 1 it is the scalar recursion of :mod:`sim.noisy.scalar`. With a constant step E‖w_t‖² stays bounded
iff the spectral radius of its linear part, S ↦ E[(I − ηĤ)S(I − ηĤ)ᵀ] with Ĥ = (1/b) Σ_{i∈B} x̃ᵢx̃ᵢᵀ, is < 1
(:func:`second_moment_factor`; never larger than the mean's threshold, since it is at least max_i (1 − ηa_i)²). Single
runs then settle with E‖w_t − w_ridge‖² = tr S_t − 2w_ridgeᵀμ_t + ‖w_ridge‖² of order η around w_ridge; a decaying step
shrinks it roughly like η_t (plus what remains of the mean's transient).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax import lax
from numpy.typing import ArrayLike

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
    simulate,
)
from sim.regression import ridge

MAX_OPERATOR_DIM = 24  # second_moment_factor builds an n² × n² operator: cheap up to here

# --------------------------------------------------------------------------------------------------------------
# Data validation (the data themselves: sim.regression.designs)


def _check_data(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = check_finite("x", x), check_finite("y", y)
    if x.ndim != 2:
        raise InputError("x", f"must be a 2-D array of shape [m, n], got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise InputError("y", f"must have shape [{x.shape[0]}] (one target per row of x), got shape {y.shape}")
    return x, y


# --------------------------------------------------------------------------------------------------------------
# Float64 oracles


def step_sizes(learning_rate: float, steps: int, decay: float | None = None) -> np.ndarray:
    """η_t for t = 0 … steps − 1: η constant, or η/(1 + t/τ) with ``decay`` = τ."""
    t = np.arange(steps, dtype=np.float64)
    return np.full(steps, float(learning_rate)) if decay is None else learning_rate / (1 + t / decay)


def _spectrum(x, y, sigma):
    """X's full right singular basis V (n × n), s padded with zeros to n, uᵢᵀy, a = s²/m + σ², ridge coordinates."""
    m, n = x.shape
    u, s, vt = np.linalg.svd(x, full_matrices=True)
    r = min(m, n)
    keep = s > np.finfo(np.float64).eps * max(m, n) * s[0]  # rank cutoff of ridge.lstsq_svd
    uy = u[:, :r].T @ y
    s_full = np.zeros(n)
    s_full[:r] = np.where(keep, s, 0)
    lam = m * sigma * sigma
    with np.errstate(divide="ignore", invalid="ignore"):
        coord = np.zeros(n)
        coord[:r] = np.where(keep, s * uy / (s * s + lam), 0)
    return {"v": vt.T, "s": s_full, "uy": uy, "a": s_full**2 / m + sigma * sigma, "ridge": coord, "rank": r}


def mean_threshold(x: ArrayLike, *, sigma: float) -> float:
    """2/λ_max(A), A = XᵀX/m + σ²I: E w_t converges for every constant η below it (and diverges at or above)."""
    x = np.asarray(x, dtype=np.float64)
    return 2 / (np.linalg.norm(x, 2) ** 2 / x.shape[0] + sigma * sigma)


def exact_mean(x: ArrayLike, y: ArrayLike, *, sigma, learning_rate, t: ArrayLike, decay=None) -> np.ndarray:
    """E w_t in closed form: V [(1 − Π_{k<t}(1 − η_k a)) ⊙ Vᵀw_ridge], float64, shape [len(t), n] (t integers ≥ 0)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    spec = _spectrum(x, y, float(sigma))
    t = np.asarray(t, dtype=np.int64).reshape(-1)
    if decay is None:
        left = (1 - learning_rate * spec["a"])[None, :] ** t[:, None]
    else:  # cumulative products in pieces, so memory stays bounded for any number of steps
        left = np.ones((t.size, spec["a"].size))
        carry = np.ones(spec["a"].size)
        piece = 1 << 16
        for start in range(0, int(t.max(initial=0)), piece):
            stop = min(start + piece, int(t.max()))
            eta = learning_rate / (1 + np.arange(start, stop, dtype=np.float64) / decay)
            prods = carry * np.cumprod(1 - eta[:, None] * spec["a"], axis=0)
            inside = (t > start) & (t <= stop)
            left[inside] = prods[t[inside] - start - 1]
            carry = prods[-1]
    return ((1 - left) * spec["ridge"]) @ spec["v"].T


def _batch_weights(m: int, b: int) -> tuple[float, float, float]:
    """(κ₁, κ₂, κ₃) of the module docstring: weights of (E g)(E g)ᵀ, of Σ h̄ᵢh̄ᵢᵀ and of Σ Cov hᵢ in E ggᵀ."""
    if m == 1:
        return 1.0, 0.0, 1.0
    return m * (b - 1) / (b * (m - 1)), (m - b) / (b * m * (m - 1)), 1 / (b * m)


def _moment_step(mean, second, eta, x, y, sigma2, weights):
    """One step of the exact (E w, E wwᵀ) recursion (module docstring); ``second`` may carry leading batch axes."""
    m, n = x.shape
    k1, k2, k3 = weights
    gram = x.T @ x / m
    c = x.T @ y / m
    a = gram + sigma2 * np.eye(n)
    eye = np.eye(n)
    am = mean @ a
    q = np.einsum("in,...nk,ik->...i", x, second, x) - 2 * y * (x @ mean) + y * y
    cm = np.multiply.outer(c, mean)
    cross = cm + np.swapaxes(cm, -1, -2)
    gs = gram @ second
    sym = gs + np.swapaxes(gs, -1, -2)
    tr = np.trace(second, axis1=-2, axis2=-1)[..., None, None]
    a_s = a @ second
    mean_part = a_s @ a - np.multiply.outer(am, c) - np.multiply.outer(c, am) + np.multiply.outer(c, c)
    h = np.einsum("in,...i,ik->...nk", x, q, x) + m * sigma2 * (sym - cross) + m * sigma2 * sigma2 * second
    cov = (
        m * sigma2 * tr * gram
        + m * sigma2 * (sym - cross)
        + sigma2 * q.sum(axis=-1)[..., None, None] * eye
        + m * sigma2 * sigma2 * (second + tr * eye)
    )
    new = second - eta * (a_s + np.swapaxes(a_s, -1, -2) - cross) + eta * eta * (k1 * mean_part + k2 * h + k3 * cov)
    new = (new + np.swapaxes(new, -1, -2)) / 2  # the formulas assume S = Sᵀ: keep rounding from breaking it
    return mean - eta * (am - c), new


def exact_moments(
    x: ArrayLike, y: ArrayLike, *, sigma, learning_rate, batch_size: int, record_steps, decay=None
) -> tuple[np.ndarray, np.ndarray]:
    """E w_t and E[w_t w_tᵀ] by the exact float64 recursion, at ``record_steps``: shapes [R, n] and [R, n, n].

    Cost O(T (m n² + n³)) for T = max(record_steps) steps.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    record = np.asarray(record_steps, dtype=np.int64).reshape(-1)
    m, n = x.shape
    weights = _batch_weights(m, int(batch_size))
    eta = step_sizes(learning_rate, int(record.max(initial=0)), decay)
    mean, second = np.zeros(n), np.zeros((n, n))
    means, seconds = np.zeros((record.size, n)), np.zeros((record.size, n, n))
    at = {int(r): i for i, r in enumerate(record)}
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(eta.size + 1):
            if t in at:
                means[at[t]], seconds[at[t]] = mean, second
            if t < eta.size:
                mean, second = _moment_step(mean, second, eta[t], x, y, float(sigma) ** 2, weights)
    return means, seconds


def second_moment_factor(x: ArrayLike, *, sigma, learning_rate, batch_size: int) -> float:
    """Spectral radius of S ↦ E[(I − ηĤ)S(I − ηĤ)ᵀ], the linear part of the second-moment recursion at a constant
    step: E‖w_t‖² stays bounded iff it is < 1. Builds the n² × n² operator (n ≤ ``MAX_OPERATOR_DIM``)."""
    x = np.asarray(x, dtype=np.float64)
    m, n = x.shape
    if n > MAX_OPERATOR_DIM:
        raise InputError("x", f"second_moment_factor builds an n^2 x n^2 operator: n <= {MAX_OPERATOR_DIM}, got {n}")
    basis = np.eye(n * n).reshape(n * n, n, n)
    _, images = _moment_step(
        np.zeros(n), basis, learning_rate, x, np.zeros(m), float(sigma) ** 2, _batch_weights(m, int(batch_size))
    )
    return float(np.max(np.abs(np.linalg.eigvals(images.reshape(n * n, n * n).T))))


# --------------------------------------------------------------------------------------------------------------
# Monte Carlo on the engine


@functools.lru_cache(maxsize=32)
def _vector_trajectory(steps: int, record: tuple[int, ...], block: int, batch: int, full: bool):
    def trajectory(key, x, y, modes, w_ridge, params):
        sigma, eta, inv_tau, bound = (params[i] for i in range(4))
        m, n = x.shape

        def step(state, z):
            w, t = state
            if full:
                xb, yb, noise = x, y, z
            else:  # the b largest of m i.i.d. normals: a uniform b-subset of the points, without replacement
                idx = lax.top_k(z[:m], batch)[1]
                xb, yb, noise = x[idx], y[idx], z[m:]
            xt = xb + sigma * noise.reshape(batch, n)
            w_new = w - eta / (1 + t * inv_tau) * (xt.T @ (xt @ w - yb)) / batch
            return jnp.where(jnp.all(jnp.abs(w) <= bound), w_new, w), t + 1  # frozen once beyond the bound

        init = (jnp.zeros(n, x.dtype), jnp.zeros((), x.dtype))
        size = batch * n + (0 if full else m)
        w, _ = simulate(step, init, key, steps=steps, record_steps=record, block=block, noise_shape=(size,))
        # ‖e‖² summed in index order by a scan: XLA's reductions group terms by the vmapped batch size, which
        # would make results depend on the chunk size in the last bits
        e = w - w_ridge
        sq_dist, _ = lax.scan(lambda acc, v: (acc + v, None), jnp.zeros(e.shape[:-1], e.dtype), (e * e).T)
        return {"w": w, "modes": w @ modes, "sq_dist": sq_dist}

    return trajectory


def _scalar(name, value, *, allow_zero=False) -> float:
    arr = check_positive_finite(name, value, allow_zero=allow_zero)
    if arr.ndim != 0:
        raise InputError(name, f"must be a scalar, got shape {arr.shape}")
    return float(arr)


def _default_record(steps: int) -> np.ndarray:
    """0 and about 64 log-spaced steps up to ``steps`` (the distances are drawn on log axes)."""
    return np.unique(np.concatenate([[0], np.geomspace(1, steps, 64).round()])).astype(np.int64)


def vector(
    x: ArrayLike,
    y: ArrayLike,
    *,
    sigma: float,
    learning_rate: float,
    steps: int,
    trajectories: int,
    batch_size: int = 1,
    decay: float | None = None,
    record_steps=None,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK,
    quantiles=DEFAULT_QUANTILES,
    sample_paths: int = 1,
    divergence_bound: float = DEFAULT_BOUND,
    confidence: float = 0.95,
    block: int = DEFAULT_BLOCK,
    bins: int = DEFAULT_BINS,
    dtype: str = "float32",
    prng: str = DEFAULT_PRNG,
    progress: bool = True,
) -> xr.Dataset:
    """Monte Carlo of noisy-input minibatch SGD on (X, y) beside its exact mean, second moment and ridge solution.

    Args:
      x: X, array of shape [m, n]. y: array of shape [m].
      sigma: input-noise standard deviation σ ≥ 0 (x and σ not both 0).
      learning_rate: η > 0, below :func:`mean_threshold` (refused otherwise: the mean would diverge).
      steps: T ≥ 1. trajectories: N ≥ 1.
      batch_size: b in [1, m], drawn uniformly without replacement at every step (b = m: full batch).
      decay: τ > 0 for the step η/(1 + t/τ); None for a constant step.
      record_steps: steps in [0, T] to estimate at (default: 0 and about 64 log-spaced steps up to T).
      sample_paths: single runs to keep (their distances to both solutions are reported).
      block: steps per noise draw. Other arguments as in :func:`sim.noisy.engine.monte_carlo` (``quantiles`` are of
        ``sq_dist``).

    Returns:
      ``xarray.Dataset`` with coordinates ``step``, ``coordinate`` (n), ``mode`` (min(m, n)), ``quantile``, ``path``:
      the engine's estimates for ``w`` (w_mean, w_var, CIs, …), ``modes`` (v_iᵀw in X's right singular basis) and
      ``sq_dist`` (‖w_t − w_ridge‖² of single runs); the float64 oracles ``exact_mean``, ``exact_var``,
      ``exact_sq_dist``, ``w_ridge`` (ridge_primal with λ = mσ²) and ``w_lstsq`` (lstsq_svd); the distances
      ``{mean,exact_mean,path}_dist_{ridge,lstsq}``; and per mode ``singular_value``, ``ridge_factor``
      s²/(s² + mσ²), ``exact_factor`` (of the exact mean) and ``factor`` (ridge.recover_filter_factors on the
      Monte Carlo mean), both at the last recorded step (T by default), with ``factor_ci_low/high`` (the modes' CIs
      times s_i/u_iᵀy). Settings, ``ridge_lambda`` = mσ², ``mean_threshold`` and (n ≤ 24) ``second_moment_factor``
      at η (the first step's, with decay) are attrs.
      A run with any |w_j| beyond ``divergence_bound`` × scale is frozen there; its out-of-bound elements count as
      diverged. The divergence_bound is RELATIVE to the problem's scale = max(‖w_ridge‖, ‖w_lstsq‖) (floored at 1e-30;
      ``sq_dist`` gets (divergence_bound × scale)²), so stable problems with large targets are not called diverged;
      attrs ``divergence_bound`` (absolute, capped at the dtype's largest value), ``divergence_bound_relative`` and
      ``divergence_scale`` record it. Modes with u_iᵀy = 0 (up to rounding) have no filter factor: ``factor_defined`` is
      False there and ``factor``, ``exact_factor`` and ``factor_ci_low/high`` are 0.

    References:
      EECS 182 Sp23 HW2 Q3 (noisy inputs as ridge); Sp25 HW0 Q4 (filter factors).
    """
    x, y = _check_data(x, y)
    m, n = x.shape
    sigma = _scalar("sigma", sigma, allow_zero=True)
    if sigma == 0 and not np.any(x):
        raise InputError("sigma", "x and sigma cannot both be 0 (the gradient would vanish)")
    eta = _scalar("learning_rate", learning_rate)
    batch = check_int("batch_size", batch_size, minimum=1, maximum=m)
    tau = None if decay is None else _scalar("decay", decay)
    check_dtype(dtype)
    steps = check_int("steps", steps, minimum=1, maximum=MAX_STEPS)
    steps, record, block = check_steps(steps, _default_record(steps) if record_steps is None else record_steps, block)
    check_positive_finite("divergence_bound", divergence_bound)
    threshold = mean_threshold(x, sigma=sigma)
    if eta >= threshold:
        raise InputError(
            "learning_rate",
            f"must be < 2/lambda_max(X^T X/m + sigma^2 I) = {threshold:.6g} for the mean to converge, got {eta:g}",
        )

    spec = _spectrum(x, y, sigma)
    r = spec["rank"]
    w_ridge = (
        spec["v"] @ spec["ridge"]
    )  # for the kernel; sim.regression.ridge's solutions go into the dataset (after the run)
    basis = spec["v"][:, :r]
    s_r, uy_r = spec["s"][:r], spec["uy"]
    lstsq_norm = float(np.linalg.norm(np.where(s_r > 0, uy_r / np.where(s_r > 0, s_r, 1), 0)))
    scale = max(float(np.linalg.norm(w_ridge)), lstsq_norm, 1e-30)
    relative = float(divergence_bound)
    # the kernel's freeze and the engine's check use the same value, representable in the working dtype
    divergence_bound = float(np.asarray(min(relative * scale, float(np.finfo(dtype).max)), dtype))
    params = np.asarray([sigma, eta, 0.0 if tau is None else 1 / tau, divergence_bound], dtype=dtype)
    ds = monte_carlo(
        _vector_trajectory(steps, record, block, batch, batch == m),
        trajectories=trajectories,
        record_steps=record,
        args=tuple(a.astype(dtype) for a in (x, y, basis, w_ridge)) + (params,),
        seed=seed,
        chunk_size=chunk_size,
        quantiles=quantiles,
        quantile_of=("sq_dist",),
        quantile_scale=max(float(w_ridge @ w_ridge), 1e-30) * 1e-3,
        bins=bins,
        sample_paths=sample_paths,
        divergence_bound=divergence_bound,
        bounds={"sq_dist": min(relative * scale, 1e150) ** 2},  # ‖w − w_ridge‖² is on the squared scale
        confidence=confidence,
        prng=prng,
        dims={"w": ("coordinate",), "modes": ("mode",)},
        progress=progress,
        desc="noisy-input SGD (vector)",
    )
    with jax.enable_x64(True):  # the oracles in float64, whatever the working dtype
        xj, yj = jnp.asarray(x), jnp.asarray(y)
        w_lstsq = np.asarray(ridge.lstsq_svd(xj, yj))
        w_ridge = np.asarray(ridge.ridge_primal(xj, yj, lam=m * sigma * sigma)) if sigma > 0 else w_lstsq
    t = np.asarray(record)
    kw = {"sigma": sigma, "learning_rate": eta, "decay": tau}
    means, seconds = exact_moments(x, y, batch_size=batch, record_steps=t, **kw)
    mean = exact_mean(x, y, t=t, **kw)
    with np.errstate(over="ignore", invalid="ignore"):
        sq = np.trace(seconds, axis1=1, axis2=2) - 2 * means @ w_ridge + w_ridge @ w_ridge
        var = np.diagonal(seconds, axis1=1, axis2=2) - means**2
    data = {
        "exact_mean": (("step", "coordinate"), mean, {"description": "E w_t, closed form in X's singular basis"}),
        "exact_var": (("step", "coordinate"), np.maximum(var, 0), {"description": "Var w_t, exact recursion"}),
        "exact_sq_dist": ("step", np.maximum(sq, 0), {"description": "E|w_t - w_ridge|^2, exact recursion"}),
        "w_ridge": ("coordinate", w_ridge, {"description": "ridge_primal(x, y, lam = m sigma^2)"}),
        "w_lstsq": ("coordinate", w_lstsq, {"description": "lstsq_svd(x, y): least squares / min-norm"}),
    }
    for name, w in (("mean", ds.w_mean.values), ("exact_mean", mean)):
        for target, ref in (("ridge", w_ridge), ("lstsq", w_lstsq)):
            data[f"{name}_dist_{target}"] = ("step", np.linalg.norm(w - ref, axis=-1))
    if "w_paths" in ds:
        for target, ref in (("ridge", w_ridge), ("lstsq", w_lstsq)):
            data[f"path_dist_{target}"] = (("path", "step"), np.linalg.norm(ds.w_paths.values - ref, axis=-1))
    data.update(_factors(x, y, spec, sigma, ds, mean[-1]))
    ds = ds.assign(data).assign_coords(coordinate=np.arange(n), mode=np.arange(r))
    attrs = {
        "problem": "noisy-input minibatch SGD: w <- w - eta_t mean_B x~ (x~^T w - y), x~ = x + N(0, sigma^2 I), "
        "w0 = 0 (EECS 182 Sp23 HW2 Q3)",
        "m": m,
        "n": n,
        "sigma": sigma,
        "learning_rate": eta,
        "decay": "none" if tau is None else tau,
        "schedule": "eta" if tau is None else "eta / (1 + t / decay)",
        "batch_size": batch,
        "batch_sampling": "uniform without replacement, independent across steps",
        "steps": steps,
        "block": block,
        "dtype": dtype,
        "ridge_lambda": m * sigma * sigma,
        "mean_threshold": threshold,
        "divergence_bound_relative": relative,
        "divergence_scale": scale,
        "ridge_to_lstsq": float(np.linalg.norm(w_ridge - w_lstsq)),
    }
    if n <= MAX_OPERATOR_DIM:
        attrs["second_moment_factor"] = second_moment_factor(x, sigma=sigma, learning_rate=eta, batch_size=batch)
    return ds.assign_attrs(attrs)


def _factors(x, y, spec, sigma, ds, exact_final) -> dict:
    """Per-mode filter factors: ridge, of the exact mean at T, and recovered from the Monte Carlo mean with CIs."""
    r, m = spec["rank"], x.shape[0]
    s, uy = spec["s"][:r], spec["uy"]
    lam = m * sigma * sigma
    with jax.enable_x64(True):
        _, recovered = ridge.recover_filter_factors(x, y, ds.w_mean.values[-1])
    # f_i = (s_i / u_iᵀy) v_iᵀw needs u_iᵀy ≠ 0: modes where y has no component (up to rounding) have no factor
    defined = (s > 0) & (np.abs(uy) > np.finfo(np.float64).eps * max(x.shape) * np.linalg.norm(y))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        gain = np.where(defined, s / np.where(defined, uy, 1.0), 0.0)
        ridge_factor = np.where(s > 0, s * s / (s * s + lam), 0.0)
        recovered = np.where(defined, np.asarray(recovered, dtype=np.float64), 0.0)
    low, high = (gain * ds[f"modes_mean_ci_{k}"].values[-1] for k in ("low", "high"))
    return {
        "singular_value": ("mode", s, {"description": "singular values s_i of x (descending)"}),
        "ridge_factor": ("mode", ridge_factor, {"description": "s^2 / (s^2 + m sigma^2)"}),
        "factor_defined": ("mode", defined, {"description": "u_i^T y != 0: the mode has a filter factor (else 0)"}),
        "exact_factor": ("mode", gain * (spec["v"][:, :r].T @ exact_final), {"description": "of E w_T (exact)"}),
        "factor": ("mode", recovered, {"description": "recover_filter_factors of the MC mean at T"}),
        "factor_ci_low": ("mode", np.minimum(low, high)),
        "factor_ci_high": ("mode", np.maximum(low, high)),
    }
