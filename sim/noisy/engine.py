"""Monte Carlo engine: many independent random trajectories, reduced to streaming estimates at recorded steps.

Contract: :func:`monte_carlo` validates everything first (raising :class:`sim.core.validate.InputError` before any
compilation), then runs ``trajectory(key, *args)`` for trajectory indices 0 … N − 1 and returns an
``xarray.Dataset`` of estimates at the recorded steps, with attrs recording the settings, versions, devices and
git revision. ``trajectory`` returns a dict of float arrays whose leading axis is the recorded steps; any trailing
shape is allowed (a vector w of shape [n], one value per grid point, …) and every estimate is elementwise.

How the estimates are made (and why they do not depend on chunk size or device count):
- Keys come from the GLOBAL trajectory index, ``fold_in(key(seed), i)`` with a counter-based PRNG, so trajectory i
  draws the same numbers whatever chunk or device runs it. Chunks of ``chunk_size`` trajectories per device are
  vmapped, jitted and sharded with ``shard_map`` over ``sim.core.runtime.mesh()`` (every device JAX sees); the last
  chunk is padded and the padding never reaches the estimates. One compile serves any number of trajectories
  from ``chunk_size`` × devices up; fewer (N) run in one call of ceil(N / devices) per device, never more.
- Per-trajectory recorded values come back to the host (one chunk stays in flight meanwhile) and are reduced in
  float64 by :class:`sim.noisy.streaming.Accumulator`, in fixed super-blocks of ``SUPER_BLOCK`` consecutive trajectories
  (two-pass moments inside a block, then Pébay's exact pairwise update of count, mean and central moments M2, M3,
  M4, block after block in index order). The reduction therefore sees the same numbers in the same order for any
  chunking: results are bitwise identical across chunk sizes and device counts, and memory does not grow with N.
- Quantiles are streamed with a fixed-bin histogram per recorded element, in u = asinh(value / quantile_scale) over
  [−U, U], U = asinh(bound / quantile_scale): linear near 0, logarithmic in the tails, so one histogram covers
  values from 1e-3 · scale to the divergence bound with a relative resolution of about 2U / bins (≈ 0.6 % at the
  defaults) and an absolute one of 2U / bins · scale near 0, interpolated linearly inside a bin. Counts are
  integers, so they combine exactly; memory is bins × elements, independent of N. (Keeping every recorded value
  for exact quantiles would grow with N.)
- Divergence: an element is diverged from the first recorded step where it is non-finite or beyond ±``bound``
  (trajectory functions should also freeze such states, as :func:`simulate`'s users do, so nothing overflows).
  ``bounds`` sets a bound per output instead (``math.inf``: only non-finite values diverge, e.g. running sums
  whose size is the result, not a sign of divergence).
  Diverged elements are counted per recorded step (``*_diverged_fraction``) and EXCLUDED from every estimate:
  means, variances, intervals and quantiles are over the ``*_count`` elements still finite and within the bound.
  No NaN reaches the output: estimates with no surviving elements are 0 with count 0.
- Confidence intervals are the normal approximation at level ``confidence``: mean ± z √(s²/n), and for the
  variance s² ± z √((m₄ − s⁴ (n − 3)/(n − 1)) / n) (m₄ the fourth central moment). Both need the higher moments to
  be finite; they are not valid for heavy-tailed samples.
- Ctrl-C keeps every finished trajectory: the result has ``attrs["complete"] == 0`` and the count done.

PRNG: threefry2x32 by default. Measured on this 2-core AMD EPYC CPU (jax 0.10.2, float32 normals in blocks of 32
per trajectory from index-derived keys, one device, quiet machine; ``benchmarks/mc_throughput.py``, numbers in
``benchmarks/RESULTS.md``): philox2x32 2.9e8 normals/s, philox4x32 2.5e8, threefry2x32 2.4e8, rbg 0.40e8,
unsafe_rbg 0.43e8, threefry4x32 0.27e8. rbg and unsafe_rbg draw differently for one key depending on the batch it
is vmapped in, so they break the index-derived-key property. The philox generators' ``mulhi`` (``chlo.mulhi``)
fails to compile in any multi-device program in jax 0.10.2 ("Unable to convert MHLO to StableHLO", under
``shard_map`` and plain ``jit`` sharding alike), so they are accepted only when JAX sees one device; threefry2x32
works on every mesh, and the scalar kernel runs at 99 % of its sharded rate.

:func:`simulate` is the time loop for trajectory functions: it draws normals in blocks of ``block`` steps
(``fold_in(key, block index)``, so the noise of step t never depends on what is recorded) and records at arbitrary
steps; :func:`check_steps` and :func:`check_dtype` validate a problem's time loop and working dtype. The problems on
this engine live in their own modules: the noisy-input SGD of :mod:`sim.noisy.scalar` (scalar) and
:mod:`sim.noisy.vector` (m points in n dimensions).
"""

