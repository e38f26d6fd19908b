"""The data of the vector least-squares problems: a seeded synthetic design, and a loader for the user's own.

Contract: :func:`synthetic_problem` draws X = U diag(s) Vᵀ and y from a seed; :func:`load_data` reads X and y from
a ``.csv`` or ``.npz`` file. Both return float64 arrays of shape [m, n] and [m]; every problem with the input raises
:class:`sim.validate.InputError` named after the parameter (``path`` for the file). :mod:`sim.noisy_vector` runs
noisy-input SGD on them (``sim mc vector --data FILE`` or ``--shape M,N``).
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from sim import ridge
from sim.validate import InputError, check_int

DEFAULT_SHAPE = (64, 8)


def synthetic_problem(
    *, shape: tuple[int, int] = DEFAULT_SHAPE, singular_values: ArrayLike | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded problem X = U diag(s) Vᵀ (Haar U, V) with y ~ N(0, I) from :func:`sim.ridge.random_design`.

    Args:
      shape: (m, n).
      singular_values: s, shape [min(m, n)]; default √m · geomspace(1.5, 0.15), so XᵀX/m has eigenvalues from
        2.25 down to 0.0225 and the ridge factors at σ = 0.5 spread from 0.9 to 0.08.
      seed: integer in [0, 2³²).

    Returns:
      ``(x, y)``, float64 arrays of shape [m, n] and [m] (drawn in float32, whatever the x64 mode).
    """
    seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
    if len(shape) != 2:
        raise InputError("shape", f"must be (m, n), got {shape!r}")
    m, n = (check_int("shape", v, minimum=1) for v in shape)
    s = np.sqrt(m) * np.geomspace(1.5, 0.15, min(m, n)) if singular_values is None else singular_values
    x, y = ridge.random_design(s, shape=(m, n), key=jax.random.key(seed), dtype=jnp.float32)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def load_data(path) -> tuple[np.ndarray, np.ndarray]:
    """Read (x, y) from a ``.csv`` (comma-separated numbers, one point per row, last column y, lines starting with
    ``#`` skipped) or a ``.npz`` (arrays ``x`` of shape [m, n] and ``y`` of shape [m]).

    Returns:
      ``(x, y)``, float64 arrays of shape [m, n] and [m]. Every problem raises :class:`InputError` for ``path``.
    """
    p = Path(path)
    if p.suffix.lower() not in (".csv", ".npz"):
        raise InputError("path", f"{path}: must end in .csv or .npz")
    if not p.is_file():
        raise InputError("path", f"{path} does not exist or is not a file")
    if p.suffix.lower() == ".csv":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # numpy warns on an empty file; we raise instead
                data = np.loadtxt(p, delimiter=",", comments="#", ndmin=2, dtype=np.float64)
        except ValueError as err:
            raise InputError(
                "path", f"{path}: not a comma-separated table of numbers ({err}); start any header line with #"
            ) from None
        if data.size == 0:
            raise InputError("path", f"{path}: contains no data rows")
        if data.shape[1] < 2:
            raise InputError("path", f"{path}: needs at least 2 columns (the inputs, then y), got 1")
        x, y = data[:, :-1], data[:, -1]
    else:
        try:
            with np.load(p, allow_pickle=False) as arrays:
                missing = [k for k in ("x", "y") if k not in arrays.files]
                if missing:
                    raise InputError("path", f"{path}: missing array(s) {', '.join(missing)} (has {arrays.files})")
                for k in ("x", "y"):
                    if arrays[k].dtype.kind not in "biuf":
                        raise InputError(
                            "path", f"{path}: array {k} must hold real numbers, got dtype {arrays[k].dtype}"
                        )
                x, y = np.asarray(arrays["x"], dtype=np.float64), np.asarray(arrays["y"], dtype=np.float64)
        except InputError:
            raise  # already says what is wrong (InputError is a ValueError: keep it from the clause below)
        except (OSError, ValueError, TypeError, zipfile.BadZipFile) as err:
            raise InputError("path", f"{path}: not a readable .npz of numeric arrays ({err})") from None
    if x.ndim != 2 or 0 in x.shape or y.shape != (x.shape[0],):
        raise InputError("path", f"{path}: x must have shape [m, n] and y shape [m], got {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError("path", f"{path}: contains NaN or inf")
    return x, y
