"""Monte Carlo engine: many independent random trajectories, reduced to streaming estimates at recorded steps.

Contract: :func:`monte_carlo` validates everything first (raising :class:`sim.core.validate.InputError` before any
compilation), then runs ``trajectory(key, *args)`` for trajectory indices 0 … N − 1 and returns an
``xarray.Dataset`` of estimates at the recorded steps, with attrs recording the settings, versions, devices and
git revision. ``trajectory`` returns a dict of float arrays whose leading axis is the recorded steps; any trailing
shape is allowed (a vector w of shape [n], one value per grid point, …) and every estimate is elementwise.

How the work is run (and why the estimates do not depend on chunk size, device count or finishing order):
- Keys come from the GLOBAL trajectory index, ``fold_in(key(seed, prng), i)`` with a counter-based PRNG, so
  trajectory i draws the same numbers whatever call or device runs it. The N trajectories are cut into calls of
  one size (:func:`chunking`: at most ``chunk_size``, the last call padded; the padding never reaches the
  estimates), and :func:`sim.core.engine.run` runs them: one host thread per device, each launching one call ahead
  of the one it collects, every call an independent single-device jitted call of the vmapped trajectories (no
  SPMD program over the devices: that is what lets the philox generators run, whose ``mulhi`` does not compile in
  multi-device programs in jax 0.10.2). Each device compiles the kernel once.
- Each call's recorded values come back to its host thread, which reduces them at once, in float64, to the call's
  partial result (:meth:`sim.noisy.streaming.Accumulator.reduce`: moments of each whole super-block of
  ``SUPER_BLOCK`` consecutive trajectories, the rows of the super-blocks cut at its ends, diverged counts and
  histogram counts), so the host reduction of one call overlaps the device work of the others. The partials are
  merged in trajectory-index order (:meth:`~sim.noisy.streaming.Accumulator.add`: the cut super-blocks joined and
  reduced, the super-blocks' moments merged by Pébay's exact pairwise update one after another). Every
  super-block is reduced from the same rows by the same code and merged in the same order for any cut of the work:
  results are bitwise identical across chunk sizes, device counts (and the order calls finish in), and memory does
  not grow with N.
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
- SIGINT or SIGTERM (:func:`sim.core.engine.run`): the first stops launching, the calls in flight finish and are
  kept, and the result holds every finished trajectory (a prefix 0 … ``trajectories_done`` − 1 of the indices:
  calls start in index order) with ``attrs["complete"] == 0`` and ``attrs["stopped_by_signal"]``; a second signal
  exits at once.

PRNG: philox4x32 by default, the fastest generator that keeps the draws a function of (seed, trajectory index)
only. Measured on the 2-core CPU of ``benchmarks/RESULTS.md`` (jax 0.10.2, float32 normals in blocks of 32 per
trajectory from index-derived keys, one device; ``benchmarks/mc_throughput.py``): with :func:`normal`, philox4x32
draws 2.5x to 3x the normals of threefry2x32 (the former default), and the scalar kernel runs 2.7x as many
trajectory-steps per CPU second (2.2e8 against 0.8e8). Excluded: philox2x32 (faster, but its keys are 32 bits:
the index-derived keys of 2²⁰ trajectories' 32 blocks would collide about 2¹⁷ times by the birthday bound,
repeating noise across trajectories), rbg and unsafe_rbg (their draws for one key depend on the batch it is vmapped
in), threefry4x32 (ten times slower).

:func:`simulate` is the time loop for trajectory functions: it draws normals in blocks of ``block`` steps
(``fold_in(key, block index)``, so the noise of step t never depends on what is recorded) and records at arbitrary
steps; :func:`check_steps` and :func:`check_dtype` validate a problem's time loop and working dtype. :func:`prepare`
is :func:`monte_carlo`'s validation, returning a :class:`Plan` that a caller with a grid of its own runs block by
block (:meth:`Plan.run_on`, as :func:`sim.noisy.scalar.scalar_sweep` does). The problems on this engine live in their
own modules: the noisy-input SGD of :mod:`sim.noisy.scalar` (scalar) and
:mod:`sim.noisy.vector` (m points in n dimensions).
"""

