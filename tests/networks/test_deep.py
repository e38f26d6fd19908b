"""Deep ReLU classifiers: initializations against their variances, gradients and norms against NumPy, the course's
optimizer rules against a NumPy transcription, and the vmapped grid against networks trained alone."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sim.core.validate import InputError
from sim.networks import deep


def _data(n=60, d=12, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, classes, size=n).astype(np.int32)
    return x, y


def test_he_weights_have_std_sqrt_2_over_fan_in_within_sampling_error():
    sizes = (512, 200, 200, 10)
    for scheme in ("he_normal", "he_uniform"):
        params = deep.init_params(jax.random.key(3), sizes, scheme=scheme)
        for layer, (fan_in, fan_out) in zip(params, zip(sizes[:-1], sizes[1:], strict=True), strict=True):
            w = np.asarray(layer["w"], dtype=np.float64)
            sigma = np.sqrt(2 / fan_in)
            n = fan_in * fan_out
            # the sample std of n i.i.d. draws has standard error sigma * sqrt((kurtosis - 1) / (4 n)): 1/(2n) for a
            # normal (kurtosis 3), 0.8/(4n) for a uniform (kurtosis 1.8); 5 standard errors
            se = sigma * np.sqrt((2.0 if scheme == "he_normal" else 0.8) / (4 * n))
            assert abs(w.std() - sigma) < 5 * se, (scheme, fan_in, w.std(), sigma)
            assert abs(w.mean()) < 5 * sigma / np.sqrt(n)
            assert not np.any(np.asarray(layer["b"]))
        assert np.all(np.abs(np.asarray(params[0]["w"])) <= np.sqrt(6 / 512) + 1e-7) or scheme == "he_normal"


def test_scheme_scales_and_gain():
    sizes = (100, 50, 10)
    np.testing.assert_allclose(deep.layer_stds("normal", sizes, 0.01), [0.01, 0.01])
    np.testing.assert_allclose(deep.layer_stds("he_normal", sizes), [np.sqrt(0.02), np.sqrt(0.04)])
    np.testing.assert_array_equal(deep.layer_stds("zero", sizes), [0, 0])
    # gain fan_in Var(W) / 2: 1 for He, 50 * 1e-4 / 2 for N(0, 0.01^2) at fan-in 50
    np.testing.assert_allclose(deep.relu_gain(50, 2 / 50), 1.0)
    np.testing.assert_allclose(deep.relu_gain(50, 1e-4), 0.0025)
    w = np.asarray(deep.init_params(jax.random.key(0), (300, 300, 10), scheme="uniform", scale=0.5)[0]["w"])
    assert np.max(np.abs(w)) <= 0.5 * np.sqrt(3) + 1e-6 and abs(w.std() - 0.5) < 5 * 0.5 * np.sqrt(0.2 / 90_000)
    with pytest.raises(InputError, match="scale"):
        deep.layer_stds("normal", sizes)
    with pytest.raises(InputError, match="scheme"):
        deep.layer_stds("xavier", sizes)


def test_zero_init_leaves_every_hidden_weight_gradient_exactly_zero_and_training_keeps_them_zero():
    x, y = _data()
    sizes = (12, 8, 8, 8, 4)
    params = deep.init_params(jax.random.key(0), sizes, scheme="zero")
    grads = jax.grad(deep.loss)(params, jnp.asarray(x), jnp.asarray(y))
    for layer in grads:
        assert not np.any(np.asarray(layer["w"]))  # every weight gradient, hidden and output: h = relu(0) = 0
    for layer in grads[:-1]:
        assert not np.any(np.asarray(layer["b"]))  # ReLU'(0) = 0 stops the signal below the logits
    assert np.any(np.asarray(grads[-1]["b"]))  # only the output bias learns (the class frequencies)
    data = tuple(jnp.asarray(a) for a in (x, y, x, y, x, y))
    out = deep.train_network(
        0.0, 0.5, 1, data, sizes=sizes, optimizer="momentum", steps=30, batch_size=10, eval_every=10
    )
    for layer in out["params"][:-1]:
        assert not np.any(np.asarray(layer["w"])) and not np.any(np.asarray(layer["b"]))
    assert not np.any(np.asarray(out["params"][-1]["w"]))


def test_both_gradient_norm_definitions_against_numpy():
    x, y = _data(seed=1)
    params = deep.init_params(jax.random.key(1), (12, 9, 7, 4), scheme="he_normal")
    params[1]["b"] = params[1]["b"] + 0.3  # nonzero biases so every bias gradient is nonzero
    grads = jax.grad(deep.loss)(params, jnp.asarray(x), jnp.asarray(y))
    fro, spec = (np.asarray(v) for v in deep.grad_norms(grads))
    arrays = [np.asarray(a, dtype=np.float64) for layer in grads for a in (layer["w"], layer["b"])]
    assert deep.array_names(3) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    expected_fro = [np.linalg.norm(a) for a in arrays]  # Frobenius of each flattened array
    expected_spec = [np.linalg.norm(a, 2) for a in arrays]  # matrix: largest singular value; vector: 2-norm
    # float32 gradients and the Gram matrix's top eigenvalue in float32: relative error ~1e-6; 1e-5 allowed
    np.testing.assert_allclose(fro, expected_fro, rtol=1e-5)
    np.testing.assert_allclose(spec, expected_spec, rtol=1e-5)
    assert all(s < f for s, f, a in zip(spec, fro, arrays, strict=True) if a.ndim == 2)
    # tiny and huge gradients: no underflow or overflow of the squares
    for scale in (1e-30, 1e30):
        g = np.asarray(arrays[0] * scale, dtype=np.float32)
        np.testing.assert_allclose(
            float(deep.spectral_norm(jnp.asarray(g))), np.linalg.norm(g.astype(float), 2), rtol=1e-5
        )
        np.testing.assert_allclose(
            float(deep.frobenius_norm(jnp.asarray(g))), np.linalg.norm(g.astype(float)), rtol=1e-5
        )


def test_layer_statistics_backward_pass_against_autodiff():
    x, y = _data(n=40, seed=2)
    params = deep.init_params(jax.random.key(2), (12, 16, 16, 4), scheme="he_normal")
    stats = {k: np.asarray(v) for k, v in deep.layer_statistics(params, jnp.asarray(x), jnp.asarray(y)).items()}
    grads = jax.grad(deep.loss)(params, jnp.asarray(x), jnp.asarray(y))
    np.testing.assert_allclose(stats["grad_norm"], [np.linalg.norm(g["w"]) for g in grads], rtol=1e-5)
    per_sample = jax.vmap(lambda xi, yi: jax.grad(deep.loss)(params, xi[None], yi[None]))(
        jnp.asarray(x), jnp.asarray(y)
    )
    rms = [np.sqrt(np.mean(np.sum(np.asarray(g["w"], np.float64) ** 2, axis=(1, 2)))) for g in per_sample]
    np.testing.assert_allclose(stats["per_sample_grad_rms"], rms, rtol=1e-5)
    h = np.maximum(x.astype(np.float64) @ np.asarray(params[0]["w"], np.float64), 0)
    np.testing.assert_allclose(stats["activation_rms"][0], np.sqrt(np.mean(h**2)), rtol=1e-5)
    np.testing.assert_allclose(stats["activation_std"][0], np.std(h), rtol=1e-5)
    np.testing.assert_allclose(stats["input_mean_square"], np.mean(x.astype(np.float64) ** 2), rtol=1e-6)


def test_loss_and_accuracy_against_numpy():
    x, y = _data(seed=3)
    params = deep.init_params(jax.random.key(4), (12, 10, 4), scheme="he_normal")
    z = np.maximum(x @ np.asarray(params[0]["w"]), 0) @ np.asarray(params[1]["w"])
    z = z.astype(np.float64)
    logp = z - z.max(1, keepdims=True) - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))
    np.testing.assert_allclose(float(deep.loss(params, x, y)), -logp[np.arange(len(y)), y].mean(), rtol=1e-5)
    np.testing.assert_allclose(float(deep.accuracy(params, x, y)), np.mean(z.argmax(1) == y), rtol=0, atol=1e-7)


def _course_rule(name, lr, grads):
    """The course's update rules (the solver's sgd / sgd_momentum / rmsprop / adam), transcribed in float64."""
    w, v, cache, m, t = 0.0, 0.0, 0.0, 0.0, 0
    out = []
    for g in grads:
        if name == "sgd":
            w = w - lr * g
        elif name == "momentum":
            v = 0.9 * v - lr * g
            w = w + v
        elif name == "rmsprop":
            cache = 0.99 * cache + 0.01 * g * g
            w = w - lr * g / (np.sqrt(cache) + 1e-8)
        else:
            t += 1
            m = 0.9 * m + 0.1 * g
            cache = 0.999 * cache + 0.001 * g * g
            w = w - lr * (m / (1 - 0.9**t)) / (np.sqrt(cache / (1 - 0.999**t)) + 1e-8)
        out.append(w)
    return np.array(out)


@pytest.mark.parametrize("name", deep.OPTIMIZERS)
def test_optimizers_follow_the_course_rules(name):
    grads = np.array([[0.5, -2.0, 1e-3], [0.4, 1.0, -1e-3], [-0.3, 0.5, 2e-3], [0.2, -0.1, 0.0]])
    with jax.enable_x64(True):
        opt = deep.make_optimizer(name, 0.01)
        w = jnp.zeros(3, jnp.float64)
        state = opt.init(w)
        got = []
        for g in grads:
            updates, state = opt.update(jnp.asarray(g), state, w)
            w = w + updates
            got.append(np.asarray(w))
    expected = np.stack([_course_rule(name, 0.01, grads[:, k]) for k in range(3)], axis=1)
    np.testing.assert_allclose(np.array(got), expected, rtol=1e-12, atol=1e-15)


def test_the_vmapped_grid_equals_networks_trained_alone():
    x, y = _data(n=50, d=20, classes=5, seed=4)
    data = tuple(jnp.asarray(a) for a in (x, y, x, y, x, y))
    sizes = (20, 16, 16, 16, 5)
    opts = {"optimizer": "sgd", "steps": 12, "batch_size": 10, "eval_every": 4}
    scales, lrs, seeds = np.array([0.1, 0.3, 1.0]), np.array([0.03, 0.3, 3.0]), np.array([0, 5, 9], np.int32)
    stds = np.repeat(scales[:, None], 4, 1).astype(np.float32)
    grid = deep.grid_trainer(sizes, **opts, keep_params=True)(
        jnp.asarray(stds), jnp.asarray(lrs, jnp.float32), jnp.asarray(seeds), data
    )
    alone = jax.jit(lambda s, lr, seed: deep.train_network(s, lr, seed, data, sizes=sizes, **opts))
    for si, seed in [(0, 0), (1, 5), (2, 9)]:
        for p in range(3):
            one = alone(jnp.float32(scales[p]), jnp.float32(lrs[p]), jnp.int32(seed))
            # the same float32 arithmetic, summed in another order by the batched products: measured agreement
            # <= 5e-6 relative after 40 steps; 1e-4 allowed
            for key in ("loss", "train_loss"):
                np.testing.assert_allclose(grid[key][si, p], one[key], rtol=1e-4, atol=1e-6)
            np.testing.assert_array_equal(grid["diverged"][si, p], one["diverged"])
            np.testing.assert_allclose(grid["params"][0]["w"][si, p], one["params"][0]["w"], rtol=1e-4, atol=1e-6)
            assert abs(float(grid["train_accuracy"][si, p, -1]) - float(one["train_accuracy"][-1])) <= 1 / 50


def test_divergence_is_frozen_and_flagged_with_finite_logs():
    x, y = _data(seed=5)
    data = tuple(jnp.asarray(a) for a in (x, y, x, y, x, y))
    out = deep.train_network(
        3.0,
        1e4,
        0,
        data,
        sizes=(12, 32, 32, 4),
        optimizer="sgd",
        steps=20,
        batch_size=10,
        eval_every=5,
        record_norms=True,
    )
    assert bool(out["diverged"]) and 0 <= int(out["diverge_step"]) < 20
    for key in ("loss", "train_loss", "train_accuracy", "val_accuracy", "grad_norm_frobenius", "grad_norm_spectral"):
        assert np.all(np.isfinite(np.asarray(out[key]))), key
    t = int(out["diverge_step"])
    assert np.all(np.asarray(out["loss"])[t:] == deep.DIVERGENCE_BOUND)
    assert np.all(np.asarray(out["grad_norm_frobenius"])[t:] == 0)


def test_minibatches_are_drawn_with_replacement_from_the_seed():
    _, idx = deep.draw(3, sizes=(4, 3, 2), dist="normal", steps=200, batch_size=50, n=60)
    idx = np.asarray(idx)
    assert idx.shape == (200, 50) and idx.min() == 0 and idx.max() == 59
    assert any(len(set(row)) < 50 for row in idx)  # repeats inside a batch: with replacement
    _, again = deep.draw(3, sizes=(4, 3, 2), dist="normal", steps=200, batch_size=50, n=60)
    np.testing.assert_array_equal(idx, np.asarray(again))


def test_training_options_are_checked():
    with pytest.raises(InputError, match="eval_every"):
        deep.check_training(optimizer="sgd", steps=10, batch_size=5, eval_every=3, n_train=20, divergence_bound=1e8)
    with pytest.raises(InputError, match="batch_size"):
        deep.check_training(optimizer="sgd", steps=10, batch_size=50, eval_every=5, n_train=20, divergence_bound=1e8)
    with pytest.raises(InputError, match="optimizer"):
        deep.make_optimizer("lion", 0.1)
