"""Networks trained per second on the depth study's success map: the grid trained at once against a loop of one
jitted training per configuration, and against PyTorch doing the same loop.

Run from the repository root (``python benchmarks/train_grid.py``; ``--quick`` is a smoke run). Like every entry point
it calls :func:`sim.core.runtime.configure_cpu_devices` before JAX starts (one JAX device per core). Workload: the
depth study of EECS 182 Sp25 HW0 Q6 on the digits (50 training images, 40 SGD steps of batch 25 with replacement,
weights N(0, scale²), zero biases, softmax cross-entropy, the final training accuracy and loss), a 5-layer net
(hidden [100] × 4) by default, over a (scale × learning rate × seed) grid, float32 throughout.

1. **grid**: :func:`sim.networks.trainability.depth_study` (chunks of the grid on every device through
   :func:`sim.core.engine.run`, each chunk one compiled call training its networks in vmapped groups). Timed warm:
   a first run compiles, the next ``--repeats`` are timed (median).
2. **jax-loop**: one jitted :func:`sim.networks.deep.train_network` (compiled once; scale, learning rate and seed are
   arguments) called once per configuration on one device, results fetched each time, over a strided subsample of the
   grid's configurations. Its final losses are checked against the grid's at the same configurations.
3. **torch-loop**: the same training in PyTorch (``torch.nn.Linear`` layers, ``torch.optim.SGD``, the same batch
   indices as JAX), once per configuration, with PyTorch's default threads; skipped with a message when ``import
   torch`` fails (``pip install ".[bench]"``).

The table reports networks per second and the grid's speed-up over each loop; CPU seconds per network are recorded
too (the machine may be shared: the "other load" column is the other processes' CPU use during each measurement).
Targets: the grid at least 10x the jax-loop and 20x the torch-loop. Results go to ``--out`` (JSON, with the device,
CPU model, versions and dtype).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

from common import (
    Timed,
    add_out_argument,
    cpu_model,
    print_header,
    results_path,
    torch_status,
    wait_quiet,
    write_results,
)  # sibling helpers

from sim.core import runtime  # importing sim does not start JAX's backends; configure_cpu_devices() must come first

DTYPE = "float32"
TARGETS = {"jax-loop": 10.0, "torch-loop": 20.0}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--depth", type=int, default=5, choices=(3, 5), help="3 or 5 layers (default 5)")
    p.add_argument("--scales", default="log:1e-3:10:32", help="scale axis (default the study's 32 points)")
    p.add_argument("--lrs", default="log:1e-6:10:32", help="learning-rate axis (default the study's 32 points)")
    p.add_argument("--seeds", type=int, default=8, help="seeds per grid point (default 8)")
    p.add_argument("--loop", type=int, default=64, help="configurations timed in the jax loop (default 64)")
    p.add_argument("--torch-loop", type=int, default=32, help="configurations timed in the torch loop (default 32)")
    p.add_argument("--repeats", type=int, default=2, help="timed warm runs of the grid (default 2)")
    p.add_argument("--wait-quiet", type=float, default=120, help="seconds to wait for a quiet machine (default 120)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 6 x 6 x 2 grid, short loops, no waiting")
    add_out_argument(p, "train_grid")
    args = p.parse_args(argv)
    if args.quick:
        args.scales, args.lrs, args.seeds = "log:1e-3:1:6", "log:1e-4:1:6", 2
        args.loop, args.torch_loop, args.repeats, args.wait_quiet = 8, 4, 1, 0
    return args


def grid_configs(ds, count: int):
    """``count`` configurations (scale, learning rate, seed) strided over the grid, with the grid's final losses."""
    import numpy as np

    flat = ds.isel(depth=0).stack(point=("scale", "learning_rate", "seed"))
    idx = np.unique(np.linspace(0, flat.sizes["point"] - 1, count).round().astype(int))
    pts = flat.isel(point=idx)
    return [
        (float(s), float(lr), int(seed), float(loss), bool(div))
        for s, lr, seed, loss, div in zip(
            pts.scale.values,
            pts.learning_rate.values,
            pts.seed.values,
            pts.final_loss.values,
            pts.diverged.values,
            strict=True,
        )
    ]


