"""First-order optimizers as pure ``(init, step)`` pairs on pytree state.

Contract: ``dynamics.init(params)`` returns a :class:`State`; ``dynamics.step(grad_fn, state)`` returns the next
state, where ``grad_fn(params)`` is the gradient pytree of the loss at ``params``. Every function here is pure and
elementwise over the leaves, so the same dynamics runs on a full parameter vector, on a tuple of per-mode scalars
(the sweep kernel) or under ``vmap`` over hyperparameters.

Conventions (see the package glossary): ``learning_rate`` is η; in the course's EMA momentum, ``beta`` is the weight
of the NEW gradient (β = 1 is plain gradient descent); in the heavy-ball/optax form, ``momentum`` is the weight m of
the OLD velocity. The two are the same algorithm with ``lr = η β`` and ``m = 1 − β`` (:func:`ema_to_heavy_ball`);
Distill's (α, β_D, λ) are converted by :func:`ema_to_distill` / :func:`distill_to_ema`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

PyTree = Any
GradFn = Callable[[PyTree], PyTree]


class State(NamedTuple):
    """Optimizer state: the parameters and, for momentum methods, the velocity buffer (``None`` for GD)."""

    params: PyTree
    velocity: PyTree = None


class Dynamics(NamedTuple):
    """A pair of pure functions: ``init(params) -> State`` and ``step(grad_fn, state) -> State``."""

    init: Callable[[PyTree], State]
    step: Callable[[GradFn, State], State]


def _zeros_like(tree: PyTree) -> PyTree:
    return jax.tree.map(lambda p: p * 0, tree)


def gd(learning_rate) -> Dynamics:
    """Plain gradient descent, w ← w − η ∇L(w).

    Args:
      learning_rate: η.

    Returns:
      The :class:`Dynamics` pair.

    References:
      EECS 182 Sp25 HW1 Q1 (= Sp23 HW2 Q1), "Why learning rates cannot be too big".
    """

    def init(params):
        return State(params)

    def step(grad_fn, state):
        g = grad_fn(state.params)
        return State(jax.tree.map(lambda w, gi: w - learning_rate * gi, state.params, g))

    return Dynamics(init, step)


def momentum(learning_rate, beta) -> Dynamics:
    """Momentum in the course's exponential-moving-average form (EECS 182 Sp23 HW2 Q2).

    z ← (1 − β) z + β ∇L(w);  w ← w − η z;  z₀ = 0.

    Args:
      learning_rate: η.
      beta: β ∈ (0, 1], the weight of the new gradient (β = 1 is plain GD).

    Returns:
      The :class:`Dynamics` pair.

    References:
      EECS 182 Sp23 HW2 Q2, "Accelerating gradient descent with momentum".
    """

    decay = 1 - beta  # once, not once per step: an unrolled loop would otherwise carry one copy per step

    def init(params):
        return State(params, _zeros_like(params))

    def step(grad_fn, state):
        g = grad_fn(state.params)
        z = jax.tree.map(lambda z, gi: decay * z + beta * gi, state.velocity, g)
        return State(jax.tree.map(lambda w, zi: w - learning_rate * zi, state.params, z), z)

    return Dynamics(init, step)


def heavy_ball(learning_rate, momentum) -> Dynamics:
    """Heavy-ball momentum in the optax / PyTorch form.

    v ← m v + ∇L(w);  w ← w − lr v;  v₀ = 0. Equals ``optax.sgd(learning_rate, momentum=m)``.

    Args:
      learning_rate: lr.
      momentum: m ∈ [0, 1), the weight of the old velocity.

    Returns:
      The :class:`Dynamics` pair.

    References:
      Polyak (1964); optax ``trace``.
    """

    def init(params):
        return State(params, _zeros_like(params))

    def step(grad_fn, state):
        g = grad_fn(state.params)
        v = jax.tree.map(lambda v, gi: momentum * v + gi, state.velocity, g)
        return State(jax.tree.map(lambda w, vi: w - learning_rate * vi, state.params, v), v)

    return Dynamics(init, step)


def nesterov(learning_rate, momentum) -> Dynamics:
    """Nesterov momentum in the optax form (``optax.sgd(..., nesterov=True)``).

    v ← m v + ∇L(w);  w ← w − lr (m v + ∇L(w));  v₀ = 0.

    Args:
      learning_rate: lr.
      momentum: m ∈ [0, 1).

    Returns:
      The :class:`Dynamics` pair.

    References:
      Nesterov (1983); Sutskever et al. (2013).
    """

    def init(params):
        return State(params, _zeros_like(params))

    def step(grad_fn, state):
        g = grad_fn(state.params)
        v = jax.tree.map(lambda v, gi: momentum * v + gi, state.velocity, g)
        w = jax.tree.map(lambda w, vi, gi: w - learning_rate * (momentum * vi + gi), state.params, v, g)
        return State(w, v)

    return Dynamics(init, step)


def ema_to_heavy_ball(learning_rate, beta):
    """Convert EMA momentum (η, β) to heavy ball (lr, m) = (η β, 1 − β); the iterates are identical."""
    return learning_rate * beta, 1 - beta


def heavy_ball_to_ema(learning_rate, momentum):
    """Convert heavy ball (lr, m) to EMA momentum (η, β) = (lr / (1 − m), 1 − m)."""
    return learning_rate / (1 - momentum), 1 - momentum


def ema_to_distill(learning_rate, beta, sigma2):
    """Convert EMA momentum (η, β) on a mode σ² to Distill's (α, β_D, λ) = (η β, 1 − β, 2σ²).

    Distill ("Why Momentum Really Works") runs z ← β_D z + ∇f, w ← w − α z on f = ½ wᵀAw, so its eigenvalue λ is
    the Hessian eigenvalue 2σ² of our L = ‖y − Xw‖²; the iterates are those of heavy ball with lr = α, m = β_D.

    Returns:
      ``(alpha, beta_d, lam)``.
    """
    return learning_rate * beta, 1 - beta, 2 * sigma2


def distill_to_ema(alpha, beta_d, lam):
    """Convert Distill's (α, β_D, λ) to EMA momentum (η, β, σ²) = (α / (1 − β_D), 1 − β_D, λ / 2).

    Returns:
      ``(learning_rate, beta, sigma2)``.
    """
    return alpha / (1 - beta_d), 1 - beta_d, lam / 2


def run(dynamics: Dynamics, grad_fn: GradFn, params: PyTree, steps: int) -> PyTree:
    """Run ``steps`` steps from ``params`` and return the parameter trajectory, leaves of shape [steps + 1, ...].

    A convenience for small problems and tests; the sweep engine never stores trajectories.
    """

    def body(state, _):
        new = dynamics.step(grad_fn, state)
        return new, new.params

    state = dynamics.init(params)
    _, path = jax.lax.scan(body, state, None, length=steps)
    return jax.tree.map(lambda p0, p: jax.numpy.concatenate([p0[None], p]), params, path)
