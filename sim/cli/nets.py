"""``sim nets``: deep-network trainability studies (initialization, optimizers, depth) over seeds and grids.

Contract: :func:`add_parser` registers ``sim nets init|optimizers|depth`` on the ``sim`` command's subparsers and
:func:`run` executes one study of :mod:`sim.networks.trainability`. Every argument is checked before JAX is imported
(seeds, the depth grid's axes in ``sim sweep``'s syntax, the output path, then the data: a missing or malformed
CIFAR-10 folder is one line naming the path and what is missing, exit 2). The dataset goes to netCDF (``-o``, written
atomically by :func:`sim.core.io.write`, with provenance); a table, or with ``--json`` the JSON summary of
:func:`sim.networks.trainability.summary`, goes to stdout. SIGINT or SIGTERM finishes the chunks in flight, writes
what finished (``computed``) and exits 130 or 143.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

from sim.core import io
from sim.core.validate import InputError, check_int, check_writable

STUDIES = ("init", "optimizers", "depth")
DEFAULT_SEEDS = 8
QUICK_SEEDS = 2
QUICK = {  # seconds instead of minutes; --seeds still applies
    "init": {"steps": 20, "eval_size": 200},
    "optimizers": {"steps": 20, "n_train": 1000, "eval_size": 200, "eval_every": 5},
    "depth": {"scales": "log:1e-3:1:6", "lrs": "log:1e-4:1:6"},
}
DEPTH_AXES = {"scales": "log:1e-3:10:32", "lrs": "log:1e-6:10:32"}  # = trainability.DEPTH_CONFIG's (tested)

DESCRIPTION = """\
Train many fully connected ReLU nets (softmax cross-entropy) at once, over seeds and hyperparameter grids:
  init        10 hidden layers of 50, SGD lr 1e-3, batch 100, 200 iterations; weights zero, N(0, 0.01^2) and He
              (EECS 182 Sp23 HW2 Q5): loss, accuracies and the mean gradient norm (Frobenius and spectral) per
              iteration, per-layer weight std, activation std and gradient norm at init beside the gain
              fan_in * Var(W) / 2.
  optimizers  5 hidden layers of 100, weight scale 5e-2: SGD 1e-2, momentum 0.9 at 1e-2, Adam 1e-3, RMSprop 1e-4, and
              SGD at momentum's effective step 0.1 with batch 100 and 1000 (momentum ~ a larger batch).
  depth       3-layer [100, 100] vs 5-layer [100] x 4 nets overfitting 50 images in 40 SGD steps (batch 25) over a log
              grid of weight scale x learning rate (EECS 182 Sp25 HW0 Q6): the fraction of seeds reaching 100 %
              training accuracy, and each depth's success area."""

