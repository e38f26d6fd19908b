"""What a sweep takes, checked before anything is imported or compiled: methods, hyperparameters and limits.

Contract: :func:`validate` checks every argument of :func:`sim.linear.sweep.engine.sweep` and raises
:class:`sim.core.validate.InputError` naming the parameter; it needs neither JAX nor XLA, so the ``sim sweep`` command
answers a bad argument at once. :data:`PARAMETERS` lists each method's hyperparameters (the engine pairs them with the
method's dynamics).
"""

from __future__ import annotations

import numpy as np

from sim.core.grid import MAX_POINTS, Grid
from sim.core.validate import (
    InputError,
    check_in_dtype_range,
    check_in_interval,
    check_int,
    check_positive_finite,
    check_product_in_dtype_range,
)
from sim.linear.problems import from_spectrum

PARAMETERS = {
    "gd": ("learning_rate",),
    "momentum": ("learning_rate", "beta"),
    "heavy_ball": ("learning_rate", "momentum"),
    "nesterov": ("learning_rate", "momentum"),
}
MAX_STEPS = 2**24  # step counters are exact in float32 up to here
DEFAULT_CHUNK = 32768  # points per call in memory, and the smallest default for a store (default_chunk)
LARGEST_STORE_CHUNK = 2**20
MIN_CHUNK = 8  # below a few lanes XLA specializes the kernel differently and rounding could depend on the chunking
DEFAULT_BLOCK = 16
DEFAULT_BOUND = 1e10
HINTS = {"float32": "; --x64 computes in float64", "float64": ""}
STORE_MAX_POINTS = 2**40  # a results store holds no grid-sized array in memory: the disk is the limit


