"""``sim explore``: write the interactive momentum explorer, one self-contained HTML page (:mod:`sim.explore`).

Contract: :func:`add_parser` registers ``sim explore`` on the ``sim`` command's subparsers and :func:`run` writes the
page. Every check raises :class:`sim.core.validate.InputError` naming the flag (``--spectrum``, ``--output``, ...)
before anything is written; the ``sim`` command prints it as one line on stderr and exits with status 2. The page is
written atomically. Neither JAX, xarray nor sympy is imported.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from sim.core.validate import InputError, check_writable, parse_number_list

EPILOG = """\
The page works offline from file:// (script, style and data inline), and the same arguments give the same bytes.
It shows the (eta, beta) map of the EMA momentum rate max_i rho(R_i) for the spectrum (editable in the page, with
presets), and for a clicked point: every mode's eigenvalues and regime, the error over T steps, simulated steps to
the tolerance beside ceil(log eps / log rho), GD at the same eta and at its optimal eta, Distill's (alpha lambda,
beta_D) view, and the point as optax / PyTorch heavy-ball parameters (lr = eta beta, m = 1 - beta).
conventions: L(w) = ||y - Xw||^2 (no 1/2); EMA momentum z <- (1-beta) z + beta grad, w <- w - eta z.
examples:
  sim explore -o momentum_explorer.html
  sim explore --spectrum 9,1,0.25,0.04 --eta 0.5 --beta 0.2 -o four_modes.html --overwrite
"""


def add_parser(sub) -> None:
    """Register ``sim explore`` on the ``sim`` command's subparsers."""
    from sim.explore import DEFAULT_STEPS, DEFAULT_TOL, FILENAME, MAX_MODES, MAX_STEPS

    ex = sub.add_parser(
        "explore",
        help="write the interactive momentum explorer (one offline HTML page)",
        description="Write one self-contained HTML page to explore EMA momentum on a least-squares spectrum.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ex.add_argument("-o", "--output", default=FILENAME, metavar="PATH", help=f"HTML file to write (default {FILENAME})")
    ex.add_argument(
        "--spectrum",
        default="5,0.05",
        metavar="S1,S2,...",
        help=f"squared singular values shown on load, 1 to {MAX_MODES}, all > 0 (default 5,0.05: EECS 182 Sp23 HW2 "
        "Q2(g))",
    )
    ex.add_argument(
        "--eta",
        "--lr",
        dest="learning_rate",
        metavar="ETA",
        help="learning rate selected on load (with --beta; default: the spectrum's joint optimum)",
    )
    ex.add_argument("--beta", metavar="BETA", help="EMA weight of the new gradient selected on load, in (0, 1]")
    ex.add_argument(
        "--tol",
        default=str(DEFAULT_TOL),
        metavar="EPS",
        help=f"relative-error tolerance in (0, 1) (default {DEFAULT_TOL:g})",
    )
    ex.add_argument(
        "--steps",
        default=str(DEFAULT_STEPS),
        metavar="T",
        help=f"steps simulated, 1 to {MAX_STEPS} (default {DEFAULT_STEPS})",
    )
    ex.add_argument("--overwrite", action="store_true", help="replace PATH if it exists (default: refuse)")


def _number(flag: str, text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(flag, f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise InputError(flag, f"must be finite, got {text!r}")
    return value


def run(args) -> int:
    """Validate the flags, then write the page; returns the exit status (0)."""
    from sim import explore

    spectrum = explore.check_spectrum(parse_number_list("--spectrum", args.spectrum), name="--spectrum")
    point = None
    if (args.learning_rate is None) != (args.beta is None):
        missing = "--beta" if args.beta is None else "--eta"
        raise InputError(missing, "give --eta and --beta together (or neither, for the joint optimum)")
    if args.learning_rate is not None:
        eta, beta = _number("--eta", args.learning_rate), _number("--beta", args.beta)
        if eta <= 0:
            raise InputError("--eta", f"must be > 0, got {eta:g}")
        if not 0 < beta <= 1:
            raise InputError("--beta", f"must lie in (0, 1], got {beta:g}")
        point = (eta, beta)
    tol = _number("--tol", args.tol)
    if not 0 < tol < 1:
        raise InputError("--tol", f"must lie in (0, 1), got {tol:g}")
    steps = _number("--steps", args.steps)
    if not (steps.is_integer() and 1 <= steps <= explore.MAX_STEPS):
        raise InputError("--steps", f"must be an integer in [1, {explore.MAX_STEPS}], got {args.steps}")
    output = Path(args.output)
    check_writable(output, name="--output")
    if output.exists() and not args.overwrite:
        raise InputError("--output", f"{output} exists; pass --overwrite to replace it")
    try:
        path = explore.write_page(output, spectrum, point=point, tol=tol, steps=int(steps), overwrite=True)
    except InputError as err:  # the folder vanished or refused the temporary file after the checks above
        raise InputError("--output", str(err).removeprefix(f"{err.param}: ")) from None
    print(f"wrote {path} ({path.stat().st_size:,} bytes; open it in a browser, it needs no network)")
    return 0
