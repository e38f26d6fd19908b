"""Tests for sim.networks.init_scale: the init-scale sweep against its exact power laws and the mean-field gain and
prefactors, the ReLU correlation map against Monte Carlo, the figure drawn from the sweep, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from sim.core.validate import InputError
from sim.figures import registry as figures
from sim.networks import init_scale
from sim.networks import mlp as networks

N_TRAIN = 300


@pytest.fixture(scope="module")
def sweep():
    scales = [0.01, 0.02, 0.05, 0.1, 0.3, 1.0, 3.0, 5.0, 10.0]
    return init_scale.init_scale_sweep(scales, 16, n_train=N_TRAIN, progress=False)


def _slope(ds, i, j):
    g = ds.grad_norm_rms.values
    return np.log(g[j] / g[i]) / np.log(ds.scale.values[j] / ds.scale.values[i])


def test_sweep_slopes_are_the_two_power_laws(sweep):
    depth = sweep.attrs["depth"]
    # zero biases: f ∝ a^(D+1) and ∂f/∂W ∝ a^D exactly, so ‖∇L‖ = ‖A a^(2D+1) − B a^D‖ per seed
    np.testing.assert_allclose(_slope(sweep, 0, 1), depth, atol=0.02)  # a = 0.01 → 0.02: residual ≈ −y
    np.testing.assert_allclose(_slope(sweep, -2, -1), 2 * depth + 1, atol=0.05)  # a = 5 → 10: residual ≈ f


def test_sweep_second_moments_follow_the_mean_field_gain(sweep):
    """Each layer multiplies the mean squared pre-activation by g = N a²/6 (within 20 % over 16 seeds, N = 20)."""
    q = sweep.second_moment_mean.values
    gain = sweep.gain.values[:, None]
    np.testing.assert_allclose(q[:, 1:] / q[:, :-1] / gain, 1.0, rtol=0.2)
    np.testing.assert_allclose(q / sweep.predicted_second_moment.values, 1.0, rtol=0.25)


def test_sweep_gradient_norms_match_the_mean_field_prediction(sweep):
    ratio = (sweep.grad_norm_rms / sweep.predicted_grad_norm).values
    small = sweep.scale.values <= 0.1
    # 16 seeds: the measured ratios (0.82–0.96 small a, 0.82–1.36 large a) move by a few percent between seed sets
    assert np.all((ratio[small] > 0.75) & (ratio[small] < 1.1))
    # large a: the independence of residual and Jacobian underestimates finite-width fourth moments
    assert np.all((ratio[~small] > 0.75) & (ratio[~small] < 1.6))
    assert np.allclose(init_scale.mean_field_gain(np.sqrt(6 / 20), width=20), 1.0)  # He: g = 1


def test_relu_correlation_map():
    np.testing.assert_allclose(init_scale.relu_correlation([-1.0, 0.0, 1.0]), [0.0, 1 / np.pi, 1.0], atol=1e-12)
    # Monte Carlo check at ρ = 0.3: E relu(u) relu(v) / E relu(u)²
    rng = np.random.default_rng(0)
    u, z = rng.standard_normal((2, 400_000))
    v = 0.3 * u + np.sqrt(1 - 0.09) * z
    mc = np.mean(np.maximum(u, 0) * np.maximum(v, 0)) / np.mean(np.maximum(u, 0) ** 2)
    assert init_scale.relu_correlation(0.3) == pytest.approx(mc, abs=0.01)


def test_predicted_grad_norms_shape():
    x = np.linspace(-1, 1, 11)
    out = init_scale.predicted_grad_norms([0.1, 1.0], x, np.sin(x), depth=3, width=8)
    assert out.shape == (2, 4) and np.all(np.isfinite(out)) and np.all(out > 0)
    assert networks.layer_names([None] * 4)[-1] == "output"


def test_figure_draws_from_the_sweep(sweep, tmp_path):
    from sim.figures.base import fixed_style, save

    spec = figures.FIGURES["init_scale"]
    with fixed_style():
        path = save(spec.plot(sweep), tmp_path / spec.filename)  # drawing parses every mathtext label
    assert path.stat().st_size > 20_000


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda: init_scale.init_scale_sweep([0.0, 1.0], 2, progress=False), "scales"),
        (lambda: init_scale.init_scale_sweep([1.0], 0, progress=False), "seeds"),
        (lambda: init_scale.init_scale_sweep([1.0], 2, depth=0, progress=False), "depth"),
    ],
)
def test_bad_inputs_raise_input_error_naming_the_parameter(call, param):
    with pytest.raises(InputError) as err:
        call()
    assert err.value.param == param
