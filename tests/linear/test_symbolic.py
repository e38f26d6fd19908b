"""Symbolic derivations (sympy) against the closed forms in sim.linear.theory and sim.linear.dynamics.

The sympy expressions are evaluated with mpmath at 40 digits, so the comparison measures only the float64 error of
the closed forms: a handful of roundings (≈1e-16 each) from the same inputs, hence rtol 1e-12. The exceptions are
quantities that are differences of nearly equal numbers near their zeros (the discriminant near a repeated root,
the eigenvalues there); those are compared relative to the size of the terms that cancel.
"""

import jax
import mpmath
import numpy as np
import pytest
import sympy as sp

from sim.linear import dynamics, symbolic, theory
from sim.linear.symbolic import ALPHA, BETA, BETA_D, ETA, LAMBDA, SIGMA

RTOL = 1e-12


@pytest.fixture(scope="module")
def d():
    return symbolic.momentum_derivation()


def _points(n=200, seed=0):
    rng = np.random.default_rng(seed)
    beta = rng.uniform(0.01, 1, n)
    s = rng.uniform(0.05, 5, n)
    eta = rng.uniform(0, 1.2, n) * (2 - beta) / (beta * s)
    return eta, beta, s


def _positive_parts(cond):
    """A conjunction of strict inequalities as the set of expanded expressions that each says are positive."""
    return {sp.expand(sp.simplify(r.gts - r.lts)) for r in sp.And(cond).args}


def _mp(expr, eta, beta, s):
    """Evaluate ``expr`` (in η, β, σ) at each point with 40-digit mpmath; σ = √σ²."""
    f = sp.lambdify((ETA, BETA, SIGMA), expr, modules="mpmath")
    with mpmath.workdps(40):
        return np.array(
            [
                complex(f(mpmath.mpf(e), mpmath.mpf(b), mpmath.sqrt(mpmath.mpf(si))))
                for e, b, si in zip(eta, beta, s, strict=True)
            ]
        )


def test_matrix_is_the_seeds_matrix(d):
    eta, beta, s = _points(50)
    ours = np.stack([_mp(d["R"][i, j], eta, beta, s).real for i in range(2) for j in range(2)], -1).reshape(-1, 2, 2)
    with jax.enable_x64(True):
        np.testing.assert_allclose(ours, theory.momentum_matrix(eta, beta, s), rtol=RTOL, atol=1e-300)
    # and exactly: the derived R minus the typed-in one simplifies to zero
    typed = sp.Matrix([[1 - BETA, 2 * BETA * SIGMA**2], [-ETA * (1 - BETA), 1 - 2 * ETA * BETA * SIGMA**2]])
    assert sp.simplify(d["R"] - typed) == sp.zeros(2, 2)


def test_trace_det_discriminant(d):
    eta, beta, s = _points()
    with jax.enable_x64(True):
        tr = np.asarray(theory.momentum_trace(eta, beta, s))
        det = np.asarray(theory.momentum_determinant(beta))
        disc = np.asarray(theory.momentum_discriminant(eta, beta, s))
    np.testing.assert_allclose(_mp(d["trace"], eta, beta, s).real, tr, rtol=RTOL)
    np.testing.assert_allclose(_mp(d["det"], eta, beta, s).real, det, rtol=RTOL)
    # D = tr² − 4 det cancels near a repeated root: relative to the terms' size
    scale = tr**2 + 4 * np.abs(det)
    np.testing.assert_array_less(np.abs(_mp(d["discriminant"], eta, beta, s).real - disc), RTOL * scale)
    assert sp.simplify(d["discriminant"] - (d["trace"] ** 2 - 4 * d["det"])) == 0


def test_eigenvalues(d):
    eta, beta, s = _points()
    with jax.enable_x64(True):
        ours = np.asarray(theory.momentum_eigenvalues(eta, beta, s))
        disc = np.asarray(theory.momentum_discriminant(eta, beta, s))
        tr = np.asarray(theory.momentum_trace(eta, beta, s))
    sym = np.stack([_mp(d["eigenvalues"][k], eta, beta, s) for k in range(2)], -1)
    # sympy's λ± are (tr ± √D)/2 with the principal root, as in theory; away from repeated roots the float64
    # eigenvalues are accurate to a few eps / √(|D|/scale)
    scale = tr**2 + 4 * np.abs(1 - beta)
    tol = RTOL * (1 + np.sqrt(scale / np.abs(disc)))[:, None]
    assert np.all(np.abs(sym - ours) <= tol * np.maximum(np.abs(sym), 1e-3))


