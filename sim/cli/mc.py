"""``sim mc``: Monte Carlo of SGD with noisy inputs (scalar runs, (η, σ) sweeps, the vector problem).

Contract: :func:`add_parser` registers ``sim mc {scalar,sweep,vector}`` on the ``sim`` command's subparsers and
:func:`run` executes one; every check raises :class:`sim.core.validate.InputError` before anything is compiled (the
``sim`` command turns it into one line on stderr and exit status 2), the output's too (an existing one needs
``--overwrite``). Results go to netCDF through :mod:`sim.core.io`; ``sim mc sweep`` also streams to a ``.zarr`` store
that a killed run continues with ``--resume``. A few lines of theory beside the simulation go to stdout. A run stopped
by SIGINT or SIGTERM writes what finished and exits 130 or 143.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from sim.cli.sweep import add_cluster_arguments, several_processes, start_jax
from sim.core.validate import InputError, check_int, check_writable

COMMON_EPILOG = """\
conventions: per-sample loss l = 1/2 (x~ w - y)^2 with x~ = x + N(0, sigma^2) drawn fresh at every use; w0 = 0.
  The mean of w_t follows GD on the ridge objective with lambda = sigma^2 (1/m-normalized); the second moment
  has its own, stricter threshold (sim.noisy.scalar).
