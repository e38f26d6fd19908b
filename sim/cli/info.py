"""``sim info``: the devices JAX sees, the working dtype, which sweep loop runs, and versions."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="the devices JAX sees, dtype and versions")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args) -> int:
    from sim.core import runtime
    from sim.linear.sweep import native

    info = runtime.info()
    info["sweep_loop"] = native.loop_for(1)[1]
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
