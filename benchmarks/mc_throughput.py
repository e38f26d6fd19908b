"""Throughput of the Monte Carlo engine on the scalar noisy-input problem, in trajectory-steps per second.

Run from the repository root (``python benchmarks/mc_throughput.py``; ``--quick`` is a smoke run of a few seconds
plus compilation). Like every entry point it calls :func:`sim.core.runtime.configure_cpu_devices` before JAX starts, so
each CPU core is one JAX device. Everything is float32. In one run it measures:

1. ``sim mc scalar`` end to end: the real command in a subprocess (``python -m sim.cli mc scalar … -o run.nc``),
   start-up, compilation, the run, the closed forms and the netCDF file included, on N trajectories × T steps with
   the command's default recording (about 100 recorded steps); ``--repeats`` runs, median, min and max. Beside it,
   the same command on 8 trajectories (its fixed cost: Python and JAX start-up, imports, compilation, output) and
   ``python -c "import jax; jax.devices()"`` (JAX's own start-up).
2. ``sim.noisy.scalar.scalar`` in process (progress off): the same N × T with ``--records`` recorded steps, the
   first call (compilation, caches cleared) timed apart from the warm calls, and the thread CPU time its host
   reduction took (``Accumulator.reduce`` on the worker threads, ``Accumulator.add`` merging in index order). Also
   the compiled chunk kernel alone, dispatched by :func:`sim.core.engine.run` like the engine's calls (no host
   reduction), to show what the reduction costs.
3. A vectorized NumPy implementation of the same estimator on a subsample of trajectories: a loop over steps of
   whole-array float32 ufuncs with ``out=`` buffers (``Generator.standard_normal(out=...)`` with PCG64, which is
   NumPy's fastest normal generator), the same freezing at the bound, recording and float64 estimates at the end;
   once with ``--records`` recorded steps (against 2.) and once with the command's recording (against 1.).
4. The normal generator alone, the practical limit: the same per-trajectory keys, blocks and per-device calls as the
   kernel, each draw added into an accumulator (one add per normal, nothing else computed; normals per second =
   trajectory-steps per second). And every PRNG implementation JAX offers, on ONE device, with JAX's
   ``jax.random.normal`` and with :func:`sim.noisy.engine.normal` (Giles' erfinv), with a check that a
   trajectory's draws do not depend on the batch it is vmapped in.

The ratios to NumPy compare 2 cores running sim with 1 core running NumPy (NumPy's ufuncs use one thread).

Targets (issue 14): ``sim mc scalar`` end to end ≥ 5× NumPy; (earlier issues) sim in process ≥ 3× NumPy and ≥ 70 % of
the generator's own rate. Writes a table to stdout and every measurement, with device, CPU model, versions and dtype,
to ``--out`` (JSON). The machine may be shared: before every section it waits (``--wait-quiet`` seconds at most) for
other processes to go quiet, and it records their CPU load during every timed set of calls (a subprocess's own CPU
time is not counted as other load).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(ROOT))  # this checkout's sim, not another installed copy (the subprocesses get it too)

from common import Timed, add_out_argument, cpu_model, print_header, results_path, wait_quiet, write_results  # noqa: E402  (the sibling module of benchmark helpers)

from sim.core import runtime  # noqa: E402  (importing sim starts no JAX backend; configure_cpu_devices() comes first)

DTYPE = "float32"
PROBLEM = {"x": 1.0, "y": 1.0, "sigma": 0.5, "learning_rate": 0.3}  # stable: no run diverges, every step is work
IMPLS = ("philox4x32", "threefry2x32", "philox2x32", "threefry4x32", "rbg", "unsafe_rbg")


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


def repeat_subprocess(fn, repeats: int):
    """:func:`repeat` for calls that run subprocesses: their CPU time is theirs, not other processes' load."""
    before = os.times()
    times, load = repeat(fn, repeats)
    after = os.times()
    children = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    return times, max(0.0, load - children / max(sum(times), 1e-9))


# --------------------------------------------------------------------------------------------------------------
# sim mc scalar, end to end


