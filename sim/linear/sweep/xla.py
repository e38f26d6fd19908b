"""The sweep kernel: T-step runs of a linear-mode dynamics for a chunk of grid points, reduced to summaries.

Contract: :func:`chunk_summary` takes the hyperparameters of n grid points, each point's squared singular values
σ_i² and initial relative error coordinates x_i(0) (‖x(0)‖ = 1), and returns a dict of arrays of shape [n] (see
``FIELDS``). The engine (``sim.linear.sweep.engine``) jits it and runs it on chunks, on every device.

How it stays fast and exact:
- The time loop runs blocks of ``block`` steps. Per step only the dynamics, the squared error e² = Σ x_i², a running
  max and the last step with e ≥ tol are computed; everything else (transition matrices, rates, bounds) is
  computed once per point, here, around the loop.
- The kernel has two implementations with the same arithmetic and the same checks. On a CPU it is C++
  (``sim/linear/sweep/kernel.cc`` via :func:`sim.linear.sweep.native.summarize`), summaries included: the time loop
  innermost over 4 vectors of points held in registers, about 4x faster than XLA's, and no XLA work around it (XLA CPU
  split that work into tasks on a thread pool shared by the devices, where it waited behind the other devices' loops).
  Elsewhere (GPUs, no compiler, more than ``sim.linear.sweep.native.MAX_MODES`` modes) it is XLA: :func:`_simulate`, a
  ``while_loop`` written over whole arrays of points, whose block's carried values come out of ONE fused loop
  (:func:`_one_loop`; left to itself XLA CPU emits one loop per carried value, each recomputing the unrolled block), and
  :func:`_final_errors`.
- Divergence (state norm beyond ``bound`` or non-finite) is checked at block ends: the point is frozen at the last
  checked state, so no inf or NaN reaches an output; its divergence step is that block's end. After the loop the
  diverged points replay that block from there up to their last state within the bound (:func:`_escape`), which their
  contraction, max error and final error measure. ``unstable`` is theory: rate ≥ 1.
- Nothing is squared where it could underflow: norms are scaled by their largest component (:func:`_norm`), and a
  point whose state fell below the normal range (flushed to 0 on the way, as XLA and the C++ loop flush subnormals)
  runs again from the start with its state scaled by a power of two after every step (:func:`_rescaled_rerun`), so its
  contraction is measured and its final error is exact down to the smallest normal number (:func:`_ldexp_flush`).
- A point stops early once it has provably settled: with ‖R_iˢ‖ ≤ G_i for all s ≥ 1
  (:func:`sim.linear.theory.power_bound`), Σ G_i² ‖u_i‖² < tol² means no later error can reach tol, so the settle step
  is final; the final error is then R^(T−t) u, applied by binary powering (:func:`_final_errors`; in float32 it
  carries a relative rounding error of up to ~1e-3 for exponents near 1000). The C++ loop stops each tile of 64
  points (32 in float64) on its own; the XLA loop runs until every point of the chunk is done, so for it the
  engine orders points by :func:`predicted_steps` to fill each chunk with points that stop together. Each point
  freezes at its own stopping block, so results never depend on the chunking, the order or the device count.
"""

from __future__ import annotations

import functools
import operator

import jax
import jax.numpy as jnp
from jax import lax

from sim.linear import theory
from sim.linear.dynamics import Dynamics
from sim.linear.sweep import native as native_loop


