"""``sim mc``: Monte Carlo of SGD with noisy inputs (scalar runs, (η, σ) sweeps, the vector problem).

Contract: :func:`add_parser` registers ``sim mc {scalar,sweep,vector}`` on the ``sim`` command's subparsers and
:func:`run` executes one; every check raises :class:`sim.core.validate.InputError` before anything is compiled (the
``sim`` command turns it into one line on stderr and exit status 2). Results go to netCDF (``sim.noisy.engine.write``)
and a few lines of theory-beside-simulation go to stdout. An interrupted run writes what finished and exits 130.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from sim.core.validate import check_writable

COMMON_EPILOG = """\
conventions: per-sample loss l = 1/2 (x~ w - y)^2 with x~ = x + N(0, sigma^2) drawn fresh at every use; w0 = 0.
  The mean of w_t follows GD on the ridge objective with lambda = sigma^2 (1/m-normalized); the second moment
  has its own, stricter threshold (sim.noisy.scalar).
"""

EPILOGS = {
    "scalar": COMMON_EPILOG + "example:\n  sim mc scalar --x 1 --y 1 --sigma 0.5 --eta 0.5 --steps 200 "
    "--trajectories 1000000 -o run.nc\n",
    "sweep": COMMON_EPILOG + "axes: START:STOP:NUM, log:START:STOP:NUM, V1,V2,... or V.\nexample:\n"
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
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="netCDF file to write")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def run(args) -> int:
    import jax

    check_writable(args.output)
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    common = {
        "steps": args.steps,
        "trajectories": args.trajectories,
        "seed": args.seed,
        "dtype": "float64" if args.x64 else "float32",
        "progress": not args.no_progress,
    }
    if args.chunk_size is not None:
        common["chunk_size"] = args.chunk_size
    start = time.perf_counter()
    ds, lines = {"scalar": _scalar, "sweep": _sweep, "vector": _vector}[args.kind](args, common)
    ds.attrs["command"] = shlex.join(["sim", *args.argv])
    from sim.core import io

    io.write(ds, args.output)
    print(
        f"mc {args.kind}: {time.perf_counter() - start:.1f} s ({common['dtype']}, {ds.attrs['device_count']} device(s))"
    )
    print("\n".join(lines))
    print(f"wrote {args.output}")
    if not ds.attrs.get("complete", 1):
        print("the run was interrupted: the file holds the finished runs", file=sys.stderr)
        return 130
    return 0


def _scalar(args, common):
    from sim.core.validate import check_int
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
    lines = [
        f"  thresholds: mean converges iff eta < {a['mean_threshold']:.6g}; variance bounded iff eta < "
        f"{a['variance_threshold']:.6g} (eta = {a['learning_rate']:g})",
        f"  w_T at T = {int(last.step)}: MC mean {float(last.w_mean):.6g} "
        f"[{float(last.w_mean_ci_low):.6g}, {float(last.w_mean_ci_high):.6g}]  exact {float(last.exact_mean):.6g}",
        f"               MC var  {float(last.w_var):.6g} "
        f"[{float(last.w_var_ci_low):.6g}, {float(last.w_var_ci_high):.6g}]  exact {float(last.exact_var):.6g}",
        f"  limits: {limits}; diverged runs: {float(last.w_diverged_fraction):.2%}",
    ]
    return ds, lines


def _sweep(args, common):
    import numpy as np

    from sim.core import grid
    from sim.noisy import scalar

    axes = [grid.parse_axis("learning_rate", args.learning_rate), grid.parse_axis("sigma", args.sigma)]
    x_axis = grid.parse_axis("x", args.x)
    kwargs = {"x": float(x_axis.values[0])} if len(x_axis) == 1 else {}
    if len(x_axis) > 1:
        axes.append(x_axis)
    ds = scalar.scalar_sweep(grid.Grid(tuple(axes)), y=args.y, **common, **kwargs)
    lines = []
    for flag, theory in (("mean_converges", "theory_mean_converges"), ("variance_bounded", "theory_variance_bounded")):
        agree = np.mean(ds[flag].values == ds[theory].values)
        lines.append(f"  {flag}: {ds[flag].values.mean():.1%} of the grid; agrees with theory at {agree:.1%}")
    between = ds.theory_mean_converges.values & ~ds.theory_variance_bounded.values
    lines.append(f"  between the two thresholds (mean settles, variance grows): {between.mean():.1%} of the grid")
    return ds, lines


def _vector(args, common):
    import numpy as np

    from sim.core.validate import check_int
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
