"""The one-point sweep kernel: a T-step run of a linear-mode dynamics reduced to summaries, never trajectories.

Contract: :func:`point_summary` takes the hyperparameters of ONE grid point, the problem's squared singular values
σ_i² and initial relative error coordinates x_i(0) (‖x(0)‖ = 1), and returns a dict of scalars (see ``FIELDS``).
The engine (``sim.sweep``) vmaps, jits, chunks and shards it.

How it stays fast and exact:
- The run is a ``while_loop`` over blocks of ``block`` unrolled steps; the carry is a tuple of per-point scalars
  (structure of arrays once vmapped), so XLA's loops stay vectorized over points. (XLA CPU still emits several
  loops per block, each recomputing part of the unrolled chain: see benchmarks/RESULTS.md.)
- Per step only the dynamics, the squared error e² = Σ x_i², a running max and the last step with e ≥ tol are
  computed. Divergence (state norm beyond ``bound`` or non-finite) is checked at block ends: the point is frozen
  at the last checked state, so no inf or NaN reaches an output; its divergence step is that block's end.
- A point stops early once it has provably settled: with ‖R_iˢ‖ ≤ G_i for all s ≥ 1
  (:func:`sim.theory.power_bound`), Σ G_i² ‖u_i‖² < tol² means no later error can reach tol, so the settle step
  is final; the final error is then R^(T−t) u, applied by binary powering. Under ``vmap`` the loop runs until
  every point of a chunk is done, so the engine orders points by :func:`predicted_steps` to fill each chunk with
  points that stop together; each point freezes at its own stopping block, so results never depend on the
  chunking or the order.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from sim import theory
from sim.dynamics import Dynamics

FIELDS = {
    "settle_step": "first step t such that the relative error stays below tol for every step from t to the end "
    "(-1: not reached within the run)",
    "final_error": "relative error ||w_T - w*|| / ||w*|| after the last step (0 where it is below the dtype's range)",
    "max_error": "largest relative error seen (transient growth; 1 at the start)",
    "diverged": "the state norm left the divergence bound or became non-finite",
    "diverge_step": "block end at which divergence was detected (-1: did not diverge)",
    "rate": "theoretical asymptotic rate: the largest spectral radius of the per-mode transition matrices",
    "contraction": "measured per-step contraction (||u_t|| / ||u_0||)^(1/t) of the state over the simulated steps "
    "(for diverged points, the growth bound^(1/diverge_step))",
    "simulated_steps": "steps actually simulated before the point was provably settled, diverged or done",
}

_MAX_POWER_BITS = 25


def point_summary(dynamics: Dynamics, sigma2, x0, tol, bound, *, steps: int, block: int) -> dict[str, jax.Array]:
    """Summaries of a ``steps``-step run from relative error ``x0`` (velocity 0) for one grid point.

    Args:
      dynamics: the optimizer with this point's hyperparameters (possibly traced).
      sigma2: squared singular values σ_i², array of shape [modes].
      x0: initial error coordinates x_i(0) = (w₀ − w*)_i / ‖w*‖, array of shape [modes].
      tol: relative-error tolerance ε ∈ (0, 1).
      bound: divergence bound on the relative state norm.
      steps: T, the number of steps (static).
      block: steps per fused block (static).

    Returns:
      A dict of scalars keyed like ``FIELDS``.
    """
    dtype = x0.dtype
    modes = x0.shape[0]
    s = tuple(sigma2[i] for i in range(modes))

    def grad(params):
        return tuple(2 * si * p for si, p in zip(s, params, strict=True))

    leaves0, treedef = jax.tree.flatten(dynamics.init(tuple(x0[i] for i in range(modes))))
    n_leaves = len(leaves0)
    d = n_leaves // modes
    rmat = jax.vmap(lambda si: theory.transition_matrix(dynamics, si))(sigma2)  # [modes, d, d]
    rate = jnp.max(theory.spectral_radius(rmat))
    g2 = theory.power_bound(rmat) ** 2
    tol2 = tol * tol
    bound2 = bound * bound
    i_emax, i_last, i_t, i_status, i_div = range(n_leaves, n_leaves + 5)

    def mode_norms2(leaves):
        return [sum(leaves[j * modes + i] ** 2 for j in range(d)) for i in range(modes)]

    def run_block(c, length):
        def one(carry, _):
            state, m, last, t = carry
            state = dynamics.step(grad, state)
            e2 = sum(p * p for p in state.params)
            t = t + 1
            return (state, jnp.where(e2 > m, e2, m), jnp.where(e2 >= tol2, t, last), t), None

        state = treedef.unflatten([c[k] for k in range(n_leaves)])
        (state, emax, last, t), _ = lax.scan(
            one, (state, c[i_emax], c[i_last], c[i_t]), None, length=length, unroll=length
        )
        leaves = jax.tree.leaves(state)
        u2 = mode_norms2(leaves)
        diverged = ~(sum(u2) <= bound2)
        settled = sum(g * u for g, u in zip(g2, u2, strict=True)) < tol2
        status = jnp.where(settled, 1, 0).astype(dtype)
        new = (*leaves, emax, last, t, status, c[i_div])
        frozen = (*c[:i_status], jnp.asarray(2, dtype), t)
        return tuple(jnp.where(diverged, f, n) for f, n in zip(frozen, new, strict=True))

    zero = jnp.zeros((), dtype)
    carry = (*leaves0, jnp.sum(x0 * x0), zero, zero, zero, zero - 1)
    n_blocks = steps // block
    if n_blocks:
        carry = lax.while_loop(
            lambda c: (c[i_t] < n_blocks * block) & (c[i_status] == 0),
            lambda c: run_block(c, block),
            carry,
        )
    if steps % block:
        active = carry[i_status] == 0
        carry = tuple(jnp.where(active, n, c) for n, c in zip(run_block(carry, steps % block), carry, strict=True))

    status, t_end, last = carry[i_status], carry[i_t], carry[i_last]
    leaves = [carry[k] for k in range(n_leaves)]
    diverged = status == 2
    # advance settled points analytically from their stopping step to T (n = 0 for points that ran to the end)
    u = [[leaves[j * modes + i] for j in range(d)] for i in range(modes)]
    n_left = jnp.where(diverged, 0, steps - t_end).astype(jnp.int32)
    final2 = sum(_apply_power(rmat[i], u[i], n_left)[0] ** 2 for i in range(modes))
    norm_end = jnp.sqrt(sum(mode_norms2(leaves)))
    contraction = jnp.where(
        diverged,
        bound ** (1 / jnp.maximum(carry[i_div], 1)),
        norm_end ** (1 / jnp.maximum(t_end, 1)),
    )
    return {
        "settle_step": jnp.where(~diverged & (last < steps), last + 1, -1).astype(jnp.int32),
        "final_error": jnp.sqrt(final2),
        "max_error": jnp.sqrt(carry[i_emax]),
        "diverged": diverged,
        "diverge_step": jnp.where(diverged, carry[i_div], -1).astype(jnp.int32),
        "rate": rate.astype(dtype),
        "contraction": contraction.astype(dtype),
        "simulated_steps": jnp.where(diverged, carry[i_div], t_end).astype(jnp.int32),
    }


def predicted_steps(dynamics: Dynamics, sigma2, tol, bound, *, steps: int) -> jax.Array:
    """Roughly how many steps :func:`point_summary` will simulate at this point, from theory alone.

    log(tol/G)/log ρ until provably settled (ρ < 1), log(bound)/log ρ until diverged (ρ > 1), clipped to [1, steps].
    The engine runs points in this order so that each chunk holds points that stop at about the same time.
    """
    rmat = jax.vmap(lambda si: theory.transition_matrix(dynamics, si))(sigma2)
    rho = jnp.max(theory.spectral_radius(rmat))
    g = jnp.max(theory.power_bound(rmat))
    log_rho = jnp.log(rho)
    estimate = jnp.where(rho < 1, jnp.log(tol / g) / log_rho, jnp.where(rho > 1, jnp.log(bound) / log_rho, steps))
    return jnp.clip(jnp.nan_to_num(estimate, nan=steps, posinf=steps, neginf=1), 1, steps)


def _apply_power(rmat, u, n):
    """Rⁿ u by binary powering for one mode; ``rmat`` [d, d], ``u`` a list of d scalars, integer n ≥ 0.

    Written as scalar arithmetic (d ≤ 2) rather than a batched matmul, whose accumulation order XLA may choose by
    batch size: results must not depend on the chunking.
    """
    d = len(u)

    def matvec(m, v):
        return [sum(m[i][k] * v[k] for k in range(d)) for i in range(d)]

    def matmul(a, b):
        return [[sum(a[i][k] * b[k][j] for k in range(d)) for j in range(d)] for i in range(d)]

    def body(bit, carry):
        base, res = carry
        take = ((n >> bit) & 1) == 1
        res = [jnp.where(take, r_new, r) for r_new, r in zip(matvec(base, res), res, strict=True)]
        return matmul(base, base), res

    base = [[rmat[i, j] for j in range(d)] for i in range(d)]
    _, res = lax.fori_loop(0, _MAX_POWER_BITS, body, (base, list(u)))
    return res
