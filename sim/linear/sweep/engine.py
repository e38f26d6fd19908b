"""The sweep engine: a grid of hyperparameters × one least-squares problem, run in fixed-size chunks on every device.

Contract: :func:`sweep` validates everything first (raising :class:`sim.core.validate.InputError` before any
compilation), then evaluates :func:`sim.linear.sweep.xla.chunk_summary` at every grid point and returns an
``xarray.Dataset`` with one dimension per grid axis, one variable per summary (``sim.linear.sweep.fields.FIELDS``) and
attrs recording the spec, versions, devices, dtype and git revision. The kernel is compiled once per (method, modes,
steps, dtype, chunk) and run on chunks of ``chunk_size`` points on every device JAX sees, one host thread per device
taking the next chunk as its device finishes one (the last chunk is padded), so memory is bounded by the chunk, not the
grid. On a CPU the kernel is the compiled one of :mod:`sim.linear.sweep.native` (the results record which loop ran in
``attrs["loop"]``). The chunks are blocks of the grid run by :func:`sim.core.engine.run` and kept by
:class:`sim.core.io.Results`: in memory, or streamed to a Zarr store (``output="run.zarr"``), which a killed run can
resume. If the run is interrupted (SIGINT or SIGTERM), the finished chunks are kept with ``attrs["complete"] == 0``
and the ``computed`` mask (unfinished points hold −1 / NaN), so nothing already computed is lost.

Methods and their hyperparameter axes (see the glossary in ``sim``):
  gd          learning_rate
  momentum    learning_rate, beta        (the course's EMA form)
  heavy_ball  learning_rate, momentum    (optax / PyTorch form)
  nesterov    learning_rate, momentum    (optax form)
The problem is either a ``sigma2`` axis (one single-mode problem per point) or a fixed ``spectrum`` of several
modes shared by every point.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from sim.core import cluster, engine, io, runtime
from sim.core.grid import MAX_POINTS, Grid
from sim.core.validate import InputError
from sim.linear import dynamics
from sim.linear.sweep import native, xla
from sim.linear.sweep.fields import FIELDS
from sim.linear.sweep.spec import (
    DEFAULT_BLOCK,
    DEFAULT_BOUND,
    DEFAULT_CHUNK,  # noqa: F401  (the figures' sweeps name it)
    PARAMETERS,
    STORE_MAX_POINTS,
    recorded,
    validate,
)

METHODS = {  # each method's dynamics (its hyperparameters: sim.linear.sweep.spec.PARAMETERS)
    "gd": dynamics.gd,
    "momentum": dynamics.momentum,
    "heavy_ball": dynamics.heavy_ball,
    "nesterov": dynamics.nesterov,
}


def sweep(
    method: str,
    grid: Grid,
    *,
    steps: int,
    tol: float,
    spectrum=None,
    target=None,
    dtype: str = "float32",
    chunk_size: int | None = None,
    block: int = DEFAULT_BLOCK,
    divergence_bound: float = DEFAULT_BOUND,
    max_points: int | None = None,
    progress: bool = True,
    output=None,
    resume: bool = False,
    attrs=None,
) -> xr.Dataset:
    """Run ``method`` at every point of ``grid`` and summarize each run.

    Args:
      method: one of ``METHODS``.
      grid: the axes to sweep; must contain every hyperparameter of the method, and ``sigma2`` unless
        ``spectrum`` is given. Use a one-value axis to hold a hyperparameter fixed.
      steps: T ≥ 1, steps per run.
      tol: relative-error tolerance ε ∈ (0, 1).
      spectrum: squared singular values of ONE problem with several modes (instead of a ``sigma2`` axis).
      target: coordinates of w* in the singular basis, one per mode of ``spectrum`` (default: all equal).
      dtype: ``"float32"`` or ``"float64"`` (float64 needs ``jax.config.update("jax_enable_x64", True)`` or the
        ``jax.enable_x64()`` context).
      chunk_size: points per compiled call, each call on one device (≥ 8; default
        :func:`sim.linear.sweep.spec.default_chunk`: 32768, larger for a large grid streamed to a store).
      block: steps fused per loop iteration (divergence is checked every ``block`` steps).
      divergence_bound: divergence bound on the relative state norm (‖u_t‖ with ‖u_0‖ = 1).
      max_points: refuse grids larger than this (default: 2²⁶ in memory; for a store, what the disk can hold).
      progress: show a tqdm bar.
      output: a ``.zarr`` path: stream the results there as chunks finish (nothing held for the whole grid).
      resume: continue the store at ``output`` left by a run of the same arguments (its finished chunks are kept).
      attrs: extra attrs to record (e.g. the command line).

    Returns:
      ``xarray.Dataset`` of shape ``grid.shape`` with the variables of ``sim.linear.sweep.fields.FIELDS`` and
      ``computed`` (lazily backed by the store when ``output`` is given).
    """
    if output is not None and not io.is_store(output):
        raise InputError("output", f"must be a .zarr store to stream to, got {output!r} (write a .nc with sim.core.io)")
    if resume and output is None:
        raise InputError("resume", "needs an output store to resume")
    cluster.check_output(output)
    processes = jax.process_count()
    spec = validate(
        method,
        grid,
        steps=steps,
        tol=tol,
        spectrum=spectrum,
        target=target,
        dtype=dtype,
        chunk_size=chunk_size,
        block=block,
        divergence_bound=divergence_bound,
        max_points=(MAX_POINTS if output is None else STORE_MAX_POINTS) if max_points is None else max_points,
        x64=jax.config.jax_enable_x64,
        store=output is not None,
    )
    chunk_size, block = spec["chunk_size"], spec["block"]
    hyper_names = PARAMETERS[method]
    problem = spec["problem"]
    modes = 1 if problem is None else problem.modes
    devices = jax.local_devices()  # each process computes on its own
    use_native, loop = native.loop_for(modes)
    run, estimate = _compiled(method, modes, problem is None, spec["steps"], block, dtype, chunk_size, use_native)
    np_dtype = np.dtype(dtype)
    axes = [*hyper_names, *(["sigma2"] if problem is None else [])]
    # what every chunk shares, put on each device once: the problem (spectrum and initial error), tol and bound
    shared = np.zeros((2, modes)) if problem is None else np.stack([problem.spectrum, problem.initial_error()])
    shared = {
        d: jax.device_put((shared.astype(np_dtype), np_dtype.type(spec["tol"]), np_dtype.type(divergence_bound)), d)
        for d in devices
    }

    def inputs(idx, device):
        """The points ``idx`` (flat indices, or a range of them) as a chunk on ``device``: one row per axis, padded
        to ``chunk_size`` points."""
        vals = grid.values_at(idx)
        rows = np.empty((len(axes), chunk_size), np_dtype)
        for j, name in enumerate(axes):
            rows[j, : len(idx)] = vals[name]
            rows[j, len(idx) :] = rows[j, len(idx) - 1]  # pad with the last point
        count = np.int32(len(idx))  # the compiled loop skips the padding
        # waited for: with its inputs in place, XLA runs the compiled kernel on the calling thread at once; with a
        # transfer in flight it would run it later on a thread of its own (measured: up to 1.2x slower)
        return jax.block_until_ready(jax.device_put((rows, count), device)), *shared[device]

    fields = jax.eval_shape(run, *inputs(range(min(chunk_size, grid.size)), devices[0]))
    record = _attrs(method, grid, spec, divergence_bound, loop) | dict(attrs or {})
    if output is not None and not resume:
        io.check_space(output, grid.size * (sum(f.dtype.itemsize for f in fields.values()) + 1))
    layout = {
        "dims": grid.names,
        "shape": grid.shape,
        "coords": grid.coords(),
        "variables": {name: (fields[name].dtype, {"description": doc}) for name, doc in FIELDS.items()},
        "attrs": record,
        "block_shape": engine.block_shape(grid.shape, chunk_size),
    }
    results = cluster.open_results(output, layout, resume=resume)  # process 0 writes the template
    blocks = engine.blocks(grid.shape, chunk_size)
    if use_native or output is not None:
        # the compiled loop stops each tile of 64 points on its own, so blocks of the grid in C order are best
        chunks = cluster.share(blocks, results)
    else:
        # the XLA loop stops a whole chunk at once, so its chunks hold points sorted by their predicted step count
        order = _work_order(grid.size, chunk_size, devices, inputs, estimate)
        chunks = [order[i : i + chunk_size] for i in range(0, grid.size, chunk_size)]

    def points(chunk):
        return range(chunk.start, chunk.stop) if isinstance(chunk, engine.Block) else chunk

    def launch(chunk, device):
        return run(*inputs(points(chunk), device))

    def collect(chunk, out):
        n = len(points(chunk))
        return {name: np.asarray(arr)[:n] for name, arr in out.items()}

    outcome = engine.run(
        chunks,
        launch,
        collect,
        results.store,
        devices=devices,
        size=lambda chunk: len(points(chunk)),
        total=grid.size if processes == 1 else None,
        done=grid.size - sum(len(points(c)) for c in chunks) if processes == 1 else 0,
        progress=progress,
        desc=f"sweep {method}",
        unit="pt",
    )
    cluster.finish_results(results, blocks, outcome)
    return results.dataset()


def _work_order(size: int, chunk_size: int, devices, inputs, estimate) -> np.ndarray:
    """Flat indices sorted by predicted simulated steps (stable: C order among equal buckets)."""
    keys = [  # dispatched asynchronously, round robin over the devices
        estimate(*inputs(range(start, min(start + chunk_size, size)), devices[k % len(devices)]))
        for k, start in enumerate(range(0, size, chunk_size))
    ]
    keys = np.concatenate([np.asarray(k) for k in keys])[:size]
    # buckets 1 % wide in the predicted count: int16 keys get NumPy's radix sort (20x faster than on floats)
    buckets = np.round(np.log2(np.maximum(keys, 1)) * 64).astype(np.int16)
    return np.argsort(buckets, kind="stable")


@functools.lru_cache(maxsize=16)
def _compiled(
    method: str, modes: int, sigma2_axis: bool, steps: int, block: int, dtype: str, chunk_size: int, use_native: bool
):
    """``(run, estimate)``: the chunk kernel and :func:`sim.linear.sweep.xla.predicted_steps` over a chunk, jitted.

    Both take ``((points, count), problem, tol, bound)``: ``points`` [axes, chunk_size] holds the method's
    hyperparameters (and σ² if ``sigma2_axis``), one row per axis, of which the first ``count`` columns are real and
    the rest padding, ``problem`` [2, modes] the shared spectrum and initial error (unused with a σ² axis, where
    x(0) = −1). Each call runs one chunk on the device its inputs were put on: independent single-device calls, fed
    by one host thread per device, keep every core busy (measured on 2 CPU devices, one SPMD call over both with
    ``shard_map`` was 1.3x slower: every call waits for its slowest shard).
    """
    make, hyper_names = METHODS[method], PARAMETERS[method]
    n_hyper = len(hyper_names)

    def unpack(points, problem):
        hyper = tuple(points[i] for i in range(n_hyper))
        n = points.shape[1]
        if sigma2_axis:
            s = points[n_hyper:].T
            return hyper, s, -jnp.ones_like(s)
        return hyper, jnp.broadcast_to(problem[0], (n, modes)), jnp.broadcast_to(problem[1], (n, modes))

    def summary(chunk, problem, tol, bound):
        points, count = chunk
        hyper, s, x0 = unpack(points, problem)
        return xla.chunk_summary(
            make, hyper, s, x0, tol, bound, steps=steps, block=block, native=use_native, count=count
        )

    def estimate(chunk, problem, tol, bound):
        hyper, s, _ = unpack(chunk[0], problem)
        return jax.vmap(lambda h, si: xla.predicted_steps(make(*h), si, tol, bound, steps=steps))(hyper, s)

    return jax.jit(summary), jax.jit(estimate)


def _attrs(method, grid, spec, bound, loop) -> dict:
    """The results' attrs: the specification (recorded as ``spec`` too, which a resumed run must match), the loop
    that ran, and the provenance."""
    record = recorded(method, grid, spec, bound)
    return {**record, "spec": record, "loop": loop, "complete": 0, **runtime.provenance()}
