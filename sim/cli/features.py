"""``sim features``: train one ReLU MLP, or run a course experiment, and save the features of its linearization.

Contract: :func:`add_parser` registers ``sim features [PRESET]`` on the ``sim`` command's subparsers and :func:`run`
executes it: without PRESET one network (``sim.networks.course.model``), with ``course-part1`` or ``course-part2`` the
course's experiment (``sim.networks.course.part1`` / ``part2`` at the course's size, or at seconds' size with
``--quick``). Every check raises :class:`sim.core.validate.InputError` naming the parameter before anything is compiled
(the ``sim`` command prints it on one line and exits 2). The dataset goes to netCDF4 (every attr netCDF-safe, see
``sim.networks.course.result_attrs``; bool variables are stored as int8 and read back as bool) and a per-model table
(:func:`summary`) to stdout.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time

from sim.core import io
from sim.core.validate import InputError, check_int, check_writable, parse_number_list

PRESETS = ("course-part1", "course-part2")
INIT_ALIASES = {"he": "he_uniform"}
QUICK = {  # seconds instead of minutes (Part I: 150 000 steps)
    "course-part1": {"widths": [10], "depths": [1, 2], "steps": 2000},
    "course-part2": {"n_train": 300},
}
# options of one network only (the presets take -o, --steps and --quick)
NETWORK_OPTIONS = (
    "depth",
    "width",
    "init",
    "scale",
    "zero_bias",
    "target",
    "train_interval",
    "optimizer",
    "learning_rate",
    "momentum",
    "batch_size",
    "n_train",
    "seed",
    "checkpoint_every",
)
INTEGER_OPTIONS = ("depth", "width", "batch_size", "n_train", "seed", "checkpoint_every", "steps")
TOP_SINGULAR_VALUES = 4
QUICK_HELP = "; ".join(f"{p}: " + ", ".join(f"{k} {v}" for k, v in kw.items()) for p, kw in QUICK.items())

EPILOG = """\
conventions: MSE is the mean squared error (PyTorch's MSELoss, no 1/2); gradient norms are the Frobenius norms of
  each layer's weight gradient of the full training MSE at init (layers hidden_1 ... output); Phi is the n x P
  Jacobian of the outputs on the training points, its singular values at init and after training. A run whose loss
  blows up is frozen at its last good parameters and flagged diverged (the published table's NaN).
one network: defaults are Sp25 HW1 Q5 Part II's: sum of sines, 1500 training points on [-1, 1] (kinks: 200 on
  [0, 1]), heavy ball m = 0.9, lr 0.1, batch 32, 468 steps.
presets: course-part1 = elbow nets of widths 10/20/40 with 1 and 2 hidden layers on the kink target, SGD lr 0.02,
  batch 40, 150000 steps; course-part2 = the shallow 1 x 20 net and 4 x 20 nets with U(+-0.03), U(+-3) and He
  weights (zero biases), and He on x in [-1, 0.4], with the published test MSE beside ours.
examples:
  sim features --depth 4 --width 20 --init he --zero-bias --steps 468 -o he.nc
  sim features --depth 4 --width 20 --init uniform --scale 3 --zero-bias -o large.nc
  sim features --depth 4 --width 20 --init he --zero-bias --train-interval -1,0.4 -o mismatched.nc
  sim features --depth 1 --width 20 --init elbows --target kinks --optimizer sgd --lr 0.02 --batch-size 40 -o e.nc
  sim features course-part2 -o part2.nc
  sim features course-part1 --quick
"""


def add_parser(sub) -> None:
    from sim.networks import INITS

    p = sub.add_parser(
        "features",
        help="train ReLU MLPs and save the features of their local linearization (course presets too)",
        description="Train one 1 -> width -> ... -> 1 ReLU network (or run a course experiment) and save, at init\n"
        "and after training, the singular values and principal features of its Jacobian features Phi, per-layer\n"
        "gradient norms, losses and predictions to netCDF; print a per-model table.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("preset", nargs="?", metavar="PRESET", help=f"a course experiment: {', '.join(PRESETS)}")
    net = p.add_argument_group("one network (without PRESET)")
    net.add_argument("--depth", type=float, help="hidden layers D >= 1 (required)")
    net.add_argument("--width", type=float, help="units per hidden layer >= 1 (required)")
    names = ", ".join([*INITS, *(f"{k} (= {v})" for k, v in INIT_ALIASES.items())])
    net.add_argument("--init", help=f"initialization (required): {names}")
    net.add_argument("--scale", type=float, help="weights U(-scale, scale): required by uniform; elbows' (default 1)")
    net.add_argument("--zero-bias", action="store_true", help="zero biases at init")
    net.add_argument("--target", metavar="{sines,kinks}", help="Part II's sum of sines (default) or Part I's kinks")
    net.add_argument("--train-interval", metavar="LO,HI", help="training inputs U[LO, HI] (default the target's)")
    net.add_argument("--optimizer", metavar="{sgd,momentum,adam}", help="default momentum (heavy ball)")
    net.add_argument("--lr", "--eta", dest="learning_rate", type=float, help="learning rate > 0 (default 0.1)")
    net.add_argument("--momentum", type=float, help="heavy-ball momentum in [0, 1) (default 0.9)")
    net.add_argument("--batch-size", type=float, help="minibatch size in [1, n] (default 32)")
    net.add_argument("--n-train", type=float, help="training points (default 1500 sines, 200 kinks)")
    net.add_argument("--seed", type=float, help="seed of the init and the minibatches (default 0)")
    net.add_argument("--checkpoint-every", type=float, help="steps between checkpoints (default: about 100 kept)")
    p.add_argument("--steps", type=float, help="optimizer steps (default 468; course-part1 150000)")
    p.add_argument(
        "--seeds",
        type=float,
        metavar="N",
        help="course-part2 only: train every model with N >= 2 seeds and set each published number beside its "
        "distribution over them (median, quartiles, range, percentile) instead of one run's features",
    )
    p.add_argument("--quick", action="store_true", help="with PRESET: sizes that run in seconds (" + QUICK_HELP + ")")
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="netCDF file to write (default PRESET.nc, course-part2-seeds.nc with --seeds, or features.nc)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args) -> int:
    preset = args.preset
    if preset is not None and preset not in PRESETS:
        raise InputError("preset", f"must be one of {PRESETS}, got {preset!r}")
    seeds = None
    if args.seeds is not None:
        if preset != "course-part2":
            raise InputError("seeds", "applies to course-part2 (the published numbers over seeds)")
        seeds = check_int("seeds", args.seeds, minimum=2, maximum=4096)
    output = args.output or f"{preset or 'features'}{'-seeds' if seeds else ''}.nc"
    check_writable(output)  # before JAX starts
    io.check_output(output, overwrite=args.overwrite)

    from sim.networks import course as experiments  # import JAX only after the sim command has configured the devices
    from sim.networks import mlp

    given = {k: _integral(k, v) for k in NETWORK_OPTIONS if (v := getattr(args, k)) is not None and v is not False}
    steps = {} if args.steps is None else {"steps": _integral("steps", args.steps)}
    if preset is not None:
        if given:
            raise InputError(next(iter(given)), f"is an option of one network, not of {preset} (-o, --steps, --quick)")
        kw = (QUICK[preset] if args.quick else {}) | steps
        fn = experiments.part1 if preset == "course-part1" else experiments.part2
        if seeds is not None:
            kw |= {"seeds": seeds}
            fn = experiments.part2_seeds
    else:
        if args.quick:
            raise InputError("quick", f"applies to a PRESET ({', '.join(PRESETS)})")
        for name in ("depth", "width", "init"):
            if name not in given:
                raise InputError(name, "is required without a PRESET, e.g. --depth 4 --width 20 --init he")
        kw = given | steps
        kw["init"] = INIT_ALIASES.get(kw["init"], kw["init"])
        if kw["init"] not in mlp.INITS:
            raise InputError("init", f"must be one of {(*mlp.INITS, *INIT_ALIASES)}, got {given['init']!r}")
        if "train_interval" in kw:
            kw["train_interval"] = parse_number_list("train_interval", kw["train_interval"])
        fn = experiments.model
    start = time.perf_counter()
    ds = fn(**kw, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    ds.attrs |= {"command": shlex.join(["sim", *getattr(args, "argv", [])]), "preset": preset or "none"}
    ds.attrs["quick"] = int(args.quick)
    io.write(ds, output)
    print((seeds_summary if seeds else summary)(ds, seconds))
    print(f"wrote {output}")
    if not ds.attrs.get("complete", 1):
        what = "seeds" if seeds else "models"
        print(f"the run was interrupted: the file holds the {what} that finished", file=sys.stderr)
        return 130
    return 0


def seeds_summary(ds, seconds: float | None = None) -> str:
    """The table of ``sim features course-part2 --seeds N``: every published number, the median, quartiles and
    range of its distribution over the seeds, and the percentile at which the published value falls."""
    a = ds.attrs
    took = "" if seconds is None else f", {seconds:.1f} s"
    lines = [
        f"features part2 over {a['seeds_run']} seeds ({a['first_seed']}..{a['first_seed'] + a['seeds_run'] - 1}): "
        f"{a['steps']} {a['optimizer']} steps (lr {a['learning_rate']:g}, batch {a['batch_size']}), "
        f"n = {a['n_train']}{took}, float32 on {a['device_count']} {a['platform']} device(s)"
    ]
    if not a["seeds_run"]:
        return "\n".join([*lines, "no seed finished"])
    w = max(len(str(q)) for q in ds.quantity.values)
    lines.append(f"{'quantity':<{w}} {'published':>10} {'median':>10} {'IQR':>21} {'range over seeds':>21} {'pctl':>5}")
    pair = lambda lo, hi: f"[{float(lo):.3g}, {float(hi):.3g}]"  # noqa: E731
    for q in ds.quantity.values:
        r = ds.sel(quantity=q)
        if int(r.seeds_used) == 0:
            lines.append(f"{q:<{w}} {float(r.published):>10.3g}  no seed left (all diverged)")
            continue
        used = "" if int(r.seeds_used) == a["seeds_run"] else f"  (n = {int(r.seeds_used)}: the others diverged)"
        lines.append(
            f"{q:<{w}} {float(r.published):>10.3g} {float(r.seed_median):>10.3g} {pair(r.seed_q25, r.seed_q75):>21} "
            f"{pair(r.seed_min, r.seed_max):>21} {float(r.percentile):>4.0f}%{used}"
        )
    for m in ds.model.values:
        if not math.isfinite(float(ds.published_test_mse.sel(model=m))):
            lines.append(
                f"{m}: the course's run diverged (test MSE NaN); here {int(ds.diverged.sel(model=m).sum())} of "
                f"{a['seeds_run']} seeds diverged"
            )
    lines.append("pctl: the share of seeds below the published value (ties half); grad norms at init, Frobenius")
    return "\n".join(lines)


def summary(ds, seconds: float | None = None) -> str:
    """The table ``sim features`` prints for a dataset of ``sim.networks.course`` (``part1``, ``part2`` or ``model``).

    One row per model: P, final test MSE, the published one (Part II; NaN where the course's run diverged), the best
    constant's, and whether (at which step) the run diverged; then per-layer weight-gradient norms at init and the
    top singular values of Φ at init and trained.
    """
    a = ds.attrs
    models = [str(m) for m in ds.model.values]
    w = max(len(m) for m in [*models, "model"])
    published = "published_test_mse" in ds
    took = "" if seconds is None else f", {seconds:.1f} s"
    header = f"{'model':<{w}} {'P':>6} {'test MSE':>10}" + (f" {'published':>10}" if published else "")
    lines = [
        f"features {a['experiment']}: {len(models)} model(s), {a['steps']} {a['optimizer']} steps (lr "
        f"{a['learning_rate']:g}, batch {a['batch_size']}), n = {ds.sizes['sample']}{took}, float32 on "
        f"{a['device_count']} {a['platform']} device(s)",
        header + f" {'constant':>10}  diverged",
    ]
    for m in models:
        r = ds.sel(model=m)
        row = f"{m:<{w}} {int(r.num_params):>6} {float(r.final_test_mse):>10.4g}"
        if published:
            pub = float(r.published_test_mse)
            row += f" {'NaN' if not math.isfinite(pub) else f'{pub:.4g}':>10}"
        row += f" {float(r.constant_mse):>10.4g}  "
        lines.append(row + (f"yes (step {int(r.diverge_step)})" if bool(r.diverged) else "no"))
    lines.append("weight-gradient norms at init (Frobenius, full training MSE; hidden_1 ... output):")
    for m in models:
        r = ds.sel(model=m)
        g = r.grad_norms.sel(stage="init").values[: int(r.num_layers)]
        lines.append(f"  {m:<{w}} " + " ".join(f"{v:.3g}" for v in g))
    k = min(TOP_SINGULAR_VALUES, ds.sizes["sv_index"])
    lines.append(f"top {k} singular values of Phi, init -> trained:")
    for m in models:
        s = [ds.singular_values.sel(model=m, stage=stage).values[:k] for stage in ("init", "trained")]
        lines.append(f"  {m:<{w}} " + "  ->  ".join(" ".join(f"{v:.4g}" for v in si) for si in s))
    return "\n".join(lines)


def _integral(name: str, value):
    """An integer-valued option as an int (the experiments check the rest and name the parameter)."""
    if name in INTEGER_OPTIONS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value
