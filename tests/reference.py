"""A plain NumPy float64 reference for the sweep kernel: the course's EMA recursion with every step kept.

Test oracle only (never imported by the package or benchmarks): independent of JAX, no early stopping.
"""

import numpy as np


def momentum_errors(eta, beta, spectrum, steps: int) -> np.ndarray:
    """Relative errors of EMA momentum (β = 1 is GD) from w₀ = 0 with equal target coordinates.

    ``eta`` and ``beta`` broadcast over points; returns float64 errors of shape [steps + 1, points] (row 0 is 1).
    Diverging points overflow to inf/NaN, as they would in any plain simulation.
    """
    return momentum_states(eta, beta, spectrum, steps)[0]


def momentum_states(eta, beta, spectrum, steps: int, *, velocity: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(errors, norms)`` of EMA momentum as :func:`momentum_errors`, with the norm of the whole state per step.

    The state of each mode is (x, z): the error coordinate and the EMA of the gradient, z ← (1 − β) z + β 2σ² x,
    x ← x − η z; ``norms`` [steps + 1, points] is √(Σ x² + z²) (the sweep's divergence test), or √(Σ x²) with
    ``velocity=False`` (GD, whose state is x alone).
    """
    eta, beta = (np.asarray(v, dtype=np.float64).reshape(-1, 1) for v in np.broadcast_arrays(eta, beta))
    spec = np.asarray(spectrum, dtype=np.float64)
    x = np.full((eta.shape[0], spec.size), -1 / np.sqrt(spec.size))
    z = np.zeros_like(x)
    errors = np.empty((steps + 1, eta.shape[0]))
    norms = np.empty_like(errors)
    errors[0] = norms[0] = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            z = (1 - beta) * z + beta * 2 * spec * x
            x = x - eta * z
            errors[t] = np.sqrt((x * x).sum(axis=1))
            norms[t] = np.sqrt((x * x + z * z).sum(axis=1)) if velocity else errors[t]
    return errors, norms


def momentum_spectral_radius(eta, beta, sigma2) -> np.ndarray:
    """Spectral radius of EMA momentum's transition matrix on one mode (β = 1 is GD), by numpy's eigenvalues.

    In the state (x, z): x' = (1 − 2ηβσ²) x − η(1 − β) z, z' = 2βσ² x + (1 − β) z. Broadcasts over its arguments.
    """
    eta, beta, sigma2 = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (eta, beta, sigma2)))
    r = np.empty((*eta.shape, 2, 2))
    r[..., 0, 0] = 1 - 2 * eta * beta * sigma2
    r[..., 0, 1] = -eta * (1 - beta)
    r[..., 1, 0] = 2 * beta * sigma2
    r[..., 1, 1] = 1 - beta
    return np.abs(np.linalg.eigvals(r)).max(axis=-1)


def divergence(errors: np.ndarray, norms: np.ndarray, bound: float, block: int) -> dict[str, np.ndarray]:
    """What the sweep measures on a diverging run, from its errors and state norms [steps + 1, points].

    Divergence is tested at block ends (steps block, 2 block, ..., and the last step): the first block end whose
    norm exceeds ``bound`` (or is not finite) is ``diverge_step`` (−1 if none). For a diverged point, ``inside`` is
    s, the last step before the norm first exceeded the bound within that block; ``contraction`` is
    norms[t]^(1/t) at t = max(s, 1); ``max_error`` is the largest error of steps 0..s and ``final_error`` the error at
    s. All four are NaN where the point did not diverge.
    """
    steps, n = errors.shape[0] - 1, errors.shape[1]
    ends = np.unique(np.append(np.arange(block, steps + 1, block), steps))
    out = {key: np.full(n, np.nan) for key in ("inside", "contraction", "max_error", "final_error")}
    out["diverge_step"] = np.full(n, -1)
    outside = ~(norms <= bound)
    for p in range(n):
        hit = ends[outside[ends, p]]
        if hit.size == 0:
            continue
        stop = int(hit[0])
        start = (stop - 1) // block * block
        first_out = start + 1 + int(np.argmax(outside[start + 1 : stop + 1, p]))
        s = first_out - 1
        t = max(s, 1)
        out["diverge_step"][p] = stop
        out["inside"][p] = s
        out["contraction"][p] = norms[t, p] ** (1 / t)
        out["max_error"][p] = errors[: s + 1, p].max()
        out["final_error"][p] = errors[s, p]
    return out


def settle_steps(errors: np.ndarray, tol: float) -> np.ndarray:
    """First step after which every error stays below ``tol`` (−1 if the last one is not), per column."""
    steps = errors.shape[0] - 1
    above = errors[1:] >= tol
    last = np.where(above.any(axis=0), steps - np.argmax(above[::-1], axis=0), 0)
    return np.where(last < steps, last + 1, -1)
