"""Sweeps streamed to a Zarr store against the in-memory path, and the cost of resuming a killed run.

Every case runs ``sim.linear.sweep.engine.sweep`` in its own subprocess (so each one's peak resident memory is its
own ``ru_maxrss``), with one JAX CPU device per core (``sim.core.runtime.configure_cpu_devices``), float32, GD over a
log grid of (η, σ²) like a real sweep (η from 1e-3 to 1.2: some points settle early, some diverge, some run every
step):

1. in memory: the largest grid that fits the in-memory path (2²⁶ points by default), then written to netCDF;
2. streamed: the out-of-core grid (2³⁰ points by default) written to a ``.zarr`` store as its chunks finish;
3. resume: a streamed run killed (SIGKILL) halfway and resumed, against the same run uninterrupted.

It prints a table and writes point-steps per second, seconds, peak RSS and the ratios (streamed / in memory, resumed /
uninterrupted) with the device, CPU model, versions and dtype to ``benchmarks/results/sweep_store.json``. Targets
(issue: one run engine): peak RSS under 2 GB at 2³⁰ points; streamed throughput at least 0.9× the in-memory path.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_out_argument, cpu_model, results_path, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CASE = """
import json, resource, sys, time
from sim.core import runtime
runtime.configure_cpu_devices()
import jax
from sim.core import io
from sim.core.grid import Grid, parse_axis
from sim.linear.sweep import engine
side, steps, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
resume = len(sys.argv) > 4 and sys.argv[4] == "resume"
grid = Grid((parse_axis("learning_rate", f"log:1e-3:1.2:{side}"), parse_axis("sigma2", f"log:1e-2:1e2:{side}")))
t0 = time.perf_counter()
if out.endswith(".zarr"):
    ds = engine.sweep("gd", grid, steps=steps, tol=1e-3, output=out, resume=resume, progress=False)
    simulated = None
else:
    ds = engine.sweep("gd", grid, steps=steps, tol=1e-3, progress=False)
    simulated = int(ds.simulated_steps.values.astype("int64").sum())
    io.write(ds, out)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "points": grid.size, "complete": int(ds.attrs["complete"]),
                  "simulated_steps": simulated, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "devices": jax.device_count(), "platform": jax.devices()[0].platform,
                  "versions": runtime.versions()}))
"""


def _case(side: int, steps: int, out: Path, *, resume: bool = False) -> dict:
    argv = [sys.executable, "-c", CASE, str(side), str(steps), str(out), *(["resume"] if resume else [])]
    t0 = time.perf_counter()
    run = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if run.returncode:
        raise RuntimeError(run.stderr[-3000:])
    return json.loads(run.stdout.strip().splitlines()[-1]) | {"wall_s": time.perf_counter() - t0}


def _killed_halfway(side: int, steps: int, out: Path) -> float:
    """Start the streamed case and SIGKILL it once half its points are stored; return the wall time it ran."""
    import numpy as np
    import zarr

    argv = [sys.executable, "-c", CASE, str(side), str(steps), str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        try:
            computed = zarr.open_group(str(out), mode="r")["computed"]
            if np.mean(computed[...]) >= 0.5:
                proc.send_signal(signal.SIGKILL)
                break
        except (FileNotFoundError, KeyError, ValueError):
            pass
        time.sleep(0.05)
    proc.wait()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--memory-points", type=int, default=2**26, help="grid of the in-memory case (default 2^26)")
    p.add_argument("--store-points", type=int, default=2**30, help="grid of the streamed case (default 2^30)")
    p.add_argument("--resume-points", type=int, default=2**26, help="grid of the resume case (default 2^26)")
    p.add_argument("--steps", type=int, default=1000, help="steps per run (default 1000)")
    p.add_argument("--dir", type=Path, default=None, help="where the stores go (default: a temporary folder)")
    add_out_argument(p, "sweep_store")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.memory_points = args.store_points = args.resume_points = 2**14
        args.steps = 100
    work = Path(tempfile.mkdtemp(prefix="sim-bench-", dir=args.dir))
    try:
        side = {k: int(round(math.sqrt(getattr(args, k)))) for k in ("memory_points", "store_points", "resume_points")}
        memory = _case(side["memory_points"], args.steps, work / "memory.nc")
        store = _case(side["store_points"], args.steps, work / "store.zarr")
        shutil.rmtree(work / "store.zarr")
        whole = _case(side["resume_points"], args.steps, work / "whole.zarr")
        ran = _killed_halfway(side["resume_points"], args.steps, work / "resumed.zarr")
        resumed = _case(side["resume_points"], args.steps, work / "resumed.zarr", resume=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # point-steps: the in-memory case counts its simulated steps; the others, on the same grid family, scale it
    rate_memory = memory["simulated_steps"] / memory["seconds"]
    steps_per_point = memory["simulated_steps"] / memory["points"]
    rate_store = steps_per_point * store["points"] / store["seconds"]
    rows = [
        ("in memory (+ .nc)", memory["points"], memory["seconds"], rate_memory, memory["rss_mib"]),
        ("streamed (.zarr)", store["points"], store["seconds"], rate_store, store["rss_mib"]),
        ("uninterrupted (wall)", whole["points"], whole["wall_s"], None, whole["rss_mib"]),
        ("killed + resumed (wall)", resumed["points"], ran + resumed["wall_s"], None, resumed["rss_mib"]),
    ]
    print(f"{'case':24s} {'points':>14s} {'seconds':>9s} {'pt-steps/s':>11s} {'peak RSS MiB':>13s}")
    for name, points, seconds, rate, rss in rows:
        print(f"{name:24s} {points:14,d} {seconds:9.1f} {rate or float('nan'):11.3g} {rss:13.0f}")
    ratio = rate_store / rate_memory
    overhead = (ran + resumed["wall_s"]) / whole["wall_s"]  # wall times: every process's start-up included
    print(f"streamed / in memory: {ratio:.2f}x (target >= 0.9); peak RSS streamed {store['rss_mib']:.0f} MiB")
    print(f"killed + resumed / uninterrupted: {overhead:.2f}x (process start-up and the recomputed chunk included)")
    write_results(
        results_path(args, "sweep_store"),
        {
            "benchmark": "sweep_store",
            "dtype": "float32",
            "steps": args.steps,
            "method": "gd",
            "grid": "learning_rate log:1e-3:1.2 x sigma2 log:1e-2:1e2 (square)",
            "platform": memory["platform"],
            "device_count": memory["devices"],
            "cpu_model": cpu_model(),
            "versions": memory["versions"],
            "in_memory": memory,
            "streamed": store,
            "uninterrupted": whole,
            "killed_after_s": ran,
            "resumed": resumed,
            "point_steps_per_s": {"in_memory": rate_memory, "streamed": rate_store},
            "streamed_over_in_memory": ratio,
            "resumed_over_uninterrupted": overhead,
            "targets": {"streamed_rss_mib_below": 2048, "streamed_over_in_memory_at_least": 0.9},
            "met": {"rss": store["rss_mib"] < 2048, "throughput": ratio >= 0.9},
            "quick": bool(args.quick),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
