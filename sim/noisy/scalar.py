"""Noisy-input SGD on the Monte Carlo engine: one data point, and a grid of (learning rate, noise) settings.

Contract: :func:`scalar` and :func:`scalar_sweep` validate everything first (raising
:class:`sim.core.validate.InputError` named after the offending parameter, before any compilation), run on
:func:`sim.noisy.engine.monte_carlo` (so their estimates do not depend on chunk size or device count) and return an
``xarray.Dataset`` of Monte Carlo estimates beside the float64 closed forms of :mod:`sim.noisy.scalar_theory`, with the
thresholds, settings and provenance in its attrs.

The problem (EECS 182 Sp23 HW2 Q3 = Sp25 HW1 Q4): one scalar data point (x, y); every step sees a freshly perturbed
input x̃_t = x + σ N_t, N_t ~ N(0, 1) i.i.d., and takes an SGD step on ℓ(w) = ½(x̃_t w − y)² from w₀ = 0. The mean
follows GD on the ridge objective (limit xy/(x² + σ²)); the variance and single runs have stricter thresholds
(:mod:`sim.noisy.scalar_theory`). :mod:`sim.noisy.vector` is the same problem with m points in n dimensions.
"""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from sim.core import runtime
from sim.core.grid import MAX_POINTS, Grid
from sim.core.validate import InputError, check_finite, check_int, check_positive_finite
from sim.noisy import scalar_theory as noisy
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
    bound: float = DEFAULT_BOUND,
    confidence: float = 0.95,
    block: int = DEFAULT_BLOCK,
    bins: int = DEFAULT_BINS,
    dtype: str = "float32",
    prng: str = DEFAULT_PRNG,
    progress: bool = True,
) -> xr.Dataset:
    """Monte Carlo of scalar SGD with noisy inputs beside the exact moments of :mod:`sim.noisy.scalar_theory`.

    w_{t+1} = w_t − η x̃_t (x̃_t w_t − y), x̃_t = x + σ N_t, N_t ~ N(0, 1) i.i.d., w₀ = 0 (EECS 182 Sp23 HW2 Q3).
    A run with |w| > ``bound`` × scale is frozen there and counted as diverged (excluded from the estimates); the
    bound is RELATIVE to the problem's scale = max(|m*|, |y|/√(x² + σ²)) (floored at 1e-30), so a stable problem
    with a large target is not called diverged. The absolute bound (capped at the working dtype's largest value)
    is ``attrs["divergence_bound"]``; ``divergence_bound_relative`` and ``divergence_scale`` are attrs too.

    Args:
      x, y: the data point; sigma: the input-noise standard deviation σ ≥ 0; learning_rate: η > 0.
      steps: T ≥ 1; trajectories: N ≥ 1.
      record_steps: steps in [0, T] to estimate at (default: about 100 evenly spaced, with 0 and T).
      block: steps per noise draw. Other arguments as in :func:`monte_carlo`.

    Returns:
      The :func:`monte_carlo` dataset for ``w`` (``w_mean``, ``w_var``, their CIs, ``w_quantile``, …) plus
      ``exact_mean``, ``exact_var`` and ``exact_second_moment`` at the recorded steps (+inf where the exact
      variance overflows float64), and the thresholds and limits as attrs.
    """
    _check_problem(x, y, sigma, learning_rate, dtype)
    for name, value in (("x", x), ("y", y), ("sigma", sigma), ("learning_rate", learning_rate)):
        if np.ndim(value) != 0:
            raise InputError(name, "must be a scalar (use scalar_sweep for a grid)")
    steps, record, block = check_steps(steps, record_steps, block)
    check_positive_finite("bound", bound)
    kw = {"x": float(x), "y": float(y), "sigma": float(sigma), "learning_rate": float(learning_rate)}
    a = kw["x"] ** 2 + kw["sigma"] ** 2
    m_star = float(noisy.mean_limit(kw["x"], kw["y"], kw["sigma"]))
    scale = max(abs(m_star), abs(kw["y"]) / np.sqrt(a), 1e-30)  # the size of typical w: where bins turn logarithmic
    relative = float(bound)
    # the kernel's freeze and the engine's check use the same value, representable in the working dtype
    bound = float(np.asarray(min(relative * scale, float(np.finfo(dtype).max)), dtype))
    params = np.asarray([kw["x"], kw["y"], kw["sigma"], kw["learning_rate"], bound], dtype=dtype)
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
        bound=bound,
        confidence=confidence,
        prng=prng,
        progress=progress,
        desc="noisy-input SGD",
    )
    t = np.asarray(record, dtype=np.float64)
    ds = ds.assign(
        exact_mean=("step", noisy.mean(t, **kw), {"description": "E w_t, closed form (sim.noisy.scalar_theory.mean)"}),
        exact_var=(
            "step",
            noisy.variance(t, **kw),
            {"description": "Var w_t, closed form (sim.noisy.scalar_theory.variance)"},
        ),
        exact_second_moment=("step", noisy.second_moment(t, **kw), {"description": "E w_t^2, closed form"}),
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
        variance_limit=float(noisy.variance_limit(kw["x"], kw["y"], kw["sigma"], kw["learning_rate"])),
        mean_threshold=float(noisy.mean_threshold(kw["x"], kw["sigma"])),
        variance_threshold=float(noisy.variance_threshold(kw["x"], kw["sigma"])),
        mean_factor=float(noisy.mean_factor(kw["x"], kw["sigma"], kw["learning_rate"])),
        second_moment_factor=float(noisy.second_moment_factor(kw["x"], kw["sigma"], kw["learning_rate"])),
        lyapunov_exponent=float(noisy.lyapunov_exponent(kw["x"], kw["sigma"], kw["learning_rate"])),
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
    bound: float = DEFAULT_BOUND,
    confidence: float = 0.95,
    quantiles=(0.05, 0.5, 0.95, 0.99),
    bins: int = 2048,
    block: int = DEFAULT_BLOCK,
    dtype: str = "float32",
    prng: str = DEFAULT_PRNG,
    max_points: int = MAX_POINTS,
    progress: bool = True,
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

    Args:
      grid: axes ``learning_rate`` and ``sigma`` (and optionally ``x``), e.g. from :func:`sim.core.grid.parse_axis`.
      steps: T ≥ 2 (records at T/2 and T). trajectories: N ≥ 1 per point.
      x: the data point when the grid has no ``x`` axis (default 1). y: the target.
      chunk_size: trajectories per device per call; point_chunk: grid points per engine call (padded: one
        compile for any grid).
      Other arguments as in :func:`monte_carlo`.

    Returns:
      ``xarray.Dataset`` over the grid's dimensions with the variables of ``SWEEP_FIELDS`` (factors with
      ``_ci_low``/``_ci_high``), ``w_quantile`` (dims quantile × grid) and attrs.
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
    check_positive_finite("bound", bound)
    grid.check_budget(max_points)
    vals = grid.values_at(np.arange(grid.size))
    xs = vals.get("x", np.full(grid.size, float(x)))
    _check_problem(xs, y, vals["sigma"], vals["learning_rate"], dtype)

    traj = _sweep_trajectory(steps, record, block)
    bound = float(np.asarray(bound, dtype))  # the kernel's freeze and the engine's check use the same value
    points = np.stack([xs, vals["sigma"], vals["learning_rate"]], axis=1)
    out: dict[str, np.ndarray] = {}
    computed = np.zeros(grid.size, dtype=bool)
    bar = tqdm(total=grid.size, unit="pt", disable=not progress, desc="noisy-input sweep")
    complete = True
    attrs = {}
    try:
        for start in range(0, grid.size, point_chunk):
            chunk = points[start : start + point_chunk]
            n = len(chunk)
            padded = np.pad(chunk, ((0, point_chunk - n), (0, 0)), mode="edge").astype(dtype)
            ds = monte_carlo(
                traj,
                trajectories=trajectories,
                record_steps=record,
                args=(padded, np.asarray(y, dtype), np.asarray(bound, dtype)),
                seed=seed,
                chunk_size=chunk_size,
                quantiles=quantiles,
                quantile_of=("w",),
                quantile_scale=max(abs(float(y)), 1e-30),
                bins=bins,
                bound=bound,
                bounds={k: np.inf for k in FACTOR_LEAVES},  # sums of A: their size is the result, never excluded
                confidence=confidence,
                prng=prng,
                dims={k: ("point",) for k in ("w", *FACTOR_LEAVES)},
                progress=False,
            )
            attrs = {**ds.attrs, "quantiles": ds["quantile"].values if "quantile" in ds.coords else []}
            if not ds.attrs["complete"]:
                raise KeyboardInterrupt
            for name, arr in _sweep_summaries(ds, steps).items():
                if name not in out:
                    out[name] = np.zeros(arr.shape[:-1] + (grid.size,), dtype=arr.dtype)
                out[name][..., start : start + n] = arr[..., :n]
            computed[start : start + n] = True
            bar.update(n)
    except KeyboardInterrupt:
        complete = False
        bar.write(f"interrupted: keeping {int(computed.sum()):,} of {grid.size:,} finished points")
    finally:
        bar.close()
    return _sweep_dataset(grid, out, computed, complete, points, y, steps, trajectories, attrs)


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
        w_quantile=ds["w_quantile"].values[:, -1],
    )
    return res