def chunk_summary(
    make, hyper, sigma2, x0, tol, bound, *, steps: int, block: int, native: bool = False, count=None
) -> dict[str, jax.Array]:
    """Summaries of a ``steps``-step run from relative error ``x0`` (velocity 0) at every point of a chunk.

    The kernel runs the method's own ``step``, not the equivalent u ← R u with R its transition matrix
    (:func:`sim.linear.theory.transition_matrix`): that form is about 1.4x faster on a CPU, but float32's rounding of an
    R close to the identity is the same in every step, which shifts the step counts of slow modes (ρ ≈ 1) by whole
    steps; the step's own arithmetic rounds relative to the small update instead.

    Args:
      make: the method's constructor, e.g. :func:`sim.linear.dynamics.momentum`; called with the arrays of
        hyperparameters (the dynamics are elementwise) and, per point, with scalars (for the transition matrices).
      hyper: the method's hyperparameters, a tuple of arrays of shape [n].
      sigma2: squared singular values σ_i², array of shape [n, modes].
      x0: initial error coordinates x_i(0) = (w₀ − w*)_i / ‖w*‖, array of shape [n, modes].
      tol: relative-error tolerance ε ∈ (0, 1).
      bound: divergence bound on the relative state norm.
      steps: T, the number of steps (static).
      block: steps per fused block (static).
      native: compute everything in the compiled CPU library (:func:`sim.linear.sweep.native.summarize`) instead of XLA
        (whose loop is :func:`_simulate`); needs :func:`sim.linear.sweep.native.status` to be available.
      count: how many leading points are real (default all); the compiled loop does not run the others (padding),
        whose results are then meaningless.

    Returns:
      A dict of arrays of shape [n] keyed like ``FIELDS``.
    """
    if native:
        n = x0.shape[0]
        return native_loop.summarize(
            make, hyper, sigma2, x0, tol, bound, n if count is None else count, steps=steps, block=block
        )
    dtype = x0.dtype
    modes = x0.shape[1]
    # one [n, d, d] array per mode (a [n, modes, d, d] array is 1.1-1.2x slower end to end on XLA CPU), and per-mode
    # values combined elementwise: XLA CPU's reductions over a short minor axis are slow
    mats = [jax.vmap(lambda h, s: theory.transition_matrix(make(*h), s))(hyper, sigma2[:, i]) for i in range(modes)]
    d = mats[0].shape[-1]
    rate = functools.reduce(jnp.maximum, [theory.spectral_radius(m) for m in mats])
    g2 = [theory.power_bound(m) ** 2 for m in mats]
    hessian = [2 * sigma2[:, i] for i in range(modes)]  # L = ‖y − Xw‖²: ∂L/∂w_i = 2σ_i² w_i
    step, u0 = _stepper(make, hyper, hessian, [x0[:, i] for i in range(modes)])
    bound2 = bound * bound
    u, emax, last, status, stop = _simulate(step, u0, g2, tol * tol, bound2, steps=steps, block=block)
    diverged = status == 2
    t_end = jnp.where(status == 0, steps, stop)
    u, emax, inside, u_in = lax.cond(  # skipped where nothing diverged
        jnp.any(diverged),
        lambda: _escape(step, u, emax, diverged, stop, bound2, block),
        lambda: (u, emax, stop, u),
    )
    # a state below the normal range (flushed to 0 on the way) is rerun from the start, rescaled every step
    small = ~diverged & (_norm(_flat(u)) < _SMALL[jnp.dtype(dtype).name])
    u, scale_exp = lax.cond(
        jnp.any(small),
        lambda: _rescaled_rerun(step, u0, u, small, t_end),
        lambda: (u, jnp.zeros(u0[0][0].shape, jnp.int32)),
    )
    r = [[[m[:, a, b] for b in range(d)] for a in range(d)] for m in mats]
    final = _ldexp_flush(_norm(_final_errors(r, u, status, stop, steps)), scale_exp)
    t = jnp.maximum(t_end, 1).astype(dtype)
    contraction = jnp.where(
        diverged,
        _norm(_flat(u_in)) ** (1 / jnp.maximum(inside, 1).astype(dtype)),
        _norm(_flat(u)) ** (1 / t) * jnp.exp2(scale_exp.astype(dtype) / t),
    )
    return {
        "settle_step": jnp.where(~diverged & (last < steps), last + 1, -1),
        "final_error": final,
        "max_error": jnp.sqrt(emax),
        "diverged": diverged,
        "unstable": ~(rate < 1),  # NaN: the transition matrix overflowed
        "diverge_step": jnp.where(diverged, stop, -1),
        "rate": rate.astype(dtype),
        "contraction": contraction.astype(dtype),
        "simulated_steps": t_end,
    }


# below this state norm, components may have been flushed to 0 on the way (the smallest normal number / machine eps)
_SMALL = {name: float(jnp.finfo(name).tiny / jnp.finfo(name).eps) for name in ("float32", "float64")}


