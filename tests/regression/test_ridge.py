"""Ridge in every form (EECS 182 Sp25 HW0 Q3–Q4, HW1 Q2–Q3) and early stopping (EECS 182 HW0 Q1), against numpy oracles.

Every expected value is computed here, in float64 numpy, from the defining formula or optimality condition (never
from ``sim.regression.ridge`` itself), or is a bound derived in the docstrings. Agreement tolerances scale with the
condition number κ_λ = (σ_max² + λ)/λ of the worse of the two regularized Gram matrices XᵀX + λI, XXᵀ + λI (for a
non-square X one of them has eigenvalue λ): relative error ≤ 100 · ε₆₄ · κ_λ.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sim.core.validate import InputError
from sim.figures import regression as figures_ridge
from sim.regression import designs as datasets
from sim.regression import ridge

EPS64 = np.finfo(np.float64).eps
FORMS = (
    ridge.ridge_primal,
    ridge.ridge_kernel,
    ridge.ridge_svd,
    ridge.ridge_fake_data,
    ridge.ridge_fake_features,
    ridge.ridge_map,
    lambda x, y, *, lam: ridge.posterior(x, y, lam=lam)[0],
    lambda x, y, *, lam: ridge.tikhonov(x, y, w2=np.sqrt(lam) * np.eye(x.shape[1])),
    lambda x, y, *, lam: ridge.tikhonov_stacked(x, y, w2=np.sqrt(lam) * np.eye(x.shape[1])),
)
FORM_IDS = ("primal", "kernel", "svd", "fake_data", "fake_features", "map", "posterior", "tikhonov", "tik_stacked")


def _design(rng, n, d, singular_values=None):
    """X = U diag(s) Vᵀ with orthonormal U, V from numpy's QR; s standard-normal-like unless given."""
    r = min(n, d)
    s = rng.uniform(0.5, 2.0, r) if singular_values is None else np.asarray(singular_values, dtype=np.float64)
    u = np.linalg.qr(rng.normal(size=(n, r)))[0]
    v = np.linalg.qr(rng.normal(size=(d, r)))[0]
    return (u * s) @ v.T, rng.normal(size=n), s


def _ridge_ref(x, y, lam):
    return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)


def _rel(a, b):
    return np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b)


# two shapes for the whole file: every jitted form compiles once per shape and dtype
TALL, WIDE = (30, 6), (6, 30)
CASES = {
    "tall": (*TALL, None, 0.3),
    "wide": (*WIDE, None, 0.3),
    "ill_tall": (*TALL, np.geomspace(1.0, 1e-6, 6), 1e-8),
    "ill_wide": (*WIDE, np.geomspace(1.0, 1e-6, 6), 1e-8),
}


# --------------------------------------------------------------------------------------------------------------
# The forms agree


@pytest.mark.parametrize("case", CASES)
def test_ridge_forms_agree(case):
    n, d, s, lam = CASES[case]
    x, y, s = _design(np.random.default_rng(0), n, d, s)
    ref = _ridge_ref(x, y, lam)
    kappa = (s.max() ** 2 + lam) / lam
    tol = 100 * EPS64 * kappa
    # the reference itself solves the optimality condition Xᵀ(Xw − y) + λw = 0 to that accuracy
    grad = x.T @ (x @ ref - y) + lam * ref
    assert np.linalg.norm(grad) <= tol * (s.max() ** 2 + lam) * np.linalg.norm(ref)
    with jax.enable_x64(True):
        for form, name in zip(FORMS, FORM_IDS, strict=True):
            w = form(x, y, lam=lam)
            assert w.dtype == jnp.float64 and w.shape == (d,), name
            assert _rel(w, ref) <= tol, (name, _rel(w, ref), tol)