"""

EPILOGS = {
    "scalar": COMMON_EPILOG + "example:\n  sim mc scalar --x 1 --y 1 --sigma 0.5 --eta 0.5 --steps 200 "
    "--trajectories 1000000 -o scalar.nc\n",
    "sweep": COMMON_EPILOG + "axes: START:STOP:NUM, log:START:STOP:NUM, V1,V2,... or V.\n"
    "results: -o RUN.nc (written at the end) or -o RUN.zarr (written as blocks finish; a killed run continues\n"
    "  with the same command and --resume; several processes, each given --coordinator HOST:PORT\n"
    "  --num-processes N --process-id I or --distributed, share one store).\nexample:\n"
    "  sim mc sweep --eta 0.05:2.5:50 --sigma 0:1.5:31 --steps 400 --trajectories 2000 -o boundaries.nc\n",
    "vector": COMMON_EPILOG + "data: --data FILE (.csv: one row per point, last column y, '#' comments; .npz: arrays "
    "x and y),\n  or a seeded random problem (--points, --dim) whose X has singular values\n"
    "  sqrt(m) * geomspace(1.5, 0.15).\nexample:\n"
    "  sim mc vector --points 40 --dim 8 --sigma 0.3 --eta 0.05 --batch-size 4 --steps 4000 "
    "--trajectories 2000 -o vec.nc\n",
}


def add_parser(sub) -> None:
    mc = sub.add_parser(
        "mc",
        help="Monte Carlo of SGD with noisy inputs, beside its exact moments",
        description="Many independent noisy-input SGD runs in one sharded kernel, reduced to streaming estimates "
        "(mean, variance, confidence intervals, quantiles) beside the exact recursions.",
    )
    kinds = mc.add_subparsers(dest="kind", required=True, metavar="KIND")
    sc = _problem_parser(kinds, "scalar", "one data point (x, y): MC mean and variance of w_t against exact ones")
    sc.add_argument("--x", type=float, default=1.0, help="the data point x (default 1)")
    sc.add_argument("--y", type=float, default=1.0, help="its label y (default 1)")
    sc.add_argument("--sigma", type=float, required=True, help="input-noise standard deviation sigma >= 0")
    sc.add_argument("--eta", "--lr", dest="learning_rate", type=float, required=True, help="learning rate > 0")
    sc.add_argument("--paths", type=float, default=0, help="also keep this many full sample paths (default 0)")

    sw = _problem_parser(kinds, "sweep", "(eta, sigma) map: where the mean converges, the variance stays bounded")
    sw.add_argument("--eta", "--lr", dest="learning_rate", metavar="AXIS", required=True, help="learning rates")
    sw.add_argument("--sigma", metavar="AXIS", required=True, help="noise standard deviations")
    sw.add_argument("--x", metavar="AXIS", default="1", help="the data point: a value or an axis (default 1)")
    sw.add_argument("--y", type=float, default=1.0, help="the label y (default 1)")
    sw.add_argument("--max-points", type=float, help="refuse grids larger than this (default 2^26)")

    ve = _problem_parser(kinds, "vector", "m points in n dimensions: the average iterate converges to ridge")
    ve.add_argument("--data", metavar="FILE", help="a .csv or .npz data file (default: a seeded random problem)")
    ve.add_argument("--points", type=float, default=40, help="m, rows of the random problem (default 40)")
    ve.add_argument("--dim", type=float, default=8, help="n, columns of the random problem (default 8)")
    ve.add_argument("--sigma", type=float, required=True, help="input-noise standard deviation sigma >= 0")
    ve.add_argument("--eta", "--lr", dest="learning_rate", type=float, required=True, help="learning rate > 0")
    ve.add_argument("--batch-size", type=float, default=1, help="minibatch size b in [1, m] (default 1)")
    ve.add_argument("--decay", type=float, help="step size eta / (1 + t / DECAY) (default: constant)")


def _problem_parser(kinds, name: str, help_text: str) -> argparse.ArgumentParser:
    p = kinds.add_parser(
        name,
        help=help_text,
        description=help_text[0].upper() + help_text[1:] + ".",
        epilog=EPILOGS[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--steps", type=float, default=200, help="SGD steps T per run (default 200)")
    default = {"scalar": 100_000, "sweep": 2000, "vector": 2000}[name]
    p.add_argument("--trajectories", type=float, default=default, help=f"independent runs N (default {default})")
    p.add_argument("--seed", type=float, default=0, help="seed; run i uses fold_in(key(seed), i) (default 0)")
    p.add_argument("--x64", action="store_true", help="float64 instead of float32")
    p.add_argument("--chunk-size", type=float, default=None, help="runs per device per compiled call")
    if name == "sweep":
        p.add_argument(
            "-o",
            "--output",
            required=True,
            metavar="PATH",
            help="results file: .nc (written at the end) or .zarr (a store written as blocks finish, resumable)",
        )
        p.add_argument("--resume", action="store_true", help="continue the .zarr store a killed run left")
        add_cluster_arguments(p)
    else:
        p.add_argument("-o", "--output", required=True, metavar="PATH", help="netCDF file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def run(args) -> int:
    from sim.core import io

    resume = getattr(args, "resume", False)
    store = io.is_store(args.output)
    if store and args.kind != "sweep":
        raise InputError("--output", f"sim mc {args.kind} writes a .nc file, not a .zarr store")
    if resume and not store:
        raise InputError("--resume", f"only a .zarr store can be resumed, not {args.output}")
    check_writable(args.output)
    if not resume:  # a resumed store's recorded spec is checked by the sweep itself, before it compiles anything
        io.check_output(args.output, overwrite=args.overwrite)
    common = {
        "steps": args.steps,
        "trajectories": args.trajectories,
        "seed": args.seed,
        "dtype": "float64" if args.x64 else "float32",
        "progress": not args.no_progress,
    }
    if args.chunk_size is not None:
        common["chunk_size"] = args.chunk_size
    several, sweep = False, None
    if args.kind == "sweep":
        sweep = _sweep_settings(args)  # the axes are checked (the grid's size from their text) before JAX starts
        several = several_processes(args, store)

    jax = start_jax(args, several)
    start = time.perf_counter()
    command = {"command": shlex.join(["sim", *args.argv])}
    if args.kind == "sweep":
        stream = {"output": args.output, "resume": resume} if store else {}
        ds, lines = _sweep(args, sweep | common | stream, command)
    else:
        ds, lines = {"scalar": _scalar, "vector": _vector}[args.kind](args, common)
        ds.attrs.update(command)
    if not store:
        io.write(ds, args.output)
    if jax.process_index() == 0:
        took = time.perf_counter() - start
        print(f"mc {args.kind}: {took:.1f} s ({common['dtype']}, {ds.attrs['device_count']} device(s))")
        print("\n".join(lines))
        print(f"wrote {args.output}")
    if not ds.attrs.get("complete", 1):
        again = "; continue it with the same command and --resume" if store else ""
        print(f"the run was interrupted: {args.output} holds the finished work{again}", file=sys.stderr)
        return 128 + (ds.attrs.get("stopped_by_signal") or 2)
    return 0


def _scalar(args, common):
    from sim.noisy import scalar

    paths = check_int("paths", args.paths, minimum=0)
    ds = scalar.scalar(
        x=args.x, y=args.y, sigma=args.sigma, learning_rate=args.learning_rate, sample_paths=paths, **common
    )
    last = ds.isel(step=-1)
    a = ds.attrs
    if a["learning_rate"] >= a["mean_threshold"]:  # no limit to print: the mean itself diverges
        limits = "none: the mean diverges (eta >= the mean threshold), and so does the variance"
    elif a["learning_rate"] >= a["variance_threshold"]:
        limits = f"mean {a['mean_limit']:.6g}; the variance grows without bound (eta >= the variance threshold)"
    else:
        limits = f"mean {a['mean_limit']:.6g}, variance {a['variance_limit']:.6g}"
    n, runs = int(last.w_count), int(a["trajectories_done"])
    (mean, mean_note), (var, var_note) = _scalar_estimates(last, a)
    lines = [
        f"  thresholds: mean converges iff eta < {a['mean_threshold']:.6g}; variance bounded iff eta < "
        f"{a['variance_threshold']:.6g} (eta = {a['learning_rate']:g})",
        f"              fourth moment bounded (the variance's interval needs it) iff eta < "
        f"{a['fourth_moment_threshold']:.6g}",
        f"  w_T at T = {int(last.step)} over n = {n:,} of {runs:,} runs ({runs - n:,} diverged):",
        f"    MC mean {mean}  exact {float(last.exact_mean):.6g}{mean_note}",
        f"    MC var  {var}  exact {float(last.exact_var):.6g}{var_note}",
        f"  limits: {limits}",
    ]
    return ds, lines


def _scalar_estimates(last, attrs) -> tuple[tuple[str, str], tuple[str, str]]:
    """(value, note) for the printed MC mean and variance of w_T: an interval only where it rests on at least
    ``ci_min_count`` runs and (variance) where w has a bounded fourth moment; otherwise the note says why not."""
    n, few = int(last.w_count), attrs["ci_min_count"]
    if n == 0:
        return ("none", "  (every run diverged)"), ("none", "  (every run diverged)")
    mean, var = f"{float(last.w_mean):.6g}", f"{float(last.w_var):.6g}"
    if n < few:
        why = f"  (no interval: n = {n} < {few} runs)"
        return (mean, why), ((var, why) if n > 1 else ("none", "  (needs n >= 2 runs)"))
    mean += f" [{float(last.w_mean_ci_low):.6g}, {float(last.w_mean_ci_high):.6g}]"
    if not attrs["variance_ci_valid"]:
        r = attrs["fourth_moment_factor"]
        return (mean, ""), (var, f"  (no interval: fourth moment unbounded, E(1 - eta x~^2)^4 = {r:.4g} >= 1)")
    return (mean, ""), (f"{var} [{float(last.w_var_ci_low):.6g}, {float(last.w_var_ci_high):.6g}]", "")


def _sweep_settings(args) -> dict:
    """The sweep's grid from the axis text (its size checked against ``--max-points`` before any axis is built), the
    budget, and x when it has one value (a setting, not an axis)."""
    from sim.core import grid

    max_points = grid.MAX_POINTS if args.max_points is None else check_int("max_points", args.max_points, minimum=1)
    specs = {"learning_rate": args.learning_rate, "sigma": args.sigma, "x": args.x}
    axes = grid.parse_grid(specs, max_points=max_points, knob="--max-points").axes
    settings = {"grid": grid.Grid(tuple(a for a in axes if a.name != "x" or len(a) > 1)), "max_points": max_points}
    return settings if len(axes[-1]) > 1 else settings | {"x": float(axes[-1].values[0])}


def _sweep(args, settings, attrs):
    import numpy as np

    from sim.noisy import scalar

    ds = scalar.scalar_sweep(y=args.y, attrs=attrs, **settings)
    done = ds.computed.values
    if not done.any():
        return ds, ["  no grid point finished"]
    lines = [f"  {int(done.sum()):,} of {done.size:,} grid points computed"] if not done.all() else []
    for flag, theory in (("mean_converges", "theory_mean_converges"), ("variance_bounded", "theory_variance_bounded")):
        simulated, predicted = ds[flag].values[done], ds[theory].values[done]
        lines.append(
            f"  {flag}: {simulated.mean():.1%} of the grid; agrees with theory at {np.mean(simulated == predicted):.1%}"
        )
    between = ds.theory_mean_converges.values & ~ds.theory_variance_bounded.values
    lines.append(f"  between the two thresholds (mean settles, variance grows): {between[done].mean():.1%} of the grid")
    return ds, lines


def _vector(args, common):
    import numpy as np

    from sim.noisy import vector as noisy_vector
    from sim.regression import designs

    if args.data is not None:
        x, y = designs.load_data(args.data)
    else:
        m = check_int("points", args.points, minimum=1)
        n = check_int("dim", args.dim, minimum=1)
        x, y = designs.synthetic_problem(shape=(m, n), seed=common["seed"])
    ds = noisy_vector.vector(
        x, y, sigma=args.sigma, learning_rate=args.learning_rate, batch_size=args.batch_size, decay=args.decay, **common
    )
    last = ds.isel(step=-1)
    factors = zip(
        np.asarray(ds.singular_value),
        np.where(ds.factor_defined, [f"{f:.3f}" for f in np.asarray(ds.factor)], "n/a (u^T y = 0)"),
        np.asarray(ds.ridge_factor),
        strict=True,
    )
    lines = [
        f"  m = {x.shape[0]} points, n = {x.shape[1]} dims, ridge lambda = m sigma^2 = {x.shape[0] * args.sigma**2:g}",
        f"  at T = {int(last.step)}: |MC mean w - w_ridge| = {float(last.mean_dist_ridge):.4g}, "
        f"|MC mean w - w_lstsq| = {float(last.mean_dist_lstsq):.4g}; exact |E w - w_ridge| = "
        f"{float(last.exact_mean_dist_ridge):.4g}",
        "  filter factors (singular value: recovered from the MC mean / ridge s^2/(s^2 + m sigma^2)):",
        "    " + ", ".join(f"{s:.3g}: {f}/{r:.3f}" for s, f, r in factors),
    ]
    return ds, lines
