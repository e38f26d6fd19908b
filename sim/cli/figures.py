"""``sim figures``: regenerate the project's figures (PNG) and their provenance."""

from __future__ import annotations

import time


def add_parser(sub) -> None:
    p = sub.add_parser("figures", help="regenerate the registry (PNG) on the CPU")
    p.add_argument("--only", action="append", metavar="NAME", help="render only this figure (repeatable)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: seconds instead of minutes")
    p.add_argument("--outdir", default="figures", help="output directory (default figures/)")
    p.add_argument("--list", action="store_true", help="list the figure names and exit")


def run(args) -> int:
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