def test_forms_take_several_targets():
    rng = np.random.default_rng(1)
    x, _, _ = _design(rng, *TALL)
    ys = rng.normal(size=(TALL[0], 3))
    with jax.enable_x64(True):
        for form in (ridge.ridge_primal, ridge.ridge_kernel, ridge.ridge_svd, ridge.ridge_fake_data):
            w = np.asarray(form(x, ys, lam=0.5))
            assert w.shape == (TALL[1], 3)
            for k in range(3):
                np.testing.assert_allclose(w[:, k], _ridge_ref(x, ys[:, k], 0.5), rtol=1e-12, atol=1e-14)


def test_float32_in_float32_out():
    x, y, s = _design(np.random.default_rng(2), *TALL)
    lam = 0.1
    ref = _ridge_ref(x, y, lam)
    tol = 100 * np.finfo(np.float32).eps * (s.max() ** 2 + lam) / lam
    for form, name in zip(FORMS, FORM_IDS, strict=True):
        w = form(x.astype(np.float32), y.astype(np.float32), lam=lam)
        assert w.dtype == jnp.float32, name
        assert _rel(w, ref) <= tol, (name, _rel(w, ref))


def test_tikhonov_general_is_stationary():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(9, 4)), rng.normal(size=9)
    w1, w2, c = rng.normal(size=(11, 9)), rng.normal(size=(4, 4)), rng.normal(size=4)
    with jax.enable_x64(True):
        x1 = np.asarray(ridge.tikhonov(a, b, w1=w1, w2=w2, c=c))
        x2 = np.asarray(ridge.tikhonov_stacked(a, b, w1=w1, w2=w2, c=c))
    # the gradient of ‖W₁(Ax − b)‖² + ‖W₂(x − c)‖², halved, vanishes at the minimizer
    for x in (x1, x2):
        grad = a.T @ w1.T @ w1 @ (a @ x - b) + w2.T @ w2 @ (x - c)
        assert np.linalg.norm(grad) <= 1e-10 * np.linalg.norm(a.T @ w1.T @ w1 @ b)
    # and it is a minimum: any perturbation increases the objective
    obj = lambda x: np.sum((w1 @ (a @ x - b)) ** 2) + np.sum((w2 @ (x - c)) ** 2)  # noqa: E731
    assert all(obj(x1 + 1e-3 * rng.normal(size=4)) > obj(x1) for _ in range(20))
    # W₁ = I, W₂ = √λ I, c = 0 is ridge (with the defaults for W₁ and c)
    with jax.enable_x64(True):
        np.testing.assert_allclose(ridge.tikhonov(a, b, w2=np.sqrt(0.7) * np.eye(4)), _ridge_ref(a, b, 0.7), rtol=1e-12)


# --------------------------------------------------------------------------------------------------------------
# Limits


def test_small_lambda_tall_is_least_squares():
    x, y, s = _design(np.random.default_rng(4), *TALL)
    ls_ref = np.linalg.lstsq(x, y, rcond=None)[0]
    with jax.enable_x64(True):
        np.testing.assert_allclose(ridge.least_squares(x, y), ls_ref, rtol=1e-12)
        np.testing.assert_allclose(ridge.lstsq_svd(x, y), ls_ref, rtol=1e-12)
        diffs = np.array([np.linalg.norm(ridge.ridge_primal(x, y, lam=lam) - ls_ref) for lam in (1e-3, 1e-4, 1e-5)])
    # ‖ŵ_λ − ŵ₀‖ ≤ (λ/σ_min²)‖ŵ₀‖ (per mode λ/(σ² + λ) ≤ λ/σ_min²), and the approach is linear in λ
    lams = np.array([1e-3, 1e-4, 1e-5])
    assert np.all(diffs <= lams / s.min() ** 2 * np.linalg.norm(ls_ref))
    np.testing.assert_allclose(diffs[1:] / diffs[:-1], 0.1, rtol=2e-2)


