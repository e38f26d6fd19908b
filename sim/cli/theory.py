"""``sim theory``: closed-form answers for GD and momentum on one problem, each beside its simulated count."""

from __future__ import annotations

import argparse
import json

from sim.core.validate import InputError, parse_number_list


def add_parser(sub) -> None:
    p = sub.add_parser(
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
    p.add_argument("method", choices=["gd", "momentum"])
    p.add_argument("--spectrum", metavar="S1,S2,...", help="squared singular values of the problem")
    p.add_argument("--tol", type=float, default=1e-3, help="relative-error tolerance in (0, 1) (default 1e-3)")
    p.add_argument("--eta", "--lr", dest="learning_rate", type=float, help="a learning rate to classify")
    p.add_argument("--beta", type=float, help="EMA momentum weight of the new gradient, in (0, 1]")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--symbolic", action="store_true", help="print the sympy derivation (momentum)")
    p.add_argument("--latex", action="store_true", help="with --symbolic: LaTeX instead of plain text")


FLAGS = {"spectrum": "--spectrum", "learning_rate": "--eta", "beta": "--beta", "tol": "--tol"}
"""The flag a user typed for each parameter of :mod:`sim.linear.report`, named in its errors."""


def run(args) -> int:
    if args.symbolic:
        if args.method != "momentum":
            raise InputError("--symbolic", "the symbolic derivation is for momentum: sim theory momentum --symbolic")
        from sim.linear import symbolic

        print(symbolic.render("latex" if args.latex else "text"))
        return 0
    if args.spectrum is None:
        raise InputError("--spectrum", "give the problem's squared singular values, e.g. --spectrum 5,0.05")
    spectrum = parse_number_list("--spectrum", args.spectrum)
    if args.method == "gd" and args.beta is not None:
        raise InputError("--beta", "is not a hyperparameter of gd")

    from sim.linear import report

    try:
        if args.method == "gd":
            result = report.gd_report(spectrum, args.tol, args.learning_rate)
        else:
            result = report.momentum_report(spectrum, args.tol, args.beta, args.learning_rate)
    except InputError as err:  # the report names its parameters; the user typed flags
        typed_lr = any(a.split("=", 1)[0] == "--lr" for a in getattr(args, "argv", []))
        flag = "--lr" if err.param == "learning_rate" and typed_lr else FLAGS.get(err.param, err.param)
        raise InputError(flag, str(err).removeprefix(f"{err.param}: ")) from None
    print(json.dumps(result, indent=2, allow_nan=False) if args.json else report.format_report(result))
    return 0
