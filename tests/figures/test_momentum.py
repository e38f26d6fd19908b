"""Tests for the momentum figures' data (sim.figures.momentum, sim.figures.momentum_notebook) against closed forms and
independent float64 recursions. Rendering, byte stability and provenance of every figure are in test_figures.py.

The oracles are written out again with numpy here (Distill's own matrix, the course's recursion), so a wrong
conversion or formula in the package cannot hide a wrong figure.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from sim.figures import registry as figures
from sim.figures.momentum_notebook import PUBLISHED_LOSSES
from sim.linear import theory
from sim.linear.problems import course_momentum_data
from tests import reference

# its module-scoped fixtures are costly: one xdist worker runs the whole module (pyproject: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("figures.test_momentum")


@pytest.fixture(scope="module")
def data():
    names = ["momentum_eigenvalues", "momentum_phase_distill", "momentum_phase_spectrum", "steps_vs_lr"]
    return {name: figures.FIGURES[name].compute(True, progress=False) for name in names + ["momentum_notebook"]}


def _max_abs_eig(matrix: np.ndarray) -> np.ndarray:
    return np.abs(np.linalg.eigvals(matrix)).max(axis=-1)


# --------------------------------------------------------------------------------------------------------------
# Eigenvalues of R as η sweeps


def test_eigenvalues_regimes_moduli_and_simulator(data):
    ds = data["momentum_eigenvalues"]
    beta, s2 = ds.attrs["beta"], ds.attrs["sigma2"]
    eta, regime = ds.learning_rate.values, ds.regime.values
    root = 2 * np.sqrt(1 - beta)
    lo, hi, stable = (2 - beta - root) / (2 * beta * s2), (2 - beta + root) / (2 * beta * s2), (2 - beta) / (beta * s2)
    assert ds.attrs["repeated_root_lrs"] == pytest.approx([lo, hi], rel=1e-12)
    assert ds.attrs["stable_lr"] == pytest.approx(stable, rel=1e-12)
    expected = np.where(eta > stable, 3, np.where((eta > lo) & (eta < hi), 2, 0))
    assert np.array_equal(regime, expected)
    assert {0, 2, 3} <= set(regime.tolist())
    mod = np.hypot(ds.eig_real.values, ds.eig_imag.values)
    np.testing.assert_allclose(mod[regime == 2], np.sqrt(1 - beta), rtol=0, atol=1e-12)
    assert (np.abs(ds.eig_imag.values[regime != 2]) == 0).all()
    # the Jacobian of the simulator's own step has the closed form's eigenvalues
    for part in ("real", "imag"):
        np.testing.assert_allclose(ds[f"jacobian_eig_{part}"], ds[f"eig_{part}"], rtol=0, atol=1e-9)
    # the growth rate measured from simulated iterates is the spectral radius (away from the repeated roots,
    # where t·ρ^t biases a finite-window estimate)
    far = (np.abs(np.log(eta / lo)) > 0.1) & (np.abs(np.log(eta / hi)) > 0.01)
    np.testing.assert_allclose(ds.measured_rate.values[far], ds.radius.values[far], rtol=1e-2)


# --------------------------------------------------------------------------------------------------------------
# Distill's phase diagram


def test_distill_radius_is_distills_own_matrix(data):
    ds = data["momentum_phase_distill"]
    lam = ds.attrs["lam"]
    rng = np.random.default_rng(0)
    i = rng.integers(0, ds.sizes["alpha_lambda"], 40)
    j = rng.integers(0, ds.sizes["beta_distill"], 40)
    al, bd = ds.alpha_lambda.values[i], ds.beta_distill.values[j]
    alpha = al / lam
    # Distill: z ← β_D z + λ x ; x ← x − α z, on (z, x)
    matrix = np.stack([np.stack([bd, np.full_like(bd, lam)], -1), np.stack([-alpha * bd, 1 - al], -1)], -2)
    np.testing.assert_allclose(ds.radius.values[i, j], _max_abs_eig(matrix), rtol=1e-9, atol=1e-12)
    # Distill's convergence condition 0 < αλ < 2 + 2β_D, away from the boundary
    a, b = np.meshgrid(ds.alpha_lambda.values, ds.beta_distill.values, indexing="ij")
    margin = np.abs(a - (2 + 2 * b)) > 1e-6
    assert np.array_equal((ds.radius.values < 1)[margin], (a < 2 + 2 * b)[margin])
    # complex region: modulus √β_D (not Distill's printed 2√β)
    inside = (a > (1 - np.sqrt(b)) ** 2 + 1e-6) & (a < (1 + np.sqrt(b)) ** 2 - 1e-6)
    np.testing.assert_allclose(ds.radius.values[inside], np.sqrt(b[inside]), rtol=1e-9)


def test_distill_examples_regimes_and_iterates(data):
    ds = data["momentum_phase_distill"]
    codes = dict(zip(ds.example.values, ds.example_regime.values, strict=True))
    assert codes == {
        "monotonic decrease": 0,
        "critical damping (repeated root)": 1,
        "ripples": 2,
        "one step": 1,  # a double root at 0
        "monotonic oscillation": 0,
        "divergence": 3,
    }
    np.testing.assert_allclose(ds.iterates, ds.closed_form_iterates, rtol=1e-9, atol=1e-12)
    x = ds.iterates.sel(example="one step").values
    assert x[0] == -1 and np.abs(x[1:]).max() < 1e-12
    assert (np.diff(ds.iterates.sel(example="monotonic decrease").values) > 0).all()
    assert (np.diff(np.sign(ds.iterates.sel(example="monotonic oscillation").values[:12])) != 0).all()


# --------------------------------------------------------------------------------------------------------------
# Spectrum-wide map


def test_phase_spectrum_radius_is_the_worst_mode(data):
    ds = data["momentum_phase_spectrum"]
    smin, smax = ds.attrs["sigma2_min"], ds.attrs["sigma2_max"]
    # the max over the dense spectrum is attained at an endpoint
    np.testing.assert_allclose(ds.radius, ds.endpoint_radius, rtol=0, atol=1e-12)
    rng = np.random.default_rng(1)
    i, j = rng.integers(0, ds.sizes["learning_rate"], 30), rng.integers(0, ds.sizes["beta"], 30)
    eta, beta = ds.learning_rate.values[i], ds.beta.values[j]
    dense = np.geomspace(smin, smax, ds.attrs["num_sigma2"])
    matrix = np.empty((30, dense.size, 2, 2))
    matrix[..., 0, 0] = (1 - beta)[:, None]
    matrix[..., 0, 1] = 2 * beta[:, None] * dense
    matrix[..., 1, 0] = (-eta * (1 - beta))[:, None]
    matrix[..., 1, 1] = 1 - 2 * (eta * beta)[:, None] * dense
    np.testing.assert_allclose(ds.radius.values[i, j], _max_abs_eig(matrix).max(axis=1), rtol=1e-9)
    with jax.enable_x64(True):
        one = np.asarray(theory.spectral_radius(theory.momentum_matrix(eta, beta, smin)))
    assert (ds.radius.values[i, j] >= one - 1e-12).all()
    opt_rate = ds.attrs["optimum_rate"]
    assert opt_rate == pytest.approx(9 / 11, rel=1e-12)
    assert ds.radius.values.min() >= opt_rate - 1e-9
    # the course's best-rate interval at β = 0.1
    k = int(np.argmin(np.abs(ds.slice_beta.values - 0.1)))
    lo, hi = ds.best_lo.values, ds.best_hi.values
    b = ds.beta_theory.values
    assert np.interp(0.1, b, lo) == pytest.approx(0.2633, abs=2e-3) and np.interp(0.1, b, hi) == pytest.approx(
        3.797, rel=2e-3
    )
    assert np.isnan(lo[b > ds.attrs["optimum_beta"] * 1.01]).all()  # no common complex interval above β*
    # the simulated slices converge where the closed form says ρ < 1 and diverge where ρ > 1.01
    sim_eta = ds.sim_learning_rate.values
    with jax.enable_x64(True):
        modes = np.geomspace(smin, smax, ds.attrs["sim_modes"])
        rho = np.asarray(
            theory.spectral_radius(theory.momentum_matrix(sim_eta[:, None], ds.slice_beta.values[k], modes))
        ).max(axis=1)
    assert not ds.sim_diverged.values[rho < 0.999, k].any() and ds.sim_diverged.values[rho > 1.01, k].all()


# --------------------------------------------------------------------------------------------------------------
# Steps to tolerance against η


def _float64_settle_steps(eta, beta, spectrum, steps, tol):
    """Settle steps of the float64 NumPy reference (β = 1 is GD) and its error history [steps + 1, points]."""
    errors = reference.momentum_errors(eta, beta, spectrum, steps)
    return reference.settle_steps(errors, tol), errors


@pytest.mark.parametrize("method", ["gd", "momentum"])
def test_steps_vs_lr_settle_steps_match_a_float64_recursion(data, method):
    ds = data["steps_vs_lr"]
    spec, tol, beta = ds.attrs["spectrum"], ds.attrs["tol"], ds.attrs["beta"]
    if method == "gd":
        eta, settle, b = ds.learning_rate_gd.values, ds.gd_settle_step.values, 1.0
        pick = np.flatnonzero((eta > 0.05) & (eta < 0.2))  # the rest take ~10⁴ steps
    else:
        eta, settle, b = ds.learning_rate_momentum.values, ds.momentum_settle_step.values, beta
        pick = np.flatnonzero((eta > 0.1) & (eta < 3.8))
    pick = pick[:: max(1, pick.size // 12)]
    expected, errors = _float64_settle_steps(eta[pick], b, spec, 3000, tol)
    assert (expected > 0).all()
    for k in np.flatnonzero(settle[pick] != expected):  # float32 near-ties only
        disputed = max(settle[pick][k], expected[k]) - 1
        assert abs(errors[disputed, k] / tol - 1) < 1e-4, (eta[pick][k], settle[pick][k], expected[k])
    assert (settle[pick] != expected).sum() <= 1


def test_steps_vs_lr_seeds_numbers(data):
    ds = data["steps_vs_lr"]
    lo, hi = ds.attrs["interval"]
    assert (round(lo, 4), round(hi, 3)) == (0.2633, 3.797)
    i_star = int(np.argmin(np.abs(ds.learning_rate_gd.values - 1 / 5.05)))
    assert ds.gd_settle_step.values[i_star] == 346 and ds.gd_predicted.values[i_star] == 346
    e = ds.learning_rate_momentum.values
    inside = (e >= lo) & (e <= hi)
    assert (ds.momentum_predicted.values[inside] == 132).all()  # ⌈log 1e-3 / log √0.9⌉
    settle = ds.momentum_settle_step.values
    assert ds.attrs["fastest_steps"] == settle[inside & (settle > 0)].min()
    fastest = np.asarray(ds.attrs["fastest_lrs"])
    assert ((fastest >= lo) & (fastest <= hi)).all()


# --------------------------------------------------------------------------------------------------------------
# The course notebook


def test_course_data_is_the_notebooks_global_seed():
    state = np.random.get_state()  # noqa: NPY002 (the notebook used the legacy global API)
    try:
        np.random.seed(0)  # noqa: NPY002
        x_ref = np.random.normal([-3, 0], [3, 1], [500, 2])  # noqa: NPY002
    finally:
        np.random.set_state(state)  # noqa: NPY002
    x, y = course_momentum_data()
    assert np.array_equal(x, x_ref)
    assert np.array_equal(y, (x_ref[:, 1] > 0).astype(float))


def test_notebook_final_losses_match_the_published_values(data):
    ds = data["momentum_notebook"]
    final = ds.loss.values[:, -1]
    # published to 8 decimals (10 significant digits): equal after rounding, so also to 8 significant digits
    assert [f"{v:.8f}" for v in final] == [f"{v:.8f}" for v in PUBLISHED_LOSSES]
    assert [f"{v:.7e}" for v in final] == [f"{v:.7e}" for v in PUBLISHED_LOSSES]
    # the loss gap computed without cancellation agrees with the direct difference where that is resolvable
    gap = ds.loss.values - ds.attrs["loss_star"]
    big = gap > 1e-6
    np.testing.assert_allclose(ds.loss_gap.values[big], gap[big], rtol=1e-6)
    # the notebook's runs against an independent numpy loop
    x, y = course_momentum_data()
    for r, (lr, beta) in enumerate(zip(ds.learning_rate.values, ds.beta.values, strict=True)):
        w, z = np.zeros(2), np.zeros(2)
        for _ in range(100):
            z = (1 - beta) * z + beta * 2 * x.T @ (x @ w - y)
            w = w - lr * z
        np.testing.assert_allclose(ds.w.values[r, -1], w, rtol=1e-12)