def test_small_lambda_wide_is_min_norm():
    x, y, s = _design(np.random.default_rng(5), *WIDE)
    mn_ref = np.linalg.pinv(x) @ y
    with jax.enable_x64(True):
        mn = np.asarray(ridge.min_norm(x, y))
        np.testing.assert_allclose(ridge.lstsq_svd(x, y), mn_ref, rtol=1e-12)
        diffs = np.array([np.linalg.norm(ridge.ridge_kernel(x, y, lam=lam) - mn_ref) for lam in (1e-3, 1e-4, 1e-5)])
    np.testing.assert_allclose(x @ mn, y, rtol=1e-12)  # interpolates
    null = np.linalg.svd(x)[2][WIDE[0] :]  # an orthonormal basis of the null space of X
    assert np.linalg.norm(null @ mn) <= 1e-12 * np.linalg.norm(mn)  # no component there: the minimum norm
    np.testing.assert_allclose(mn, mn_ref, rtol=1e-12)
    lams = np.array([1e-3, 1e-4, 1e-5])
    assert np.all(diffs <= lams / s.min() ** 2 * np.linalg.norm(mn_ref))
    np.testing.assert_allclose(diffs[1:] / diffs[:-1], 0.1, rtol=2e-2)


def test_small_lambda_rank_deficient_is_pseudo_inverse():
    s = np.array([2.0, 1.0, 0.5, 0.0, 0.0, 0.0])
    x, y, _ = _design(np.random.default_rng(6), *TALL, s)
    pinv_ref = np.linalg.pinv(x, rcond=1e-10) @ y
    with jax.enable_x64(True):
        np.testing.assert_allclose(ridge.lstsq_svd(x, y), pinv_ref, rtol=1e-10)
        lam = 1e-6
        w = np.asarray(ridge.ridge_svd(x, y, lam=lam))
    # the zero singular values of X come out of any SVD as rounding noise σ_ε ≲ 100 ε σ_max, which ridge passes
    # with gain σ_ε/λ: on top of the (λ/σ_r²)‖ŵ₀‖ of the exact limit (σ_r = 0.5, the smallest nonzero one)
    floor = 100 * EPS64 * s.max() / lam * np.linalg.norm(y)
    assert np.linalg.norm(w - pinv_ref) <= lam / 0.5**2 * np.linalg.norm(pinv_ref) + floor


def test_large_lambda_shrinks_to_zero_like_one_over_lambda():
    x, y, s = _design(np.random.default_rng(7), *TALL)
    xty = x.T @ y
    with jax.enable_x64(True):
        for lam in (1e2, 1e3, 1e4, 1e6):
            w = np.asarray(ridge.ridge_primal(x, y, lam=lam))
            asym = np.asarray(ridge.ridge_large_lam(x, y, lam=lam))
            np.testing.assert_allclose(asym, xty / lam, rtol=1e-14)
            assert np.linalg.norm(w) <= np.linalg.norm(xty) / lam
            # per mode σ/(σ² + λ) − σ/λ = −σ³/(λ(σ² + λ)): ‖ŵ_λ − Xᵀy/λ‖ ≤ σ_max²‖Xᵀy‖/λ²
            assert np.linalg.norm(w - xty / lam) <= s.max() ** 2 * np.linalg.norm(xty) / lam**2
            assert 1 - lam * np.linalg.norm(w) / np.linalg.norm(xty) <= s.max() ** 2 / lam


# --------------------------------------------------------------------------------------------------------------
# Filter factors


def test_filter_factors_are_the_svd_of_the_ridge_map():
    x, y, s = _design(np.random.default_rng(8), *TALL, [3.0, 1.0, 0.5, 0.2, 0.1, 0.05])
    with jax.enable_x64(True):
        for lam in (1e-3, 0.04, 1.0, 30.0):
            rmap = np.linalg.solve(x.T @ x + lam * np.eye(6), x.T)  # (XᵀX + λI)⁻¹Xᵀ, shape [6, 30]
            factors = np.asarray(ridge.ridge_filter_factors(s, lam=lam))
            np.testing.assert_allclose(factors, s**2 / (s**2 + lam), rtol=1e-15)
            # the ridge map's singular values are σ_i/(σ_i² + λ) = filter factor / σ_i (not sorted like σ)
            np.testing.assert_allclose(np.sort(np.linalg.svd(rmap, compute_uv=False)), np.sort(factors / s), rtol=1e-10)
            sig, recovered = ridge.recover_filter_factors(x, y, ridge.ridge_primal(x, y, lam=lam))
            np.testing.assert_allclose(sig, s, rtol=1e-12)
            np.testing.assert_allclose(recovered, factors, rtol=1e-9)
        assert float(ridge.ridge_filter_factors(0.0, lam=0.0)) == 0.0