def time_jax_loop(configs, data, sizes, steps, batch):
    import jax
    import numpy as np

    from sim.networks import deep

    device = jax.devices()[0]
    data = jax.device_put(data, device)
    opts = {"optimizer": "sgd", "steps": steps, "batch_size": batch, "eval_every": steps}
    keep = ("train_accuracy", "train_loss", "diverged")

    @jax.jit
    def one(scale, lr, seed, data):
        out = deep.train_network(scale, lr, seed, data, sizes=sizes, **opts)
        return {k: out[k] for k in keep}

    s, lr, seed = configs[0][:3]
    jax.block_until_ready(one(np.float32(s), np.float32(lr), np.int32(seed), data))  # compile
    results = []
    cpu0 = time.process_time()
    with Timed() as t:
        for s, lr, seed, *_ in configs:
            out = one(np.float32(s), np.float32(lr), np.int32(seed), data)
            results.append({k: np.asarray(v) for k, v in out.items()})  # fetched: the loop waits for each network
    cpu = time.process_time() - cpu0
    errors = [
        abs(float(r["train_loss"][-1]) - c[3]) / max(abs(c[3]), 1e-6)
        for r, c in zip(results, configs, strict=True)
        if not c[4] and not bool(r["diverged"])
    ]
    agree = [bool(r["diverged"]) == c[4] for r, c in zip(results, configs, strict=True)]
    return t, cpu, {"max_rel_diff_final_loss_vs_grid": max(errors, default=0.0), "diverged_agree": all(agree)}


def time_torch_loop(torch, configs, x, y, sizes, steps, batch):
    """The same training in PyTorch: N(0, scale²) weights, zero biases, SGD, the JAX draw's batch indices."""
    import jax
    import numpy as np

    from sim.networks import deep

    xt, yt = torch.tensor(np.asarray(x)), torch.tensor(np.asarray(y), dtype=torch.long)
    draws = {}
    for _, _, seed, *_ in configs:  # batch indices and unit weights from sim's draw, prepared before timing
        unit, idx = deep.draw(seed, sizes=sizes, dist="normal", steps=steps, batch_size=batch, n=x.shape[0])
        draws[seed] = ([np.asarray(layer["w"]) for layer in unit], torch.tensor(np.asarray(idx), dtype=torch.long))
    del jax

    def run(scale, lr, seed):
        weights, idx = draws[seed]
        layers = []
        for w in weights:
            lin = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w.T * scale))
                lin.bias.zero_()
            layers += [lin, torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers[:-1])
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        loss_fn = torch.nn.CrossEntropyLoss()
        diverged = False
        for t in range(steps):
            b = idx[t]
            loss = loss_fn(model(xt[b]), yt[b])
            value = float(loss.detach())
            if not value <= deep.DIVERGENCE_BOUND:  # NaN compares False
                diverged = True
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            z = model(xt)
            return float(loss_fn(z, yt)), float((z.argmax(1) == yt).float().mean()), diverged

    run(*configs[0][:3])  # warm-up
    results = []
    cpu0 = time.process_time()
    with Timed() as t:
        for s, lr, seed, *_ in configs:
            results.append(run(s, lr, seed))
    cpu = time.process_time() - cpu0
    errors = [
        abs(r[0] - c[3]) / max(abs(c[3]), 1e-6) for r, c in zip(results, configs, strict=True) if not c[4] and not r[2]
    ]
    return t, cpu, {"max_rel_diff_final_loss_vs_grid": max(errors, default=0.0)}