from __future__ import annotations

import dataclasses
import functools
import signal
import statistics
import sys

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax import lax

from sim.core import engine as run_engine
from sim.core import runtime
from sim.core.validate import InputError, check_in_interval, check_int, check_positive_finite
from sim.noisy.streaming import SUPER_BLOCK, Accumulator

PRNGS = ("philox4x32", "threefry2x32")  # counter-based, 64-bit keys: draws for a key do not depend on the batch
DEFAULT_PRNG = "philox4x32"
DEFAULT_CHUNK = 8192
MIN_CHUNK = 8
DEFAULT_BLOCK = 32
DEFAULT_BOUND = 1e10
DEFAULT_BINS = 8192
DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MAX_TRAJECTORIES = 2**32
MAX_STEPS = 2**24


# --------------------------------------------------------------------------------------------------------------
# The time loop of a trajectory

# Giles' single-precision erfinv ("Approximating the erfinv function", GPU Computing Gems, 2011): a polynomial in
# w − 2.5 for w = −log((1 − x)(1 + x)) < 5 (|x| < 0.9966), else in √w − 3
_ERFINV_CENTRAL = (
    2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
    -0.00125372503, -0.00417768164, 0.246640727, 1.50140941,
)  # fmt: skip
_ERFINV_TAIL = (
    -0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
    -0.0076224613, 0.00943887047, 1.00167406, 2.83297682,
)  # fmt: skip


def normal(key, shape, dtype=jnp.float32):
    """Standard normal draws: ``jax.random.normal``'s method (√2 erfinv(u), u uniform in (−1, 1) from the key's
    bits), with, in float32, Giles' erfinv on log((1 − u)(1 + u)) in place of XLA's (measured on the 2-core CPU,
    inside the vmapped loop of :func:`simulate`: 1.5x the normals per second; max relative error 2.6e-7 against
    float64 erfinv over (−1, 1), XLA's 5.7e-6). float64 draws are ``jax.random.normal``'s."""
    dtype = jnp.dtype(dtype)
    if dtype != jnp.float32:
        return jax.random.normal(key, shape, dtype)
    u = jax.random.uniform(key, shape, dtype, minval=np.nextafter(np.float32(-1), np.float32(0)), maxval=1.0)
    w = -jnp.log((1.0 - u) * (1.0 + u))
    central = w < 5.0
    w = jnp.where(central, w - 2.5, jnp.sqrt(w) - 3.0)
    p = jnp.where(central, np.float32(_ERFINV_CENTRAL[0]), np.float32(_ERFINV_TAIL[0]))
    for a, b in zip(_ERFINV_CENTRAL[1:], _ERFINV_TAIL[1:], strict=True):
        p = jnp.where(central, np.float32(a), np.float32(b)) + p * w
    return np.float32(np.sqrt(2)) * (p * u)


