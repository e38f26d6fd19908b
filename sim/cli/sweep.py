"""``sim sweep``: GD or momentum at every point of a grid of hyperparameters, summaries saved to a results file.

Contract: :func:`add_parser` registers the command and :func:`run` executes it. Every argument is checked
(:func:`sim.linear.sweep.spec.validate`) before JAX is imported, so a bad one costs no start-up; an interrupted sweep
still writes the finished points (exit 130).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from sim.core.validate import check_writable, parse_number_list
from sim.linear.sweep.spec import DEFAULT_CHUNK

AXIS_HELP = (
    "an axis is swept over, one problem per grid point. Grammar: START:STOP:NUM (linear, inclusive), "
    "log:START:STOP:NUM (log-spaced), V1,V2,... (a list) or V (one value)."
)

SWEEP_EPILOG = """\
conventions: loss L(w) = ||y - Xw||^2 (no 1/2); runs start at w0 = 0 (relative error 1); EMA momentum
  z <- (1-beta) z + beta grad, w <- w - eta z (beta = 1 is GD); heavy ball / nesterov use the optax form
  v <- m v + grad, w <- w - lr v.
problem: either --sigma2 AXIS (one single-mode problem per grid point) or --spectrum S1,S2,... (the squared
  singular values of ONE problem with several modes, shared by every grid point; --target gives the optimum's
  coordinates in the singular basis, default all equal).
examples:
  sim sweep momentum --eta 0.001:5:1024 --beta 0.01:1:1024 --spectrum 0.05,5 --steps 2000 --tol 1e-3 -o mom.nc
  sim sweep gd --eta 0.0003:1.2:4096 --sigma2 log:1e-2:1e2:512 --steps 1000 -o gd.nc
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="sweep GD or momentum over a grid of hyperparameters",
        description="Run GD or momentum at every point of a grid and save per-point summaries to netCDF. " + AXIS_HELP,
        epilog=SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("method", choices=["gd", "momentum", "heavy-ball", "nesterov"])
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
        help=f"points per compiled call, each on one device (default {DEFAULT_CHUNK})",
    )
    p.add_argument("--max-points", type=float, default=None, help="refuse grids larger than this (default 2^26)")
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="netCDF file to write")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args) -> int:
    from sim.core import grid
    from sim.linear.sweep import spec  # no JAX: the checks come before it starts

    method = args.method.replace("-", "_")
    # every given axis goes to the checks, which name any parameter the method does not take
    axes = grid.Grid(
        tuple(
            grid.parse_axis(name, getattr(args, name))
            for name in ("learning_rate", "beta", "momentum", "sigma2")
            if getattr(args, name) is not None
        )
    )
    kwargs = {
        "steps": args.steps,
        "tol": args.tol,
        "spectrum": parse_number_list("spectrum", args.spectrum),
        "target": parse_number_list("target", args.target),
        "dtype": "float64" if args.x64 else "float32",
    }
    if args.chunk_size is not None:
        kwargs["chunk_size"] = args.chunk_size
    if args.max_points is not None:
        kwargs["max_points"] = args.max_points
    spec.validate(method, axes, **kwargs, x64=args.x64)
    check_writable(args.output)

    import jax

    from sim.core import io
    from sim.linear.sweep import engine

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    start = time.perf_counter()
    ds = engine.sweep(method, axes, progress=not args.no_progress, **kwargs)
    ds.attrs["command"] = shlex.join(["sim", *args.argv])
    io.write(ds, args.output)
    print(summary(ds, time.perf_counter() - start))
    print(f"wrote {args.output}")
    if not ds.attrs["complete"]:
        print("the run was interrupted: the file holds the finished points (variable 'computed')", file=sys.stderr)
        return 130
    return 0


def summary(ds, seconds: float) -> str:
    import numpy as np

    done = ds.computed.values if "computed" in ds else np.ones(ds.settle_step.shape, bool)  # interrupted: finished
    reached = (ds.settle_step.values >= 0) & done
    diverged = ds.diverged.values & done
    n_done = max(int(done.sum()), 1)
    shares = f"reached tol {ds.attrs['tol']:g}: {reached.sum() / n_done:.1%}   diverged: {diverged.sum() / n_done:.1%}"
    lines = [
        f"{ds.attrs['method']}: {ds.settle_step.size:,} points x {ds.attrs['steps']} steps in {seconds:.1f} s "
        f"({ds.attrs['dtype']}, {ds.attrs['device_count']} {ds.attrs['platform']} device(s))",
        f"  {shares}" if done.all() else f"  of the {done.sum():,} finished points: {shares}",
    ]
    if reached.any():
        steps = np.where(reached, ds.settle_step.values, np.iinfo(np.int32).max)
        best = np.unravel_index(np.argmin(steps), steps.shape)
        where = ", ".join(f"{d}={ds[d].values[i]:.6g}" for d, i in zip(ds.settle_step.dims, best, strict=True))
        measured = ds.contraction.values[best]
        lines.append(
            f"  fastest: {where}: {steps[best]} steps; theory rate {ds.rate.values[best]:.6g}, "
            f"measured contraction {measured:.6g}"
            + (f" (the state fell below {ds.attrs['dtype']}'s range)" if measured == 0 else "")
        )
    return "\n".join(lines)
