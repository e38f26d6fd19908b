"""Time to compute the Jacobian feature matrix Φ (n × P) of a one-hidden-layer ReLU net, by every method.

Run from the repository root (``python benchmarks/jacobian_features.py``; ``--quick`` is a few-second smoke run).
Like every entry point it calls :func:`sim.core.runtime.configure_cpu_devices` before JAX initializes, so each CPU core
is one JAX device and :func:`sim.networks.features.feature_matrix` shards samples over them. It measures, in float32,
for n ∈ {1e3, 1e4, 1e5} and widths 33 / 166 / 666 (P = 3·width + 1 ≈ 100 / 500 / 2000; one hidden layer, because the
closed form needs one):

1. ``sim.networks.features.feature_matrix`` with ``method`` = ``"auto"`` (the default path), ``"reverse"`` (vmap of grad
   per sample), ``"jacfwd"`` (forward mode over the batch: O(n·P·width), skipped above ``--jacfwd-max-work``) and
   ``"analytic"`` (the closed form, the baseline every ratio is taken against). The first call (compile + run, after
   clearing JAX's caches) is timed separately from ``--repeats`` warm calls: median, min and max. Every method's Φ is
   checked against the analytic one (max absolute difference).
2. ``torch.func`` (``vmap`` of ``jacrev`` over a per-sample ``functional_call``), chunked like sim, when ``import
   torch`` works; otherwise the row records why it was skipped (torch is not a dependency of sim).

Targets (judged on a quiet machine): the default path within 2× of the analytic formula, and faster than
torch.func. Writes a table to stdout and every measurement, with provenance, to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from common import (
    Timed,
    add_out_argument,
    print_header,
    results_path,
    torch_status,
    write_results,
)  # the sibling module of shared benchmark helpers

from sim.core import runtime  # importing sim does not start JAX's backends; configure_cpu_devices() must come first

DTYPE = "float32"
SIM_METHODS = ("analytic", "auto", "reverse", "jacfwd")


def stats(times: list[float], n: int, other_load: float) -> dict:
    med = statistics.median(times)
    return {
        "median_s": med,
        "min_s": min(times),
        "max_s": max(times),
        "times_s": times,
        "rows_per_s": n / med,
        "other_load_cores": other_load,
    }


# --------------------------------------------------------------------------------------------------------------
# sim


def time_sim(method: str, params, x, repeats: int):
    """First call (caches cleared: compile + run) and warm calls of feature_matrix; returns (first_s, stats, phi)."""
    import jax

    from sim.networks import features

    jax.clear_caches()
    features._sharded.cache_clear()
    with Timed() as first:
        phi = features.feature_matrix(params, x, method=method)  # a host array: complete on return
    times = []
    with Timed() as warm:
        for _ in range(repeats):
            t0 = time.perf_counter()
            phi = features.feature_matrix(params, x, method=method)  # a host array: complete on return
            times.append(time.perf_counter() - t0)
    return first.seconds, stats(times, x.size, warm.other_load), phi


# --------------------------------------------------------------------------------------------------------------
# torch.func baseline


def time_torch(torch, params, x, repeats: int, chunk: int):
    """vmap(jacrev) over per-sample functional_call, in chunks of ``chunk`` samples; Φ in sim's column order."""
    import numpy as np
    from torch.func import functional_call, jacrev, vmap

    torch.set_num_threads(runtime.cpu_count())
    width = params[0]["w"].shape[1]
    model = torch.nn.Sequential(torch.nn.Linear(1, width), torch.nn.ReLU(), torch.nn.Linear(width, 1))
    tp = {
        "0.weight": torch.tensor(np.asarray(params[0]["w"]).T.copy()),
        "0.bias": torch.tensor(np.asarray(params[0]["b"])),
        "2.weight": torch.tensor(np.asarray(params[1]["w"]).T.copy()),
        "2.bias": torch.tensor(np.asarray(params[1]["b"])),
    }
    xt = torch.tensor(np.asarray(x, dtype=np.float32))

    def f(p, xi):
        return functional_call(model, p, (xi.reshape(1, 1),)).reshape(())

    per_sample = vmap(jacrev(f), in_dims=(None, 0))

    def run():
        out = []
        for start in range(0, xt.shape[0], chunk):
            g = per_sample(tp, xt[start : start + chunk])
            m = g["0.weight"].shape[0]
            # sim's order: hidden b, hidden w [1, width], output b, output w [width, 1] (torch stores w transposed)
            out.append(
                torch.cat([g["0.bias"], g["0.weight"].reshape(m, -1), g["2.bias"], g["2.weight"].reshape(m, -1)], dim=1)
            )
        return torch.cat(out)

    with Timed() as first:
        phi = run()
    times = []
    with Timed() as warm:
        for _ in range(repeats):
            t0 = time.perf_counter()
            phi = run()
            times.append(time.perf_counter() - t0)
    return first.seconds, stats(times, x.size, warm.other_load), phi.numpy()


