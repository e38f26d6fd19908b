"""Problems: running on X itself and on its spectrum gives the same error curves."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sim.core import grid
from sim.core.validate import InputError
from sim.linear import dynamics, problems
from sim.linear.sweep import engine as sweep


def _error_curve_on_x(dyn, x, y, steps):
    grad = problems.least_squares_gradient(jnp.asarray(x), jnp.asarray(y))
    path = dynamics.run(dyn, grad, jnp.zeros(x.shape[1]), steps)
    w_star = np.linalg.lstsq(x, y, rcond=None)[0]
    return np.linalg.norm(np.asarray(path) - w_star, axis=1) / np.linalg.norm(w_star)


def _error_curve_on_spectrum(dyn, problem, steps):
    s = jnp.asarray(problem.spectrum)
    path = dynamics.run(dyn, lambda e: 2 * s * e, jnp.asarray(problem.initial_error()), steps)
    return np.linalg.norm(np.asarray(path), axis=1)


@pytest.mark.parametrize("shape", [(30, 6), (5, 9)])  # tall, and wide (rank-deficient: min-norm w*)
@pytest.mark.parametrize("method", ["gd", "momentum", "nesterov"])
def test_matrix_and_spectrum_give_the_same_error_curves(shape, method):
    rng = np.random.default_rng(sum(shape))
    x, y = rng.normal(size=shape), rng.normal(size=shape[0])
    with jax.enable_x64(True):
        problem, v = problems.from_matrix(x, y)
        lr = 0.4 / problem.spectrum.max()
        dyn = {"gd": dynamics.gd(lr), "momentum": dynamics.momentum(lr, 0.5), "nesterov": dynamics.nesterov(lr, 0.5)}
        on_x = _error_curve_on_x(dyn[method], x, y, 300)
        on_s = _error_curve_on_spectrum(dyn[method], problem, 300)
        # float64: both are the same linear recursion in rotated coordinates; rounding stays ~1e-13
        np.testing.assert_allclose(on_x, on_s, rtol=1e-9, atol=1e-12)
        assert on_x[-1] < on_x[0]


def test_sweep_of_matrix_problem_matches_its_error_curve():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=20)
    with jax.enable_x64(True):
        problem, _ = problems.from_matrix(x, y)
        lr = 0.5 / problem.spectrum.max()
        curve = _error_curve_on_x(dynamics.momentum(lr, 0.3), x, y, 400)
        g = grid.Grid((grid.parse_axis("learning_rate", repr(float(lr))), grid.parse_axis("beta", "0.3")))
        ds = sweep.sweep(
            "momentum",
            g,
            steps=400,
            tol=1e-3,
            spectrum=problem.spectrum,
            target=problem.target,
            dtype="float64",
            progress=False,
        )
        above = np.nonzero(curve >= 1e-3)[0]
        assert int(ds.settle_step.item()) == above[-1] + 1
        np.testing.assert_allclose(ds.max_error.item(), curve.max(), rtol=1e-12)
        # the run on X bottoms out at rounding (~1e-16); the spectral recursion does not, so compare with it
        exact = _error_curve_on_spectrum(dynamics.momentum(lr, 0.3), problem, 400)
        np.testing.assert_allclose(ds.final_error.item(), exact[-1], rtol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"spectrum": []}, "spectrum"),
        ({"spectrum": [1.0, -2.0]}, "spectrum"),
        ({"spectrum": [1.0, float("nan")]}, "spectrum"),
        ({"spectrum": [1.0, 2.0], "target": [1.0]}, "target"),
        ({"spectrum": [1.0, 2.0], "target": [0.0, 0.0]}, "target"),
    ],
)
def test_from_spectrum_rejects_bad_input(kwargs, param):
    with pytest.raises(InputError) as err:
        problems.from_spectrum(**kwargs)
    assert err.value.param == param


def test_from_matrix_rejects_bad_shapes():
    with pytest.raises(InputError, match="^y:"):
        problems.from_matrix(np.ones((3, 2)), np.ones(4))
    with pytest.raises(InputError, match="^X:"):
        problems.from_matrix(np.zeros((3, 2)), np.ones(3))