def test_repeated_root_lrs_and_stability(d):
    eta, beta, s = _points()
    with jax.enable_x64(True):
        lo, hi, stable = (np.asarray(t) for t in theory.momentum_thresholds(beta, s))
        lo_b, hi_b = (np.asarray(t) for t in theory.momentum_repeated_root_lrs(beta, s))
        stable_b = np.asarray(theory.momentum_stable_lr(beta, s))
    np.testing.assert_allclose(_mp(d["repeated_root_lrs"][0], eta, beta, s).real, lo, rtol=RTOL)
    np.testing.assert_allclose(_mp(d["repeated_root_lrs"][1], eta, beta, s).real, hi, rtol=RTOL)
    np.testing.assert_allclose(_mp(d["stable_lr"], eta, beta, s).real, stable, rtol=RTOL)
    np.testing.assert_array_equal(lo, lo_b)
    np.testing.assert_array_equal(hi, hi_b)
    np.testing.assert_array_equal(stable, stable_b)
    # the repeated eigenvalues are ±√(1 − β) and the complex modulus √(1 − β) = √det
    root = sp.sqrt(1 - BETA)
    assert [sp.simplify(e - r) for e, r in zip(d["repeated_root_eigenvalues"], (root, -root), strict=True)] == [0, 0]
    assert sp.simplify(d["complex_modulus"] - root) == 0
    # the Jury conditions solved: 0 < β < 2 and 0 < η < η₃
    assert _positive_parts(d["stability_beta"]) == _positive_parts(sp.And(0 < BETA, BETA < 2))
    assert _positive_parts(d["stability_eta"]) == _positive_parts(sp.And(ETA > 0, ETA < (2 - BETA) / (BETA * SIGMA**2)))


def test_gd_factor(d):
    eta, _, s = _points()
    with jax.enable_x64(True):
        np.testing.assert_allclose(_mp(d["gd_factor"], eta, eta, s).real, theory.gd_factor(eta, s), rtol=RTOL)
        np.testing.assert_allclose(_mp(d["gd_stable_lr"], eta, eta, s).real, theory.gd_stable_lr(s[:, None]), rtol=RTOL)
    assert sp.expand(d["gd_factor"] - (1 - 2 * ETA * SIGMA**2)) == 0


def test_distill_condition_symbolic(d):
    want = sp.And(0 < ALPHA * LAMBDA, ALPHA * LAMBDA < 2 + 2 * BETA_D)
    assert _positive_parts(d["distill_condition"]) == _positive_parts(want)


def test_distill_condition_numeric():
    # our stability range 0 < η < η₃, mapped by ema_to_distill, is Distill's 0 < αλ < 2 + 2β_D
    eta, beta, s = _points(2000, 1)
    with jax.enable_x64(True):
        stable = np.asarray(theory.momentum_stable_lr(beta, s))
        alpha, beta_d, lam = dynamics.ema_to_distill(eta, beta, s)
        ours = eta < stable
        rho = np.asarray(theory.momentum_rate(eta, beta, s[:, None]))
        a_s, b_s, l_s = dynamics.ema_to_distill(stable, beta, s)
    distill = (0 < alpha * lam) & (alpha * lam < 2 + 2 * beta_d)
    np.testing.assert_array_equal(ours, distill)
    np.testing.assert_array_equal(rho < 1, distill)
    np.testing.assert_allclose(a_s * l_s, 2 + 2 * b_s, rtol=RTOL)


@pytest.mark.parametrize("fmt", ["text", "latex"])
def test_render(d, fmt):
    out = symbolic.render(fmt)
    for i, (_, header) in enumerate(symbolic.ITEMS, start=1):
        assert f"[{i}] {header}" in out
    if fmt == "latex":
        assert sp.latex(d["R"]) in out and out.count("\\[") == len(symbolic.ITEMS)
    else:
        assert "β" in out and "η" in out
    with pytest.raises(ValueError, match="fmt"):
        symbolic.render("html")
