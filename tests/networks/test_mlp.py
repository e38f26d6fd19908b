"""MLP parameters: shapes, the initialization distributions (checked against their moments), the forward pass."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sim.core.validate import InputError
from sim.networks import elbows
from sim.networks import mlp as networks


def _hidden_w(init, width=300, **kw):
    params = networks.init_mlp(jax.random.key(11), depth=2, width=width, init=init, **kw)
    return params, np.asarray(params[1]["w"], dtype=np.float64).ravel()  # the [width, width] layer


def test_he_uniform_variance_and_bound():
    """Var(w) = 2 / fan_in within 5 standard errors; for U(±a), Var(w²) = a⁴/5 − a⁴/9 = 4a⁴/45."""
    fan_in = 300
    params, w = _hidden_w("he_uniform", width=fan_in)
    a2 = 6.0 / fan_in
    se = np.sqrt(4 * a2**2 / 45 / w.size)
    assert abs(np.mean(w**2) - 2.0 / fan_in) < 5 * se
    assert np.max(np.abs(w)) <= np.sqrt(a2)
    assert np.max(np.abs(np.asarray(params[0]["w"]))) <= np.sqrt(6.0)  # first layer: fan_in = 1


def test_he_normal_variance():
    """Var(w) = 2 / fan_in within 5 standard errors; for N(0, σ²), Var(w²) = 2σ⁴."""
    fan_in = 300
    _, w = _hidden_w("he_normal", width=fan_in)
    var = 2.0 / fan_in
    assert abs(np.mean(w**2) - var) < 5 * var * np.sqrt(2.0 / w.size)
    assert abs(np.mean(w)) < 5 * np.sqrt(var / w.size)


def test_pytorch_default_bounds():
    params = networks.init_mlp(jax.random.key(3), depth=2, width=200, init="pytorch")
    for layer in params:
        bound = 1.0 / np.sqrt(layer["w"].shape[0])
        for leaf in (layer["w"], layer["b"]):
            assert np.max(np.abs(np.asarray(leaf))) <= bound * (1 + 1e-6)
    # the 40 000 draws of the middle layer reach close to the bound on both sides
    w = np.asarray(params[1]["w"]) * np.sqrt(200)
    assert w.max() > 0.99 and w.min() < -0.99


def test_uniform_scale_and_zero_bias():
    params = networks.init_mlp(jax.random.key(4), depth=4, width=20, init="uniform", scale=0.03, zero_bias=True)
    assert len(params) == 5
    for layer in params:
        assert np.max(np.abs(np.asarray(layer["w"]))) <= 0.03
        assert not np.any(np.asarray(layer["b"]))
    with_bias = networks.init_mlp(jax.random.key(4), depth=1, width=50, init="uniform", scale=3.0)
    b = np.asarray(with_bias[0]["b"])
    assert np.max(np.abs(b)) <= 3.0 and np.max(np.abs(b)) > 2.0


@pytest.mark.parametrize(
    ("depth", "width", "count"), [(1, 10, 31), (1, 20, 61), (1, 40, 121), (2, 10, 141), (2, 20, 481), (2, 40, 1761)]
)
def test_course_parameter_counts(depth, width, count):
    params = networks.init_mlp(jax.random.key(0), depth=depth, width=width, init="elbows")
    assert networks.num_params(params) == count  # Sp25 HW1 Q5 Part I
    assert networks.layer_names(params) == [f"hidden_{i + 1}" for i in range(depth)] + ["output"]


def test_elbows_init_places_sorted_elbows():
    params = networks.init_mlp(jax.random.key(5), depth=1, width=40, init="elbows", zero_bias=True)
    e = elbows.elbow_positions(params)
    pos = np.asarray(e.position)
    assert np.all(np.asarray(e.defined))
    assert np.all(np.diff(pos) >= 0) and pos.min() >= 0 and pos.max() <= 1
    assert np.max(np.abs(np.asarray(params[0]["w"]))) <= 1.0
    assert not np.any(np.asarray(params[1]["b"]))  # zero_bias zeroes the output bias, not the elbow biases
    assert np.max(np.abs(np.asarray(params[1]["w"]))) <= 1 / np.sqrt(40) * (1 + 1e-6)  # nn.Linear default
    shifted = networks.init_mlp(jax.random.key(5), depth=1, width=40, init="elbows", scale=2.0, elbow_interval=(-1, 1))
    pos = np.asarray(elbows.elbow_positions(shifted).position)
    assert pos.min() >= -1 and pos.max() <= 1 and pos.min() < 0
    assert np.max(np.abs(np.asarray(shifted[0]["w"]))) > 1.0


def test_same_key_same_params_and_dtype():
    a = networks.init_mlp(jax.random.key(9), depth=2, width=5, init="he_normal")
    b = networks.init_mlp(jax.random.key(9), depth=2, width=5, init="he_normal")
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
        assert x.dtype == jnp.float32
    with jax.enable_x64(True):
        c = networks.init_mlp(jax.random.key(9), depth=2, width=5, init="he_normal", dtype="float64")
        assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(c))


def test_apply_mlp_matches_numpy_forward():
    params = networks.init_mlp(jax.random.key(6), depth=3, width=8)
    x = np.linspace(-2, 2, 9)
    h = x[:, None].astype(np.float64)
    np_params = [{k: np.asarray(v, dtype=np.float64) for k, v in layer.items()} for layer in params]
    for layer in np_params[:-1]:
        h = np.maximum(h @ layer["w"] + layer["b"], 0)
    expected = (h @ np_params[-1]["w"] + np_params[-1]["b"])[:, 0]
    out = networks.apply_mlp(params, x)
    assert out.shape == (9,)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    scalar = networks.apply_mlp(params, 0.5)
    assert scalar.shape == ()
    np.testing.assert_allclose(scalar, networks.apply_mlp(params, jnp.array([0.5]))[0], rtol=1e-6)
    np.testing.assert_allclose(
        networks.apply_mlp(params, x, activation=jax.nn.tanh)[0], _tanh_forward(np_params, -2.0), rtol=1e-5
    )


def _tanh_forward(np_params, x):
    h = np.array([[x]])
    for layer in np_params[:-1]:
        h = np.tanh(h @ layer["w"] + layer["b"])
    return (h @ np_params[-1]["w"] + np_params[-1]["b"])[0, 0]


def test_parameter_slices_follow_flatten_order():
    params = networks.init_mlp(jax.random.key(7), depth=2, width=3)
    flat, unflatten = networks.flatten(params)
    slices = networks.parameter_slices(params)
    assert list(slices) == ["hidden_1.b", "hidden_1.w", "hidden_2.b", "hidden_2.w", "output.b", "output.w"]
    names = networks.layer_names(params)
    for key, sl in slices.items():
        layer, leaf = key.split(".")
        np.testing.assert_array_equal(flat[sl], np.asarray(params[names.index(layer)][leaf]).ravel())
    assert flat.size == networks.num_params(params) == sl.stop
    rebuilt = unflatten(flat)
    np.testing.assert_array_equal(rebuilt[1]["w"], params[1]["w"])


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"depth": 0, "width": 5}, "depth"),
        ({"depth": 1.5, "width": 5}, "depth"),
        ({"depth": 1, "width": 0}, "width"),
        ({"depth": 1, "width": 5, "init": "xavier"}, "init"),
        ({"depth": 1, "width": 5, "init": "uniform"}, "scale"),
        ({"depth": 1, "width": 5, "init": "uniform", "scale": 0.0}, "scale"),
        ({"depth": 1, "width": 5, "init": "uniform", "scale": -1.0}, "scale"),
        ({"depth": 1, "width": 5, "init": "he_uniform", "scale": 1.0}, "scale"),
        ({"depth": 1, "width": 5, "init": "elbows", "elbow_interval": (1.0, 0.0)}, "elbow_interval"),
        ({"depth": 1, "width": 5, "dtype": "int32"}, "dtype"),
        ({"depth": 1, "width": 5, "dtype": "float64"}, "dtype"),  # x64 is off outside enable_x64
    ],
)
def test_init_bad_inputs(kwargs, param):
    with pytest.raises(InputError) as err:
        networks.init_mlp(jax.random.key(0), **kwargs)
    assert err.value.param == param


def test_apply_mlp_rejects_2d_x():
    params = networks.init_mlp(jax.random.key(0), depth=1, width=3)
    with pytest.raises(InputError) as err:
        networks.apply_mlp(params, np.zeros((2, 2)))
    assert err.value.param == "x"
