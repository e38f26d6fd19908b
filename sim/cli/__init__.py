"""The ``sim`` command: one module per subcommand (``sweep``, ``theory``, ``mc``, ``features``, ``figures``,
``explore``, ``info``), each with ``add_parser(subparsers)`` and ``run(args) -> int``.

Contract: :func:`main` configures one JAX CPU device per core (unless ``XLA_FLAGS`` is set) before JAX starts,
parses arguments, and maps every :class:`sim.core.validate.InputError` to a one-line message on stderr and exit
status 2 (no traceback), raised before anything is compiled. Help and argument errors import neither JAX, xarray nor
sympy: each subcommand imports what it needs inside ``run``, after its own checks.
"""

from __future__ import annotations

import argparse
import sys

from sim.cli import features, figures, info, mc, sweep, theory
from sim.core.validate import InputError

COMMANDS = {
    "sweep": sweep,
    "theory": theory,
    "mc": mc,
    "features": features,
    "figures": figures,
    "info": info,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sim", description="JAX simulations of optimization dynamics, checked against theory."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sim.core import runtime

    runtime.configure_cpu_devices()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return COMMANDS[args.command].run(args)
    except InputError as err:
        print(f"sim {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
