"""Dynamics: the EMA and heavy-ball forms agree, heavy ball and Nesterov equal optax, R matches the course's."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sim.linear import dynamics, theory
from sim.linear.problems import least_squares_gradient


def _quadratic(seed, n=12, d=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=n)


def _optax_path(opt, grad_fn, w0, steps):
    state = opt.init(w0)
    w, path = w0, [w0]
    for _ in range(steps):
        updates, state = opt.update(grad_fn(w), state, w)
        w = optax.apply_updates(w, updates)
        path.append(w)
    return jnp.stack(path)


@pytest.mark.parametrize("seed", [0, 1])
def test_ema_equals_heavy_ball_iterate_for_iterate(seed):
    with jax.enable_x64(True):
        x, y = _quadratic(seed)
        grad = least_squares_gradient(jnp.asarray(x), jnp.asarray(y))
        eta, beta = 0.01, 0.3
        lr, m = dynamics.ema_to_heavy_ball(eta, beta)
        w0 = jnp.zeros(x.shape[1])
        ema = dynamics.run(dynamics.momentum(eta, beta), grad, w0, 200)
        hb = dynamics.run(dynamics.heavy_ball(lr, m), grad, w0, 200)
        # same algorithm, different rounding (z = β v): float64 agreement to ~1e-13 of the iterate scale
        np.testing.assert_allclose(ema, hb, rtol=0, atol=1e-11 * float(jnp.max(jnp.abs(ema))))
        assert dynamics.heavy_ball_to_ema(lr, m) == pytest.approx((eta, beta))


@pytest.mark.parametrize(
    ("make", "opt"),
    [
        (lambda: dynamics.heavy_ball(0.004, 0.9), optax.sgd(0.004, momentum=0.9)),
        (lambda: dynamics.nesterov(0.004, 0.9), optax.sgd(0.004, momentum=0.9, nesterov=True)),
        (lambda: dynamics.gd(0.004), optax.sgd(0.004)),
    ],
)
def test_matches_optax_sgd(make, opt):
    with jax.enable_x64(True):
        x, y = _quadratic(3)
        grad = least_squares_gradient(jnp.asarray(x), jnp.asarray(y))
        w0 = jnp.zeros(x.shape[1])
        ours = dynamics.run(make(), grad, w0, 60)
        theirs = _optax_path(opt, grad, w0, 60)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12 * float(jnp.max(jnp.abs(theirs))))


def test_transition_matrix_matches_seeds_closed_form():
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        for eta, beta, s in zip(
            rng.uniform(0.01, 3, 20), rng.uniform(0.01, 1, 20), rng.uniform(0.01, 5, 20), strict=True
        ):
            r = theory.transition_matrix(dynamics.momentum(eta, beta), s)  # acts on (x, z)
            seeds = theory.momentum_matrix(eta, beta, s)  # acts on (a, x)
            np.testing.assert_allclose(r, seeds[::-1, ::-1], rtol=1e-14, atol=1e-14)
            g = theory.transition_matrix(dynamics.gd(eta), s)
            np.testing.assert_allclose(g, [[theory.gd_factor(eta, s)]], rtol=1e-14)