EPILOG = """\
data: --data digits (default: scikit-learn's 8x8 digits, 1497 train / 150 val / 150 test, offline) or
  --data cifar10:DIR (CIFAR-10's python batches: data_batch_1 ... data_batch_5, test_batch, batches.meta; 49000 /
  1000 / 1000 when complete, proportionally fewer otherwise). The mean training image is subtracted, nothing else.
seeds: every result is over --seeds seeds (median and interquartile range); seed s draws the weights and minibatches.
axes (depth): --scales and --lrs take sim sweep's syntax: START:STOP:NUM, log:START:STOP:NUM, V1,V2,... or V.
examples:
  sim nets init --seeds 8 -o init.nc
  sim nets optimizers --data cifar10:~/data/cifar-10-batches-py --json
  sim nets depth --scales log:1e-3:10:32 --lrs log:1e-6:10:32 --seeds 8 -o depth.nc
  sim nets depth --quick --json
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "nets",
        help="deep-network trainability: initialization, optimizers, depth (over seeds and grids)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    studies = p.add_subparsers(dest="study", required=True, metavar="STUDY")
    helps = {
        "init": "zero vs N(0, 0.01^2) vs He initialization of a 10 x 50 ReLU net (Sp23 HW2 Q5)",
        "optimizers": "SGD, momentum, Adam, RMSprop; momentum vs a larger batch (Sp23 HW2 Q5)",
        "depth": "success maps of 3- and 5-layer nets overfitting 50 images (Sp25 HW0 Q6)",
    }
    for study in STUDIES:
        s = studies.add_parser(
            study,
            help=helps[study],
            description=helps[study],
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        s.add_argument("--data", default="digits", metavar="SOURCE", help="digits (default) or cifar10:DIR")
        s.add_argument(
            "--seeds",
            type=float,
            help=f"seeds per configuration >= 1 (default {DEFAULT_SEEDS}; --quick: {QUICK_SEEDS})",
        )
        if study == "depth":
            s.add_argument("--scales", metavar="AXIS", help=f"weight scales (default {DEPTH_AXES['scales']})")
            s.add_argument("--lrs", metavar="AXIS", help=f"learning rates (default {DEPTH_AXES['lrs']})")
            s.add_argument("--chunk-size", type=float, help="networks per compiled call (default 256)")
        quick = ", ".join(f"{k} {v}" for k, v in QUICK[study].items())
        s.add_argument("--quick", action="store_true", help=f"a size that runs in seconds ({quick})")
        s.add_argument("-o", "--output", metavar="PATH", help="netCDF file to write (default: none)")
        s.add_argument("--overwrite", action="store_true", help="replace an existing output")
        s.add_argument("--json", action="store_true", help="print the JSON summary instead of the table")
        s.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args) -> int:
    study = args.study
    if study not in STUDIES:
        raise InputError("study", f"must be one of {STUDIES}, got {study!r}")
    seeds = QUICK_SEEDS if args.quick else DEFAULT_SEEDS
    if args.seeds is not None:
        seeds = check_int("seeds", args.seeds, minimum=1, maximum=4096)
    kwargs = dict(QUICK[study]) if args.quick else {}
    if study == "depth":
        from sim.networks.trainability import depth_grid  # no JAX: the axes are checked first

        for name in ("scales", "lrs"):
            given = getattr(args, name)
            kwargs[name] = given if given is not None else kwargs.get(name, DEPTH_AXES[name])
        depth_grid(kwargs["scales"], kwargs["lrs"])
        if args.chunk_size is not None:
            kwargs["chunk_size"] = check_int("chunk_size", args.chunk_size, minimum=1)
    if args.output is not None:
        check_writable(args.output)
        io.check_output(args.output, overwrite=args.overwrite)
    from sim.networks import images

    data = images.load(args.data)  # NumPy (and scikit-learn for the digits) only: a bad folder is refused here

    from sim.networks import trainability

    fn = {
        "init": trainability.init_study,
        "optimizers": trainability.optimizer_study,
        "depth": trainability.depth_study,
    }[study]
    start = time.perf_counter()
    ds = fn(data, seeds=seeds, progress=not args.no_progress, **kwargs)
    seconds = time.perf_counter() - start
    ds.attrs["command"] = shlex.join(["sim", *getattr(args, "argv", ["nets", study])])
    ds.attrs["quick"] = int(args.quick)
    ds.attrs["seconds"] = seconds
    info = sys.stderr if args.json else sys.stdout
    if args.output is not None:
        io.write(ds, args.output)
    result = trainability.summary(ds)
    if args.json:
        print(json.dumps(result | {"seconds": round(seconds, 3)}, indent=2))
    else:
        print(table(ds, result, seconds))
    if args.output is not None:
        print(f"wrote {args.output}", file=info)
    if not ds.attrs.get("complete", 1):
        print("the run was interrupted: the file holds what finished (variable 'computed')", file=sys.stderr)
        return 128 + int(ds.attrs.get("stopped_by_signal") or 2)
    return 0


def table(ds, result: dict, seconds: float | None = None) -> str:
    """The text ``sim nets`` prints: one row per scheme, run or depth, medians over seeds."""
    from sim.networks.trainability import quantiles

    a = ds.attrs
    took = "" if seconds is None else f"; {seconds:.1f} s"
    head = (
        f"nets {result['study']}: {result['data']} (input {result['input_dim']}, {result['n_train']} training images), "
        f"{result['seeds']} seeds, float32 on {a['device_count']} {a['platform']} device(s){took}"
    )
    lines = [head]
    if result["study"] == "init":
        hidden = json.loads(a["hidden"]) if isinstance(a["hidden"], str) else list(a["hidden"])
        lines.append(
            f"{len(hidden)} hidden layers of {hidden[0]}, SGD lr {a['learning_rate']:g}, batch {a['batch_size']}, "
            f"{a['steps']} iterations; medians [interquartile range] over seeds"
        )
        lines.append(
            f"{'scheme':8} {'final loss':>24} {'train acc':>9} {'val acc':>8} {'|grad| Frob.':>12} {'spectral':>9}"
        )
        for name, r in result["schemes"].items():
            m, lo, hi = quantiles(ds.train_loss.sel(scheme=name).values[:, -1], 0)
            lines.append(
                f"{name:8} {m:>10.4g} [{lo:.4g}, {hi:.4g}] {r['final_train_accuracy']:>9.3f} "
                f"{r['final_val_accuracy']:>8.3f} {r['final_grad_norm_frobenius']:>12.3g} "
                f"{r['final_grad_norm_spectral']:>9.3g}"
            )
        lines.append("per layer at init (first layer first): weight std (expected), gain fan_in*Var(W)/2")
        for name, r in result["schemes"].items():
            std = " ".join(f"{v:.3g}" for v in r["weight_std"])
            lines.append(
                f"  {name:8} std {std}  (expected {r['expected_weight_std'][0]:.3g} … "
                f"{r['expected_weight_std'][-1]:.3g}); gain {r['gain'][0]:.3g} … {r['gain'][-1]:.3g}"
            )
        lines.append("activation RMS per hidden layer at init, measured / predicted m * prod(gain):")
        for name, r in result["schemes"].items():
            pairs = " ".join(
                f"{m:.2g}/{p:.2g}" for m, p in zip(r["activation_rms"], r["predicted_activation_rms"], strict=True)
            )
            lines.append(f"  {name:8} {pairs}")
    elif result["study"] == "optimizers":
        lines.append(
            f"{'run':22} {'optimizer':9} {'lr':>7} {'batch':>5} {'final loss':>26} {'train acc':>9} {'val acc':>8}"
        )
        for name, r in result["runs"].items():
            lo, hi = r["final_loss_iqr"]
            lines.append(
                f"{name:22} {r['optimizer']:9} {r['learning_rate']:>7.0e} {r['batch_size']:>5} "
                f"{r['final_loss']:>10.4g} [{lo:.4g}, {hi:.4g}] {r['final_train_accuracy']:>9.3f} "
                f"{r['final_val_accuracy']:>8.3f}"
            )
        skipped = a.get("skipped_runs", "none")
        if skipped not in ("none", "[]", ""):
            lines.append(f"skipped (batch larger than the training images): {skipped}")
    else:
        lines.append(
            f"{result['steps']} SGD steps; scales {result['scales']}, lrs {result['lrs']}; a cell succeeds "
            f"when at least half its seeds reach 100 % training accuracy"
        )
        lines.append(
            f"{'depth':>5} {'hidden':>16} {'area':>6} {'cells':>7} {'scales':>19} {'learning rates':>19} "
            f"{'diverged':>8}"
        )
        for depth, r in result["depths"].items():
            sr = "-" if r["scale_range"] is None else f"{r['scale_range'][0]:.2g}..{r['scale_range'][1]:.2g}"
            lr = "-" if r["lr_range"] is None else f"{r['lr_range'][0]:.2g}..{r['lr_range'][1]:.2g}"
            lines.append(
                f"{depth:>5} {str(r['hidden']):>16} {r['success_area']:>6.3f} {r['cells']:>3}/{r['cells_computed']:<3} "
                f"{sr:>19} {lr:>19} {r['diverged_fraction']:>8.2f}"
            )
        if "overlap" in result:
            lines.append("cells: " + ", ".join(f"{k} {v:.3f}" for k, v in result["overlap"].items()))
    return "\n".join(lines)