def simulate(step, init, key, *, steps: int, record_steps, block: int = DEFAULT_BLOCK, noise_shape=(), dtype=None):
    """Run ``state ← step(state, z_t)`` for t = 0 … steps − 1 and return the states at ``record_steps``.

    The noise z_t ~ N(0, I) of shape ``noise_shape`` is drawn in blocks: step t uses row t mod ``block`` of
    :func:`normal` ``(fold_in(key, t // block), (block, *noise_shape))``, so it depends only on (key, t, block),
    never on what is recorded or how trajectories are batched.

    The loop is a ``lax.scan`` over the recorded steps (its outputs are the records: no scatter, no stacked
    per-step states); between two records a ``while_loop`` takes whole blocks of ``block`` unrolled steps on one
    draw (the fast path) and single steps with the carried draw where a record or the end cuts a block. The loop
    counter and the branch predicates depend only on t, which is the same for every trajectory, so under vmap
    they stay scalar control flow and a block is one vectorized pass over the chunk. (Measured: scanning over whole
    blocks instead, with the records taken out of each block by selects or by stacking its states, was 1.1x to 20x
    slower: the block's steps no longer fuse into one pass; runs of 16, 8, … steps where a record cuts a block were
    no faster than single steps.)

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
        return normal(jax.random.fold_in(key, (t // block).astype(jnp.uint32)), (block, *noise_shape), dtype)

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
        It must be a function JAX can trace and vmap; pass parameters through ``args`` (arrays, put on each device
        once) so that new values reuse the compiled kernel.
      trajectories: N ≥ 1 (at most 2³²: the index is folded into the key as uint32).
      record_steps: the step numbers of the leading axis (strictly increasing, ≥ 0): the ``step`` coordinate.
      args: a tuple of arrays (pytrees) passed to every trajectory.
      seed: integer in [0, 2³²).
      chunk_size: at most this many trajectories per compiled call, each call on one device (≥ 8; the calls are
        sized evenly, :func:`chunking`).
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
      ``name_paths`` with ``name_path_diverged``. Attrs ``complete`` (0 when a signal stopped the run),
      ``stopped_by_signal`` (its number, else 0) and ``trajectories_done`` say how much was run.
    """
    plan = prepare(
        trajectory,
        trajectories=trajectories,
        record_steps=record_steps,
        args=args,
        seed=seed,
        chunk_size=chunk_size,
        quantiles=quantiles,
        quantile_of=quantile_of,
        quantile_scale=quantile_scale,
        bins=bins,
        sample_paths=sample_paths,
        divergence_bound=divergence_bound,
        bounds=bounds,
        confidence=confidence,
        prng=prng,
        dims=dims,
        devices=jax.device_count(),
    )
    acc = plan.accumulator()
    devices = jax.devices()[: len(plan.chunks)]  # a device without a chunk would only compile the kernel
    on_device = {}  # the args, put on each device once (each worker thread writes its own device's entry)

    def launch(chunk, device):
        if device not in on_device:
            on_device[device] = jax.device_put(plan.args, device)
        return plan.launch(chunk, device, on_device[device])

    def collect(chunk, handle):  # on the worker thread: the chunk's float64 reduction overlaps the other devices
        return acc.reduce(plan.fetch(chunk, handle), chunk.start)

    outcome = run_engine.run(
        plan.chunks,
        launch,
        collect,
        lambda chunk, partial: acc.add(partial),
        devices=devices,
        size=len,
        total=plan.trajectories,
        progress=progress,
        desc=desc,
        unit="traj",
    )
    acc.finish()
    if not outcome.complete:
        print(
            f"{desc}: stopped by {signal.Signals(outcome.signal).name if outcome.signal else 'a signal'}, keeping the "
            f"{acc.done:,} finished of {plan.trajectories:,} trajectories",
            file=sys.stderr,
        )
    return plan.dataset(acc, complete=outcome.complete, stopped_by_signal=outcome.signal or 0)


