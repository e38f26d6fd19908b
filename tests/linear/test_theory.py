"""Closed forms: spectral radius, the transient bound, and the course's worked examples."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sim.linear import dynamics, theory


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


# --------------------------------------------------------------------------------------------------------------
# Momentum closed forms: eigenvalues, regimes, thresholds, rates, best interval, transient growth


def _random_points(n, seed, beta_lo=0.02):
    rng = np.random.default_rng(seed)
    beta = rng.uniform(beta_lo, 1, n)
    s = rng.uniform(0.05, 5, n)
    eta = rng.uniform(0, 1.2, n) * np.asarray(theory.momentum_stable_lr(beta, s))
    return eta, beta, s


def test_momentum_eigenvalues_match_numpy():
    eta, beta, s = _random_points(2000, 10)
    with jax.enable_x64(True):
        ours = np.asarray(theory.momentum_eigenvalues(eta, beta, s))
        r = np.asarray(theory.momentum_matrix(eta, beta, s))
        disc = np.asarray(theory.momentum_discriminant(eta, beta, s))
        tr, det = np.asarray(theory.momentum_trace(eta, beta, s)), np.asarray(theory.momentum_determinant(beta))
    ref = np.sort_complex(np.linalg.eigvals(r))
    # near a repeated root the eigenvalues move like √D, so a perturbation ε of the data moves them by ~√ε: compare
    # with a tolerance of 1e-12 plus that square-root sensitivity
    tol = 1e-12 + 1e-7 * np.sqrt(1e-16 * (tr**2 + 4 * np.abs(det)) / np.maximum(np.abs(disc), 1e-300))
    np.testing.assert_array_less(np.abs(np.sort_complex(ours) - ref).max(-1), tol + 1e-12)
    np.testing.assert_allclose(ours.prod(-1).real, det, rtol=1e-12, atol=1e-14)  # Vieta
    np.testing.assert_allclose(ours.sum(-1).real, tr, rtol=1e-12, atol=1e-13)
    complex_ = disc < 0
    assert np.all(ours[complex_, 0].imag > 0) and np.all(ours[~complex_].imag == 0)
    np.testing.assert_allclose(np.abs(ours[complex_]), np.sqrt(1 - beta[complex_, None]) * np.ones(2), rtol=1e-12)
    np.testing.assert_allclose(disc, np.trace(r, axis1=-2, axis2=-1) ** 2 - 4 * np.linalg.det(r), atol=1e-12)


def test_momentum_regimes_inside_each_region():
    rng = np.random.default_rng(11)
    beta, s = rng.uniform(0.05, 0.95, 200), rng.uniform(0.05, 5, 200)
    for x64 in (True, False):
        with jax.enable_x64(x64):
            lo, hi, stable = (np.asarray(t) for t in theory.momentum_thresholds(beta, s))
            u = rng.uniform(0.05, 0.95, 200)
            cases = {
                0: u * lo,  # 0 < eta < eta_1
                1: lo,
                2: lo + u * (hi - lo),
                0.5: hi + u * (stable - hi),  # real negative roots: "real distinct" too
                1.5: hi,
                3: stable * (1 + u),
                3.5: -u * lo,
            }
            for want, eta in cases.items():
                eta = eta.astype(np.float64 if x64 else np.float32)
                got = np.asarray(theory.momentum_regime(eta, beta, s))
                assert np.all(got == int(want)), (x64, want, np.unique(got))
                rho = np.asarray(theory.momentum_rate(eta, beta, s[:, None]))
                assert np.all(rho < 1) if want < 3 else np.all(rho >= 1)
    assert theory.REGIMES == {0: "real distinct", 1: "repeated", 2: "complex", 3: "unstable"}


def test_thresholds_against_brute_force_eigenvalues():
    beta, s = 0.3, 2.0
    with jax.enable_x64(True):
        lo, hi, stable = (float(t) for t in theory.momentum_thresholds(beta, s))
        eta = np.linspace(-0.1, 1.3 * stable, 20001)
        ev = np.linalg.eigvals(np.asarray(theory.momentum_matrix(eta, beta, s)))
        ev_lo = np.linalg.eigvals(np.asarray(theory.momentum_matrix(lo, beta, s)))
        ev_hi = np.linalg.eigvals(np.asarray(theory.momentum_matrix(hi, beta, s)))
    is_complex = np.abs(ev.imag).max(-1) > 0
    stable_ = np.abs(ev).max(-1) < 1
    # the first/last grid point of each region brackets the closed-form threshold within one grid step
    step = eta[1] - eta[0]
    assert abs(eta[is_complex].min() - lo) <= step and abs(eta[is_complex].max() - hi) <= step
    assert abs(eta[stable_].min()) <= step and abs(eta[stable_].max() - stable) <= step
    # and the repeated roots are ±sqrt(1 - beta)
    np.testing.assert_allclose(ev_lo.real, [math.sqrt(0.7)] * 2, rtol=1e-7)  # double root: ~√eps accuracy
    np.testing.assert_allclose(ev_hi.real, [-math.sqrt(0.7)] * 2, rtol=1e-7)


def test_momentum_rate_is_max_spectral_radius():
    eta, beta, _ = _random_points(300, 12)
    rng = np.random.default_rng(12)
    spec = rng.uniform(0.05, 5, (300, 4))
    with jax.enable_x64(True):
        ours = theory.momentum_rate(eta, beta, spec)
        ref = theory.spectral_radius(theory.momentum_matrix(eta[:, None], beta[:, None], spec)).max(-1)
    np.testing.assert_allclose(ours, ref, rtol=1e-13)


def _brute_best(beta, spec, n=200001):
    stable = float(np.min(theory.momentum_stable_lr(beta, np.asarray(spec))))
    eta = np.linspace(0, stable, n)[1:]
    rate = np.asarray(theory.momentum_rate(eta, beta, np.asarray(spec)))
    return eta, rate


def test_best_interval_seed_examples():
    with jax.enable_x64(True):
        lo, hi, rate = (float(v) for v in theory.momentum_best_interval(0.1, jnp.array([5.0, 0.05])))
        assert round(lo, 4) == 0.2633 and round(hi, 3) == 3.797 and rate == pytest.approx(math.sqrt(0.9), rel=1e-15)
        lo, hi, rate = (float(v) for v in theory.momentum_best_interval(0.75, jnp.array([4.0, 1.0])))
        assert lo == pytest.approx(1 / 6, rel=1e-15) and hi == pytest.approx(3 / 8, rel=1e-15)
        assert rate == pytest.approx(0.5, rel=1e-15)
        assert float(theory.momentum_rate(1 / 3, 0.75, jnp.array([4.0, 1.0]))) == pytest.approx(0.5, rel=1e-12)
        # beta = 1 is GD: eta* = 1/(smax + smin), rate (k^2 - 1)/(k^2 + 1)
        lo, hi, rate = (float(v) for v in theory.momentum_best_interval(1.0, jnp.array([5.0, 0.05])))
        assert lo == hi == pytest.approx(1 / 5.05, rel=1e-15) and rate == pytest.approx(99 / 101, rel=1e-14)


@pytest.mark.parametrize(
    ("beta", "spec"),
    [(0.1, [5.0, 0.05]), (0.75, [4.0, 1.0]), (0.3, [5.0, 0.7, 0.05]), (0.02, [3.0, 1.0, 0.5]), (0.6, [2.0])],
)
def test_best_interval_against_brute_force(beta, spec):
    with jax.enable_x64(True):
        lo, hi, rate = (float(v) for v in theory.momentum_best_interval(beta, jnp.asarray(spec)))
        eta, brute = _brute_best(beta, spec)
        assert brute.min() >= rate * (1 - 1e-12)  # nothing on the grid beats the closed form
        grid_step = eta[1] - eta[0]
        # the grid's best is within one grid step's worth of the rate (the rate is Lipschitz in eta away from the
        # repeated roots; at a square-root corner, within sqrt of it)
        assert brute.min() <= rate + 10 * math.sqrt(grid_step * max(spec))
        attained = eta[brute <= rate * (1 + 1e-9)]
        if lo < hi:
            assert attained.min() >= lo - grid_step and attained.max() <= hi + grid_step
            assert attained.min() <= lo + grid_step and attained.max() >= hi - grid_step
        else:  # one best eta: the rate there, and the grid's argmin next to it
            assert float(theory.momentum_rate(lo, beta, jnp.asarray(spec))) == pytest.approx(rate, rel=1e-12)
            assert abs(eta[np.argmin(brute)] - lo) <= 2 * grid_step


def test_joint_optimum_not_beaten_by_grid():
    spec = np.array([5.0, 0.05])
    eta_opt, beta_opt, rate_opt = theory.momentum_optimum(spec)
    with jax.enable_x64(True):
        beta = np.linspace(0.001, 1, 1000)
        eta = np.linspace(1e-4, 1, 2000) * float(np.max(theory.momentum_stable_lr(beta, spec.min())))
        rate = np.asarray(theory.momentum_rate(eta[:, None], beta[None, :], jnp.asarray(spec)))
        assert rate.min() >= rate_opt * (1 - 1e-12)
        # eta_opt, beta_opt are rounded, and where the extreme modes' complex intervals just touch the rate moves
        # like the square root of a change in (eta, beta): 1e-16 there is ~1e-8 in the rate
        assert float(theory.momentum_rate(eta_opt, beta_opt, jnp.asarray(spec))) == pytest.approx(rate_opt, rel=1e-7)
        # at the optimal beta the best interval collapses to the optimal eta
        lo, hi, best = (float(v) for v in theory.momentum_best_interval(beta_opt, jnp.asarray(spec)))
        assert lo == pytest.approx(eta_opt, rel=1e-9) and hi == pytest.approx(eta_opt, rel=1e-9)
        assert best == pytest.approx(rate_opt, rel=1e-7)
        # for every beta, the closed-form best rate is no better than the joint optimum
        best_b = np.asarray(theory.momentum_best_interval(beta, jnp.asarray(spec))[2])
        assert best_b.min() >= rate_opt * (1 - 1e-12)


def test_transient_growth_matches_numpy_powers():
    eta, beta, s = _random_points(200, 13)
    with jax.enable_x64(True):
        lo, _ = theory.momentum_repeated_root_lrs(beta, s)
        eta = np.where(np.arange(200) % 2 == 0, np.asarray(lo), eta)  # half at the lower repeated root
        r = np.asarray(theory.momentum_matrix(eta, beta, s))
        ours = np.asarray(theory.transient_growth(jnp.asarray(r), 60))
        norms = np.asarray(theory.spectral_norm(jnp.asarray(r)))
        one = np.asarray(theory.transient_growth(jnp.asarray(r[:, :1, :1]), 5))
    np.testing.assert_allclose(norms, np.linalg.norm(r, 2, axis=(-2, -1)), rtol=1e-13)
    p, worst = r.copy(), np.zeros(200)
    for _ in range(60):
        worst = np.maximum(worst, np.linalg.norm(p, 2, axis=(-2, -1)))
        p = p @ r
    np.testing.assert_allclose(ours, worst, rtol=1e-11)
    a = np.abs(r[:, 0, 0])
    np.testing.assert_allclose(one, np.where(a > 1, a**5, a), rtol=1e-13)
    assert np.any(ours[::2] > 1)  # near repeated roots the error can grow before it decays


# --------------------------------------------------------------------------------------------------------------
# Closed-form rates against simulation


def _fit_recurrence_rate(x):
    """Spectral radius of the recurrence x_{t+1} = p x_t + q x_{t-1} fitted by least squares to a trajectory.

    Any scalar component of a 2-state linear recursion obeys such a recurrence exactly (Cayley-Hamilton:
    p = tr R, q = -det R), so this measures the simulated dynamics' own eigenvalues from its iterates.
    """
    x = np.asarray(x, dtype=np.float64)
    a = np.stack([x[1:-1], x[:-2]], axis=-1)
    p, q = np.linalg.lstsq(a, x[2:], rcond=None)[0]
    return np.abs(np.roots([1.0, -p, -q])).max()


@pytest.mark.parametrize("x64", [True, False])
def test_momentum_rate_matches_simulation(x64):
    dtype = np.float64 if x64 else np.float32
    eta, beta, s = _random_points(40, 14, beta_lo=0.05)
    eta = eta * 0.8  # stable points only (rate < 1), every regime represented: the last 8 at repeated roots
    with jax.enable_x64(True):
        lo, hi = (np.asarray(t) for t in theory.momentum_repeated_root_lrs(beta, s))
    eta[-8:] = np.where(np.arange(40) % 2 == 0, lo, hi)[-8:]
    with jax.enable_x64(x64):
        for e, b, si in zip(eta.astype(dtype), beta.astype(dtype), s.astype(dtype), strict=True):
            rate = float(theory.momentum_rate(e, b, jnp.asarray([si])))
            path = np.asarray(
                dynamics.run(dynamics.momentum(e, b), lambda x, si=si: 2 * si * x, jnp.asarray(1.0, dtype), 12)
            )
            # (1) the recurrence fitted to the first iterates. The fitted (p, q) carry a few eps of relative
            # error; a double root moves like the square root of a perturbation, so at and near repeated roots
            # the fitted rate is good to ~sqrt(eps) (10 sqrt(eps): 1.5e-7 in float64, 3.5e-3 in float32), and
            # elsewhere in float64 to 1e-11
            fit = _fit_recurrence_rate(path)
            near_repeated = (not x64) or int(theory.momentum_regime(e, b, si, rtol=1e-6)) == 1
            rel = 10 * math.sqrt(np.finfo(dtype).eps) if near_repeated else 1e-11
            assert fit == pytest.approx(rate, rel=rel)
            # (2) the long-run per-step contraction: the error envelope (window maxima of |x_t|) decays like
            # poly(t) rate^t, so over the window gap of n steps the measured rate matches up to a factor
            # (poly ratio)^(1/n): tolerance 2 log(4 n)/n
            floor = 1e-250 if x64 else 1e-30
            n_steps = int(min(20000, math.log(floor) / math.log(max(rate, 1e-3))))
            if n_steps < 80:
                continue
            path = np.abs(
                np.asarray(
                    dynamics.run(dynamics.momentum(e, b), lambda x, si=si: 2 * si * x, jnp.asarray(1.0, dtype), n_steps)
                )
            )
            w = n_steps // 4
            early, late = path[w : 2 * w].max(), path[n_steps - w : n_steps].max()
            gap = n_steps - 2 * w
            measured = (late / early) ** (1 / gap)
            assert abs(math.log(measured / rate)) <= 2 * math.log(4 * gap) / gap


@pytest.mark.parametrize("x64", [True, False])
def test_gd_factor_matches_simulation(x64):
    dtype = np.float64 if x64 else np.float32
    rng = np.random.default_rng(15)
    with jax.enable_x64(x64):
        for s, u in zip(rng.uniform(0.05, 5, 20), rng.uniform(0.02, 0.98, 20), strict=True):
            eta = dtype(u / s)
            path = np.asarray(
                dynamics.run(dynamics.gd(eta), lambda x, s=s: 2 * dtype(s) * x, jnp.asarray(1.0, dtype), 50)
            )
            want = float(theory.gd_factor(eta, dtype(s))) ** np.arange(51)
            # each step multiplies by the rounded factor: relative error grows like t * eps
            np.testing.assert_allclose(path, want, rtol=60 * np.finfo(dtype).eps, atol=1e-300 if x64 else 1e-38)


# --------------------------------------------------------------------------------------------------------------
# Parameterizations: EMA <-> heavy ball <-> Distill


def test_ema_distill_round_trips_and_iterates():
    eta, beta, s = _random_points(500, 16)
    with jax.enable_x64(True):
        back = dynamics.distill_to_ema(*dynamics.ema_to_distill(eta, beta, s))
        # 1 - (1 - beta) rounds to ~eps / beta relative (beta >= 0.02 here); the rest is one rounding each
        np.testing.assert_allclose(np.stack(back), np.stack([eta, beta, s]), rtol=1e-13)
        alpha, beta_d, lam = np.random.default_rng(17).uniform([0, 0, 0.1], [4, 0.99, 10], (500, 3)).T
        again = dynamics.ema_to_distill(*dynamics.distill_to_ema(alpha, beta_d, lam))
        np.testing.assert_allclose(np.stack(again), np.stack([alpha, beta_d, lam]), rtol=1e-14, atol=1e-15)
        # heavy ball and Distill agree on (lr, m) = (alpha, beta_D)
        np.testing.assert_allclose(dynamics.ema_to_heavy_ball(eta, beta), (alpha_ := eta * beta, 1 - beta))
        assert np.array_equal(dynamics.ema_to_distill(eta, beta, s)[0], alpha_)
        # Distill's iteration z <- beta_D z + lambda x, x <- x - alpha z on f = lambda x^2 / 2 has our iterates
        e, b, si = 0.7, 0.4, 1.3
        a, bd, la = dynamics.ema_to_distill(e, b, si)
        ours = dynamics.run(dynamics.momentum(e, b), lambda x: 2 * si * x, jnp.asarray(1.0), 100)
        distill = dynamics.run(dynamics.heavy_ball(a, bd), lambda x: la * x, jnp.asarray(1.0), 100)
        np.testing.assert_allclose(ours, distill, rtol=0, atol=1e-13)
