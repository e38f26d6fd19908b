"""The ``sim`` command: ``sim sweep``, ``sim figures``, ``sim theory``, ``sim mc``, ``sim features``, ``sim info``.

Contract: :func:`main` configures one JAX CPU device per core (unless ``XLA_FLAGS`` is set) before JAX starts,
parses arguments, and maps every :class:`sim.core.validate.InputError` to a one-line message on stderr and exit status 2
(no traceback), raised before anything is compiled. An interrupted sweep still writes the finished points.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

from sim.cli import features as cli_features
from sim.cli import mc as cli_mc
from sim.core.validate import InputError, check_writable, parse_number_list

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sim", description="JAX simulations of optimization dynamics, checked against theory."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sw = sub.add_parser(
        "sweep",
        help="sweep GD or momentum over a grid of hyperparameters",
        description="Run GD or momentum at every point of a grid and save per-point summaries to netCDF. " + AXIS_HELP,
        epilog=SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sw.add_argument("method", choices=["gd", "momentum", "heavy-ball", "nesterov"])
    sw.add_argument("--eta", "--lr", dest="learning_rate", metavar="AXIS", help="learning rate η (> 0)")
    sw.add_argument("--beta", metavar="AXIS", help="EMA momentum weight β of the new gradient, in (0, 1]")
    sw.add_argument("--momentum", metavar="AXIS", help="heavy-ball/nesterov momentum m, in [0, 1)")
    sw.add_argument("--sigma2", metavar="AXIS", help="squared singular value σ² (> 0), one problem per point")
    sw.add_argument("--spectrum", metavar="S1,S2,...", help="squared singular values of one multi-mode problem")
    sw.add_argument("--target", metavar="C1,C2,...", help="coordinates of w* in the singular basis (with --spectrum)")
    sw.add_argument("--steps", type=float, default=1000, help="steps per run (default 1000)")
    sw.add_argument("--tol", type=float, default=1e-3, help="relative-error tolerance in (0, 1) (default 1e-3)")
    sw.add_argument("--x64", action="store_true", help="float64 instead of float32")
    sw.add_argument(
        "--chunk-size",
        type=float,
        default=None,
        help="points per compiled call, each on one device (default 32768)",
    )
    sw.add_argument("--max-points", type=float, default=None, help="refuse grids larger than this (default 2^26)")
    sw.add_argument("-o", "--output", required=True, metavar="PATH", help="netCDF file to write")
    sw.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    fig = sub.add_parser("figures", help="regenerate the registry (PNG) on the CPU")
    fig.add_argument("--only", action="append", metavar="NAME", help="render only this figure (repeatable)")
    fig.add_argument("--quick", action="store_true", help="tiny sizes: seconds instead of minutes")
    fig.add_argument("--outdir", default="figures", help="output directory (default figures/)")
    fig.add_argument("--list", action="store_true", help="list the figure names and exit")

    th = sub.add_parser(
        "theory",
        help="closed-form answers (stability, optimal hyperparameters, rates) beside simulated step counts",
        description="Closed-form calculators for GD and EMA momentum on one least-squares problem, each number "
        "printed beside the simulated one (float64). momentum without --beta: the jointly optimal (eta, beta); "
        "with --beta: the best-rate eta interval and which eta in it is fastest in simulation; with --eta and "
        "--beta: classify that point.",
        epilog="examples:\n  sim theory gd --spectrum 5,0.05 --tol 1e-3\n"
        "  sim theory momentum --beta 0.1 --spectrum 5,0.05 --tol 1e-3\n"
        "  sim theory momentum --spectrum 5,0.05 --eta 1 --beta 0.5\n  sim theory momentum --symbolic --latex",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    th.add_argument("method", choices=["gd", "momentum"])
    th.add_argument("--spectrum", metavar="S1,S2,...", help="squared singular values of the problem")
    th.add_argument("--tol", type=float, default=1e-3, help="relative-error tolerance in (0, 1) (default 1e-3)")
    th.add_argument("--eta", "--lr", dest="learning_rate", type=float, help="a learning rate to classify")
    th.add_argument("--beta", type=float, help="EMA momentum weight of the new gradient, in (0, 1]")
    th.add_argument("--json", action="store_true", help="print JSON")
    th.add_argument("--symbolic", action="store_true", help="print the sympy derivation (momentum)")
    th.add_argument("--latex", action="store_true", help="with --symbolic: LaTeX instead of plain text")

    cli_mc.add_parser(sub)
    cli_features.add_parser(sub)

    inf = sub.add_parser("info", help="the devices JAX sees, dtype and versions")
    inf.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    from sim.core import runtime

    runtime.configure_cpu_devices()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        commands = {"sweep": _sweep, "figures": _figures, "theory": _theory, "mc": cli_mc.run, "info": _info}
        commands["features"] = cli_features.run
        return commands[args.command](args)
    except InputError as err:
        print(f"sim {args.command}: error: {err}", file=sys.stderr)
        return 2


def _sweep(args) -> int:
    import jax

    from sim.core import grid
    from sim.linear.sweep import engine as sweep

    method = args.method.replace("-", "_")
    # every given axis goes to the engine, which names any parameter the method does not take
    axes = [
        grid.parse_axis(name, getattr(args, name))
        for name in ("learning_rate", "beta", "momentum", "sigma2")
        if getattr(args, name) is not None
    ]
    spectrum = parse_number_list("spectrum", args.spectrum)
    target = parse_number_list("target", args.target)
    check_writable(args.output)
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    kwargs = {}
    if args.chunk_size is not None:
        kwargs["chunk_size"] = args.chunk_size
    if args.max_points is not None:
        kwargs["max_points"] = args.max_points
    start = time.perf_counter()
    ds = sweep.sweep(
        method,
        grid.Grid(tuple(axes)),
        steps=args.steps,
        tol=args.tol,
        spectrum=spectrum,
        target=target,
        dtype="float64" if args.x64 else "float32",
        progress=not args.no_progress,
        **kwargs,
    )
    ds.attrs["command"] = shlex.join(["sim", *args.argv])
    sweep.write(ds, args.output)
    print(_summary(ds, time.perf_counter() - start))
    print(f"wrote {args.output}")
    if not ds.attrs["complete"]:
        print("the run was interrupted: the file holds the finished points (variable 'computed')", file=sys.stderr)
        return 130
    return 0


def _summary(ds, seconds: float) -> str:
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


def _figures(args) -> int:
    from sim.figures import registry

    if args.list:
        for name, fig in registry.FIGURES.items():
            print(f"{name:28s} {fig.filename}")
        return 0
    start = time.perf_counter()
    paths = registry.render(args.only, quick=args.quick, outdir=args.outdir)
    for p in paths:
        print(f"wrote {p}")
    print(f"{len(paths)} figure(s) in {time.perf_counter() - start:.1f} s")
    return 0


def _theory(args) -> int:
    if args.symbolic:
        if args.method != "momentum":
            raise InputError("symbolic", "the symbolic derivation is for momentum: sim theory momentum --symbolic")
        from sim.linear import symbolic

        print(symbolic.render("latex" if args.latex else "text"))
        return 0
    from sim.linear import report as calculators

    if args.spectrum is None:
        raise InputError("spectrum", "give the problem's squared singular values, e.g. --spectrum 5,0.05")
    spectrum = parse_number_list("spectrum", args.spectrum)
    if args.method == "gd":
        if args.beta is not None:
            raise InputError("beta", "is not a hyperparameter of gd")
        report = calculators.gd_report(spectrum, args.tol, args.learning_rate)
    else:
        report = calculators.momentum_report(spectrum, args.tol, args.beta, args.learning_rate)
    print(json.dumps(report, indent=2) if args.json else calculators.format_report(report))
    return 0


def _info(args) -> int:
    from sim.core import runtime

    info = runtime.info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            elif isinstance(value, list):
                value = ", ".join(value)
            print(f"{key:15s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