def chunking(trajectories: int, chunk_size: int, devices: int) -> tuple[int, int]:
    """``(calls, size)``: how :func:`monte_carlo` cuts N trajectories into calls of at most ``chunk_size``.

    As few calls as ``chunk_size`` allows, but at least one per device when every device gets ``SUPER_BLOCK``
    trajectories or more (fewer, smaller runs stay on fewer devices: each device compiles the kernel once); all of
    the same ``size``, a multiple of 8 (the last call runs ``calls × size − N`` padding trajectories, dropped).
    Results do not depend on the cut (module docstring).
    """
    limit = max(MIN_CHUNK, chunk_size // MIN_CHUNK * MIN_CHUNK)
    calls = max(_ceil_div(trajectories, limit), min(devices, trajectories // SUPER_BLOCK), 1)
    size = min(limit, _ceil_div(_ceil_div(trajectories, calls), MIN_CHUNK) * MIN_CHUNK)
    return _ceil_div(trajectories, size), size


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclasses.dataclass(frozen=True)
class Plan:
    """A validated Monte Carlo estimate, ready to run on any device: made by :func:`prepare`.

    :func:`monte_carlo` runs its chunks on every device through :func:`sim.core.engine.run`; a caller with its own
    grid of problems (:func:`sim.noisy.scalar.scalar_sweep`) runs one estimate per grid block on a device with
    :meth:`run_on`. Either way the estimates are those of :class:`sim.noisy.streaming.Accumulator`, bitwise the
    same for any chunking and device.
    """

    trajectory: object
    trajectories: int
    record_steps: np.ndarray
    args: tuple
    seed: int
    size: int  # trajectories per call
    chunks: tuple  # ranges of trajectory indices
    prng: str
    spec: dict
    shapes: dict
    quantile_of: tuple
    quantile_scale: float
    bins: int
    bounds: dict
    dims: dict
    confidence: float
    divergence_bound: float

    def accumulator(self) -> Accumulator:
        return Accumulator(self.shapes, self.spec, self.quantile_of, self.bins, self.quantile_scale, self.bounds)

    def launch(self, chunk: range, device, args):
        """Dispatch the call of trajectories ``chunk`` on ``device`` (``args`` already there); return its outputs."""
        kernel = _runner(self.trajectory, self.prng, self.size)
        # waited for: with its inputs in place, XLA runs the kernel on the calling thread at once; with a transfer in
        # flight it would run it later on a thread of its own
        start, seed = jax.block_until_ready(
            jax.device_put((np.uint32(chunk.start % 2**32), np.uint32(self.seed)), device)
        )
        return kernel(start, seed, args)

    def fetch(self, chunk: range, outputs) -> dict:
        """The recorded values of the chunk's real trajectories (the padding dropped), on the host."""
        return {name: np.asarray(v)[: len(chunk)] for name, v in outputs.items()}

    def run_on(self, device, args=None) -> Accumulator:
        """Every trajectory on ``device``, one call after another (the next dispatched before the last is reduced),
        with ``args`` (default: the plan's) instead of the plan's; return the finished accumulator."""
        args = jax.device_put(self.args if args is None else args, device)
        acc = self.accumulator()
        pending = None
        for chunk in self.chunks:
            launched = (chunk, self.launch(chunk, device, args))
            if pending is not None:
                acc.add(acc.reduce(self.fetch(*pending), pending[0].start))
            pending = launched
        acc.add(acc.reduce(self.fetch(*pending), pending[0].start))
        acc.finish()
        return acc

    def estimates(self, acc: Accumulator) -> xr.Dataset:
        """The estimates of a finished accumulator, without attrs (cheap: for one block of a grid)."""
        return acc.dataset(self.dims, statistics.NormalDist().inv_cdf((1 + self.confidence) / 2), self.record_steps, {})

    def attrs(self) -> dict:
        """The dataset's attrs that describe the settings (not the run's outcome or provenance)."""
        return {
            "trajectories": self.trajectories,
            "seed": self.seed,
            "prng": self.prng,
            "key_derivation": "fold_in(key(seed, prng), global trajectory index)",
            "chunk_size": self.size,
            "super_block": SUPER_BLOCK,
            "confidence": self.confidence,
            "ci_method": "normal approximation: mean ± z sqrt(s2/n); var ± z sqrt((m4 - s4 (n-3)/(n-1)) / n)",
            "divergence_bound": self.divergence_bound,
            "divergence_bounds": ", ".join(f"{k}: {v:g}" for k, v in self.bounds.items()),
            "divergence": "an element is diverged from the first recorded step where it is non-finite or |value| > "
            "its output's bound (divergence_bounds); diverged elements are excluded from mean, var, CIs and "
            "quantiles (name_count counts the rest) and counted in name_diverged_fraction",
            "quantile_method": f"histogram of asinh(value / quantile_scale), {self.bins} bins over "
            "±asinh(divergence_bound / quantile_scale) (the output's bound), linear interpolation inside a bin",
            "quantile_scale": self.quantile_scale,
            "bins": self.bins,
        }

    def dataset(self, acc: Accumulator, *, complete: bool = True, stopped_by_signal: int = 0) -> xr.Dataset:
        """The estimates of a finished accumulator, with the settings, outcome and provenance as attrs."""
        z = statistics.NormalDist().inv_cdf((1 + self.confidence) / 2)
        attrs = {
            **self.attrs(),
            "trajectories_done": acc.done,
            "complete": int(complete),
            "stopped_by_signal": int(stopped_by_signal),
            **runtime.provenance(),
        }
        return acc.dataset(self.dims, z, self.record_steps, attrs)


def prepare(
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
    devices: int = 1,
) -> Plan:
    """Validate the arguments of :func:`monte_carlo` (raising :class:`InputError` before any compilation) and make
    its :class:`Plan`, its calls cut for ``devices`` devices (:func:`chunking`)."""
    spec = _validate_engine(
        trajectories, record_steps, seed, chunk_size, quantiles, bins, sample_paths, divergence_bound
    )
    check_in_interval("confidence", confidence, 0.0, 1.0, closed_high=False)
    check_positive_finite("quantile_scale", quantile_scale)
    if prng not in PRNGS:
        raise InputError("prng", f"must be one of {', '.join(PRNGS)} (counter-based), got {prng!r}")
    args = tuple(args)
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
        if name in quantile_of and spec["quantiles"].size and not np.isfinite(value):
            raise InputError("bounds", f"{name!r} is histogrammed (quantile_of): its bound must be finite")
    bounds = {name: float(bounds.get(name, divergence_bound)) for name in shapes}
    dims = dict(dims or {})
    for name, shape in shapes.items():
        names = tuple(dims.get(name, (f"{name}_dim_{i}" for i in range(len(shape) - 1))))
        if len(names) != len(shape) - 1:
            raise InputError("dims", f"{name} has trailing shape {shape[1:]}, got dimension names {names}")
        dims[name] = names
    n = spec["trajectories"]
    calls, size = chunking(n, spec["chunk_size"], devices)
    return Plan(
        trajectory=trajectory,
        trajectories=n,
        record_steps=spec["record_steps"],
        args=jax.tree.map(np.asarray, args),
        seed=spec["seed"],
        size=size,
        chunks=tuple(range(k * size, min((k + 1) * size, n)) for k in range(calls)),
        prng=prng,
        spec=spec,
        shapes=shapes,
        quantile_of=quantile_of,
        quantile_scale=float(quantile_scale),
        bins=spec["bins"],
        bounds=bounds,
        dims=dims,
        confidence=float(confidence),
        divergence_bound=float(divergence_bound),
    )


def _validate_engine(trajectories, record_steps, seed, chunk_size, quantiles, bins, sample_paths, divergence_bound):
    trajectories = check_int("trajectories", trajectories, minimum=1, maximum=MAX_TRAJECTORIES)
    rec = _check_record_steps(record_steps)
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
def _runner(trajectory, prng: str, size: int):
    """The chunk kernel, jitted: ``size`` trajectories from index ``start`` (uint32, wrapping), each keyed by
    ``fold_in(key(seed), index)`` and vmapped. Each call runs on the one device its inputs were put on."""

    def chunk(start, seed, args):
        base = jax.random.key(seed, dtype=prng)
        keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(start + jnp.arange(size, dtype=jnp.uint32))
        return jax.vmap(lambda k: trajectory(k, *args))(keys)

    return jax.jit(chunk)


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
    rec = _check_record_steps(record_steps, maximum=steps)
    return steps, tuple(int(r) for r in rec), block


def _check_record_steps(record_steps, maximum: int | None = None) -> np.ndarray:
    """``record_steps`` as int64: a non-empty 1-D list of strictly increasing steps in [0, ``maximum``]."""
    rec = np.asarray(record_steps)
    if rec.ndim != 1 or rec.size == 0:
        raise InputError("record_steps", "must be a non-empty 1-D list of step numbers")
    for r in rec:
        check_int("record_steps", r, minimum=0, maximum=maximum)
    rec = rec.astype(np.int64)
    if np.any(np.diff(rec) <= 0):
        raise InputError("record_steps", f"must be strictly increasing, got {rec.tolist()}")
    return rec


def check_dtype(dtype) -> None:
    """Require a working dtype the kernels support: float32, or float64 with x64 mode on."""
    if dtype not in ("float32", "float64"):
        raise InputError("dtype", f"must be float32 or float64, got {dtype!r}")
    if dtype == "float64" and not jax.config.jax_enable_x64:
        raise InputError("dtype", "float64 needs x64 mode: jax.config.update('jax_enable_x64', True) or --x64")
