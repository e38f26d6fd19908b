"""``sim figures``: regenerate the project's figures (PNG) and their provenance.

Contract: :func:`add_parser` registers ``sim figures`` and :func:`run` renders (``sim.figures.registry.render``). The
output folder is checked before anything is imported or computed (:func:`sim.core.validate.check_writable_dir`: it
may be missing, the registry creates it); a bad one is one line on stderr and exit status 2. Without ``--outdir`` the
registry's defaults apply (:data:`OUTDIR`, :data:`QUICK_OUTDIR`, the same as ``sim.figures.registry``'s, here without
importing matplotlib).
"""

from __future__ import annotations

import argparse
import time

from sim.core.validate import check_writable_dir

OUTDIR = "figures"  # = sim.figures.registry.OUTDIR (tested)
QUICK_OUTDIR = "figures/quick"  # = sim.figures.registry.QUICK_OUTDIR (tested)

DESCRIPTION = """\
Regenerate the project's figures as PNG files with their provenance: every figure in the registry, or those named
with --only. Full size takes minutes, --quick seconds; quick renders go apart from the full-size figures."""

EPILOG = """\
Each figure is computed (sweeps, Monte Carlo, training), drawn in a fixed style and saved as a byte-stable PNG;
its configuration, versions, devices and git revision go to OUTDIR/provenance.json. A quick render never replaces
a full-size figure. Progress bars and per-figure times go to stderr (--no-progress hides them).
examples:
  sim figures --list
  sim figures --quick --only gd_rate_vs_lr --outdir /tmp/figs
  sim figures --no-progress > figures.log
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "figures",
        help="regenerate the registry (PNG) on the CPU",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--only", action="append", metavar="NAME", help="render only this figure (repeatable)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: seconds instead of minutes")
    p.add_argument(
        "--outdir",
        help=f"output directory, created if missing (default {OUTDIR}/, with --quick {QUICK_OUTDIR}/)",
    )
    p.add_argument("--list", action="store_true", help="list the figure names and exit")
    p.add_argument(
        "--no-progress", action="store_true", help="hide the progress bars and per-figure timings (for logs)"
    )


def run(args) -> int:
    if not args.list:  # before anything is imported or computed
        check_writable_dir(args.outdir or (QUICK_OUTDIR if args.quick else OUTDIR), name="outdir")

    from sim.figures import registry

    if args.list:
        for name, fig in registry.FIGURES.items():
            print(f"{name:28s} {fig.filename}")
        for name, (filename, _) in registry.PAGES.items():
            print(f"{name:28s} {filename}")
        return 0
    start = time.perf_counter()
    paths = registry.render(args.only, quick=args.quick, outdir=args.outdir, progress=not args.no_progress)
    for p in paths:
        print(f"wrote {p}")
    print(f"{len(paths)} figure(s) in {time.perf_counter() - start:.1f} s")
    return 0
