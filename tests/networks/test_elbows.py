"""Elbows: the closed-form one-step update (EECS 182 Sp25 HW0 Q5) against an actual SGD step taken with jax.grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sim.core.validate import InputError
from sim.networks import elbows
from sim.networks import mlp as networks


def _sgd_step(params, x, y, learning_rate):
    """One SGD step on the mean of ½(f(x) − y)², by automatic differentiation."""

    def loss(p):
        return jnp.mean(0.5 * (networks.apply_mlp(p, jnp.atleast_1d(x)) - jnp.atleast_1d(y)) ** 2)

    grads = jax.grad(loss)(params)
    return jax.tree.map(lambda p, g: p - learning_rate * g, params, grads)


def _single_relu(w, b):
    """φ(x) = relu(wx + b) as a width-1 network: output weight 1 and no output bias, as in HW0 Q5(a)."""
    return [{"w": jnp.array([[w]]), "b": jnp.array([b])}, {"w": jnp.array([[1.0]]), "b": jnp.array([0.0])}]


def test_published_single_relu_example():
    # lr 0.1, (x, y) = (1, 1), w = −2, b = 4: φ(1) = 2, residual 1; w → −2.1, b → 3.9, elbow 2 → 39/21 = 1.857
    params = _single_relu(-2.0, 4.0)
    assert float(elbows.elbow_positions(params).position[0]) == 2.0
    new = elbows.elbow_update(params, 1.0, 1.0, learning_rate=0.1)
    assert abs(float(new.position[0]) - 39 / 21) < 1e-6
    assert round(float(new.position[0]), 3) == 1.857
    stepped = elbows.elbow_positions(_sgd_step(params, 1.0, 1.0, 0.1)).position
    np.testing.assert_allclose(stepped, new.position, rtol=1e-6)


def test_inactive_single_relu_does_not_move():
    # HW0 Q5(b)(i): φ(x) = 0 means zero gradient, so neither slope nor elbow changes
    params = _single_relu(2.0, -4.0)  # elbow at 2, inactive at x = 1
    new = elbows.elbow_update(params, 1.0, -1.0, learning_rate=0.5)
    assert float(new.position[0]) == 2.0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("batch", [1, 5])
def test_closed_form_matches_sgd_step(seed, batch):
    """Random elbow nets (elbows in [0, 1]) at x in [0.4, 0.6], where some units are active and some inactive.

    Float64: the closed form and jax.grad do the same arithmetic in a different order, so they agree to 1e-12.
    """
    with jax.enable_x64(True):
        params = networks.init_mlp(jax.random.key(seed), depth=1, width=16, init="elbows", dtype="float64")
        rng = np.random.default_rng(seed)
        x = rng.uniform(0.4, 0.6, batch)  # narrow, so some units are inactive at every sample
        y = rng.normal(size=batch)
        if batch == 1:
            x, y = float(x[0]), float(y[0])
        predicted = elbows.elbow_update(params, x, y, learning_rate=0.3)
        actual = elbows.elbow_positions(_sgd_step(params, x, y, 0.3))
        np.testing.assert_array_equal(predicted.defined, actual.defined)
        np.testing.assert_allclose(predicted.position, actual.position, rtol=1e-12)
        before = np.asarray(elbows.elbow_positions(params).position)
        h = np.atleast_1d(x)[:, None] * np.asarray(params[0]["w"][0]) + np.asarray(params[0]["b"])
        inactive = np.all(h <= 0, axis=0)
        assert inactive.any() and (~inactive).any()
        np.testing.assert_array_equal(np.asarray(predicted.position)[inactive], before[inactive])
        assert np.all(np.asarray(predicted.position)[~inactive] != before[~inactive])


def test_zero_weight_unit_has_no_elbow_and_no_nan():
    params = networks.init_mlp(jax.random.key(3), depth=1, width=4, init="elbows")
    params[0] = {"w": params[0]["w"].at[0, 1].set(0.0), "b": params[0]["b"].at[1].set(-0.5)}
    e = elbows.elbow_positions(params)
    assert not bool(e.defined[1]) and np.isinf(float(e.position[1]))
    assert np.all(np.asarray(e.defined)[[0, 2, 3]]) and not np.any(np.isnan(np.asarray(e.position)))
    # the flat unit is inactive (b < 0), so it stays without an elbow after a step
    new = elbows.elbow_update(params, 0.5, 2.0, learning_rate=0.1)
    assert not bool(new.defined[1]) and not np.any(np.isnan(np.asarray(new.position)))


def test_track_elbows_list_and_stacked():
    ckpts = [networks.init_mlp(jax.random.key(i), depth=1, width=6, init="elbows") for i in range(3)]
    tracked = elbows.track_elbows(ckpts)
    assert tracked.position.shape == (3, 6)
    for i, c in enumerate(ckpts):
        np.testing.assert_array_equal(tracked.position[i], elbows.elbow_positions(c).position)
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *ckpts)
    np.testing.assert_array_equal(elbows.track_elbows(stacked).position, tracked.position)


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda p, d: elbows.elbow_update(d, 0.5, 0.0, learning_rate=0.1), "params"),
        (lambda p, d: elbows.elbow_update(p, 0.5, 0.0, learning_rate=0.0), "learning_rate"),
        (lambda p, d: elbows.elbow_update(p, np.zeros((2, 2)), np.zeros((2, 2)), learning_rate=0.1), "x"),
        (lambda p, d: elbows.elbow_update(p, np.zeros(3), np.zeros(2), learning_rate=0.1), "y"),
        (lambda p, d: elbows.track_elbows([]), "checkpoints"),
        (lambda p, d: elbows.elbow_positions([p[0]]), "params"),
    ],
)
def test_bad_inputs(call, param):
    one = networks.init_mlp(jax.random.key(0), depth=1, width=3)
    two = networks.init_mlp(jax.random.key(0), depth=2, width=3)
    with pytest.raises(InputError) as err:
        call(one, two)
    assert err.value.param == param
