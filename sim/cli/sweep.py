"""``sim sweep``: GD or momentum at every point of a grid of hyperparameters, summaries saved to a results file.

Contract: :func:`add_parser` registers the command and :func:`run` executes it. Every argument is checked before JAX
is imported, so a bad one costs no start-up: the grid's size from the axes' text before any axis is built
(:func:`sim.core.grid.parse_grid`), the arguments and the values against the dtype's range
(:func:`sim.linear.sweep.spec.validate`), and the output path (:func:`sim.core.validate.check_writable`,
:func:`sim.core.io.check_output`: an existing output needs ``--resume`` or ``--overwrite``). A SIGINT or SIGTERM stops
the sweep after the chunks in flight and writes the finished points (exit 130 or 143); a ``.zarr`` output is written as
chunks finish and a killed run continues with ``--resume``. ``--coordinator``/``--num-processes``/``--process-id`` (or
``--distributed``) join several processes, each computing its share into the same store.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from sim.core.validate import (
    InputError,
    check_int,
    check_writable,
    parse_number_list,
)
from sim.linear.sweep.spec import DEFAULT_CHUNK

AXES = ("learning_rate", "beta", "momentum", "sigma2")  # the options that take an axis, in grid order

DESCRIPTION = """\
Run GD or momentum at every point of a grid of hyperparameters and save per-point summaries to netCDF (.nc) or to a
Zarr store (.zarr: written as the run goes, resumable with --resume, no grid-sized memory).

Each option marked AXIS is swept over, one run per grid point; the grid is the product of the axes. An AXIS is
  START:STOP:NUM      NUM evenly spaced values from START to STOP inclusive   (0.01:1:100)
  log:START:STOP:NUM  NUM log-spaced values from START to STOP inclusive      (log:1e-2:1e2:512)
  V1,V2,...           a list, sorted ascending for you; no value twice        (0.05,5)
  V                   one value                                               (0.5)
A grid over --max-points points (default 2^26 for .nc; for .zarr, what the disk holds) is refused before anything is
built."""

SWEEP_EPILOG = """\
conventions: loss L(w) = ||y - Xw||^2 (no 1/2); runs start at w0 = 0 (relative error 1); EMA momentum
  z <- (1-beta) z + beta grad, w <- w - eta z (beta = 1 is GD); heavy ball / nesterov use the optax form
  v <- m v + grad, w <- w - lr v.
problem: either --sigma2 AXIS (one single-mode problem per grid point) or --spectrum S1,S2,... (the squared
  singular values of ONE problem with several modes, shared by every grid point; --target gives the optimum's
  coordinates in the singular basis, default all equal).
range: values are computed in float32 (float64 with --x64). Every value of --eta, --beta, --momentum, --sigma2,
  --spectrum and --target must be 0 or have a magnitude the dtype holds as a normal number (float32: 1.2e-38 to
  3.4e38; float64: 2.2e-308 to 1.8e308), and 2 * eta * sigma2 for the largest eta and sigma2 (or spectrum value)
  must be at most sqrt(max)/16 (float32: 1.15e18; float64: 8.4e152), since the rate squares it. Other input is
  refused before anything runs.
interrupting: SIGINT (Ctrl-C) or SIGTERM finishes the chunks in flight, writes the finished points and exits 130 or
  143 (a second signal stops at once, keeping what a .zarr store holds); unfinished points hold -1 / NaN and
  'computed' is False there. A .zarr run killed any way continues with the same command and --resume.
several processes: --coordinator HOST:PORT --num-processes N --process-id I (or --distributed under SLURM / Open
  MPI) on every process, with the same -o RUN.zarr; each computes its share of the chunks on its local devices.
