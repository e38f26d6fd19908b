"""The trainability studies: the per-layer theory against hand computation and against many seeds, and each study at
a tiny size (shapes, masks, no NaN, the depth map's success bookkeeping, grid points against networks alone)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from sim.core.validate import InputError
from sim.networks import deep, images, trainability


@pytest.fixture(scope="module")
def digits():
    return images.load("digits")


def test_predicted_layers_by_hand():
    sizes = (64, 50, 50, 10)
    m, s = 3.0, 0.8
    he = trainability.predicted_layers(sizes, deep.layer_stds("he_normal", sizes), m, s)
    np.testing.assert_allclose(he["gain"], [1, 1, 1])
    np.testing.assert_allclose(he["activation_rms"], [np.sqrt(m)] * 2)
    np.testing.assert_allclose(he["activation_std"], [np.sqrt((1 - 1 / np.pi) * m)] * 2)
    # per-sample |dW_l|^2 = E|h_{l-1}|^2 E|delta_l|^2: (64 m) s, (50 m) s, (50 m) s with every gain 1
    np.testing.assert_allclose(he["per_sample_grad_rms"], np.sqrt([64 * m * s, 50 * m * s, 50 * m * s]))
    small = trainability.predicted_layers(sizes, [0.01] * 3, m, s)
    g1, g = 64 * 1e-4 / 2, 50 * 1e-4 / 2
    np.testing.assert_allclose(small["gain"], [g1, g, g])
    np.testing.assert_allclose(small["activation_rms"], np.sqrt([m * g1, m * g1 * g]))
    expected = [64 * m * s * g * g, 50 * m * g1 * s * g, 50 * m * g1 * g * s]
    np.testing.assert_allclose(small["per_sample_grad_rms"], np.sqrt(expected))
    zero = trainability.predicted_layers(sizes, [0, 0, 0], m, s)
    assert not np.any(zero["activation_rms"]) and not np.any(zero["per_sample_grad_rms"])


def test_activation_mean_square_is_exact_in_expectation_over_seeds(digits):
    """E[mean h_l^2] = m * prod(gains) exactly (symmetric weights, zero biases): the mean over 256 seeds of the
    measured mean squares lies within 4 standard errors of it, at every layer, for two scales."""
    x, y = jnp.asarray(digits.x_train[:200]), jnp.asarray(digits.y_train[:200])
    sizes = (64, 50, 50, 50, 10)

    def statistics(key, stds):
        return deep.layer_statistics(deep.scale_params(deep.unit_params(key, sizes), stds), x, y)

    for stds in (deep.layer_stds("he_normal", sizes), deep.layer_stds("normal", sizes, 0.05)):
        keys = jax.random.split(jax.random.key(7), 256)
        stats = jax.jit(jax.vmap(statistics, in_axes=(0, None)))(keys, jnp.asarray(stds, jnp.float32))
        ms = np.asarray(stats["activation_rms"], np.float64) ** 2  # [seed, hidden layer]
        m = float(np.mean(np.asarray(digits.x_train[:200], np.float64) ** 2))
        predicted = trainability.predicted_layers(sizes, stds, m, 1.0)["activation_rms"] ** 2
        se = ms.std(axis=0, ddof=1) / np.sqrt(ms.shape[0])
        assert np.all(np.abs(ms.mean(axis=0) - predicted) < 4 * se), (ms.mean(axis=0), predicted, se)


def test_init_study_tiny(digits):
    ds = trainability.init_study(
        digits, seeds=3, hidden=[20, 20, 20], steps=10, eval_size=100, eval_every=5, progress=False
    )
    assert ds.attrs["complete"] == 1 and bool(ds.computed.all())
    assert dict(ds.sizes) == {"scheme": 3, "seed": 3, "step": 10, "eval_step": 3, "layer": 4, "hidden_layer": 3}
    for name in ds.data_vars:
        if ds[name].dtype.kind == "f":
            assert np.all(np.isfinite(ds[name].values)), name
    zero = ds.sel(scheme="zero")
    assert not np.any(zero.weight_std) and not np.any(zero.activation_rms) and not np.any(zero.init_grad_norm)
    # zero weights: every logit 0, so the first minibatch loss is log 10 for every seed (float32: 1e-6)
    np.testing.assert_allclose(zero.loss.values[:, 0], np.log(10), rtol=1e-6)
    he = ds.sel(scheme="he")
    np.testing.assert_allclose(he.expected_weight_std.values, np.sqrt(2 / np.array([64, 20, 20, 20])))
    np.testing.assert_allclose(he.gain.values, 1.0)
    random = ds.sel(scheme="random")
    np.testing.assert_allclose(random.gain.values, [64e-4 / 2, 20e-4 / 2, 20e-4 / 2, 20e-4 / 2])
    # vanishing signal: each hidden layer's activation RMS ~ sqrt(gain) = 0.032 times the one before
    ratio = np.median(random.activation_rms.values[:, 1:] / random.activation_rms.values[:, :-1], axis=0)
    np.testing.assert_allclose(ratio, np.sqrt(0.001), rtol=0.5)
    assert np.all(ds.grad_norm_spectral.values <= ds.grad_norm_frobenius.values * (1 + 1e-6))
    s = trainability.summary(ds)
    assert s["input_dim"] == 64 and s["n_train"] == digits.n_train
    assert len(s["schemes"]["he"]["weight_std"]) == 4
    assert s["schemes"]["zero"]["final_loss"] == pytest.approx(float(np.median(zero.train_loss.values[:, -1])))


def test_optimizer_study_skips_runs_whose_batch_does_not_fit(digits):
    ds = trainability.optimizer_study(
        digits, seeds=2, hidden=[16, 16], steps=10, n_train=500, eval_size=100, eval_every=5, progress=False
    )
    assert "sgd_lr_0.1_batch_1000" not in ds.run.values and ds.attrs["skipped_runs"] == "sgd_lr_0.1_batch_1000"
    assert list(ds.optimizer.values[:4]) == ["sgd", "momentum", "adam", "rmsprop"]
    assert np.all(np.isfinite(ds.loss.values)) and bool(ds.computed.all())
    with pytest.raises(InputError, match="runs"):
        trainability.optimizer_study(digits, runs=["sgd_lr_0.1_batch_1000"], n_train=500, progress=False)


def test_depth_study_bookkeeping_and_grid_points_against_networks_alone(digits):
    kw = {"seeds": 2, "scales": "0.03,0.3", "lrs": "0.01,0.3,3", "progress": False}
    ds = trainability.depth_study(digits, **kw)
    assert dict(ds.sizes) == {"depth": 2, "scale": 2, "learning_rate": 3, "seed": 2}
    assert bool(ds.computed.all()) and ds.attrs["steps"] == 40
    success = (ds.final_train_accuracy == 1.0) & ~ds.diverged
    assert bool((ds.success == success).all())
    np.testing.assert_allclose(ds.success_fraction, ds.success.mean("seed"))
    for depth in (3, 5):
        f = ds.success_fraction.sel(depth=depth).values
        assert float(ds.success_area.sel(depth=depth)) == pytest.approx(np.mean(f >= 0.5))
    # chunks of 5 networks (blocks cut across seeds and learning rates, the last one padded) give the same networks
    small = trainability.depth_study(digits, **kw, chunk_size=5)
    np.testing.assert_allclose(small.final_loss, ds.final_loss, rtol=1e-4, atol=1e-6)
    # one grid point trained alone, as the course would (float32: the batched products sum in another order)
    x, y = jnp.asarray(digits.x_train[:50]), jnp.asarray(digits.y_train[:50])
    data = (x, y, x, y, x, y)
    sizes = deep.layer_sizes(64, trainability.DEPTHS[5], 10)
    one = deep.train_network(0.3, 0.01, 1, data, sizes=sizes, optimizer="sgd", steps=40, batch_size=25, eval_every=40)
    point = ds.sel(depth=5, scale=0.3, learning_rate=0.01, seed=1)
    # (a loss near 0 is 1 - p computed in float32: an absolute 1e-6 on top)
    np.testing.assert_allclose(float(point.final_loss), float(one["train_loss"][-1]), rtol=1e-4, atol=1e-6)
    assert bool(point.diverged) == bool(one["diverged"])
    s = trainability.summary(ds)
    assert set(s["depths"]) == {"3", "5"} and s["n_train"] == 50 and s["input_dim"] == 64


def test_success_region_on_a_made_up_map():
    f = np.zeros((4, 5))
    f[1:3, 1:4] = [[0.5, 1.0, 0.25], [1.0, 1.0, 0.75]]
    scales, lrs = 10.0 ** np.arange(-3, 1), 10.0 ** np.arange(-4, 1)
    ds = xr.Dataset(
        {"success_fraction": (("scale", "learning_rate"), f)}, coords={"scale": scales, "learning_rate": lrs}
    )
    r = trainability.success_region(ds)
    assert r["cells"] == 5 and r["success_area"] == pytest.approx(5 / 20)
    assert r["scale_range"] == [1e-2, 1e-1] and r["lr_range"] == [1e-3, 1e-1]
    assert r["scale_decades"] == pytest.approx(1.0) and r["lr_decades"] == pytest.approx(2.0)
    assert r["centroid"]["scale"] == pytest.approx(10 ** np.mean([-2, -2, -1, -1, -1]))
    # the best fraction, then the largest learning rate, then the smallest scale
    assert r["best"] == {"scale": 0.01, "learning_rate": 1e-2, "success_fraction": 1.0}
    f[1, 1] = np.nan  # a cell not computed
    r = trainability.success_region(ds.assign(success_fraction=(("scale", "learning_rate"), f)))
    assert r["cells_computed"] == 19 and r["cells"] == 4


def test_bad_configurations_are_refused_before_training(digits):
    with pytest.raises(InputError, match="seeds"):
        trainability.init_study(digits, seeds=0)
    with pytest.raises(InputError, match="schemes"):
        trainability.init_study(digits, schemes=["xavier"])
    with pytest.raises(InputError, match="scales"):
        trainability.depth_study(digits, scales="log:0:1:4")
    with pytest.raises(InputError, match="depths"):
        trainability.depth_study(digits, depths=[4])
    with pytest.raises(InputError, match="n_train"):
        trainability.depth_study(digits, n_train=10_000)