def _sweep_dataset(grid, out, computed, complete, points, y, steps, trajectories, engine_attrs) -> xr.Dataset:
    dims = grid.names
    shape = grid.shape
    xs, sigma, eta = points[:, 0], points[:, 1], points[:, 2]
    kw = {"x": xs, "y": float(y), "sigma": sigma, "learning_rate": eta}
    exact = {
        "exact_mean_factor": noisy.mean_factor(xs, sigma, eta),
        "exact_second_moment_factor": noisy.second_moment_factor(xs, sigma, eta),
        "theory_mean_converges": eta < noisy.mean_threshold(xs, sigma),
        "theory_variance_bounded": eta < noisy.variance_threshold(xs, sigma),
        "exact_mean": noisy.mean(float(steps), **kw),
        "exact_var": noisy.variance(float(steps), **kw),
    }
    data = {}
    for name, arr in {**out, **exact}.items():
        lead = ("quantile",) if arr.ndim == 2 else ()
        desc = SWEEP_FIELDS.get(name.removesuffix("_ci_low").removesuffix("_ci_high"), "")
        data[name] = ((*lead, *dims), arr.reshape(arr.shape[:-1] + shape), {"description": desc} if desc else {})
    if not complete:
        data["computed"] = (dims, computed.reshape(shape), {"description": "point was finished"})
    coords = grid.coords()
    if "w_quantile" in out:
        coords["quantile"] = np.asarray(engine_attrs.get("quantiles", []), dtype=np.float64)
    keep = ("seed", "prng", "key_derivation", "confidence", "ci_method", "divergence_bound", "divergence", "bins")
    attrs = {k: engine_attrs[k] for k in keep if k in engine_attrs}
    attrs.update(
        problem="noisy-input SGD sweep: w <- w - eta x~ (x~ w - y), x~ = x + sigma N(0,1), w0 = 0",
        axes=json.dumps({a.name: a.spec for a in grid.axes}),
        y=float(y),
        steps=steps,
        trajectories=trajectories,
        common_random_numbers="every grid point uses the same N trajectory keys",
        complete=int(complete),
        **runtime.provenance(),
    )
    if "x" not in dims:
        attrs["x"] = float(points[0, 0])
    return xr.Dataset(data, coords=coords, attrs=attrs)