# --------------------------------------------------------------------------------------------------------------
# MAP / posterior mean


def test_posterior_closed_form():
    x, y, _ = _design(np.random.default_rng(9), *WIDE)
    lam = 0.5
    with jax.enable_x64(True):
        mean, cov = ridge.posterior(x, y, lam=lam)
    # Bayes' rule in precision form: Cov = (I + XᵀX/λ)⁻¹, mean = Cov Xᵀy/λ
    cov_ref = np.linalg.inv(np.eye(WIDE[1]) + x.T @ x / lam)
    np.testing.assert_allclose(cov, cov_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(mean, cov_ref @ x.T @ y / lam, rtol=1e-12)


def test_monte_carlo_posterior_mean_within_its_confidence_interval():
    x, y, _ = _design(np.random.default_rng(10), 4, 3)
    lam, runs = 0.5, 200
    with jax.enable_x64(True):
        draws = [ridge.posterior_mean_mc(x, y, lam=lam, key=jax.random.key(k), num_samples=10_000) for k in range(runs)]
    mean, stderr = (np.stack([np.asarray(d[i]) for d in draws]) for i in (0, 1))  # [runs, 3] each
    exact = _ridge_ref(x, y, lam)
    # given its sampled Y's each estimate is exactly Gaussian around the truth with the returned standard error
    # (see the docstring), and the runs are independent, so the pooled mean has standard error √(Σ se²)/runs
    pooled, pooled_se = mean.mean(axis=0), np.sqrt((stderr**2).sum(axis=0)) / runs
    z = (pooled - exact) / pooled_se
    assert np.all(np.abs(z) < 5), z  # probability < 2e-6 for 3 coordinates
    assert np.all(pooled_se < 0.002 * np.linalg.norm(exact))  # the interval is tight enough to mean something
    # the standard errors are calibrated: per coordinate Σ_k z_k² ~ χ²(200), and by Laurent & Massart (2000)
    # P(χ²_k ≥ k + 2√(kt) + 2t) ≤ e^{−t}, P(χ²_k ≤ k − 2√(kt)) ≤ e^{−t}; t = 14 gives [94, 334] at e^{−14} ≈ 8e-7
    chi2 = (((mean - exact) / stderr) ** 2).sum(axis=0)
    t = 14
    assert np.all(chi2 > runs - 2 * np.sqrt(runs * t)) and np.all(chi2 < runs + 2 * np.sqrt(runs * t) + 2 * t), chi2
    # the test has power: the posterior mean for the wrong noise level lies far outside the interval
    wrong = _ridge_ref(x, y, 2 * lam)
    assert np.max(np.abs((pooled - wrong) / pooled_se)) > 20


# --------------------------------------------------------------------------------------------------------------
# Bad input


def _bad_cases():
    x, y = np.ones((4, 3)), np.ones(4)
    nan_x = x.copy()
    nan_x[0, 0] = np.nan
    cases = []
    for form, name in zip(FORMS[:6], FORM_IDS[:6], strict=True):
        cases += [
            (f"{name}-negative-lam", lambda f=form: f(x, y, lam=-1.0), "lam"),
            (f"{name}-nan-lam", lambda f=form: f(x, y, lam=float("nan")), "lam"),
            (f"{name}-zero-lam", lambda f=form: f(x, y, lam=0.0), "lam"),
            (f"{name}-1d-x", lambda f=form: f(np.ones(4), y, lam=1.0), "x"),
            (f"{name}-rows", lambda f=form: f(x, np.ones(5), lam=1.0), "y"),
        ]

    cases += [
        ("lam-vector", lambda: ridge.ridge_primal(x, y, lam=[1.0, 2.0]), "lam"),
        ("nan-x", lambda: ridge.ridge_primal(nan_x, y, lam=1.0), "x"),
        ("3d-y", lambda: ridge.ridge_kernel(x, np.ones((4, 1, 1)), lam=1.0), "y"),
        ("posterior-nan-lam", lambda: ridge.posterior(x, y, lam=float("nan")), "lam"),
        (
            "mc-samples",
            lambda: ridge.posterior_mean_mc(x, y, lam=1.0, key=jax.random.key(0), num_samples=5),
            "num_samples",
        ),
        ("mc-2d-y", lambda: ridge.posterior_mean_mc(x, np.ones((4, 2)), lam=1.0, key=jax.random.key(0)), "y"),
        ("tikhonov-w2", lambda: ridge.tikhonov(x, y, w2=np.eye(4)), "w2"),
        ("tikhonov-w1", lambda: ridge.tikhonov(x, y, w2=np.eye(3), w1=np.eye(3)), "w1"),
        ("tikhonov-c", lambda: ridge.tikhonov_stacked(x, y, w2=np.eye(3), c=np.ones(4)), "c"),
        ("tikhonov-b", lambda: ridge.tikhonov(x, np.ones(3), w2=np.eye(3)), "b"),
        ("tikhonov-a", lambda: ridge.tikhonov(np.ones(4), y, w2=np.eye(3)), "a"),
        ("least-squares-wide", lambda: ridge.least_squares(x.T, np.ones(3)), "x"),
        ("min-norm-tall", lambda: ridge.min_norm(x, y), "x"),
        ("rcond", lambda: ridge.lstsq_svd(x, y, rcond=-1.0), "rcond"),
        ("large-lam-negative", lambda: ridge.ridge_large_lam(x, y, lam=-2.0), "lam"),
        ("factors-negative-lam", lambda: ridge.ridge_filter_factors([1.0], lam=-1.0), "lam"),
        ("factors-nan-singular-values", lambda: ridge.ridge_filter_factors([float("nan")], lam=1.0), "singular_values"),
        ("recover-w", lambda: ridge.recover_filter_factors(x, y, np.ones(4)), "w"),
        (
            "design-spectrum",
            lambda: datasets.random_design([1.0], shape=(4, 3), key=jax.random.key(0)),
            "singular_values",
        ),
    ]
    return cases


@pytest.mark.parametrize(("call", "param"), [c[1:] for c in _bad_cases()], ids=[c[0] for c in _bad_cases()])
def test_bad_input_names_the_parameter(call, param):
    with pytest.raises(InputError) as err:
        call()
    assert err.value.param == param
    assert str(err.value).startswith(f"{param}: ")


# --------------------------------------------------------------------------------------------------------------
# Figures (quick size)


def test_ridge_shrinkage_figure():
    ds = figures_ridge.compute_ridge_shrinkage(**figures_ridge.RIDGE_SHRINKAGE_QUICK, progress=False)
    s, lam, lam_m = ds.sigma.values, ds.lam.values, ds.lam_marker.values
    np.testing.assert_allclose(ds.factor, s[:, None] ** 2 / (s[:, None] ** 2 + lam), rtol=1e-14)
    np.testing.assert_allclose(ds.recovered, s[:, None] ** 2 / (s[:, None] ** 2 + lam_m), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ds.sigma_numerical, s, rtol=1e-12)
    pl = ds.panel_lam.values[:, None]
    np.testing.assert_allclose(ds.gain_recovered, s / (s**2 + pl), rtol=1e-9)
    cfg = figures_ridge.RIDGE_SHRINKAGE_QUICK
    assert ds.attrs["singular_values"] == sorted(cfg["singular_values"], reverse=True)
    assert all(ds.attrs[k] == v for k, v in cfg.items() if k != "singular_values")
    fig = figures_ridge.plot_ridge_shrinkage(ds)
    assert len(fig.axes) == 2