# --------------------------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ns", default="1000,10000,100000", help="sample counts n (comma-separated)")
    p.add_argument("--widths", default="33,166,666", help="hidden widths (P = 3 width + 1)")
    p.add_argument("--repeats", type=int, default=5, help="warm calls per measurement")
    p.add_argument(
        "--jacfwd-max-work",
        type=float,
        default=2e9,
        help="skip jacfwd where n·P·width exceeds this (its cost; 8e8 took ~4 s on 2 cores; default 2e9)",
    )
    p.add_argument("--torch-chunk", type=int, default=4096, help="samples per torch.func call")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 2 repeats (smoke test)")
    add_out_argument(p, "jacobian_features")
    args = p.parse_args(argv)
    if args.quick:
        args.ns, args.widths, args.repeats = "300", "20", 2
    args.ns = [int(float(v)) for v in args.ns.split(",")]
    args.widths = [int(v) for v in args.widths.split(",")]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    runtime.configure_cpu_devices()  # before anything starts JAX's backends

    import jax
    import numpy as np

    from sim.networks import data as targets
    from sim.networks import mlp as networks

    prov = runtime.provenance()
    torch, torch_note = torch_status("install it to compare against torch.func")
    t_start = time.perf_counter()
    print_header(DTYPE, torch_note)

    measurements = []
    for width in args.widths:
        params = networks.init_mlp(jax.random.key(0), depth=1, width=width, init="pytorch", dtype=DTYPE)
        n_params = networks.num_params(params)
        for n in args.ns:
            x = targets.sines_data(n_train=n, n_test=1, seed=1).x_train
            reference = None
            for method in SIM_METHODS:
                row = {"method": method, "n": n, "width": width, "P": n_params}
                work = n * n_params * width
                if method == "jacfwd" and work > args.jacfwd_max_work:
                    row["skipped"] = f"n·P·width = {work:.2g} > --jacfwd-max-work {args.jacfwd_max_work:.2g}"
                    measurements.append(row)
                    print(f"n={n:>7} P={n_params:>5} {method:>8}: {row['skipped']}", flush=True)
                    continue
                first, st, phi = time_sim(method, params, x, args.repeats)
                phi = np.asarray(phi)
                if reference is None:
                    reference = phi  # analytic comes first
                row.update(first_call_s=first, compile_s_estimate=max(0.0, first - st["median_s"]), **st)
                row["max_abs_diff_vs_analytic"] = float(np.max(np.abs(phi - reference)))
                measurements.append(row)
                print(
                    f"n={n:>7} P={n_params:>5} {method:>8}: first {first:.3f} s, warm median {st['median_s']:.4f} s "
                    f"({st['min_s']:.4f}..{st['max_s']:.4f}), {st['rows_per_s']:.3g} rows/s, "
                    f"max |diff| {row['max_abs_diff_vs_analytic']:.1e}, other load {st['other_load_cores']:.2f}",
                    flush=True,
                )
            row = {"method": "torch.func", "n": n, "width": width, "P": n_params}
            if torch is None:
                row["skipped"] = torch_note
            else:
                first, st, phi = time_torch(torch, params, x, args.repeats, args.torch_chunk)
                row.update(first_call_s=first, **st)
                row["max_abs_diff_vs_analytic"] = float(np.max(np.abs(phi - reference)))
                print(
                    f"n={n:>7} P={n_params:>5} torch.func: first {first:.3f} s, warm median {st['median_s']:.4f} s, "
                    f"{st['rows_per_s']:.3g} rows/s, max |diff| {row['max_abs_diff_vs_analytic']:.1e}",
                    flush=True,
                )
            measurements.append(row)
            del reference

    # ratios against baselines measured in this run
    def median(method, n, width):
        for m in measurements:
            if (m["method"], m["n"], m["width"]) == (method, n, width) and "median_s" in m:
                return m["median_s"]
        return None

    ratios = []
    for n in args.ns:
        for width in args.widths:
            auto, analytic, torch_s = (median(k, n, width) for k in ("auto", "analytic", "torch.func"))
            ratios.append(
                {
                    "n": n,
                    "width": width,
                    "auto_over_analytic": auto / analytic,
                    "auto_over_torch_func": None if torch_s is None else auto / torch_s,
                }
            )
    worst = max(r["auto_over_analytic"] for r in ratios)
    vs_torch = [r["auto_over_torch_func"] for r in ratios if r["auto_over_torch_func"] is not None]
    target = {
        "auto_within_2x_of_analytic": worst <= 2.0,
        "worst_auto_over_analytic": worst,
        "auto_faster_than_torch_func": (max(vs_torch) < 1.0) if vs_torch else None,
        "torch_func": torch_note,
    }
    print()
    print(f"{'n':>7} {'width':>6} {'auto/analytic':>14} {'auto/torch.func':>16}")
    for r in ratios:
        t = "-" if r["auto_over_torch_func"] is None else f"{r['auto_over_torch_func']:.2f}"
        print(f"{r['n']:>7} {r['width']:>6} {r['auto_over_analytic']:>14.2f} {t:>16}")
    met = {True: "met", False: "NOT met", None: f"n/a ({torch_note})"}
    print(
        f"targets: default path within 2x of analytic: {met[target['auto_within_2x_of_analytic']]} "
        f"(worst x{worst:.2f}); faster than torch.func: {met[target['auto_faster_than_torch_func']]}"
    )
    out = {
        "benchmark": "jacobian_features",
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "dtype": DTYPE,
        "provenance": prov,
        "cpu_cores": runtime.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch_note,
        "loadavg_at_end": list(os.getloadavg()),
        "measurements": measurements,
        "ratios": ratios,
        "targets": target,
        "total_wall_s": time.perf_counter() - t_start,
    }
    write_results(results_path(args, "jacobian_features"), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
