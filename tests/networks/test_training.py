"""Tests for sim.networks.training: updates against hand-written optax and plain gradient steps, minibatch draws,
checkpoints, gradient norms, divergence handling, and the linearized model against closed-form gradient descent on Φ.

Networks here are tiny (width 3–6, n ≤ 24) so each distinct shape compiles in about a second.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from sim.core.validate import InputError
from sim.networks import elbows, features, training
from sim.networks import mlp as networks

N = 24


def _data(n=N, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n).astype(dtype)
    y = (np.sin(3 * x) + 0.1 * rng.standard_normal(n)).astype(dtype)
    return x, y, x[: n // 2], y[: n // 2]


def _params(depth=1, width=5, seed=0, dtype="float32", init="pytorch", **kw):
    return networks.init_mlp(jax.random.key(seed), depth=depth, width=width, init=init, dtype=dtype, **kw)


def _close(a, b, **kw):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), **kw)


# --------------------------------------------------------------------------------------------------------------
# Updates


@pytest.mark.parametrize("optimizer", training.OPTIMIZERS)
def test_steps_equal_a_hand_written_optax_loop(optimizer):
    x, y, xt, yt = _data()
    p0 = _params()
    lr, steps, batch = 0.05, 7, 8
    res = training.train(
        p0, x, y, xt, yt, optimizer=optimizer, learning_rate=lr, steps=steps, batch_size=batch, checkpoint_every=7
    )
    opt = {"sgd": optax.sgd(lr), "momentum": optax.sgd(lr, momentum=0.9), "adam": optax.adam(lr)}[optimizer]
    key, p, state = jax.random.key(0), p0, opt.init(p0)
    for t in range(steps):
        idx = training.batch_indices(key, t, n=N, batch_size=batch)
        g = jax.grad(lambda q, i=idx: jnp.mean((networks.apply_mlp(q, x[i]) - y[i]) ** 2))(p)
        updates, state = opt.update(g, state, p)
        p = optax.apply_updates(p, updates)
    _close(res.params, p, rtol=2e-5, atol=1e-6)
    assert not bool(res.diverged) and int(res.diverge_step) == -1


def test_sgd_is_a_plain_gradient_step_and_moves_elbows_as_the_closed_form():
    x, y, xt, yt = _data()
    p0 = _params(init="elbows")
    xb, yb = x[:6], y[:6]
    manual = jax.tree.map(
        lambda p, g: p - 0.1 * g, p0, jax.grad(lambda q: 0.5 * jnp.mean((networks.apply_mlp(q, xb) - yb) ** 2))(p0)
    )
    step = training.sgd_step(p0, xb, yb, learning_rate=0.1, loss="half_mse")
    _close(step, manual, rtol=1e-6, atol=1e-7)
    # a one-step full-batch run is the same step (the batch is a permutation of the data: the mean does not change)
    one = training.train(p0, xb, yb, xt, yt, learning_rate=0.1, steps=1, batch_size=6, loss="half_mse")
    _close(one.params, manual, rtol=1e-5, atol=1e-6)
    # sim.networks.elbows' closed form e' = −(b − λ r W2) / (W1 − λ x r W2) for the same step
    closed = elbows.elbow_update(p0, xb, yb, learning_rate=0.1)
    np.testing.assert_allclose(elbows.elbow_positions(step).position, closed.position, rtol=1e-5)


def test_published_single_relu_example():
    """Sp25 HW0 Q5: lr 0.1, x = 1, y = 1, w = −2, b = 4 (W2 = 1): the elbow moves from 2 to 1.857 (= 3.9 / 2.1)."""
    p = [{"w": jnp.array([[-2.0]]), "b": jnp.array([4.0])}, {"w": jnp.array([[1.0]]), "b": jnp.array([0.0])}]
    step = training.sgd_step(p, jnp.array([1.0]), jnp.array([1.0]), learning_rate=0.1, loss="half_mse")
    assert float(elbows.elbow_positions(step).position[0]) == pytest.approx(3.9 / 2.1, rel=1e-6)


# --------------------------------------------------------------------------------------------------------------
# Minibatches, checkpoints, logs


KW = {"optimizer": "momentum", "learning_rate": 0.05, "steps": 10, "batch_size": 5, "checkpoint_every": 4}


@pytest.fixture(scope="module")
def run():
    x, y, xt, yt = _data()
    p0 = _params(depth=2, width=4)
    return p0, training.train(p0, x, y, xt, yt, **KW)


def test_minibatches_reproducible_and_without_replacement_per_epoch(run):
    n, batch = 10, 4  # batches straddle epochs: 5 batches = 2 epochs
    draw = lambda seed, replace=False: np.stack(  # noqa: E731
        [training.batch_indices(jax.random.key(seed), t, n=n, batch_size=batch, replace=replace) for t in range(5)]
    )
    a, b, c = draw(3), draw(3), draw(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    stream = a.reshape(-1)
    for epoch in (stream[:n], stream[n:]):
        np.testing.assert_array_equal(np.sort(epoch), np.arange(n))
    r = draw(3, replace=True)
    np.testing.assert_array_equal(r, draw(3, replace=True))
    assert r.min() >= 0 and r.max() < n

    p0, res = run
    x, y, xt, yt = _data()
    np.testing.assert_array_equal(training.train(p0, x, y, xt, yt, **KW).batch_loss, res.batch_loss)
    assert not np.array_equal(training.train(p0, x, y, xt, yt, seed=1, **KW).batch_loss, res.batch_loss)


def test_checkpoints_at_the_right_steps(run):
    p0, res = run
    np.testing.assert_array_equal(res.checkpoint_steps, [0, 4, 8, 10])
    assert res.batch_loss.shape == (10,) and res.train_loss.shape == (4,) and res.grad_norms.shape == (4, 3)
    for leaf, leaf0 in zip(jax.tree.leaves(res.checkpoints), jax.tree.leaves(p0), strict=True):
        assert leaf.shape == (4, *leaf0.shape)
    ckpt = lambda i: jax.tree.map(lambda a: a[i], res.checkpoints)  # noqa: E731
    _close(ckpt(0), p0, rtol=0, atol=0)
    _close(ckpt(3), res.params, rtol=0, atol=0)
    # a run stopped at step 8 ends where the long run's checkpoint is (batches depend on the step, not the run)
    x, y, xt, yt = _data()
    short = training.train(p0, x, y, xt, yt, **(KW | {"steps": 8, "checkpoint_every": 8}))
    _close(ckpt(2), short.params, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(training.checkpoint_schedule(250), np.minimum(np.arange(85) * 3, 250))  # k = 3
    np.testing.assert_array_equal(training.checkpoint_schedule(5, 9), [0, 5])


def test_logged_losses_and_grad_norms_equal_direct_computations(run):
    _, res = run
    x, y, xt, yt = _data()
    for i in (0, 2, -1):
        p = jax.tree.map(lambda a, i=i: a[i], res.checkpoints)
        loss = lambda q, xs, ys: jnp.mean((networks.apply_mlp(q, xs) - ys) ** 2)  # noqa: E731
        g = jax.grad(loss)(p, x, y)
        direct = np.array([np.linalg.norm(np.asarray(layer["w"])) for layer in g])
        np.testing.assert_allclose(res.grad_norms[i], direct, rtol=1e-5)
        np.testing.assert_allclose(training.layer_grad_norms(p, x, y), direct, rtol=1e-5)
        np.testing.assert_allclose(res.train_loss[i], loss(p, x, y), rtol=1e-6)
        np.testing.assert_allclose(res.test_loss[i], loss(p, xt, yt), rtol=1e-6)


# --------------------------------------------------------------------------------------------------------------
# Divergence


def _all_finite(tree) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(leaf)))) for leaf in jax.tree.leaves(tree))


def test_divergence_is_flagged_frozen_and_nan_free():
    x, y, xt, yt = _data()
    p0 = _params(depth=3, width=6, init="he_uniform", zero_bias=True)
    res = training.train(p0, x, y, xt, yt, learning_rate=30.0, steps=40, batch_size=8, checkpoint_every=1)
    assert bool(res.diverged)
    t = int(res.diverge_step)
    assert 1 <= t < 40
    assert _all_finite(res)  # params, checkpoints, losses, gradient norms: no NaN, no inf
    assert np.all(np.asarray(res.batch_loss) <= training.DIVERGENCE_BOUND)
    assert np.all(np.asarray(res.batch_loss)[:t] < training.DIVERGENCE_BOUND)
    # frozen at the last parameters whose loss was below the bound: those after step t − 1 (checkpoint t − 1)
    _close(res.params, jax.tree.map(lambda a: a[t - 1], res.checkpoints), rtol=0, atol=0)
    after = np.asarray(res.checkpoint_steps) > t  # checkpoint t holds θ_t itself, whose loss crossed the bound
    for leaf in jax.tree.leaves(res.checkpoints):
        np.testing.assert_array_equal(leaf[after], np.broadcast_to(leaf[-1], leaf[after].shape))


def test_large_uniform_init_diverges_at_once_without_nan():
    x, y, xt, yt = _data()
    p0 = _params(depth=4, width=6, init="uniform", scale=3.0, zero_bias=True)
    res = training.train(p0, x, y, xt, yt, optimizer="momentum", learning_rate=0.1, steps=5, batch_size=8)
    assert bool(res.diverged) and _all_finite(res)


# --------------------------------------------------------------------------------------------------------------
# The linearized model


def test_linearized_model_equals_the_network_at_theta0():
    x, _, _, _ = _data()
    p0 = _params(depth=2, width=5)
    np.testing.assert_array_equal(training.linearized_apply(p0, x, p0), networks.apply_mlp(p0, x))
    delta = jax.tree.map(lambda a: 1e-3 * jnp.ones_like(a), p0)
    moved = jax.tree.map(jnp.add, p0, delta)
    phi = features.feature_matrix(p0, x)
    expected = networks.apply_mlp(p0, x) + phi @ ravel_pytree(delta)[0]
    np.testing.assert_allclose(training.linearized_apply(moved, x, p0), expected, rtol=1e-5, atol=1e-6)


def test_linearized_full_batch_sgd_is_closed_form_gd_on_the_features():
    """Full-batch SGD on L = mean (f₀ + Φδ − y)² is f_t − y = (I − 2ηΘ/n)^t (f₀ − y) with Θ = ΦΦᵀ (float64)."""
    with jax.enable_x64(True):
        x, y, xt, yt = _data(dtype=np.float64)
        p0 = _params(depth=2, width=5, dtype="float64")
        phi = np.asarray(features.feature_matrix(p0, x))
        lam, u = np.linalg.eigh(phi @ phi.T)
        lr, steps = 0.9 * N / (2 * lam.max()), 30  # a stable step: every factor 1 − 2ηλ/n lies in (−0.8, 1)
        res = training.train_linearized(p0, x, y, xt, yt, learning_rate=lr, steps=steps, batch_size=N)
        r0 = np.asarray(networks.apply_mlp(p0, x)) - y
        r_t = u @ ((1 - 2 * lr * lam / N) ** steps * (u.T @ r0))
        f_t = training.linearized_apply(res.params, x, p0)
        np.testing.assert_allclose(np.asarray(f_t) - y, r_t, rtol=1e-9, atol=1e-11)
        # and in parameter space: δ_t stays in the row space of Φ, δ_t = Φᵀ(...) solves Φ δ_t = r_t − r₀
        delta = ravel_pytree(res.params)[0] - ravel_pytree(p0)[0]
        np.testing.assert_allclose(phi @ np.asarray(delta), r_t - r0, rtol=1e-9, atol=1e-11)
        assert float(res.train_loss[-1]) == pytest.approx(np.mean(r_t**2), rel=1e-9)


def test_network_and_linearized_model_share_minibatches_and_start():
    x, y, xt, yt = _data()
    p0 = _params(width=6)
    kw = {"optimizer": "momentum", "learning_rate": 0.01, "steps": 5, "batch_size": 4}
    net = training.train(p0, x, y, xt, yt, **kw)
    lin = training.train_linearized(p0, x, y, xt, yt, **kw)
    np.testing.assert_allclose(net.batch_loss[0], lin.batch_loss[0], rtol=1e-6)
    np.testing.assert_allclose(net.test_loss[0], lin.test_loss[0], rtol=1e-6)
    # a small learning rate keeps the network near its linearization over a few steps
    np.testing.assert_allclose(net.batch_loss, lin.batch_loss, rtol=2e-2)


# --------------------------------------------------------------------------------------------------------------
# Bad input


BAD_INPUTS = [
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"learning_rate": -0.1}, "learning_rate"),
    ({"learning_rate": float("nan")}, "learning_rate"),
    ({"batch_size": N + 1}, "batch_size"),
    ({"batch_size": 0}, "batch_size"),
    ({"steps": 0}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"checkpoint_every": 0}, "checkpoint_every"),
    ({"momentum": 1.0}, "momentum"),
    ({"loss": "l1"}, "loss"),
    ({"seed": -1}, "seed"),
    ({"divergence_bound": 0.0}, "divergence_bound"),
]


@pytest.mark.parametrize(("override", "param"), BAD_INPUTS)
def test_bad_inputs_raise_input_error_naming_the_parameter(override, param):
    x, y, xt, yt = _data()
    kw = {"learning_rate": 0.1, "steps": 3, "batch_size": 4} | override
    for fn in (training.train, training.train_linearized):
        with pytest.raises(InputError) as err:
            fn(_params(), x, y, xt, yt, **kw)
        assert err.value.param == param


def test_bad_data_and_params_raise_input_error():
    x, y, xt, yt = _data()
    kw = {"learning_rate": 0.1, "steps": 3, "batch_size": 4}
    cases = [
        ((_params(), x, y[:-1], xt, yt), "y_train"),
        ((_params(), x, y, xt, yt[:-1]), "y_test"),
        ((_params(), np.full(N, np.nan), y, xt, yt), "x_train"),
        ((_params(), x[:, None], y, xt, yt), "x_train"),
        (([{"w": jnp.ones((1, 3))}], x, y, xt, yt), "params"),
    ]
    for args, param in cases:
        with pytest.raises(InputError) as err:
            training.train(*args, **kw)
        assert err.value.param == param
    with pytest.raises(InputError, match="learning_rate"):
        training.sgd_step(_params(), x, y, learning_rate=0)
    with pytest.raises(InputError, match="loss"):
        training.layer_grad_norms(_params(), x, y, loss="l2")


def test_gradient_norms_do_not_overflow_in_float32():
    # squares of entries near 1e20 overflow float32 (max 3.4e38): the norm must still be the float64 one
    g = np.full((20, 20), 3e19, np.float32)
    expected = float(np.linalg.norm(g.astype(np.float64)))  # 6e20
    assert float(training._frobenius(jnp.asarray(g))) == pytest.approx(expected, rel=1e-6)
    assert float(training._frobenius(jnp.zeros((3, 3), jnp.float32))) == 0.0
