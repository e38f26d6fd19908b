"""Closed forms: spectral radius, the transient bound, and the seeds' worked examples."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from sim import theory


def test_spectral_radius_matches_eigenvalues():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(500, 2, 2))
    with jax.enable_x64(True):
        ours = theory.spectral_radius(jnp.asarray(m))
    np.testing.assert_allclose(ours, np.abs(np.linalg.eigvals(m)).max(axis=-1), rtol=1e-10)


def test_power_bound_bounds_every_power():
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        beta = rng.uniform(0.02, 1, 300)
        s = rng.uniform(0.05, 5, 300)
        lo, hi = theory.momentum_repeated_root_lrs(beta, s)
        # half the points right at the repeated roots, where ‖Rˢ‖ grows like s ρ^s before decaying
        eta = np.where(np.arange(300) % 2 == 0, np.asarray(lo), rng.uniform(0, 1, 300) * np.asarray(hi))
        r = np.asarray(theory.momentum_matrix(eta, beta, s))
        g = np.asarray(theory.power_bound(jnp.asarray(r)))
        rho = np.asarray(theory.spectral_radius(jnp.asarray(r)))
    stable = rho < 0.999
    p = r.copy()
    worst = np.zeros(300)
    for _ in range(2000):
        worst = np.maximum(worst, np.linalg.norm(p, ord=2, axis=(-2, -1)))
        p = p @ r
    assert np.all(worst[stable] <= g[stable] * (1 + 1e-9))
    assert np.all(np.isinf(g[~(rho < 1)]))


def test_gd_worked_example():
    with jax.enable_x64(True):
        rate = theory.gd_rate(1 / 5.05, jnp.array([5.0, 0.05]))
        assert float(theory.steps_to_tolerance(rate, 1e-3)) == 346
        assert float(theory.gd_optimal_rate(jnp.array([5.0, 0.05]))) == np.float64((100 - 1) / (100 + 1))


def test_momentum_worked_example_interval():
    # Sp23 HW2 Q2(g): beta = 0.1, sigma^2 in {5, 0.05}: rate sqrt(0.9) for every eta in [0.2633, 3.797]
    with jax.enable_x64(True):
        # complex roots for both modes: above the small mode's lower root, below the large mode's upper root
        lo, _ = theory.momentum_repeated_root_lrs(0.1, 0.05)
        _, hi = theory.momentum_repeated_root_lrs(0.1, 5.0)
        assert round(float(lo), 4) == 0.2633 and round(float(hi), 3) == 3.797
        eta = jnp.linspace(lo, hi, 101)
        rho = theory.spectral_radius(theory.momentum_matrix(eta[:, None], 0.1, jnp.array([5.0, 0.05]))).max(-1)
        np.testing.assert_allclose(rho, math.sqrt(0.9), rtol=1e-7)  # sqrt of a tiny negative discriminant at ends


def test_newer_course_example():
    # singular values 2 and 1, beta = 3/4: GD eta = 1/5 (rate 0.6) vs momentum eta = 1/3 (rate 0.5)
    with jax.enable_x64(True):
        s = jnp.array([4.0, 1.0])
        assert float(theory.gd_optimal_lr(s)) == 0.2 and abs(float(theory.gd_optimal_rate(s)) - 0.6) < 1e-15
        lo = max(float(theory.momentum_repeated_root_lrs(0.75, x)[0]) for x in (4.0, 1.0))
        hi = min(float(theory.momentum_repeated_root_lrs(0.75, x)[1]) for x in (4.0, 1.0))
        assert abs(lo - 1 / 6) < 1e-15 and abs(hi - 3 / 8) < 1e-15
        rho = theory.spectral_radius(theory.momentum_matrix(1 / 3, 0.75, s)).max()
        assert abs(float(rho) - 0.5) < 1e-12


def test_stability_limits():
    with jax.enable_x64(True):
        beta, s = 0.3, 2.0
        lim = float(theory.momentum_stable_lr(beta, s))
        r = lambda eta: float(theory.spectral_radius(theory.momentum_matrix(eta, beta, s)))  # noqa: E731
        assert r(lim * (1 - 1e-6)) < 1 < r(lim * (1 + 1e-6))
        assert (
            float(theory.gd_rate(1 / s * (1 - 1e-9), jnp.array([s])))
            < 1
            < float(theory.gd_rate(1 / s * (1 + 1e-9), jnp.array([s])))
        )