def default_chunk(points: int, store: bool) -> int:
    """Points per compiled call when none is given: ``DEFAULT_CHUNK`` in memory; for a store, 1/64 of the grid
    rounded down to a power of two, from ``DEFAULT_CHUNK`` to ``LARGEST_STORE_CHUNK``.

    In memory, 32768-point calls were the fastest (benchmarks/RESULTS.md §1: larger ones were up to 20 % slower). A
    store's chunk is one write per variable, whose fixed cost dominated a 2^30-point sweep in 32768-point chunks
    (§5); 2^20 points keep a few hundred MB in flight. A function of the grid's size only, so a resumed store gets
    the same chunks on any machine."""
    if not store:
        return DEFAULT_CHUNK
    return int(min(LARGEST_STORE_CHUNK, max(DEFAULT_CHUNK, 1 << max(int(points) // 64, 1).bit_length() - 1)))


def check_hyperparameter(name: str, values) -> np.ndarray:
    """Validate one hyperparameter's values by its name (learning_rate, beta, momentum, sigma2)."""
    if name in ("learning_rate", "sigma2"):
        return check_positive_finite(name, values)
    if name == "beta":
        return check_in_interval(name, values, 0.0, 1.0, closed_high=True)
    if name == "momentum":
        return check_in_interval(name, values, 0.0, 1.0, closed_low=True, closed_high=False)
    raise InputError(name, "is not a hyperparameter of any method")


def validate(
    method: str,
    grid: Grid,
    *,
    steps,
    tol,
    spectrum=None,
    target=None,
    dtype: str = "float32",
    chunk_size=None,
    block=DEFAULT_BLOCK,
    divergence_bound=DEFAULT_BOUND,
    max_points=MAX_POINTS,
    x64: bool = False,
    store: bool = False,
) -> dict:
    """Check a sweep's arguments (``x64``: whether JAX's x64 mode is on; ``store``: whether the results stream to a
    store, which sets the default ``chunk_size``); return them normalized.

    Returns:
      ``{"steps", "tol", "problem", "dtype", "chunk_size", "block"}`` with whole numbers as ints and ``problem`` the
      :class:`sim.linear.problems.Problem` of ``spectrum`` (None for a sigma2 axis).
    """
    if method not in PARAMETERS:
        raise InputError("method", f"must be one of {', '.join(PARAMETERS)}, got {method!r}")
    steps = check_int("steps", steps, minimum=1, maximum=MAX_STEPS)
    max_points = check_int("max_points", max_points, minimum=1)
    tol = float(check_in_interval("tol", tol, 0.0, 1.0, closed_high=False))
    if chunk_size is None:
        chunk_size = default_chunk(grid.size, store)
    chunk_size = check_int("chunk_size", chunk_size, minimum=MIN_CHUNK)
    block = check_int("block", block, minimum=1, maximum=64)
    check_positive_finite("divergence_bound", divergence_bound)
    if dtype not in ("float32", "float64"):
        raise InputError("dtype", f"must be float32 or float64, got {dtype!r}")
    if dtype == "float64" and not x64:
        raise InputError("dtype", "float64 needs x64 mode: jax.config.update('jax_enable_x64', True) or --x64")
    largest_bound = float(np.sqrt(np.finfo(dtype).max))  # the kernels compare squared norms with bound²
    if not float(divergence_bound) <= largest_bound:
        raise InputError("divergence_bound", f"must be <= {largest_bound:.3g} in {dtype}, got {divergence_bound:g}")
    smallest_tol = float(np.sqrt(np.finfo(dtype).tiny))  # the kernels compare squared errors with tol²
    if tol < smallest_tol:
        raise InputError("tol", f"must be >= {smallest_tol:.3g} in {dtype} (tol² must not underflow), got {tol:g}")
    hyper_names = PARAMETERS[method]
    allowed = set(hyper_names) | {"sigma2"}
    for axis in grid.axes:
        if axis.name not in allowed:
            raise InputError(axis.name, f"is not a parameter of {method} (axes: {', '.join(sorted(allowed))})")
        check_hyperparameter(axis.name, axis.values)
        check_in_dtype_range(axis.name, axis.values, dtype, hint=HINTS[dtype])
    for h in hyper_names:
        if h not in grid.names:
            raise InputError(h, f"{method} needs a value or an axis for {h}")
    has_axis = "sigma2" in grid.names
    if has_axis == (spectrum is not None):
        raise InputError(
            "spectrum",
            "give either a sigma2 axis (one problem per point) or a spectrum, not both"
            if has_axis
            else "give a spectrum or a sigma2 axis",
        )
    if target is not None and spectrum is None:
        raise InputError("target", "needs a spectrum (a sigma2 axis has one mode per point)")
    problem = None if spectrum is None else from_spectrum(spectrum, target)
    if problem is not None:
        check_in_dtype_range("spectrum", problem.spectrum, dtype, hint=HINTS[dtype])
        check_in_dtype_range("target", problem.target, dtype, hint=HINTS[dtype])
    sigma2 = problem.spectrum if problem is not None else grid.coords()["sigma2"]
    check_product_in_dtype_range(
        "learning_rate",
        2 * float(np.max(grid.coords()["learning_rate"])) * float(np.max(sigma2)),
        dtype,
        what="2*eta*sigma2 for the largest eta and sigma2",
        hint=HINTS[dtype],
    )
    grid.check_budget(max_points)
    return {"steps": steps, "tol": tol, "problem": problem, "dtype": dtype, "chunk_size": chunk_size, "block": block}


def recorded(method: str, grid: Grid, checked: dict, divergence_bound) -> dict:
    """What a results file records of a sweep's specification (``checked`` is :func:`validate`'s result): a resumed
    run must match it exactly."""
    import json

    problem = checked["problem"]
    return {
        "method": method,
        "steps": checked["steps"],
        "tol": checked["tol"],
        "axes": json.dumps({a.name: a.spec for a in grid.axes}),
        "spectrum": "axis sigma2" if problem is None else json.dumps(problem.spectrum.tolist()),
        "target": "equal" if problem is None else json.dumps(problem.target.tolist()),
        "dtype": checked["dtype"],
        "chunk_size": checked["chunk_size"],
        "block": checked["block"],
        "divergence_bound": float(divergence_bound),
    }
