"""The data of the least-squares problems: random designs with a prescribed spectrum, and a loader for the user's own.

Contract: :func:`random_design` draws X = U diag(s) Vᵀ (Haar-random U, V: :func:`haar_orthonormal`) and y ~ N(0, I)
from a key; :func:`synthetic_problem` is the vector noisy-input problem's default design from a seed, and
:func:`load_data` reads X and y from a ``.csv`` or ``.npz`` file, both as float64 arrays of shape [m, n] and [m].
Every problem with the input raises :class:`sim.core.validate.InputError` named after the parameter (``path`` for the
file). :mod:`sim.noisy.vector` runs noisy-input SGD on them (``sim mc vector --data FILE`` or ``--shape M,N``);
:mod:`sim.figures.regression` and :mod:`sim.regression.early_stopping` draw their designs here.
"""

from __future__ import annotations

import functools
import warnings
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from sim.core.validate import InputError, check_int, check_positive_finite

DEFAULT_SHAPE = (64, 8)


def synthetic_problem(
    *, shape: tuple[int, int] = DEFAULT_SHAPE, singular_values: ArrayLike | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded problem X = U diag(s) Vᵀ (Haar U, V) with y ~ N(0, I) from :func:`random_design`.

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
    x, y = random_design(s, shape=(m, n), key=jax.random.key(seed), dtype=jnp.float32)
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


def random_design(
    singular_values: ArrayLike, *, shape: tuple[int, int], key: jax.Array, dtype=None
) -> tuple[jax.Array, jax.Array]:
    """A random problem with prescribed spectrum: X = U diag(s) Vᵀ with Haar-random orthonormal U, V, and y ~ N(0, I).

    Args:
      singular_values: s ≥ 0, shape [min(n, d)] (any order; X's SVD lists them descending).
      shape: (n, d).
      key: a ``jax.random.key``.
      dtype: float dtype; default float64 under x64, else float32.

    Returns:
      ``(x, y)``, arrays of shape [n, d] and [n].
    """
    s = check_positive_finite("singular_values", singular_values, allow_zero=True)
    if len(shape) != 2:
        raise InputError("shape", f"must be (n, d), got {shape!r}")
    n, d = (check_int("shape", v, minimum=1) for v in shape)
    if s.shape != (min(n, d),):
        raise InputError("singular_values", f"must have min(n, d) = {min(n, d)} entries, got shape {s.shape}")
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)
    return _random_design(key, jnp.asarray(s, dtype=dtype), n, d)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _random_design(key, s, n, d):
    r = s.size
    z = jax.random.normal(key, (n * r + d * r + n,), dtype=s.dtype)
    u = haar_orthonormal(z[: n * r].reshape(n, r))
    v = haar_orthonormal(z[n * r : n * r + d * r].reshape(d, r))
    return (u * s) @ v.T, z[n * r + d * r :]


def haar_orthonormal(g):
    """Haar-distributed orthonormal columns from a Gaussian matrix: QR with the signs of R's diagonal fixed."""
    q, r = jnp.linalg.qr(g)
    return q * jnp.sign(jnp.diagonal(r, axis1=-2, axis2=-1))[..., None, :]
