"""The ``sim`` command: one module per subcommand (``sweep``, ``theory``, ``mc``, ``features``, ``nets``,
``figures``, ``explore``, ``export``, ``info``), each with ``add_parser(subparsers)`` and ``run(args) -> int``.

Contract: :func:`main` configures one JAX CPU device per core (unless ``XLA_FLAGS`` is set) before JAX starts,
parses arguments, and maps every :class:`sim.core.validate.InputError` to a one-line message on stderr and exit
status 2 (no traceback), raised before anything is compiled. The message names the flag the user typed (``--eta``,
not the internal ``learning_rate``): the error's parameter, and any internal name with an underscore in its text, is
looked up among the destinations of the subcommand's options (:func:`flag_names`). A value may start with ``-``
(``--target -1,1``, ``--eta -1:1:10``): the checks then judge it by its value. Help and argument errors import
neither JAX, xarray nor sympy: each subcommand imports what it needs inside ``run``, after its own checks.
"""

from __future__ import annotations

import argparse
import re
import sys

from sim.cli import explore, export, features, figures, info, mc, nets, sweep, theory
from sim.core.validate import InputError

COMMANDS = {
    "sweep": sweep,
    "theory": theory,
    "mc": mc,
    "features": features,
    "nets": nets,
    "figures": figures,
    "explore": explore,
    "export": export,
    "info": info,
}


NEGATIVE_VALUE = re.compile(r"^-(\.?\d|inf|nan)", re.IGNORECASE)
"""What argparse takes for a value, not an option, after a flag: a dash followed by a digit, ``.digit``, ``inf`` or
``nan`` (``-1``, ``-.5``, ``-1e3``, ``-1,1``, ``-1:1:10``, ``-inf``). No option of ``sim`` looks like that."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that reads ``--flag -1,1`` and ``--flag -1:1:10`` as a flag and its value.

    argparse takes an argument starting with ``-`` for an option unless it is a plain negative number (``-1``,
    ``-.5``); lists and axes are not. Its subparsers are of this class too (``add_subparsers`` uses the parent's).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_VALUE  # read by argparse's _parse_optional


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="sim", description="JAX simulations of optimization dynamics, checked against theory.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def flag_names(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str]) -> dict[str, str]:
    """Each option's destination (``learning_rate``) → the flag the user typed for it (``--eta`` or ``--lr``).

    The options are those of ``parser`` and of every subparser the arguments chose (``sim mc sweep`` has two levels).
    Among an option's flags the one found in ``argv`` wins (``--lr``, ``--lr=0.1``, or an abbreviation of it); a short
    one (``-o``) or none (a default or a missing option) gives the option's first long flag (``--output``).
    Positional arguments keep their names.
    """
    actions, current = [], parser
    while current is not None:
        actions += current._actions
        chosen = None
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(args, action.dest, None))
        current = chosen
    tokens = [a.split("=", 1)[0] for a in argv if a.startswith("--")]
    names = {}
    for action in actions:
        long_flags = [f for f in action.option_strings if f.startswith("--")]
        if not long_flags or action.dest in names or action.dest == argparse.SUPPRESS:
            continue
        typed = [f for f in long_flags if f in tokens]
        typed = typed or [f for f in long_flags if any(len(t) > 2 and f.startswith(t) for t in tokens)]
        names[action.dest] = (typed or long_flags)[0]
    return names


def user_message(err: InputError, names: dict[str, str]) -> str:
    """The error's one line with internal names replaced by flags: its parameter, and in its text every name with an
    underscore that is an option's destination (quoted text, the user's own input, is left alone)."""
    param = names.get(err.param, err.param)
    message = getattr(err, "message", None)
    if message is None:  # an InputError of another shape: its text as it is
        text = str(err)
        message = text[len(err.param) + 2 :] if text.startswith(f"{err.param}: ") else text
    pattern = "|".join(re.escape(d) for d in sorted(names, key=len, reverse=True) if "_" in d)
    if pattern:
        regex = re.compile(rf"(?<![\w.-])({pattern})(?!\w)")
        parts = re.split(r"('[^']*')", message)
        message = "".join(
            part if i % 2 else regex.sub(lambda m: names[m.group(1)], part) for i, part in enumerate(parts)
        )
    return f"{param}: {' '.join(message.split())}"


def main(argv: list[str] | None = None) -> int:
    from sim.core import runtime

    runtime.configure_cpu_devices()
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return COMMANDS[args.command].run(args)
    except InputError as err:
        print(f"sim {args.command}: error: {user_message(err, flag_names(parser, args, argv))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
