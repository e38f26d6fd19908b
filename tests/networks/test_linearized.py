"""Tests for sim.networks.linearized: the linearized model diverges above its stability bound while the network need
not, both start from the same predictions, the figure draws from the result, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from sim.core.validate import InputError
from sim.figures import registry as figures
from sim.networks import linearized

# its module-scoped fixtures are costly: one xdist worker runs the whole module (pyproject: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("networks.test_linearized")


@pytest.fixture(scope="module")
def comparison():
    return linearized.linearized_comparison(learning_rates=[0.3, 0.01], steps=60, n_train=200, progress=False)


def test_linearized_model_diverges_above_its_bound_and_the_network_need_not(comparison):
    learning_rate_stable = float(comparison.learning_rate_stable)
    assert 0.01 < learning_rate_stable < 0.3  # so lr 0.3 is above the bound and 0.01 below
    lin = comparison.sel(kind="linearized")
    assert bool(lin.diverged.sel(learning_rate=0.3)) and not bool(lin.diverged.sel(learning_rate=0.01))
    np.testing.assert_allclose(
        comparison.test_loss.sel(kind="network").isel(step=0), lin.test_loss.isel(step=0), rtol=1e-6
    )
    assert all(
        bool(np.all(np.isfinite(comparison[v].values)))
        for v in comparison.data_vars
        if np.issubdtype(comparison[v].dtype, np.number)
    )


def test_figure_draws_from_the_comparison(comparison, tmp_path):
    from sim.figures.base import fixed_style, save

    spec = figures.FIGURES["linearized"]
    with fixed_style():
        path = save(spec.plot(comparison), tmp_path / spec.filename)
    assert path.stat().st_size > 20_000


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [({"model": "deep"}, "model"), ({"learning_rates": [-0.1]}, "learning_rates")],
)
def test_bad_inputs_raise_input_error_naming_the_parameter(kwargs, param):
    with pytest.raises(InputError) as err:
        linearized.linearized_comparison(**kwargs, progress=False)
    assert err.value.param == param


def test_full_batch_bound_locates_the_linearizations_divergence():
    # full-batch GD on the linearization is GD on a quadratic with top curvature h = 2 s1^2 / n: the error mode along
    # the top feature direction is multiplied by 1 - lr h per step, so at 0.9 x 2/h it shrinks (|1 - 1.8| = 0.8) and at
    # 1.1 x 2/h it grows by 1.2 per step, past the 1e8 loss bound within 120 steps
    kw = {"optimizer": "sgd", "batch_size": 100, "n_train": 100, "steps": 120, "progress": False}
    bound = float(linearized.linearized_comparison(learning_rates=[0.01], **kw | {"steps": 1}).learning_rate_stable)
    ds = linearized.linearized_comparison(learning_rates=[0.9 * bound, 1.1 * bound], **kw)
    lin = ds.sel(kind="linearized")
    assert not bool(lin.diverged.isel(learning_rate=0)) and bool(lin.diverged.isel(learning_rate=1))
