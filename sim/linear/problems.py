"""Least-squares problems Xw ≈ y, given as a spectrum or as an explicit matrix reduced through its SVD.

Contract: a :class:`Problem` holds the squared singular values σ_i² (``spectrum``) and the coordinates c_i of the
optimum w* in the right singular basis (``target``). With X = U Σ Vᵀ, the error x = Vᵀ(w − w*) of GD or momentum on
L(w) = ‖y − Xw‖² evolves mode by mode with gradient 2σ_i² x_i, so a problem is fully described by (σ_i², c_i).
Components of w in the null space of X never move from w₀ = 0, which is where the minimum-norm w* has them.

References: EECS 182 Sp25 HW1 Q1(g): "the SVD turns least squares into parallel scalar problems".
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sim.core.validate import InputError, check_positive_finite


@dataclasses.dataclass(frozen=True)
class Problem:
    """A least-squares problem in its singular basis.

    Attributes:
      spectrum: squared singular values σ_i², array of shape [modes], all > 0.
      target: coordinates c_i of w* in the right singular basis, array of shape [modes].
    """

    spectrum: np.ndarray
    target: np.ndarray

    @property
    def modes(self) -> int:
        return int(np.shape(self.spectrum)[-1])

    def initial_error(self) -> np.ndarray:
        """Relative error coordinates at w₀ = 0: x_i(0) = −c_i / ‖c‖ (so ‖x(0)‖ = 1)."""
        c = np.asarray(self.target, dtype=np.float64)
        return -c / np.linalg.norm(c)


def from_spectrum(spectrum, target=None) -> Problem:
    """A problem from its squared singular values σ_i² and (optionally) the optimum's coordinates c_i.

    Args:
      spectrum: σ_i², sequence of positive numbers.
      target: c_i; defaults to all ones, so every mode starts with the same relative error.

    Returns:
      The :class:`Problem`.
    """
    s = np.atleast_1d(np.asarray(spectrum, dtype=np.float64))
    if s.ndim != 1 or s.size == 0:
        raise InputError("spectrum", "must be a non-empty list of squared singular values")
    check_positive_finite("spectrum", s)
    c = np.ones_like(s) if target is None else np.atleast_1d(np.asarray(target, dtype=np.float64))
    if c.shape != s.shape:
        raise InputError("target", f"must have one coordinate per mode ({s.size}), got shape {c.shape}")
    if not np.all(np.isfinite(c)) or not np.any(c != 0):
        raise InputError("target", "must be finite and not all zero")
    return Problem(s, c)


def from_matrix(x, y, *, rcond: float | None = None) -> tuple[Problem, np.ndarray]:
    """Reduce least squares Xw ≈ y to its spectrum through the thin SVD of X.

    Singular values below ``rcond · σ_max`` (default: machine epsilon times max(n, d)) are dropped: those
    directions never move under GD from w₀ = 0, exactly as the minimum-norm optimum requires.

    Args:
      x: array of shape [n, d].
      y: array of shape [n].
      rcond: relative cutoff for zero singular values.

    Returns:
      ``(problem, v)``: the problem and the right singular vectors V of shape [d, modes], so that w − w* = V x.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.size == 0:
        raise InputError("X", f"must be a non-empty 2-D matrix, got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise InputError("y", f"must have shape ({x.shape[0]},) to match X, got {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError("X", "X and y must be finite")
    u, sv, vt = np.linalg.svd(x, full_matrices=False)
    cut = (np.finfo(np.float64).eps * max(x.shape) if rcond is None else rcond) * sv[0]
    keep = sv > cut
    if not np.any(keep):
        raise InputError("X", "has no nonzero singular value")
    u, sv, vt = u[:, keep], sv[keep], vt[keep]
    coords = (u.T @ y) / sv
    return from_spectrum(sv**2, coords), vt.T


def least_squares_gradient(x, y):
    """The gradient ∇L(w) = 2Xᵀ(Xw − y) of L(w) = ‖y − Xw‖², as a function of w."""
    return lambda w: 2 * x.T @ (x @ w - y)


def course_momentum_data(n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The notebook's data: ``np.random.seed(seed)``, X = ``np.random.normal([-3, 0], [3, 1], [n, 2])``,
    y = 1[x₂ > 0].

    ``np.random.RandomState(seed)`` draws the same numbers as the notebook's global ``np.random.seed(seed)``
    without touching numpy's global state.

    Args:
      n: number of points.
      seed: the legacy numpy seed.

    Returns:
      ``(x, y)``: float64 arrays of shape [n, 2] and [n].

    References:
      EECS 182 Sp23 HW2 Q2, the momentum notebook.
    """
    x = np.random.RandomState(seed).normal([-3.0, 0.0], [3.0, 1.0], [n, 2])
    return x, (x[:, 1] > 0).astype(np.float64)


# The course's worked example (EECS 182 Sp23 HW2 Q1–Q2): two modes σ_ℓ² = 5 and σ_s² = 0.05, relative-error
# tolerance ε = 10⁻³, and the momentum weight β = 0.1 of Q2 (g), whose best-rate interval is η ∈ [0.2633, 3.797].
COURSE_SPECTRUM = (5.0, 0.05)
COURSE_TOL = 1e-3
COURSE_BETA = 0.1
