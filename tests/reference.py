"""A plain NumPy float64 reference for the sweep kernel: the course's EMA recursion with every step kept.

Test oracle only (never imported by the package or benchmarks): independent of JAX, no early stopping.
"""

import numpy as np


def momentum_errors(eta, beta, spectrum, steps: int) -> np.ndarray:
    """Relative errors of EMA momentum (β = 1 is GD) from w₀ = 0 with equal target coordinates.

    ``eta`` and ``beta`` broadcast over points; returns float64 errors of shape [steps + 1, points] (row 0 is 1).
    Diverging points overflow to inf/NaN, as they would in any plain simulation.
    """
    eta, beta = (np.asarray(v, dtype=np.float64).reshape(-1, 1) for v in np.broadcast_arrays(eta, beta))
    spec = np.asarray(spectrum, dtype=np.float64)
    x = np.full((eta.shape[0], spec.size), -1 / np.sqrt(spec.size))
    z = np.zeros_like(x)
    errors = np.empty((steps + 1, eta.shape[0]))
    errors[0] = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            z = (1 - beta) * z + beta * 2 * spec * x
            x = x - eta * z
            errors[t] = np.sqrt((x * x).sum(axis=1))
    return errors


def settle_steps(errors: np.ndarray, tol: float) -> np.ndarray:
    """First step after which every error stays below ``tol`` (−1 if the last one is not), per column."""
    steps = errors.shape[0] - 1
    above = errors[1:] >= tol
    last = np.where(above.any(axis=0), steps - np.argmax(above[::-1], axis=0), 0)
    return np.where(last < steps, last + 1, -1)
