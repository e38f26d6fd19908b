"""Early-stopped GD as a regularizer (sim.regression.early_stopping): GD filter factors against ridge's, and the
early-stopping problem's ill-conditioned square system, against numpy oracles and derived bounds (float64)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from sim.core.validate import InputError
from sim.figures import regression as figures_ridge
from sim.regression import early_stopping, ridge


def test_gd_filter_factors():
    with jax.enable_x64(True):
        sigma, eta = np.array([0.1, 0.5, 1.0, 1.2, 1.3]), 1.0  # ησ² from 0.01 to 1.69 (oscillating above 1)
        for t in (0, 1, 2, 7, 50):
            np.testing.assert_allclose(
                early_stopping.gd_filter_factors(sigma, learning_rate=eta, steps=t),
                1 - (1 - eta * sigma**2) ** t,
                atol=1e-14,
            )
        # ησ² = 1e-20 below machine epsilon: 1 − (1 − u)ᵗ = tu − t(t − 1)u²/2 + …, so ≈ 1e-10 at t = 1e10
        phi = float(early_stopping.gd_filter_factors(1e-10, learning_rate=1.0, steps=1e10))
        np.testing.assert_allclose(phi, 1e-10 * (1 - 0.5e-10), rtol=1e-12)


def test_gd_factor_tracks_ridge_factor_at_equivalent_lambda():
    # with u = ησ² ≤ 1/2 and x = tu: e^{−x}(1 − xu) ≤ (1 − u)ᵗ ≤ e^{−x} (from −u − u² ≤ log(1 − u) ≤ −u), and
    # x/(1 + x) ≤ 1 − e^{−x} ≤ x/(1 + x) + 0.20364 (the sup, at eˣ = (1 + x)², x ≈ 2.513); so at λ = 1/(ηt) the GD
    # factor exceeds the ridge factor σ²/(σ² + λ) = x/(1 + x) by at most 0.20364 + u·max(xe^{−x}) < 0.2037 + 0.368u
    sigma = np.geomspace(1e-4, 0.1, 61)
    with jax.enable_x64(True):
        for t in (1e3, 1e5, 1e7):  # x = tσ² sweeps through the maximizer 2.513 for each t
            gd = np.asarray(early_stopping.gd_filter_factors(sigma, learning_rate=1.0, steps=t))
            rf = np.asarray(ridge.ridge_filter_factors(sigma, lam=1 / t))
            assert np.all(gd - rf <= 0.2037 + 0.368 * sigma**2)
            assert np.max(gd - rf) > 0.2  # and the sup is attained: the bound is tight
            assert np.all(gd >= rf - 1e-12)  # early stopping keeps at least as much of every mode


# --------------------------------------------------------------------------------------------------------------
# EECS 182 HW0 Q1: early stopping on an ill-conditioned square system

ALPHA, SIGMA_MIN, DIM = 2.0, 1e-6, 24


def _problem(noise_std=1e-4, seed=0):
    return early_stopping.ill_conditioned_problem(
        np.geomspace(ALPHA, SIGMA_MIN, DIM), noise_std=noise_std, key=jax.random.key(seed), source_power=1.0
    )


def _np(problem):
    return {k: np.asarray(getattr(problem, k)) for k in ("f", "y", "w_star", "noise", "u", "s", "v")}


def test_ill_conditioned_problem_structure():
    with jax.enable_x64(True):
        p = _np(_problem())
    np.testing.assert_allclose(np.linalg.svd(p["f"], compute_uv=False), np.geomspace(ALPHA, SIGMA_MIN, DIM), rtol=1e-9)
    for q in (p["u"], p["v"]):
        np.testing.assert_allclose(q.T @ q, np.eye(DIM), atol=1e-13)
    np.testing.assert_allclose(p["y"], p["f"] @ p["w_star"] + p["noise"], atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(p["w_star"]), 1.0, rtol=1e-14)
    assert 0.3e-4 * np.sqrt(DIM) < np.linalg.norm(p["noise"]) < 3e-4 * np.sqrt(DIM)


def test_inverse_explodes_while_early_stopped_gd_stays_bounded():
    steps = np.unique(np.round(np.geomspace(1, 1e16, 300)))
    lams = np.geomspace(1e-16, 10.0, 300)
    with jax.enable_x64(True):
        problem = _problem()
        res = jax.tree.map(np.asarray, early_stopping.early_stopping(problem, steps=steps, lams=lams))
    p = _np(problem)
    eta = 1 / ALPHA**2
    assert res.learning_rate == eta
    # the inverse's error is F⁻¹e = V diag(1/s) Uᵀe: at least the last mode's noise over s_min
    noise_modes = p["u"].T @ p["noise"]
    np.testing.assert_allclose(res.inverse_error, np.linalg.norm(noise_modes / p["s"]), rtol=1e-8)
    assert res.inverse_error >= abs(noise_modes[-1]) / SIGMA_MIN
    # the bound of gd_error_bound, written out again: ‖e^{−ηts²} ∘ Vᵀw*‖ + √(ηt)‖e‖
    c = p["v"].T @ p["w_star"]
    bound = np.linalg.norm(np.exp(-eta * steps[:, None] * p["s"] ** 2) * c, axis=1)
    bound += np.sqrt(eta * steps) * np.linalg.norm(p["noise"])
    np.testing.assert_allclose(res.gd_bound, bound, rtol=1e-12)
    assert np.all(res.gd_error <= bound * (1 + 1e-9))
    assert res.best_gd_error == res.gd_error.min() and res.best_step == steps[np.argmin(res.gd_error)]
    assert res.best_gd_error <= bound.min() < 0.1  # early stopping: bounded by a bound without 1/s_min in it
    assert res.inverse_error > 1e3 * res.best_gd_error
    # the same for ridge: ‖λ/(s² + λ) ∘ c‖ + ‖e‖/(2√λ)
    r_bound = np.linalg.norm(lams[:, None] / (p["s"] ** 2 + lams[:, None]) * c, axis=1)
    r_bound += np.linalg.norm(p["noise"]) / (2 * np.sqrt(lams))
    np.testing.assert_allclose(res.ridge_bound, r_bound, rtol=1e-12)
    assert np.all(res.ridge_error <= r_bound * (1 + 1e-9))
    assert res.best_ridge_error <= r_bound.min() < 0.1
    # ridge at its best λ against a direct solve, and the ridge ≈ early-stopping correspondence λ ≈ 1/(ηt)
    with jax.enable_x64(True):
        w = np.asarray(ridge.ridge_primal(p["f"], p["y"], lam=float(res.best_lam)))
    np.testing.assert_allclose(np.linalg.norm(w - p["w_star"]), res.best_ridge_error, rtol=1e-6)
    assert 0.1 < res.best_lam * eta * res.best_step < 10
    assert 0.5 < res.best_ridge_error / res.best_gd_error < 2
    # at t = 0 the error is ‖w*‖; long after 1/(η s_min²) steps GD has converged to the inverse
    with jax.enable_x64(True):
        ends = np.asarray(early_stopping.gd_error(problem, [0, 10**20]))
    np.testing.assert_allclose(ends, [1.0, res.inverse_error], rtol=1e-7)


@pytest.mark.parametrize("lr_scale", [1.0, 1.9])
def test_gd_closed_form_matches_simulated_loops(lr_scale):
    eta = lr_scale / ALPHA**2  # 1.9/α²: the top mode oscillates (1 − ηα² < 0) but GD is still stable
    num = 200
    with jax.enable_x64(True):
        problem = _problem(noise_std=1e-3)
        closed = np.asarray(early_stopping.gd_error(problem, np.arange(num + 1), learning_rate=eta))
        res = early_stopping.early_stopping(
            problem, steps=np.arange(num + 1), lams=[1.0], sim_steps=num, learning_rate=eta
        )
        sim_err, sim_norm = (np.asarray(v) for v in early_stopping.gd_simulate(problem, num, learning_rate=eta))
    p = _np(problem)
    w, ref_err, ref_norm = np.zeros(DIM), [1.0], [0.0]
    for _ in range(num):
        w = w - eta * p["f"].T @ (p["f"] @ w - p["y"])
        ref_err.append(np.linalg.norm(w - p["w_star"]))
        ref_norm.append(np.linalg.norm(w))
    np.testing.assert_allclose(closed, ref_err, rtol=1e-9)
    np.testing.assert_allclose(sim_err, ref_err, rtol=1e-9)
    np.testing.assert_allclose(res.sim_error, ref_err, rtol=1e-9)
    np.testing.assert_allclose(sim_norm, ref_norm, rtol=1e-9, atol=1e-15)
    # the problem's claim (EECS 182 HW0 Q1), with α = σ_max: ‖w_t‖ ≤ ‖w_{t−1}‖ + ηα‖y‖
    # (‖I − ηFᵀF‖ ≤ 1 for η ≤ 2/α², ‖Fᵀy‖ ≤ α‖y‖)
    assert np.all(np.diff(sim_norm) <= eta * ALPHA * np.linalg.norm(p["y"]) * (1 + 1e-12))
    if lr_scale == 1.9:
        assert np.all(np.isnan(np.asarray(res.gd_bound)))  # the bound needs η ≤ 1/α²


def _bad_cases():
    def p():
        with jax.enable_x64(True):  # the float64 problem the tests above compiled already
            return _problem()

    return [
        ("gd-factors-lr", lambda: early_stopping.gd_filter_factors([1.0], learning_rate=0.0, steps=3), "learning_rate"),
        ("gd-factors-fraction", lambda: early_stopping.gd_filter_factors([1.2], learning_rate=1, steps=2.5), "steps"),
        (
            "singular-values-zero",
            lambda: early_stopping.ill_conditioned_problem([1.0, 0.0], noise_std=0.1, key=jax.random.key(0)),
            "singular_values",
        ),
        (
            "noise-negative",
            lambda: early_stopping.ill_conditioned_problem([1.0], noise_std=-1.0, key=jax.random.key(0)),
            "noise_std",
        ),
        ("lr-unstable", lambda: early_stopping.gd_error(p(), [1], learning_rate=2 / ALPHA**2), "learning_rate"),
        ("bound-lr", lambda: early_stopping.gd_error_bound(p(), [1], learning_rate=1.5 / ALPHA**2), "learning_rate"),
        ("steps-negative", lambda: early_stopping.gd_error(p(), [-1]), "steps"),
        ("steps-fraction", lambda: early_stopping.early_stopping(p(), steps=[1.5], lams=[1.0]), "steps"),
        ("lams-zero", lambda: early_stopping.early_stopping(p(), steps=[1], lams=[0.0, 1.0]), "lams"),
        ("sim-steps", lambda: early_stopping.gd_simulate(p(), -3), "num_steps"),
    ]


@pytest.mark.parametrize(("call", "param"), [c[1:] for c in _bad_cases()], ids=[c[0] for c in _bad_cases()])
def test_bad_input_names_the_parameter(call, param):
    with pytest.raises(InputError) as err:
        call()
    assert err.value.param == param
    assert str(err.value).startswith(f"{param}: ")


def test_early_stopping_figure():
    cfg = figures_ridge.EARLY_STOPPING_QUICK
    ds = figures_ridge.compute_early_stopping(**cfg, progress=False)
    assert all(ds.attrs[k] == v for k, v in cfg.items())
    on_both = ds.step.values[ds.step.values <= cfg["sim_steps"]].astype(int)
    np.testing.assert_allclose(ds.sim_error.values[on_both], ds.gd_error.sel(step=on_both), rtol=1e-9)
    assert ds.attrs["best_gd_error"] == ds.gd_error.min() and ds.attrs["best_ridge_error"] == ds.ridge_error.min()
    assert ds.attrs["inverse_error"] > 100 * ds.attrs["best_gd_error"]
    fig = figures_ridge.plot_early_stopping(ds)
    assert len(fig.axes) >= 2
