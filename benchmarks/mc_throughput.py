"""Throughput of the Monte Carlo engine on the scalar noisy-input problem, in trajectory-steps per second.

Run from the repository root (``python benchmarks/mc_throughput.py``; ``--quick`` is a smoke run of a few seconds
plus compilation). Like every entry point it calls :func:`sim.core.runtime.configure_cpu_devices` before JAX starts, so
each CPU core is one JAX device. Everything is float32. In one run it measures:

1. ``sim.noisy.scalar.scalar`` end to end (progress off): N trajectories × T steps with the default estimator (mean,
   variance, both CIs, histogram quantiles at ``--records`` recorded steps; the divergence check every step), the
   first call (compilation, caches cleared) timed apart from ``--repeats`` warm calls: median, min and max. Also the
   compiled chunk kernel alone on the same trajectories (no host reduction), to show what the reduction costs.
2. A vectorized NumPy implementation of the same estimator on a subsample of trajectories: a loop over steps of
   whole-array float32 ufuncs with ``out=`` buffers (``Generator.standard_normal(out=...)`` with PCG64, which is
   NumPy's fastest normal generator), the same freezing at the bound, recording and float64 estimates at the end.
3. The chosen normal generator alone, the practical limit: the same per-trajectory keys, blocks and sharding as the
   kernel, each draw added into an accumulator (one add per normal, nothing else computed; normals per second =
   trajectory-steps per second). And every PRNG implementation JAX offers, on ONE device (philox cannot be
   compiled for several devices in jax 0.10.2), with a check that a trajectory's draws do not depend on the batch
   it is vmapped in.

At ``--quick`` size the fixed costs of an engine call (the first and last chunks, which nothing overlaps, the
dataset, closed forms and histogram quantiles: about 20 ms here) dominate the end-to-end figure; the targets are
meant for the full size.

Targets (the issue): sim ≥ 3× NumPy, and sim ≥ 70 % of the generator's own rate. Writes a table to stdout and every
measurement, with device, versions and dtype, to ``--out`` (JSON). The machine may be shared: it waits
(``--wait-quiet``) for other processes to go quiet and records their CPU load during every timed set of calls.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from common import Timed, cpu_model, wait_quiet, write_results  # the sibling module of shared benchmark helpers

from sim.core import runtime  # importing sim does not start JAX's backends; configure_cpu_devices() must come first

DTYPE = "float32"
PROBLEM = {"x": 1.0, "y": 1.0, "sigma": 0.5, "learning_rate": 0.3}  # stable: no run diverges, every step is work
IMPLS = ("threefry2x32", "philox4x32", "philox2x32", "threefry4x32", "rbg", "unsafe_rbg")


def stats(work: float, times: list[float], other_load: float) -> dict:
    med = statistics.median(times)
    return {
        "median_s": med,
        "min_s": min(times),
        "max_s": max(times),
        "times_s": times,
        "per_s": work / med,
        "per_s_min": work / max(times),
        "per_s_max": work / min(times),
        "other_load_cores": other_load,
    }


def repeat(fn, repeats: int):
    times = []
    with Timed() as all_calls:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return times, all_calls.other_load


# --------------------------------------------------------------------------------------------------------------
# sim


def time_sim(n: int, steps: int, records: tuple[int, ...], chunk: int, block: int, repeats: int) -> dict:
    import jax
    import numpy as np

    from sim.noisy import engine as mc
    from sim.noisy import scalar as noisy_sgd

    kw = {**PROBLEM, "steps": steps, "trajectories": n, "record_steps": records, "chunk_size": chunk, "block": block}
    kw["progress"] = False
    mc._runner.cache_clear()
    noisy_sgd._scalar_trajectory.cache_clear()
    with Timed() as first:
        ds = noisy_sgd.scalar(**kw)
    times, load = repeat(lambda: noisy_sgd.scalar(**kw), repeats)
    end_to_end = stats(n * steps, times, load)

    # the compiled chunk kernel alone, dispatched exactly as the engine does (no host reduction, no transfer)
    run = mc._runner(noisy_sgd._scalar_trajectory(steps, records, block), mc.DEFAULT_PRNG)
    per_call = chunk * jax.device_count()
    params = (np.asarray([*PROBLEM.values(), mc.DEFAULT_BOUND], DTYPE),)
    starts = range(0, n, per_call)
    idx = [np.arange(s, s + per_call, dtype=np.uint32) for s in starts]

    def kernel_only():
        jax.block_until_ready([run(i, np.uint32(0), params) for i in idx])

    kernel_only()
    times, load = repeat(kernel_only, repeats)
    kernel = stats(len(starts) * per_call * steps, times, load)
    return {
        "first_call_s": first.seconds,
        "end_to_end": end_to_end,
        "kernel_only": kernel,
        "exact_mean_at_T": float(ds.exact_mean[-1]),
        "mc_mean_at_T": float(ds.w_mean[-1]),
        "mc_mean_ci_at_T": [float(ds.w_mean_ci_low[-1]), float(ds.w_mean_ci_high[-1])],
        "diverged_fraction_at_T": float(ds.w_diverged_fraction[-1]),
    }


def time_generator(n: int, steps: int, chunk: int, repeats: int, impl: str, *, sharded: bool, block: int) -> dict:
    """Normals per second of blocked, index-keyed draws consumed by a sum (nothing else computed)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax
    from jax.sharding import PartitionSpec as P

    def one(key):  # one add per normal, no cross-lane reduction inside the loop
        def body(acc, j):
            return acc + jax.random.normal(jax.random.fold_in(key, j), (block,), jnp.float32), None

        return jnp.sum(lax.scan(body, jnp.zeros(block, jnp.float32), jnp.arange(steps // block, dtype=jnp.uint32))[0])

    def chunk_fn(idx, seed):
        base = jax.random.key(seed, dtype=impl)
        return jax.vmap(lambda i: one(jax.random.fold_in(base, i)))(idx)

    if sharded:
        spec = {"mesh": runtime.mesh(), "in_specs": (P("points"), P()), "out_specs": P("points"), "check_vma": False}
        fn = jax.jit(jax.shard_map(chunk_fn, **spec))
        per_call = chunk * jax.device_count()
    else:
        fn = jax.jit(chunk_fn)
        per_call = chunk
    starts = range(0, n, per_call)
    idx = [np.arange(s, s + per_call, dtype=np.uint32) for s in starts]

    def call():
        jax.block_until_ready([fn(i, np.uint32(0)) for i in idx])

    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    times, load = repeat(call, repeats)
    # batch invariance: trajectory 3's draws alone, in a batch of 8 and in a batch of per_call
    one_draw = jax.jit(lambda i: jax.random.normal(jax.random.fold_in(jax.random.key(0, dtype=impl), i), (block,)))
    batched = jax.jit(jax.vmap(one_draw))
    alone = np.asarray(one_draw(np.uint32(3)))
    invariant = bool(
        np.array_equal(alone, np.asarray(batched(np.arange(8, dtype=np.uint32)))[3])
        and np.array_equal(alone, np.asarray(batched(np.arange(per_call, dtype=np.uint32)))[3])
    )
    work = len(starts) * per_call * (steps // block) * block
    return {
        "impl": impl,
        "sharded": sharded,
        "first_call_s": first,
        "batch_invariant": invariant,
        **stats(work, times, load),
    }


# --------------------------------------------------------------------------------------------------------------
# NumPy baseline


def numpy_scalar(n: int, steps: int, records: tuple[int, ...], bound: float, quantiles, seed: int = 0) -> dict:
    """The scalar estimator with whole-array float32 NumPy ops: w ← w − η x̃ (x̃ w − y), frozen beyond the bound."""
    import numpy as np

    f32 = np.float32
    x, y, s, eta = (f32(PROBLEM[k]) for k in ("x", "y", "sigma", "learning_rate"))
    rng = np.random.default_rng(seed)
    w = np.zeros(n, f32)
    z = np.empty(n, f32)
    xt = np.empty(n, f32)
    g = np.empty(n, f32)
    size = np.empty(n, f32)
    alive = np.ones(n, bool)
    rec = np.zeros((len(records), n), f32)
    slot = {r: i for i, r in enumerate(records)}
    bound32 = f32(bound)
    for t in range(steps):
        if t in slot:
            rec[slot[t]] = w
        rng.standard_normal(dtype=np.float32, out=z)
        np.multiply(z, s, out=xt)
        np.add(xt, x, out=xt)  # x̃ = x + σ z
        np.multiply(xt, w, out=g)
        np.subtract(g, y, out=g)
        np.multiply(g, xt, out=g)
        np.multiply(g, eta, out=g)  # η x̃ (x̃ w − y)
        np.less_equal(np.abs(w, out=size), bound32, out=alive)
        np.subtract(w, g, out=w, where=alive)
    if steps in slot:
        rec[slot[steps]] = w
    vals = rec.astype(np.float64)
    ok = np.abs(vals) <= bound
    count = ok.sum(axis=1)
    masked = np.where(ok, vals, 0.0)
    mean = masked.sum(axis=1) / np.maximum(count, 1)
    var = (np.where(ok, vals - mean[:, None], 0.0) ** 2).sum(axis=1) / np.maximum(count - 1, 1)
    q = np.nanquantile(np.where(ok, vals, np.nan), quantiles, axis=1)
    return {"mean": mean, "var": var, "quantiles": q}


def time_numpy(n: int, steps: int, records, repeats: int) -> tuple[dict, dict]:
    from sim.noisy import engine as mc

    result = numpy_scalar(n, steps, records, mc.DEFAULT_BOUND, mc.DEFAULT_QUANTILES)  # warm-up (page faults)
    times, load = repeat(lambda: numpy_scalar(n, steps, records, mc.DEFAULT_BOUND, mc.DEFAULT_QUANTILES), repeats)
    return stats(n * steps, times, load), result


# --------------------------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--trajectories", type=int, default=1_048_576, help="trajectories (default 2^20)")
    p.add_argument("--steps", type=int, default=1000, help="steps per trajectory (default 1000)")
    p.add_argument("--records", type=int, default=11, help="recorded steps, evenly spaced from 0 to T (default 11)")
    p.add_argument("--chunk-size", type=int, default=None, help="trajectories per device per call (default: sim's)")
    p.add_argument("--block", type=int, default=None, help="steps per noise draw (default: sim's)")
    p.add_argument("--repeats", type=int, default=3, help="warm calls per measurement (default 3)")
    p.add_argument("--numpy-trajectories", type=int, default=65_536, help="NumPy subsample (default 65536)")
    p.add_argument("--prng-trajectories", type=int, default=32_768, help="trajectories per PRNG comparison")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/mc_throughput.json"), help="JSON output")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=None,
        help="wait up to this many seconds for a quiet machine (default 300; 0 with --quick)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.trajectories, args.steps, args.repeats = 16_384, 128, 2
        args.numpy_trajectories, args.prng_trajectories = 4096, 4096
    if args.wait_quiet is None:
        args.wait_quiet = 0.0 if args.quick else 300.0
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    flags_set = runtime.configure_cpu_devices()  # before anything starts JAX's backends

    import jax
    import numpy as np

    from sim.noisy import engine as mc

    chunk = args.chunk_size or mc.DEFAULT_CHUNK
    block = args.block or mc.DEFAULT_BLOCK
    records = tuple(int(r) for r in np.unique(np.linspace(0, args.steps, args.records).round()))
    devices = jax.devices()
    prov = runtime.provenance()
    t_start = time.perf_counter()
    print(f"devices: {len(devices)} x {devices[0].device_kind} ({devices[0].platform}); CPU: {cpu_model()}")
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r} (set by configure_cpu_devices: {flags_set is not None})")
    print(f"jax {jax.__version__}, numpy {np.__version__}, dtype {DTYPE}, git {prov['git_revision']}", flush=True)
    quiet = wait_quiet(args.wait_quiet) if args.wait_quiet > 0 else None

    print(f"sim: {args.trajectories:,} trajectories x {args.steps} steps, {len(records)} records ...", flush=True)
    sim = time_sim(args.trajectories, args.steps, records, chunk, block, args.repeats)
    print(f"generator alone ({mc.DEFAULT_PRNG}, sharded like the kernel) ...", flush=True)
    gen = time_generator(args.trajectories, args.steps, chunk, args.repeats, mc.DEFAULT_PRNG, sharded=True, block=block)
    print(f"NumPy on {args.numpy_trajectories:,} trajectories ...", flush=True)
    np_stats, np_result = time_numpy(args.numpy_trajectories, args.steps, records, args.repeats)
    print("PRNG implementations on one device ...", flush=True)
    prngs = []
    for impl in IMPLS:
        try:
            prngs.append(
                time_generator(
                    args.prng_trajectories,
                    min(args.steps, 256),
                    min(chunk, 4096),
                    args.repeats,
                    impl,
                    sharded=False,
                    block=block,
                )
            )
        except Exception as err:  # an implementation this JAX cannot compile here: record why
            prngs.append({"impl": impl, "error": f"{type(err).__name__}: {str(err)[:200]}"})

    rows = [
        ("sim scalar() end to end", sim["end_to_end"], args.trajectories),
        ("sim chunk kernel only", sim["kernel_only"], args.trajectories),
        (f"{mc.DEFAULT_PRNG} normals alone", gen, args.trajectories),
        ("NumPy (out= buffers, PCG64)", np_stats, args.numpy_trajectories),
    ]
    print()
    print(
        f"{'measurement':34s} {'trajectories':>12s} {'median s':>9s} {'traj-steps/s':>13s} {'min..max':>19s} "
        f"{'other load':>10s}"
    )
    for name, st, n in rows:
        print(
            f"{name:34s} {n:>12,} {st['median_s']:>9.3f} {st['per_s']:>13.3g} "
            f"{st['per_s_min']:>9.3g}..{st['per_s_max']:<9.3g} {st['other_load_cores']:>10.2f}"
        )
    print()
    for r in prngs:
        if "error" in r:
            print(f"  {r['impl']:13s} cannot run here: {r['error'][:90]}")
        else:
            print(
                f"  {r['impl']:13s} {r['per_s']:.3g} normals/s ({r['per_s_min']:.3g}..{r['per_s_max']:.3g}) one "
                f"device, batch-invariant={r['batch_invariant']}"
            )
    x_numpy = sim["end_to_end"]["per_s"] / np_stats["per_s"]
    of_gen = sim["end_to_end"]["per_s"] / gen["per_s"]
    targets = {
        "x_numpy": x_numpy,
        "x_numpy_target": 3.0,
        "x_numpy_met": x_numpy >= 3.0,
        "of_generator": of_gen,
        "of_generator_target": 0.7,
        "of_generator_met": of_gen >= 0.7,
        "kernel_only_of_generator": sim["kernel_only"]["per_s"] / gen["per_s"],
    }
    print(
        f"\nsim / NumPy = {x_numpy:.2f} (target >= 3: {'met' if targets['x_numpy_met'] else 'NOT met'}); "
        f"sim / generator alone = {of_gen:.1%} (target >= 70%: {'met' if targets['of_generator_met'] else 'NOT met'})"
    )
    out = {
        "benchmark": "mc_throughput",
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "problem": PROBLEM,
        "record_steps": list(records),
        "dtype": DTYPE,
        "prng": mc.DEFAULT_PRNG,
        "block": block,
        "chunk_size": chunk,
        "device_count": len(devices),
        "device_kind": devices[0].device_kind,
        "cpu_model": cpu_model(),
        "cpu_cores": runtime.cpu_count(),
        "provenance": prov,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_before_start": quiet,
        "loadavg_at_end": list(os.getloadavg()),
        "sim": sim,
        "generator_alone": gen,
        "numpy": {**np_stats, "trajectories": args.numpy_trajectories, "mean_at_T": float(np_result["mean"][-1])},
        "prng_comparison_one_device": prngs,
        "targets": targets,
        "total_wall_s": time.perf_counter() - t_start,
    }
    write_results(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
