"""Input validation: one error type that names the offending parameter, raised before anything is compiled.

Contract: every public entry point checks its arguments with these helpers and raises :class:`InputError`, whose
message is one line starting with the parameter's name. The CLI prints that line, the parameter named by the flag the
user typed, and exits with status 2. Nothing here imports JAX.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path

import numpy as np


class InputError(ValueError):
    """Malformed user input; ``param`` names the parameter and ``str(err)`` is a one-line explanation."""

    def __init__(self, param: str, message: str):
        self.param = param
        self.message = message
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


def check_in_dtype_range(name: str, values, dtype, *, hint: str = "") -> np.ndarray:
    """Require every value to be 0 or a normal number of ``dtype``: finfo.tiny <= |v| <= finfo.max.

    Beyond the maximum a value turns into inf when cast (float32: 3.4e38); below the smallest normal number
    (float32: 1.2e-38) it loses precision or becomes 0. ``hint`` is appended to the message (e.g. how to get a wider
    dtype). Returns the values as float64.
    """
    arr = check_finite(name, values)
    info = np.finfo(dtype)
    mag = np.abs(arr)
    bad = (mag > info.max) | ((mag != 0) & (mag < info.tiny))
    if np.any(bad):
        raise InputError(
            name,
            f"{_first_bad(arr, bad)} is outside {np.dtype(dtype).name}'s range (nonzero magnitudes from "
            f"{float(info.tiny):.3g} to {float(info.max):.3g}){hint}",
        )
    return arr


def product_limit(dtype) -> float:
    """The largest product (such as 2ησ²) that may be squared, plus a little, without overflowing ``dtype``:
    sqrt(finfo.max) / 16 (float32: 1.15e18; float64: 8.4e152)."""
    return math.sqrt(float(np.finfo(dtype).max)) / 16


def check_product_in_dtype_range(name: str, product: float, dtype, *, what: str, hint: str = "") -> float:
    """Require a product of inputs (``what`` says which, e.g. ``"2*eta*sigma2"``) to be at most
    :func:`product_limit` in ``dtype``, so that the formulas that square it (a 2x2 matrix's trace squared) stay finite.
    """
    product = float(product)
    limit = product_limit(dtype)
    if not abs(product) <= limit:
        raise InputError(
            name,
            f"{what} reaches {product:.3g}, above {limit:.3g}, the most {np.dtype(dtype).name} can square{hint}",
        )
    return product


def check_writable(path, *, name: str = "output") -> None:
    """Require that the file ``path`` can be written: its folder exists and a file can be created in it (tried, not
    guessed: permissions, read-only mounts and special file systems like /proc all answer), and it is not a folder
    (unless it is a ``.zarr`` store, which is one). An existing file must be writable (it is replaced)."""
    text = os.fspath(path)
    if not str(text).strip():
        raise InputError(name, "is empty")
    p = Path(text)
    store = text.rstrip("/").endswith(".zarr")  # a results store is a folder
    if os.path.isdir(p) and not store:
        raise InputError(name, f"{text} is a directory")
    if store and os.path.exists(p) and not os.path.isdir(p):
        raise InputError(name, f"{text} is a file, not a .zarr store")
    parent = p.parent
    _check_is_directory(parent, name)
    if os.path.exists(p) and not os.access(p, os.W_OK):
        raise InputError(name, f"{text} is not writable")
    _try_create_in(parent, name)


def check_writable_dir(path, *, name: str = "outdir") -> None:
    """Require that files can be created in the folder ``path``; a missing folder is fine when it can be created (its
    nearest existing ancestor is a folder that files can be created in). Creates nothing that stays."""
    text = os.fspath(path)
    if not str(text).strip():
        raise InputError(name, "is empty")
    p = Path(text)
    if os.path.exists(p) and not os.path.isdir(p):
        raise InputError(name, f"{text} is a file, not a directory")
    existing = p
    while not os.path.exists(existing) and existing != existing.parent:
        existing = existing.parent
    if not os.path.isdir(existing):
        raise InputError(name, f"{existing} is a file, not a directory")
    _try_create_in(existing, name)


def _check_is_directory(folder: Path, name: str) -> None:
    if os.path.isdir(folder):
        return
    ancestor = folder
    while not os.path.exists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if os.path.exists(ancestor) and not os.path.isdir(ancestor):
        raise InputError(name, f"{ancestor} is a file, not a directory")
    raise InputError(name, f"directory {folder} does not exist")


def _try_create_in(folder: Path, name: str) -> None:
    """Create and remove a temporary file in ``folder``; raise InputError when that fails."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".sim-write-check-", dir=folder)
    except OSError as err:
        raise InputError(name, f"cannot create a file in {folder}: {err.strerror or err}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _first_bad(arr: np.ndarray, bad: np.ndarray) -> str:
    return f"{arr[bad].flat[0]:g}"