def _final_errors(r, u, status, stop, steps: int):
    """The error components (one per mode) after step ``steps``: settled points (status 1) advance analytically from
    their stopping step, u_i ← R_iⁿ u_i with n = steps − stop, by binary powering (:func:`_apply_power`); the others
    are where they are."""
    n_left = jnp.where(status == 1, steps - stop, 0)
    return lax.cond(  # skipped where no point stopped early (a dense grid)
        jnp.any(n_left > 0),
        lambda: [_apply_power(ri, ui, n_left, steps.bit_length())[0] for ri, ui in zip(r, u, strict=True)],
        lambda: [ui[0] for ui in u],
    )


def _stepper(make, hyper, hessian, x0):
    """``(step, u0)``: one step of the method on states given as ``u[i][j]``, component j (error, velocity...) of
    mode i, and the initial state (error ``x0``, velocity 0)."""
    dynamics = make(*hyper)
    modes = len(x0)
    leaves, treedef = jax.tree.flatten(dynamics.init(tuple(x0)))
    d = len(leaves) // modes

    def step(u):
        state = treedef.unflatten([u[i][j] for j in range(d) for i in range(modes)])
        state = dynamics.step(lambda w: tuple(h * wi for h, wi in zip(hessian, w, strict=True)), state)
        leaves = jax.tree.leaves(state)
        return [[leaves[j * modes + i] for j in range(d)] for i in range(modes)]

    zero = jnp.zeros_like(x0[0])
    return step, [[xi] + [zero] * (d - 1) for xi in x0]