examples:
  sim sweep momentum --eta 0.001:5:1024 --beta 0.01:1:1024 --spectrum 0.05,5 --steps 2000 --tol 1e-3 -o mom.nc
  sim sweep gd --eta 0.0003:1.2:4096 --sigma2 log:1e-2:1e2:512 --steps 1000 -o gd.nc
  sim sweep gd --eta log:1e-3:1.2:32768 --sigma2 log:1e-2:1e2:32768 -o big.zarr   (2^30 points, streamed)
  sim sweep gd --eta log:1e-3:1.2:32768 --sigma2 log:1e-2:1e2:32768 -o big.zarr --resume
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="sweep GD or momentum over a grid of hyperparameters",
        description=DESCRIPTION,
        epilog=SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("method", choices=["gd", "momentum", "heavy-ball", "nesterov"], help="the optimizer")
    p.add_argument("--eta", "--lr", dest="learning_rate", metavar="AXIS", help="learning rate η (> 0)")
    p.add_argument("--beta", metavar="AXIS", help="EMA momentum weight β of the new gradient, in (0, 1]")
    p.add_argument("--momentum", metavar="AXIS", help="heavy-ball/nesterov momentum m, in [0, 1)")
    p.add_argument("--sigma2", metavar="AXIS", help="squared singular value σ² (> 0), one problem per point")
    p.add_argument("--spectrum", metavar="S1,S2,...", help="squared singular values of one multi-mode problem")
    p.add_argument("--target", metavar="C1,C2,...", help="coordinates of w* in the singular basis (with --spectrum)")
    p.add_argument("--steps", type=float, default=1000, help="steps per run (default 1000)")
    p.add_argument("--tol", type=float, default=1e-3, help="relative-error tolerance in (0, 1) (default 1e-3)")
    p.add_argument("--x64", action="store_true", help="float64 instead of float32")
    p.add_argument(
        "--chunk-size",
        type=float,
        default=None,
        help=f"points per compiled call, each on one device (default {DEFAULT_CHUNK}; for a .zarr store 1/64 of the "
        "grid, up to 2^20)",
    )
    p.add_argument(
        "--max-points", type=float, default=None, help="refuse grids of more points than this, >= 1 (default 2^26)"
    )
    p.add_argument("--resume", action="store_true", help="continue the .zarr store a killed run of this command left")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    add_cluster_arguments(p)
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="PATH",
        help="results file: .nc (netCDF, written at the end) or .zarr (a store written as chunks finish, resumable)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args) -> int:
    from sim.core import grid, io
    from sim.linear.sweep import spec  # no JAX: the checks come before it starts

    method = args.method.replace("-", "_")
    store = io.is_store(args.output)
    default_budget = spec.STORE_MAX_POINTS if store else grid.MAX_POINTS
    max_points = default_budget if args.max_points is None else check_int("max_points", args.max_points, minimum=1)
    # every given axis goes to the checks, which name any parameter the method does not take; the grid's size is
    # checked from the axes' text before any axis is built
    specs = {name: getattr(args, name) for name in AXES if getattr(args, name) is not None}
    axes = grid.parse_grid(specs, max_points=max_points, knob="--max-points")
    kwargs = {
        "steps": args.steps,
        "tol": args.tol,
        "spectrum": parse_number_list("spectrum", args.spectrum),
        "target": parse_number_list("target", args.target),
        "dtype": "float64" if args.x64 else "float32",
        "max_points": max_points,
    }
    if args.chunk_size is not None:
        kwargs["chunk_size"] = args.chunk_size
    checked = spec.validate(method, axes, **kwargs, x64=args.x64, store=store)
    if args.resume and not store:
        raise InputError("--resume", f"only a .zarr store can be resumed, not {args.output}")
    check_writable(args.output)
    record = spec.recorded(method, axes, checked, spec.DEFAULT_BOUND)
    resume = io.check_output(args.output, resume=args.resume, overwrite=args.overwrite, spec=record)
    several = several_processes(args, store)

    jax = start_jax(args, several)
    from sim.linear.sweep import engine

    start = time.perf_counter()
    ds = engine.sweep(
        method,
        axes,
        progress=not args.no_progress,
        output=args.output if store else None,
        resume=resume,
        attrs={"command": shlex.join(["sim", *args.argv])},
        **kwargs,
    )
    if not store:
        io.write(ds, args.output)
    if jax.process_index() == 0:
        print(summary(ds, time.perf_counter() - start))
        print(f"wrote {args.output}")
    if not ds.attrs["complete"]:
        again = "; continue it with the same command and --resume" if store else ""
        print(
            f"the run was interrupted: {args.output} holds the finished points (variable 'computed'){again}",
            file=sys.stderr,
        )
        return 128 + (ds.attrs.get("stopped_by_signal") or 2)
    return 0