def cli_command(n: int, steps: int, out: Path) -> list[str]:
    problem = ["--x", "1", "--y", "1", "--sigma", str(PROBLEM["sigma"]), "--eta", str(PROBLEM["learning_rate"])]
    run = ["--steps", str(steps), "--trajectories", str(n), "--no-progress", "--overwrite", "-o", str(out)]
    return [sys.executable, "-m", "sim.cli", "mc", "scalar", *problem, *run]


def time_cli(n: int, steps: int, repeats: int) -> dict:
    """``sim mc scalar`` in a subprocess (what a user runs), and its fixed costs."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # the command sets its own
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.nc"

        def run(cmd):
            proc = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
            return proc.stdout

        jax_start, load = repeat_subprocess(lambda: run([sys.executable, "-c", "import jax; jax.devices()"]), repeats)
        small, small_load = repeat_subprocess(lambda: run(cli_command(8, steps, out)), repeats)
        full, full_load = repeat_subprocess(lambda: run(cli_command(n, steps, out)), repeats)
        import xarray as xr

        with xr.open_dataset(out) as ds:
            records = int(ds.sizes["step"])
            check = {
                "exact_mean_at_T": float(ds.exact_mean[-1]),
                "mc_mean_at_T": float(ds.w_mean[-1]),
                "mc_mean_ci_at_T": [float(ds.w_mean_ci_low[-1]), float(ds.w_mean_ci_high[-1])],
                "prng": ds.attrs["prng"],
                "device_count": int(ds.attrs["device_count"]),
                "chunk_size": int(ds.attrs["chunk_size"]),
            }
    return {
        "command": " ".join(cli_command(n, steps, Path("run.nc"))[1:]),
        "records": records,
        "end_to_end": stats(n * steps, full, full_load),
        "fixed_cost_8_trajectories": stats(8 * steps, small, small_load),
        "jax_start_s": statistics.median(jax_start),
        "jax_start_other_load_cores": load,
        **check,
    }


# --------------------------------------------------------------------------------------------------------------
# sim in process


class HostClock:
    """Thread CPU seconds spent in the host reduction (``Accumulator.reduce``, ``Accumulator.add``), all threads."""

    def __init__(self):
        from sim.noisy import streaming

        self.lock, self.seconds = threading.Lock(), {"reduce": 0.0, "add": 0.0}
        self.cls, self.real = streaming.Accumulator, {k: getattr(streaming.Accumulator, k) for k in self.seconds}

    def __enter__(self):
        def timed(name):
            real = self.real[name]

            def wrapper(*args, **kwargs):
                t0 = time.thread_time()
                try:
                    return real(*args, **kwargs)
                finally:
                    with self.lock:
                        self.seconds[name] += time.thread_time() - t0

            return wrapper

        for name in self.seconds:
            setattr(self.cls, name, timed(name))
        return self

    def __exit__(self, *exc):
        for name, real in self.real.items():
            setattr(self.cls, name, real)
        return False


def time_scalar(n: int, steps: int, records: tuple[int, ...], chunk: int, block: int, repeats: int) -> dict:
    """``sim.noisy.scalar.scalar`` in process: the first call (caches cleared: compiles) and the warm calls, with the
    process's CPU time and the host reduction's thread CPU time per call."""
    import jax

    from sim.noisy import engine as mc
    from sim.noisy import scalar as noisy_sgd

    kw = {**PROBLEM, "steps": steps, "trajectories": n, "record_steps": records, "chunk_size": chunk, "block": block}
    kw["progress"] = False
    mc._runner.cache_clear()
    noisy_sgd._scalar_trajectory.cache_clear()
    jax.clear_caches()
    with Timed() as first:
        ds = noisy_sgd.scalar(**kw)
    cpu0 = time.process_time()
    with HostClock() as host:
        times, load = repeat(lambda: noisy_sgd.scalar(**kw), repeats)
    return {
        "records": len(records),
        "first_call_s": first.seconds,
        "end_to_end": stats(n * steps, times, load),
        "process_cpu_s": (time.process_time() - cpu0) / repeats,
        "host_reduction_thread_cpu_s": {k: v / repeats for k, v in host.seconds.items()},
        "exact_mean_at_T": float(ds.exact_mean[-1]),
        "mc_mean_at_T": float(ds.w_mean[-1]),
        "mc_mean_ci_at_T": [float(ds.w_mean_ci_low[-1]), float(ds.w_mean_ci_high[-1])],
        "diverged_fraction_at_T": float(ds.w_diverged_fraction[-1]),
    }


def time_sim(n: int, steps: int, records: tuple[int, ...], chunk: int, block: int, repeats: int) -> dict:
    """:func:`time_scalar`, and the compiled chunk kernel alone, dispatched as the engine does (one thread per
    device), without the host reduction."""
    import jax
    import numpy as np

    from sim.noisy import engine as mc
    from sim.noisy import scalar as noisy_sgd

    out = time_scalar(n, steps, records, chunk, block, repeats)
    calls, size = mc.chunking(n, chunk, jax.device_count())
    run = mc._runner(noisy_sgd._scalar_trajectory(steps, records, block), mc.DEFAULT_PRNG, size)
    params = (np.asarray([*PROBLEM.values(), mc.DEFAULT_BOUND], DTYPE),)
    kernel_only, kernel_load = engine_only(run, calls, size, params, repeats)
    return {
        **out,
        "kernel_only": stats(calls * size * steps, kernel_only, kernel_load),
        "calls": calls,
        "chunk_size": size,
    }


def engine_only(kernel, calls: int, size: int, args, repeats: int):
    """Time ``calls`` calls of ``kernel(start, seed, args)`` run by :func:`sim.core.engine.run` on every device."""
    import jax
    import numpy as np

    from sim.core import engine

    devices = jax.devices()[:calls]
    on_device = {d: jax.device_put(args, d) for d in devices}

    def launch(start, device):
        inputs = jax.block_until_ready(jax.device_put((np.uint32(start), np.uint32(0)), device))
        return kernel(*inputs, on_device[device])

    def once():
        engine.run(
            [k * size for k in range(calls)],
            launch,
            lambda c, out: jax.block_until_ready(out),
            lambda c, r: None,
            devices=devices,
            progress=False,
        )

    once()  # compiles on every device
    return repeat(once, repeats)


def time_generator(n: int, steps: int, chunk: int, repeats: int, impl: str, *, engine_run: bool, block: int) -> dict:
    """Normals per second of blocked, index-keyed draws consumed by a sum (nothing else computed): with
    ``jax.random.normal`` and with :func:`sim.noisy.engine.normal`, on one device or run like the kernel."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    from sim.noisy import engine as mc

    calls, size = mc.chunking(n, chunk, jax.device_count()) if engine_run else (-(-n // chunk), chunk)
    out = {"impl": impl, "engine_run": engine_run, "chunk_size": size}
    for label, normal in (("jax.random.normal", jax.random.normal), ("sim.noisy.engine.normal", mc.normal)):

        def one(key, normal=normal):  # one add per normal, no cross-lane reduction inside the loop
            def body(acc, j):
                return acc + normal(jax.random.fold_in(key, j), (block,), jnp.float32), None

            zero = jnp.zeros(block, jnp.float32)
            return jnp.sum(lax.scan(body, zero, jnp.arange(steps // block, dtype=jnp.uint32))[0])

        def chunk_fn(start, seed, args, one=one):
            base = jax.random.key(seed, dtype=impl)
            return jax.vmap(lambda i: one(jax.random.fold_in(base, i)))(start + jnp.arange(size, dtype=jnp.uint32))

        fn = jax.jit(chunk_fn)
        if engine_run:
            t0 = time.perf_counter()
            times, load = engine_only(fn, calls, size, (), repeats)
            first = time.perf_counter() - t0 - sum(times)
        else:

            def call(fn=fn):  # on the default device, JAX's first
                jax.block_until_ready([fn(np.uint32(k * size), np.uint32(0), ()) for k in range(calls)])

            t0 = time.perf_counter()
            call()
            first = time.perf_counter() - t0
            times, load = repeat(call, repeats)
        # batch invariance: trajectory 3's draws alone, in a batch of 8 and in a batch of the chunk
        draw = jax.jit(
            lambda i, normal=normal: normal(jax.random.fold_in(jax.random.key(0, dtype=impl), i), (block,), jnp.float32)
        )
        batched = jax.jit(jax.vmap(draw))
        alone = np.asarray(draw(np.uint32(3)))
        invariant = bool(
            np.array_equal(alone, np.asarray(batched(np.arange(8, dtype=np.uint32)))[3])
            and np.array_equal(alone, np.asarray(batched(np.arange(size, dtype=np.uint32)))[3])
        )
        work = calls * size * (steps // block) * block
        out[label] = {"first_call_s": first, "batch_invariant": invariant, **stats(work, times, load)}
    return out


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
    p.add_argument("--records", type=int, default=11, help="recorded steps in process, from 0 to T (default 11)")
    p.add_argument("--chunk-size", type=int, default=None, help="trajectories per call (default: sim's)")
    p.add_argument("--block", type=int, default=None, help="steps per noise draw (default: sim's)")
    p.add_argument("--repeats", type=int, default=3, help="warm calls per measurement (default 3)")
    p.add_argument("--numpy-trajectories", type=int, default=65_536, help="NumPy subsample (default 65536)")
    p.add_argument("--prng-trajectories", type=int, default=32_768, help="trajectories per PRNG comparison")
    add_out_argument(p, "mc_throughput")
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
    cli_records = mc.check_steps(args.steps, None, block)[1]  # the command's default recording
    devices = jax.devices()
    prov = runtime.provenance()
    t_start = time.perf_counter()
    print_header(DTYPE, f"XLA_FLAGS set by configure_cpu_devices: {flags_set is not None}")
    waits = {}

    def quiet_before(section):  # the machine may be shared: wait for it before every section, and record the wait
        waits[section] = wait_quiet(args.wait_quiet) if args.wait_quiet > 0 else None

    quiet_before("cli")
    quiet = waits["cli"]
    print(f"sim mc scalar (subprocess): {args.trajectories:,} trajectories x {args.steps} steps ...", flush=True)
    cli = time_cli(args.trajectories, args.steps, args.repeats)
    quiet_before("sim")
    print(f"sim in process: {args.trajectories:,} trajectories x {args.steps} steps, {len(records)} records ...")
    sim = time_sim(args.trajectories, args.steps, records, chunk, block, args.repeats)
    quiet_before("sim_cli_records")
    print(f"sim in process with the command's {len(cli_records)} recorded steps ...", flush=True)
    sim_cli = time_scalar(args.trajectories, args.steps, cli_records, chunk, block, args.repeats)
    quiet_before("generator_alone")
    print(f"generator alone ({mc.DEFAULT_PRNG}, run like the kernel) ...", flush=True)
    gen = time_generator(
        args.trajectories, args.steps, chunk, args.repeats, mc.DEFAULT_PRNG, engine_run=True, block=block
    )
    gen_sim = gen["sim.noisy.engine.normal"]
    quiet_before("numpy")
    print(f"NumPy on {args.numpy_trajectories:,} trajectories ...", flush=True)
    np_stats, np_result = time_numpy(args.numpy_trajectories, args.steps, records, args.repeats)
    np_cli, _ = time_numpy(args.numpy_trajectories, args.steps, cli_records, args.repeats)
    quiet_before("prng_comparison_one_device")
    print("PRNG implementations on one device ...", flush=True)
    prngs = []
    for impl in IMPLS:
        try:
            prngs.append(
                time_generator(
                    args.prng_trajectories, min(args.steps, 256), min(chunk, 8192), args.repeats, impl,
                    engine_run=False, block=block,
                )
            )  # fmt: skip
        except Exception as err:  # an implementation this JAX cannot compile here: record why
            prngs.append({"impl": impl, "error": f"{type(err).__name__}: {str(err)[:200]}"})

    e2e = cli["end_to_end"]
    rows = [
        (f"sim mc scalar end to end ({cli['records']} rec.)", e2e, args.trajectories),
        ("  its fixed cost (8 trajectories)", cli["fixed_cost_8_trajectories"], 8),
        (f"sim scalar() in process ({len(cli_records)} rec.)", sim_cli["end_to_end"], args.trajectories),
        (f"sim scalar() in process ({len(records)} rec.)", sim["end_to_end"], args.trajectories),
        ("sim chunk kernel only", sim["kernel_only"], args.trajectories),
        (f"{mc.DEFAULT_PRNG} + sim normal alone", gen_sim, args.trajectories),
        (f"NumPy ({len(records)} rec.)", np_stats, args.numpy_trajectories),
        (f"NumPy ({len(cli_records)} rec.)", np_cli, args.numpy_trajectories),
    ]
    print()
    print(
        f"{'measurement':40s} {'trajectories':>12s} {'median s':>9s} {'traj-steps/s':>13s} {'min..max':>19s} "
        f"{'other load':>10s}"
    )
    for name, st, n in rows:
        print(
            f"{name:40s} {n:>12,} {st['median_s']:>9.3f} {st['per_s']:>13.3g} "
            f"{st['per_s_min']:>9.3g}..{st['per_s_max']:<9.3g} {st['other_load_cores']:>10.2f}"
        )
    for label, run in ((f"{len(cli_records)}", sim_cli), (f"{len(records)}", sim)):
        host = run["host_reduction_thread_cpu_s"]
        print(
            f"in process, {label} recorded steps: first call {run['first_call_s']:.2f} s (compiles), warm "
            f"{run['end_to_end']['median_s']:.2f} s using {run['process_cpu_s']:.2f} CPU s, of which host reduction "
            f"{host['reduce']:.2f} s (worker threads) + {host['add']:.2f} s (merge)"
        )
    print(
        f"the command: JAX start-up {cli['jax_start_s']:.2f} s; its fixed cost (start-up, imports, compile, closed "
        f"forms, output) {cli['fixed_cost_8_trajectories']['median_s']:.2f} s; end to end "
        f"{e2e['median_s']:.2f} s"
    )
    print()
    for r in prngs:
        if "error" in r:
            print(f"  {r['impl']:13s} cannot run here: {r['error'][:90]}")
            continue
        for label in ("jax.random.normal", "sim.noisy.engine.normal"):
            g = r[label]
            spread = f"{g['per_s_min']:.3g}..{g['per_s_max']:.3g}"
            print(
                f"  {r['impl']:13s} {label:24s} {g['per_s']:.3g} normals/s ({spread}) one device, "
                f"batch-invariant={g['batch_invariant']}"
            )
    x_numpy_e2e = e2e["per_s"] / np_cli["per_s"]
    x_numpy = sim["end_to_end"]["per_s"] / np_stats["per_s"]
    of_gen = sim["end_to_end"]["per_s"] / gen_sim["per_s"]
    targets = {
        "x_numpy_end_to_end": x_numpy_e2e,
        "x_numpy_end_to_end_target": 5.0,
        "x_numpy_end_to_end_met": x_numpy_e2e >= 5.0,
        "x_numpy": x_numpy,
        "x_numpy_target": 3.0,
        "x_numpy_met": x_numpy >= 3.0,
        "of_generator": of_gen,
        "of_generator_target": 0.7,
        "of_generator_met": of_gen >= 0.7,
        "kernel_only_of_generator": sim["kernel_only"]["per_s"] / gen_sim["per_s"],
    }
    print(
        f"\nsim mc scalar end to end / NumPy = {x_numpy_e2e:.2f} (target >= 5: "
        f"{'met' if targets['x_numpy_end_to_end_met'] else 'NOT met'}); in process / NumPy = {x_numpy:.2f} (target "
        f">= 3: {'met' if targets['x_numpy_met'] else 'NOT met'}); in process / generator alone = {of_gen:.1%} "
        f"(target >= 70%: {'met' if targets['of_generator_met'] else 'NOT met'})"
    )
    out = {
        "benchmark": "mc_throughput",
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "problem": PROBLEM,
        "record_steps": list(records),
        "cli_record_steps": len(cli_records),
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
        "load_before_each_section": waits,
        "loadavg_at_end": list(os.getloadavg()),
        "cli": cli,
        "sim": sim,
        "sim_cli_records": sim_cli,
        "generator_alone": gen,
        "numpy": {**np_stats, "trajectories": args.numpy_trajectories, "mean_at_T": float(np_result["mean"][-1])},
        "numpy_cli_records": {**np_cli, "trajectories": args.numpy_trajectories, "records": len(cli_records)},
        "prng_comparison_one_device": prngs,
        "targets": targets,
        "total_wall_s": time.perf_counter() - t_start,
    }
    write_results(results_path(args, "mc_throughput"), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