def _escape(step, u, emax, diverged, stop, bound2, block: int):
    """Diverged points from the state they were frozen at (the start of the block whose end left the bound) to their
    last state within the bound: ``(u, emax, inside, u_in)``.

    ``u`` is that state and ``emax`` the max squared error up to it, ``inside`` its step s, and ``u_in`` the state at
    step max(s, 1) (the first state, outside the bound, when already step 1 left it), from which the contraction is
    measured. The others are returned unchanged (``inside`` = ``stop``). Steps go ``_UNROLL`` at a time, their
    results out of one fused loop (see :func:`_one_loop`).
    """
    modes, d = len(u), len(u[0])
    start = (stop - 1) // block * block  # the block's first step is start + 1; its end is stop

    def steps(j0, carry):
        u, u_in, emax, inside, active = carry
        for k in range(1, _UNROLL + 1):
            j = j0 * _UNROLL + k  # the step in the block
            new = step(u)
            running = active & (start + j <= stop)
            within = running & (_total(_norms2(new)) <= bound2)  # as the block-end check, NaN outside
            keep = within | (running & (start + j == 1))  # the contraction's state: step max(s, 1)
            u = [[jnp.where(within, a, b) for a, b in zip(ni, ui, strict=True)] for ni, ui in zip(new, u, strict=True)]
            u_in = [
                [jnp.where(keep, a, b) for a, b in zip(ni, ui, strict=True)] for ni, ui in zip(new, u_in, strict=True)
            ]
            emax = jnp.where(within, jnp.maximum(emax, _total([ni[0] * ni[0] for ni in new])), emax)
            inside = jnp.where(within, start + j, inside)
            active = within
        *flat, emax, inside, active = _one_loop(*_flat(u), *_flat(u_in), emax, inside, active.astype(jnp.int32))
        return _nest(flat[: modes * d], d), _nest(flat[modes * d :], d), emax, inside, active == 1

    carry = (u, u, emax, jnp.where(diverged, start, stop), diverged)
    u, u_in, emax, inside, _ = lax.fori_loop(0, -(-block // _UNROLL), steps, carry)
    return u, emax, inside, u_in


_UNROLL = 4  # steps per iteration of the loops after the time loop: a whole block costs compile time, single
# steps run slowly (each iteration is a pass over the chunk)


def _rescaled_rerun(step, u0, u, rerun, t_end):
    """The points ``rerun`` run again from ``u0`` for their ``t_end`` steps, each state scaled by a power of two after
    every step so that its largest component lies in [0.5, 1): ``(u, e)`` with the true state 2^e u (exact: the
    dynamics are linear and scaling by a power of two rounds nothing). The other points keep ``u`` and e = 0. Steps go
    ``_UNROLL`` at a time, as in :func:`_escape`."""
    d = len(u0[0])

    def steps(carry):
        t, v, e = carry
        for k in range(_UNROLL):
            new = step(v)
            _, shift = jnp.frexp(_max_abs(_flat(new)))  # 0 for a zero state
            factor = _pow2(-shift, u0[0][0].dtype)
            take = rerun & (t + k < t_end)
            v = [
                [jnp.where(take, c * factor, c0) for c, c0 in zip(ni, vi, strict=True)]
                for ni, vi in zip(new, v, strict=True)
            ]
            e = jnp.where(take, e + shift, e)
        *flat, e = _one_loop(*_flat(v), e)  # one fused loop for every carried value (see _one_loop)
        return t + _UNROLL, _nest(flat, d), e

    n = jnp.max(jnp.where(rerun, t_end, 0))
    _, v, e = lax.while_loop(lambda c: c[0] < n, steps, (jnp.int32(0), u0, jnp.zeros(rerun.shape, jnp.int32)))
    return [[jnp.where(rerun, a, b) for a, b in zip(vi, ui, strict=True)] for vi, ui in zip(v, u, strict=True)], e


def _pow2(k, dtype):
    """2^k for integers k in the normal range, built from its bits (exact, unlike exp2)."""
    info = jnp.finfo(dtype)
    bits = (k.astype(jnp.int64 if info.bits == 64 else jnp.int32) + (info.maxexp - 1)) << info.nmant
    return lax.bitcast_convert_type(bits, dtype)


def _ldexp_flush(m, e):
    """m 2^e for m ≥ 0 (0 or normal) and integers e, flushed to 0 below the normal range (as the arithmetic is)."""
    info = jnp.finfo(m.dtype)
    f, shift = jnp.frexp(m)  # m = f 2^shift, f in [0.5, 1)
    k = shift + e
    scaled = f * _pow2(jnp.clip(k, info.minexp + 1, info.maxexp - 1), m.dtype)
    return jnp.where(e == 0, m, jnp.where(k > info.minexp, scaled, 0))


def _simulate(step, u0, g2, tol2, bound2, *, steps: int, block: int):
    """The time loop in XLA, from the state ``u0`` with the method's ``step`` (:func:`_stepper`):
    ``(u, emax, last, status, stop)``.

    ``u[i][j]`` is component j (error, velocity) of mode i where the point stopped, ``emax`` the max squared error,
    ``last`` the last step with squared error ≥ ``tol2``, ``status`` 0 (ran to the end), 1 (provably settled) or 2
    (diverged), and ``stop`` the block end at which the status was set.
    """
    modes, d, n = len(u0), len(u0[0]), u0[0][0].shape[0]

    def run_block(carry, length):
        # u[i][j]: component j of mode i; status: 0 running, 1 provably settled, 2 diverged; stop: the block end at
        # which the status was set
        u0, emax0, last0, status, stop, t = carry
        u, emax, last = u0, emax0, last0
        for k in range(length):
            u = step(u)
            e2 = _total([ui[0] * ui[0] for ui in u])
            emax = jnp.maximum(emax, e2)
            last = jnp.where(e2 >= tol2, t + (k + 1), last)
        u2 = _norms2(u)
        diverged = ~(_total(u2) <= bound2)
        settled = _total([g * u2i for g, u2i in zip(g2, u2, strict=True)]) < tol2
        active = status == 0
        take = active & ~diverged
        t = t + length
        *flat, emax, last, status, stop = _one_loop(
            *(
                jnp.where(take, new, old)
                for ui, ui0 in zip(u, u0, strict=True)
                for new, old in zip(ui, ui0, strict=True)
            ),
            jnp.where(take, emax, emax0),
            jnp.where(take, last, last0),
            jnp.where(active, jnp.where(diverged, 2, jnp.where(settled, 1, 0)), status),
            jnp.where(active & (diverged | settled), t, stop),
        )
        return [flat[i * d : (i + 1) * d] for i in range(modes)], emax, last, status, stop, t

    zeros = jnp.zeros(n, jnp.int32)
    carry = (u0, _total([ui[0] * ui[0] for ui in u0]), zeros, zeros, zeros, jnp.int32(0))
    n_blocks = steps // block
    if n_blocks:
        carry = lax.while_loop(
            lambda c: (c[-1] < n_blocks * block) & jnp.any(c[3] == 0), lambda c: run_block(c, block), carry
        )
    if steps % block:
        carry = run_block(carry, steps % block)
    return carry[:-1]


def _flat(u):
    """Every component of every mode of a state ``u[i][j]``, as one list."""
    return [c for ui in u for c in ui]


def _nest(parts, d: int):
    """The inverse of :func:`_flat` for states of ``d`` components per mode."""
    return [list(parts[i : i + d]) for i in range(0, len(parts), d)]


def _max_abs(parts):
    return functools.reduce(jnp.maximum, [jnp.abs(c) for c in parts])


def _norm(parts):
    """The Euclidean norm of the arrays ``parts`` (elementwise over points), scaled by the largest |part| first: the
    squares of a settled point's state or error (as small as 1e-30 in float32) would underflow."""
    scale = _max_abs(parts)
    safe = jnp.where(scale > 0, scale, 1)
    return scale * jnp.sqrt(_total([(c / safe) * (c / safe) for c in parts]))


def _norms2(u):
    """Per mode ‖u_i‖² (all components)."""
    return [_total([c * c for c in ui]) for ui in u]


def predicted_steps(dynamics: Dynamics, sigma2, tol, bound, *, steps: int) -> jax.Array:
    """Roughly how many steps :func:`chunk_summary` will simulate at one point, from theory alone.

    log(tol/G)/log ρ until provably settled (ρ < 1), log(bound)/log ρ until diverged (ρ > 1), clipped to [1, steps].
    The engine runs points in this order so that each chunk holds points that stop at about the same time.
    """
    rmat = jax.vmap(lambda si: theory.transition_matrix(dynamics, si))(sigma2)
    rho = functools.reduce(jnp.maximum, list(theory.spectral_radius(rmat)))  # elementwise: see chunk_summary
    g = functools.reduce(jnp.maximum, list(theory.power_bound(rmat)))
    log_rho = jnp.log(rho)
    estimate = jnp.where(rho < 1, jnp.log(tol / g) / log_rho, jnp.where(rho > 1, jnp.log(bound) / log_rho, steps))
    return jnp.clip(jnp.nan_to_num(estimate, nan=steps, posinf=steps, neginf=1), 1, steps)


def _one_loop(*values):
    """The arrays ``values`` (all of shape [n]), computed in ONE loop over the points.

    XLA CPU gives each output of an elementwise computation its own loop, which recomputes everything that output
    depends on: each carried value of a block would recompute the whole unrolled block. A variadic reduction is one
    instruction with several outputs, so its fused loop evaluates shared subexpressions once. The reduction is the
    max over two identical copies of each value, which is the value itself (NaN included).
    """
    pairs = [jnp.broadcast_to(v[:, None], (*v.shape, 2)) for v in values]
    inits = [
        jnp.array(-jnp.inf if jnp.issubdtype(v.dtype, jnp.floating) else jnp.iinfo(v.dtype).min, v.dtype)
        for v in values
    ]
    return lax.reduce(pairs, inits, lambda a, b: tuple(jnp.maximum(x, y) for x, y in zip(a, b, strict=True)), (1,))


def _total(xs):
    """x₀ + x₁ + … in order (Python's ``sum`` would add a leading 0)."""
    return functools.reduce(operator.add, xs)


def _matvec(m, v):
    """m v for a d×d matrix and a d-vector given as nested lists of arrays."""
    return [_total([mi[k] * v[k] for k in range(len(v))]) for mi in m]


def _apply_power(m, u, n, bits: int):
    """mⁿ u by binary powering for one mode: ``m`` a d×d nested list of arrays, ``u`` a list of d arrays, integers
    0 ≤ n < 2^bits.

    Written as elementwise arithmetic (d ≤ 2) rather than a batched matmul, whose accumulation order XLA may choose
    by batch size: results must not depend on the chunking.
    """

    def matmul(a, b):
        return [[_total([a[i][k] * b[k][j] for k in range(len(b))]) for j in range(len(b))] for i in range(len(a))]

    def body(bit, carry):
        base, res = carry
        take = ((n >> bit) & 1) == 1
        res = [jnp.where(take, r_new, r) for r_new, r in zip(_matvec(base, res), res, strict=True)]
        return matmul(base, base), res

    _, res = lax.fori_loop(0, bits, body, (m, list(u)))  # unrolled, XLA would fuse it differently per chunk size
    return res