def add_cluster_arguments(p) -> None:
    """The flags that join several processes writing one store (``sim sweep``, ``sim mc sweep``)."""
    p.add_argument("--coordinator", metavar="HOST:PORT", help="several processes: process 0's address")
    p.add_argument("--num-processes", type=int, metavar="N", help="several processes: how many take part")
    p.add_argument("--process-id", type=int, metavar="I", help="several processes: this one's index in [0, N)")
    p.add_argument("--distributed", action="store_true", help="several processes: detect them (SLURM, Open MPI)")


def several_processes(args, store: bool) -> bool:
    """Whether the command asks for several processes (refused unless they write into a store)."""
    several = args.distributed or args.coordinator is not None or args.num_processes is not None
    if several and not store:
        raise InputError("--output", "several processes write into one .zarr store: give -o RUN.zarr")
    return several


def start_jax(args, several: bool):
    """Import JAX once the checks have passed, join the processes (``several``), turn on float64 for ``--x64``;
    return the module."""
    import jax

    if several:
        from sim.core import cluster

        cluster.initialize(args.coordinator, args.num_processes, args.process_id, auto=args.distributed)
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    return jax


def summary(ds, seconds: float, *, batch: int = 2**22) -> str:
    """A few lines on the sweep: shares that settled and diverged, and the fastest point (of the finished ones).

    Reads the dataset in slices of about ``batch`` points along its first dimension, so a store larger than memory
    is summarized in bounded memory."""
    import numpy as np

    dims = ds.settle_step.dims
    rows = max(1, batch // max(1, ds.settle_step.size // ds.sizes[dims[0]]))
    n_done = reached_n = diverged_n = 0
    best = None  # (steps, index)
    for start in range(0, ds.sizes[dims[0]], rows):
        part = ds.isel({dims[0]: slice(start, start + rows)})
        done = part.computed.values
        settle = part.settle_step.values
        reached = (settle >= 0) & done
        n_done += int(done.sum())
        reached_n += int(reached.sum())
        diverged_n += int((part.diverged.values & done).sum())
        if reached.any():
            steps = np.where(reached, settle, np.iinfo(np.int32).max)
            k = np.unravel_index(np.argmin(steps), steps.shape)
            if best is None or steps[k] < best[0]:
                best = (int(steps[k]), (k[0] + start, *k[1:]))
    size = ds.settle_step.size
    shares = f"reached tol {ds.attrs['tol']:g}: {reached_n / max(n_done, 1):.1%}   "
    shares += f"diverged: {diverged_n / max(n_done, 1):.1%}"
    lines = [
        f"{ds.attrs['method']}: {size:,} points x {ds.attrs['steps']} steps in {seconds:.1f} s "
        f"({ds.attrs['dtype']}, {ds.attrs['device_count']} {ds.attrs['platform']} device(s))",
        f"  {shares}" if n_done == size else f"  of the {n_done:,} finished points: {shares}",
    ]
    if best is not None:
        steps, index = best
        point = ds.isel(dict(zip(dims, index, strict=True)))
        where = ", ".join(f"{d}={float(point[d]):.6g}" for d in dims)
        measured = float(point.contraction)
        lines.append(
            f"  fastest: {where}: {steps} steps; theory rate {float(point.rate):.6g}, "
            f"measured contraction {measured:.6g}" + (" (the state became exactly 0)" if measured == 0 else "")
        )
    return "\n".join(lines)