from __future__ import annotations

import collections
import functools
import statistics

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax import lax
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from sim.core import runtime
from sim.core.validate import InputError, check_in_interval, check_int, check_positive_finite
from sim.noisy.streaming import SUPER_BLOCK, Accumulator

PRNGS = ("threefry2x32", "philox4x32")  # counter-based: draws for a key do not depend on the batch
SINGLE_DEVICE_PRNGS = ("philox4x32",)  # jax 0.10.2 cannot compile their mulhi in multi-device programs
DEFAULT_PRNG = "threefry2x32"
DEFAULT_CHUNK = 4096
MIN_CHUNK = 8
DEFAULT_BLOCK = 32
DEFAULT_BOUND = 1e10
DEFAULT_BINS = 8192
DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MAX_TRAJECTORIES = 2**32
MAX_STEPS = 2**24


# --------------------------------------------------------------------------------------------------------------
# The time loop of a trajectory


def simulate(step, init, key, *, steps: int, record_steps, block: int = DEFAULT_BLOCK, noise_shape=(), dtype=None):
    """Run ``state ← step(state, z_t)`` for t = 0 … steps − 1 and return the states at ``record_steps``.

    The noise z_t ~ N(0, I) of shape ``noise_shape`` is drawn in blocks: step t uses row t mod ``block`` of
    ``normal(fold_in(key, t // block), (block, *noise_shape))``, so it depends only on (key, t, block), never on
    what is recorded or how trajectories are batched.

    The loop is a ``lax.scan`` over the recorded steps (its outputs are the records: no scatter, no stacked
    per-step states); between two records a ``while_loop`` takes whole blocks of ``block`` unrolled steps on one
    draw (the fast path) and single steps with the carried draw where a record or the end cuts a block. The loop
    counter and the branch predicates depend only on t, which is the same for every trajectory, so under vmap
    they stay scalar control flow and a block is one vectorized pass over the chunk.

    Args:
      step: ``step(state, z) -> state`` (pure; freeze diverged states inside it, e.g. ``where(|w| <= bound, …)``).
      init: the initial state (a pytree of arrays).
      key: this trajectory's PRNG key.
      steps: number of steps (static).
      record_steps: strictly increasing step numbers in [0, steps] (static); step 0 is ``init``.
      block: steps per noise draw and per unrolled fast-path body (static).
      noise_shape: shape of one step's noise.
      dtype: float dtype of the noise (default: the dtype of the first leaf of ``init``).

    Returns:
      The pytree of ``init`` with a leading axis of len(record_steps).
    """
    record = np.asarray(record_steps, dtype=np.int32)
    if record.size == 0 or record[-1] > steps:
        raise ValueError(f"record_steps must lie in [0, {steps}]")
    dtype = dtype or jax.tree.leaves(init)[0].dtype

    def draw(t):
        return jax.random.normal(jax.random.fold_in(key, (t // block).astype(jnp.uint32)), (block, *noise_shape), dtype)

    def segment(carry, end):
        def advance(c):
            state, t, z = c
            z = lax.cond(t % block == 0, draw, lambda _: z, t)

            def whole_block(state):
                for k in range(block):
                    state = step(state, z[k])
                return state, t + block

            def one_step(state):
                return step(state, lax.dynamic_index_in_dim(z, t % block, keepdims=False)), t + 1

            state, t = lax.cond((t % block == 0) & (t + block <= end), whole_block, one_step, state)
            return state, t, z

        carry = lax.while_loop(lambda c: c[1] < end, advance, carry)
        return carry, carry[0]

    z0 = jnp.zeros((block, *noise_shape), dtype)
    _, states = lax.scan(segment, (init, jnp.int32(0), z0), record)
    return states


# --------------------------------------------------------------------------------------------------------------
# The engine


def monte_carlo(
    trajectory,
    *,
    trajectories: int,
    record_steps,
    args=(),
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK,
    quantiles=DEFAULT_QUANTILES,
    quantile_of=None,
    quantile_scale: float = 1.0,
    bins: int = DEFAULT_BINS,
    sample_paths: int = 0,
    divergence_bound: float = DEFAULT_BOUND,
    bounds=None,
    confidence: float = 0.95,
    prng: str = DEFAULT_PRNG,
    dims=None,
    progress: bool = True,
    desc: str = "monte carlo",
) -> xr.Dataset:
    """Estimate means, variances, confidence intervals and quantiles of ``trajectory`` over random keys.

    Args:
      trajectory: ``trajectory(key, *args) -> dict[str, array]``, each array of shape [len(record_steps), ...].
        It must be a function JAX can trace and vmap; pass parameters through ``args`` (replicated arrays) so
        that new values reuse the compiled kernel.
      trajectories: N ≥ 1 (at most 2³²: the index is folded into the key as uint32).
      record_steps: the step numbers of the leading axis (strictly increasing, ≥ 0): the ``step`` coordinate.
      args: a tuple of arrays (pytrees) passed to every trajectory.
      seed: integer in [0, 2³²).
      chunk_size: trajectories per device per compiled call (≥ 8; at most ceil(N / devices) are run).
      quantiles: probabilities in [0, 1] (empty: no histograms).
      quantile_of: names of the outputs to histogram (default: all).
      quantile_scale: the linear-to-logarithmic crossover of the histogram bins (the values' typical size).
      bins: histogram bins (≥ 16).
      sample_paths: also return the recorded values of trajectories 0 … sample_paths − 1.
      divergence_bound: divergence bound on |value| (absolute), for every output not in ``bounds``.
      bounds: optional mapping from output name to its own bound (> 0; ``math.inf`` exempts the output from the
        bound: only non-finite values count as diverged). Histogrammed outputs need a finite bound.
      confidence: level of the confidence intervals, in (0, 1).
      prng: one of ``PRNGS``.
      dims: optional mapping from output name to names of its trailing dimensions.
      progress: show a tqdm bar (advanced as chunks finish).
      desc: the bar's label.

    Returns:
      ``xarray.Dataset`` with coordinate ``step`` (and ``quantile``, ``path``) and, for each output ``name``:
      ``name_mean``, ``name_var`` (unbiased), ``name_mean_ci_low/high``, ``name_var_ci_low/high``, ``name_count``
      (elements in the estimates), ``name_diverged_fraction``, ``name_quantile`` and, if asked,
      ``name_paths`` with ``name_path_diverged``.
    """
    spec = _validate_engine(
        trajectories, record_steps, seed, chunk_size, quantiles, bins, sample_paths, divergence_bound
    )
    trajectories, chunk_size, bins = spec["trajectories"], spec["chunk_size"], spec["bins"]  # integral floats → int
    check_in_interval("confidence", confidence, 0.0, 1.0, closed_high=False)
    check_positive_finite("quantile_scale", quantile_scale)
    if prng not in PRNGS:
        raise InputError("prng", f"must be one of {', '.join(PRNGS)} (counter-based), got {prng!r}")
    if prng in SINGLE_DEVICE_PRNGS and jax.device_count() > 1:
        raise InputError(
            "prng", f"{prng} does not compile on several devices in jax {jax.__version__}; use threefry2x32"
        )
    shapes = _output_shapes(trajectory, args, prng, len(spec["record_steps"]))
    quantile_of = tuple(shapes) if quantile_of is None else tuple(quantile_of)
    for name in quantile_of:
        if name not in shapes:
            raise InputError("quantile_of", f"{name!r} is not an output of the trajectory ({', '.join(shapes)})")
    bounds = dict(bounds or {})
    for name, value in bounds.items():
        if name not in shapes:
            raise InputError("bounds", f"{name!r} is not an output of the trajectory ({', '.join(shapes)})")
        if not value > 0:  # also rejects NaN
            raise InputError("bounds", f"the bound of {name!r} must be > 0, got {value!r}")
        if name in quantile_of and quantiles is not None and np.size(quantiles) and not np.isfinite(value):
            raise InputError("bounds", f"{name!r} is histogrammed (quantile_of): its bound must be finite")
    bounds = {name: float(bounds.get(name, divergence_bound)) for name in shapes}
    dims = dict(dims or {})
    for name, shape in shapes.items():
        names = tuple(dims.get(name, (f"{name}_dim_{i}" for i in range(len(shape) - 1))))
        if len(names) != len(shape) - 1:
            raise InputError("dims", f"{name} has trailing shape {shape[1:]}, got dimension names {names}")
        dims[name] = names

    n_dev = jax.device_count()
    chunk_size = min(chunk_size, -(-trajectories // n_dev))  # never run more than N (rounded up to the devices)
    per_call = chunk_size * n_dev
    run = _runner(trajectory, prng)
    acc = Accumulator(shapes, spec, quantile_of, bins, quantile_scale, bounds)
    seed_arr = np.uint32(spec["seed"])
    args = jax.tree.map(jnp.asarray, tuple(args))
    pending: collections.deque = collections.deque()
    bar = tqdm(total=trajectories, unit="traj", unit_scale=True, disable=not progress, desc=desc)

    def collect():
        start, out = pending.popleft()
        n = min(per_call, trajectories - start)
        values = {name: np.asarray(v)[:n] for name, v in out.items()}
        acc.feed(values, start)
        bar.update(n)

    complete = True
    try:
        for start in range(0, trajectories, per_call):
            idx = ((start + np.arange(per_call, dtype=np.int64)) % MAX_TRAJECTORIES).astype(np.uint32)
            pending.append((start, run(idx, seed_arr, args)))
            if len(pending) > 1:  # keep one chunk in flight while the previous one is reduced on the host
                collect()
        while pending:
            collect()
    except KeyboardInterrupt:
        complete = False
        kept = acc.done + acc.state["n_rows"]
        bar.write(f"interrupted: keeping {kept:,} of {trajectories:,} finished trajectories")
    finally:
        bar.close()
    acc.finish()
    z = statistics.NormalDist().inv_cdf((1 + confidence) / 2)
    attrs = {
        "trajectories": trajectories,
        "trajectories_done": acc.done,
        "complete": int(complete),
        "seed": spec["seed"],
        "prng": prng,
        "key_derivation": "fold_in(key(seed, prng), global trajectory index)",
        "chunk_size": chunk_size,
        "super_block": SUPER_BLOCK,
        "confidence": confidence,
        "ci_method": "normal approximation: mean ± z sqrt(s2/n); var ± z sqrt((m4 - s4 (n-3)/(n-1)) / n)",
        "divergence_bound": divergence_bound,
        "divergence_bounds": ", ".join(f"{k}: {v:g}" for k, v in bounds.items()),
        "divergence": "an element is diverged from the first recorded step where it is non-finite or |value| > "
        "its output's bound (divergence_bounds); diverged elements are excluded from mean, var, CIs and quantiles "
        "(name_count counts the rest) and counted in name_diverged_fraction",
        "quantile_method": f"histogram of asinh(value / quantile_scale), {bins} bins over ±asinh(divergence_bound / "
        "quantile_scale) (the output's bound), linear interpolation inside a bin",
        "quantile_scale": quantile_scale,
        "bins": bins,
        **runtime.provenance(),
    }
    return acc.dataset(dims, z, spec["record_steps"], attrs)


def _validate_engine(trajectories, record_steps, seed, chunk_size, quantiles, bins, sample_paths, divergence_bound):
    trajectories = check_int("trajectories", trajectories, minimum=1, maximum=MAX_TRAJECTORIES)
    rec = np.asarray(record_steps)
    if rec.ndim != 1 or rec.size == 0:
        raise InputError("record_steps", "must be a non-empty 1-D list of step numbers")
    for r in rec:
        check_int("record_steps", r, minimum=0)
    rec = rec.astype(np.int64)
    if np.any(np.diff(rec) <= 0):
        raise InputError("record_steps", f"must be strictly increasing, got {rec.tolist()}")
    seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
    chunk_size = check_int("chunk_size", chunk_size, minimum=MIN_CHUNK)
    q = np.asarray(quantiles, dtype=np.float64).ravel()
    if q.size:
        check_in_interval("quantiles", q, 0.0, 1.0, closed_low=True, closed_high=True)
    bins = check_int("bins", bins, minimum=16)
    check_int("sample_paths", sample_paths, minimum=0, maximum=trajectories)
    check_positive_finite("divergence_bound", divergence_bound)
    return {
        "trajectories": trajectories,
        "record_steps": rec,
        "seed": seed,
        "chunk_size": chunk_size,
        "quantiles": q,
        "bins": bins,
        "sample_paths": int(sample_paths),
    }


def _output_shapes(trajectory, args, prng, n_rec) -> dict[str, tuple[int, ...]]:
    """Trace ``trajectory`` abstractly (no compilation) and check its outputs."""
    leaves, treedef = jax.tree.flatten(tuple(args))
    signature = tuple((np.shape(a), str(jnp.result_type(a))) for a in leaves)
    return _traced_shapes(trajectory, prng, n_rec, treedef, signature)


@functools.lru_cache(maxsize=256)
def _traced_shapes(trajectory, prng, n_rec, treedef, signature) -> dict[str, tuple[int, ...]]:
    """:func:`_output_shapes` for one abstract signature of the args (tracing costs ~50 ms: done once)."""
    abstract = jax.tree.unflatten(treedef, [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in signature])
    try:
        out = jax.eval_shape(lambda k, a: trajectory(k, *a), jax.random.key(0, dtype=prng), abstract)
    except Exception as err:  # the user's function failed to trace: say so in the engine's terms
        raise InputError("trajectory", f"cannot be traced with these args: {type(err).__name__}: {err}") from err
    if not isinstance(out, dict) or not out or not all(isinstance(k, str) for k in out):
        raise InputError("trajectory", "must return a non-empty dict mapping names to arrays")
    shapes = {}
    for name, leaf in out.items():
        if not hasattr(leaf, "shape") or not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise InputError("trajectory", f"output {name!r} must be a float array")
        if len(leaf.shape) == 0 or leaf.shape[0] != n_rec:
            raise InputError(
                "trajectory",
                f"output {name!r} has shape {leaf.shape}; its leading axis must be the {n_rec} recorded steps",
            )
        shapes[name] = tuple(leaf.shape)
    return shapes


@functools.lru_cache(maxsize=64)
def _runner(trajectory, prng: str):
    """The chunk kernel: keys from global indices, vmapped trajectories, sharded over every device, jitted."""

    def chunk(idx, seed, args):
        base = jax.random.key(seed, dtype=prng)
        keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(idx)
        return jax.vmap(lambda k: trajectory(k, *args))(keys)

    sharded = jax.shard_map(
        chunk, mesh=runtime.mesh(), in_specs=(P("points"), P(), P()), out_specs=P("points"), check_vma=False
    )
    return jax.jit(sharded)


# --------------------------------------------------------------------------------------------------------------
# Validation shared by the problems on the engine


def check_steps(steps, record_steps, block) -> tuple[int, tuple[int, ...], int]:
    """Validate a problem's time loop for :func:`simulate`; return ``(steps, record_steps as a tuple, block)``.

    ``steps`` in [1, ``MAX_STEPS``], ``block`` in [1, 256], ``record_steps`` strictly increasing in [0, steps]
    (default when None: about 100 evenly spaced steps, with 0 and ``steps``).
    """
    steps = check_int("steps", steps, minimum=1, maximum=MAX_STEPS)
    block = check_int("block", block, minimum=1, maximum=256)
    if record_steps is None:
        record_steps = np.unique(np.linspace(0, steps, min(steps, 100) + 1).round().astype(np.int64))
    rec = np.asarray(record_steps)
    if rec.ndim != 1 or rec.size == 0:
        raise InputError("record_steps", "must be a non-empty 1-D list of step numbers")
    for r in rec:
        check_int("record_steps", r, minimum=0, maximum=steps)
    rec = rec.astype(np.int64)
    if np.any(np.diff(rec) <= 0):
        raise InputError("record_steps", f"must be strictly increasing, got {rec.tolist()}")
    return steps, tuple(int(r) for r in rec), block


def check_dtype(dtype) -> None:
    """Require a working dtype the kernels support: float32, or float64 with x64 mode on."""
    if dtype not in ("float32", "float64"):
        raise InputError("dtype", f"must be float32 or float64, got {dtype!r}")
    if dtype == "float64" and not jax.config.jax_enable_x64:
        raise InputError("dtype", "float64 needs x64 mode: jax.config.update('jax_enable_x64', True) or --x64")