def main(argv=None) -> int:
    args = parse_args(argv)
    runtime.configure_cpu_devices()  # before anything starts JAX's backends

    import jax
    import jax.numpy as jnp
    import numpy as np

    from sim.networks import deep, images, trainability

    prov = runtime.provenance()
    devices = jax.devices()
    torch, torch_note = torch_status("pip install '.[bench]' to compare against PyTorch")
    quiet = wait_quiet(args.wait_quiet) if args.wait_quiet > 0 else {"waited_s": 0.0, "skipped": True}
    print_header(DTYPE, torch_note)

    data = images.load("digits")
    hidden = trainability.DEPTHS[args.depth]
    n_train, batch, epochs = 50, 25, 20
    steps = epochs * n_train // batch
    sizes = deep.layer_sizes(data.input_dim, hidden, data.num_classes)
    kw = {"seeds": args.seeds, "scales": args.scales, "lrs": args.lrs, "depths": [args.depth], "progress": False}

    with Timed() as first:
        ds = trainability.depth_study(data, **kw)
    networks = int(np.prod([ds.sizes[d] for d in ("scale", "learning_rate", "seed")]))
    times, loads, cpus = [], [], []
    for _ in range(args.repeats):
        cpu0 = time.process_time()
        with Timed() as t:
            ds = trainability.depth_study(data, **kw)
        times.append(t.seconds)
        loads.append(t.other_load)
        cpus.append(time.process_time() - cpu0)
    grid_s = statistics.median(times)
    rows = [
        {
            "method": "grid",
            "networks": networks,
            "seconds": grid_s,
            "networks_per_s": networks / grid_s,
            "cpu_ms_per_network": 1e3 * statistics.median(cpus) / networks,
            "first_call_s": first.seconds,
            "times_s": times,
            "other_load_cores": max(loads),
            "devices": int(ds.attrs["device_count"]),
        }
    ]
    print(f"grid: {networks} networks in {grid_s:.2f} s (first call {first.seconds:.1f} s)", flush=True)

    x, y = data.x_train[:n_train], data.y_train[:n_train]
    arrays = tuple(jnp.asarray(a) for a in (x, y, x, y, x, y))
    configs = grid_configs(ds, args.loop)
    t, cpu, check = time_jax_loop(configs, arrays, sizes, steps, batch)
    rows.append(
        {
            "method": "jax-loop",
            "networks": len(configs),
            "seconds": t.seconds,
            "networks_per_s": len(configs) / t.seconds,
            "cpu_ms_per_network": 1e3 * cpu / len(configs),
            "other_load_cores": t.other_load,
            "devices": 1,
            **check,
        }
    )
    print(f"jax-loop: {len(configs)} networks in {t.seconds:.2f} s", flush=True)
    if torch is not None:
        tconfigs = grid_configs(ds, args.torch_loop)
        t, cpu, check = time_torch_loop(torch, tconfigs, x, y, sizes, steps, batch)
        rows.append(
            {
                "method": "torch-loop",
                "networks": len(tconfigs),
                "seconds": t.seconds,
                "networks_per_s": len(tconfigs) / t.seconds,
                "cpu_ms_per_network": 1e3 * cpu / len(tconfigs),
                "other_load_cores": t.other_load,
                "threads": torch.get_num_threads(),
                **check,
            }
        )
        print(f"torch-loop: {len(tconfigs)} networks in {t.seconds:.2f} s", flush=True)
    else:
        rows.append({"method": "torch-loop", "skipped": torch_note})
        print(torch_note)

    grid_rate = rows[0]["networks_per_s"]
    for row in rows[1:]:
        if "networks_per_s" in row:
            row["grid_speedup"] = grid_rate / row["networks_per_s"]
            row["grid_speedup_cpu"] = row["cpu_ms_per_network"] / rows[0]["cpu_ms_per_network"]
            row["target"] = TARGETS[row["method"]]
            row["target_met"] = row["grid_speedup"] >= row["target"]

    print()
    print(f"{args.depth}-layer nets (hidden {hidden}), {steps} SGD steps of batch {batch} on {n_train} digits, {DTYPE}")
    header = f"{'method':11} {'networks':>8} {'seconds':>8} {'nets/s':>9} {'cpu ms/net':>10} {'grid x':>7} " + (
        f"{'grid x (cpu)':>12} {'target':>7} {'other load':>10}"
    )
    print(header)
    for row in rows:
        if "skipped" in row:
            print(f"{row['method']:11} {row['skipped']}")
            continue
        speed = row.get("grid_speedup")
        extra = (
            ["", "", ""]
            if speed is None
            else [f"{speed:.1f}", f"{row['grid_speedup_cpu']:.1f}", f"{row['target']:.0f}x"]
        )
        print(
            f"{row['method']:11} {row['networks']:>8} {row['seconds']:>8.2f} {row['networks_per_s']:>9.1f} "
            f"{row['cpu_ms_per_network']:>10.2f} {extra[0]:>7} {extra[1]:>12} {extra[2]:>7} "
            f"{row['other_load_cores']:>10.2f}"
        )
    record = {
        "benchmark": "train_grid",
        "workload": {
            "depth": args.depth,
            "hidden": hidden,
            "sizes": list(sizes),
            "data": "digits",
            "n_train": n_train,
            "batch_size": batch,
            "steps": steps,
            "scales": args.scales,
            "lrs": args.lrs,
            "seeds": args.seeds,
            "quick": args.quick,
        },
        "dtype": DTYPE,
        "device": f"{len(devices)} x {devices[0].device_kind} ({devices[0].platform})",
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {k.removeprefix("version_"): v for k, v in prov.items() if k.startswith("version_")}
        | {"torch": None if torch is None else torch.__version__},
        "xla_flags": prov["xla_flags"],
        "git_revision": prov["git_revision"],
        "quiet": quiet,
        "rows": rows,
    }
    write_results(results_path(args, "train_grid"), record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
