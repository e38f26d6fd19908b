"""Input validation: one error type that names the offending parameter, raised before anything is compiled.

Contract: every public entry point checks its arguments with these helpers and raises :class:`InputError`, whose
message is one line starting with the parameter's name. The CLI prints that line and exits with status 2.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class InputError(ValueError):
    """Malformed user input; ``param`` names the parameter and ``str(err)`` is a one-line explanation."""

    def __init__(self, param: str, message: str):
        self.param = param
        super().__init__(f"{param}: {message}")


def check_positive_finite(name: str, values, *, allow_zero: bool = False) -> np.ndarray:
    """Require every value to be finite and > 0 (≥ 0 with ``allow_zero``)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise InputError(name, "is empty")
    if not np.all(np.isfinite(arr)):
        raise InputError(name, f"must be finite, got {_first_bad(arr, ~np.isfinite(arr))}")
    bad = arr < 0 if allow_zero else arr <= 0
    if np.any(bad):
        raise InputError(name, f"must be {'>= 0' if allow_zero else '> 0'}, got {_first_bad(arr, bad)}")
    return arr


def check_finite(name: str, values) -> np.ndarray:
    """Require every value to be a finite real number."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(name, f"must be a real number, got {values!r}") from None
    if arr.size == 0:
        raise InputError(name, "is empty")
    if not np.all(np.isfinite(arr)):
        raise InputError(name, f"must be finite, got {arr[~np.isfinite(arr)].flat[0]:g}")
    return arr


def check_in_interval(
    name: str, values, low: float, high: float, *, closed_high: bool, closed_low: bool = False
) -> np.ndarray:
    """Require every value to lie in the interval from ``low`` to ``high`` (open unless marked closed)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise InputError(name, "is empty")
    ok = ((arr >= low) if closed_low else (arr > low)) & ((arr <= high) if closed_high else (arr < high))
    if not np.all(ok):
        interval = f"{'[' if closed_low else '('}{low:g}, {high:g}{']' if closed_high else ')'}"
        raise InputError(name, f"must lie in {interval}, got {_first_bad(arr, ~ok)}")
    return arr


def check_int(name: str, value, *, minimum: int, maximum: int | None = None) -> int:
    """Require an integer in [minimum, maximum]."""
    if isinstance(value, bool) or not float(value).is_integer():
        raise InputError(name, f"must be an integer, got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        hi = f" and <= {maximum}" if maximum is not None else ""
        raise InputError(name, f"must be >= {minimum}{hi}, got {value}")
    return value


def parse_number_list(name: str, text: str | None) -> list[float] | None:
    """Parse a comma-separated list of numbers (None passes through)."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(name, f"expected a comma-separated list of numbers, got {text!r}") from None
    if not values:
        raise InputError(name, "is empty")
    return values


def check_writable(path, *, name: str = "output") -> None:
    """Require that ``path`` can be written (its folder exists and is writable; it is not a folder)."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise InputError(name, f"{path} is a directory")
    if not parent.is_dir():
        raise InputError(name, f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise InputError(name, f"{path} is not writable")


def _first_bad(arr: np.ndarray, bad: np.ndarray) -> str:
    return f"{arr[bad].flat[0]:g}"
