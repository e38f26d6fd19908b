"""Calculators: closed forms printed beside simulated counts, for the course's worked examples.

Ill-conditioned spectra (κ² up to 1e8) are checked against float64 ``math`` written here, or ``mpmath`` at 50 digits
where float64's own log of a rate within 1e-8 of 1 is not exact (its relative error eps/(1 − ρ) reaches whole steps).
"""

import json
import math

import mpmath
import numpy as np
import pytest

from sim import cli
from sim.linear import report as calculators

FEW_ULPS = 1e-14
"""Relative tolerance for a closed form of a handful of correctly rounded float64 operations written two ways: they
agree to a few ulps (~1e-15); float32 anywhere on the way errs by ~1e-7, a wrong formula by far more."""

mpmath.mp.dps = 50


def _steps_exact(gap: float, tol: float) -> int:
    """⌈log ε / log(1 − gap)⌉ with the log taken from the gap (``log1p``): exact in float64 for gaps down to 1e-16."""
    return math.ceil(math.log(tol) / math.log1p(-gap))


def _momentum_settle_step(eta, beta, sigma2, tol, steps):
    """Settle step of one momentum mode from relative error 1, by the course's recursion in plain Python floats:
    z ← (1 − β)z + β·2σ²x, x ← x − ηz; the step after the last one with |x| ≥ tol (-1 if never below)."""
    x, z, last = -1.0, 0.0, 0
    for t in range(1, steps + 1):
        z = (1 - beta) * z + beta * 2 * sigma2 * x
        x = x - eta * z
        if abs(x) >= tol:
            last = t
    return last + 1 if last < steps else -1


def test_gd_worked_example():
    r = calculators.gd_report([5, 0.05], 1e-3)
    assert r["stable_learning_rates"][1] == pytest.approx(0.2, rel=1e-15)
    assert r["optimal_learning_rate"] == pytest.approx(1 / 5.05, rel=1e-15)
    assert r["at"]["predicted_steps"] == 346 and r["at"]["simulated_steps"] == 346


@pytest.mark.parametrize(
    ("spectrum", "issue_steps"),
    [([1.0, 1e-6], 3_453_878), ([1.0, 1e-5], 345_388), ([1e-4, 1e4], None)],  # issue 13's counts where it gave them
)
def test_gd_closed_forms_are_float64_on_ill_conditioned_spectra(spectrum, issue_steps):
    tol = 1e-3
    r = calculators.gd_report(spectrum, tol)
    smax, smin = max(spectrum), min(spectrum)
    assert r["stable_learning_rates"][1] == pytest.approx(1 / smax, rel=FEW_ULPS)
    assert r["optimal_learning_rate"] == pytest.approx(1 / (smax + smin), rel=FEW_ULPS)
    assert r["optimal_rate"] == pytest.approx((smax - smin) / (smax + smin), rel=FEW_ULPS)
    eta = r["at"]["learning_rate"]
    assert eta == r["optimal_learning_rate"]
    assert r["at"]["rate"] == pytest.approx(max(abs(1 - 2 * eta * smax), abs(1 - 2 * eta * smin)), rel=FEW_ULPS)
    exact = _steps_exact(2 * smin / (smax + smin), tol)  # 1 − ρ* = 2σ²_min/(σ²_max + σ²_min)
    assert r["at"]["predicted_steps"] == exact  # exact, no tolerance: a count
    if issue_steps is not None:
        assert exact == issue_steps
        # for these gaps (2e-6, 2e-5) the log of the rounded rate is exact enough too
        assert math.ceil(math.log(tol) / math.log((smax - smin) / (smax + smin))) == exact


def test_gd_rate_within_2e_8_of_1_predicts_finite_steps(capsys):
    """κ² = 1e8: ρ* = 1 − 2e-8 (issue 13 got 'never (rate >= 1)' from float32, where ρ* rounds to 1)."""
    tol = 1e-3
    gap = 2e-4 / (1e4 + 1e-4)
    exact = int(mpmath.ceil(mpmath.log(tol) / mpmath.log(1 - mpmath.mpf(gap))))
    assert exact == _steps_exact(gap, tol) == 345_387_764
    assert cli.main(["theory", "gd", "--spectrum", "1e-4,1e4", "--json"]) == 0
    at = json.loads(capsys.readouterr().out)["at"]
    assert at["rate"] < 1 and at["predicted_steps"] == exact
    assert at["simulated_steps"] == -1 and at["simulated_steps_run"] == 1_000_000 and not at["diverged"]


def test_capped_simulation_says_so(capsys):
    assert cli.main(["theory", "gd", "--spectrum", "1,1e-6"]) == 0
    text = capsys.readouterr().out
    assert "predicted steps 3453878" in text
    assert "simulated steps not reached within the 1,000,000 simulated steps" in text


@pytest.mark.parametrize("spectrum", [[1.0, 1e-8], [1e4, 1e-4], [5.0, 0.05]])
def test_momentum_joint_optimum_is_float64(spectrum):
    """Polyak's optimum for κ² up to 1e8, written with κ = σ_max/σ_min (β = 1 − ρ² loses digits as ρ → 1; here
    1 − ρ² = (1 − ρ)(1 + ρ))."""
    tol = 1e-3
    r = calculators.momentum_report(spectrum, tol)
    kappa = math.sqrt(max(spectrum) / min(spectrum))
    rho = (kappa - 1) / (kappa + 1)
    beta = (2 / (kappa + 1)) * (2 * kappa / (kappa + 1))
    eta = 2 / ((math.sqrt(max(spectrum)) + math.sqrt(min(spectrum))) ** 2 * beta)
    assert r["joint_optimum"] == pytest.approx({"learning_rate": eta, "beta": beta, "rate": rho}, rel=FEW_ULPS)
    assert r["at"]["predicted_steps"] == _steps_exact(2 / (kappa + 1), tol)


def test_momentum_interval_is_float64_on_an_ill_conditioned_spectrum():
    """β = 0.5 on κ² = 1e8: no overlap, the best rate at the single η = (2 − β)/(β(σ²_min + σ²_max)) (EECS 182 Sp23 HW2
    Q2(g)). Predicted steps against mpmath: ρ = 1 − 6e-8, where a float64 log of ρ is off by up to 0.5 step."""
    tol, beta, smax, smin = 1e-3, 0.5, 1e4, 1e-4
    r = calculators.momentum_report([smax, smin], tol, beta=beta)
    balance = (2 - beta) / (beta * (smin + smax))
    t = (2 - beta) * (smax - smin) / (smax + smin)
    rate = (t + math.sqrt(t * t - 4 * (1 - beta))) / 2
    assert r["stable_learning_rates"][1] == pytest.approx((2 - beta) / (beta * smax), rel=FEW_ULPS)
    assert r["best_interval"] == pytest.approx([balance, balance], rel=FEW_ULPS)
    assert r["best_rate"] == pytest.approx(rate, rel=FEW_ULPS)
    b, s1, s2 = (mpmath.mpf(v) for v in (beta, smax, smin))
    t = (2 - b) * (s1 - s2) / (s1 + s2)
    exact = mpmath.ceil(mpmath.log(tol) / mpmath.log((t + mpmath.sqrt(t * t - 4 * (1 - b))) / 2))
    assert r["predicted_steps"] == int(exact)
    assert r["simulated_steps_in_interval"] == [None, None] and r["fastest_simulated"]["steps"] is None


def test_momentum_rate_near_1_at_a_point_predicts_finite_steps():
    """η = 1e-12 on σ² = 1: ρ = 1 − 2e-12 (real roots), which float64 holds but whose log it does not hold exactly."""
    tol, eta, beta = 1e-3, 1e-12, 0.5
    at = calculators.momentum_report([1.0], tol, beta=beta, learning_rate=eta)["at"]
    e, b = mpmath.mpf(eta), mpmath.mpf(beta)
    tr, det = 2 - b - 2 * e * b, 1 - b
    rho = (tr + mpmath.sqrt(tr * tr - 4 * det)) / 2
    assert at["predicted_steps"] == int(mpmath.ceil(mpmath.log(tol) / mpmath.log(rho)))
    assert at["rate"] == pytest.approx(float(rho), rel=1e-15)
    assert at["simulated_steps"] == -1 and at["simulated_steps_run"] == 1_000_000


def test_momentum_mode_gaps_match_eigenvalues():
    """1 − |λ|_max from p(±1) against numpy's eigenvalues of the course's R, on random points, unstable ones included.
    Tolerance 1e-7: near a repeated root the eigenvalues move like the square root of a rounding (1e-16 → 1e-8)."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        beta, sigma2 = rng.uniform(0.01, 1), 10 ** rng.uniform(-3, 3)
        eta = rng.uniform(0, 1.2) * (2 - beta) / (beta * sigma2)
        gaps, _, complex_pair = calculators._momentum_mode_gaps(eta, beta, np.array([sigma2]))
        r = np.array([[1 - beta, 2 * beta * sigma2], [-eta * (1 - beta), 1 - 2 * eta * beta * sigma2]])
        eig = np.linalg.eigvals(r)
        assert gaps[0] == pytest.approx(1 - np.max(np.abs(eig)), abs=1e-7)
        if abs(eig[0].imag) > 1e-6:  # clearly complex (not within rounding of a repeated root)
            assert complex_pair[0]


def test_extreme_scale_is_answered(capsys):
    """σ² = 1e200 is a well-conditioned problem: its η scale 1e-200 is fine in float64. The simulated velocity, ∝ σ²,
    used to cross the engine's divergence bound (an OverflowError traceback in issue 13)."""
    tol, beta, sigma2 = 1e-3, 0.5, 1e200
    assert cli.main(["theory", "momentum", "--spectrum", "1e200", "--beta", "0.5", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    root = 1 + math.sqrt(1 - beta)
    lo, hi = beta / (2 * sigma2 * root**2), root**2 / (2 * beta * sigma2)  # EECS 182 Sp23 HW2 Q2(e)
    assert r["best_interval"] == pytest.approx([lo, hi], rel=FEW_ULPS)
    assert r["best_rate"] == pytest.approx(math.sqrt(1 - beta), rel=FEW_ULPS)
    assert r["predicted_steps"] == math.ceil(math.log(tol) / math.log(math.sqrt(1 - beta))) == 20
    fastest = r["fastest_simulated"]
    assert fastest["steps"] == _momentum_settle_step(fastest["learning_rate"], beta, sigma2, tol, 1000)
    lo_s, hi_s = r["simulated_steps_in_interval"]
    assert 0 < lo_s == fastest["steps"] <= hi_s


@pytest.mark.parametrize(
    "argv",
    [
        ["theory", "momentum", "--spectrum", "1e-30,1e30"],  # ZeroDivisionError in issue 13: ρ rounds to 1
        ["theory", "gd", "--spectrum", "1e-30,1e30"],
        ["theory", "momentum", "--spectrum", "1e-30,1e30", "--beta", "0.5"],
        ["theory", "gd", "--spectrum", "1e-310"],  # 1/σ² overflows
        ["theory", "momentum", "--spectrum", "1e308", "--beta", "1"],  # 8σ² overflows
    ],
)
def test_spectrum_beyond_float64_is_refused(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sim theory: error: --spectrum: ") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["theory", "gd", "--spectrum", "1", "--eta", "1e-17"], "--eta"),  # ρ = 1 − 2e-17 rounds to 1
        (["theory", "momentum", "--spectrum", "1", "--beta", "1e-17"], "--beta"),  # √(1 − β) rounds to 1
        (["theory", "momentum", "--spectrum", "1", "--beta", "1e-17", "--eta", "1"], "--beta"),
        (["theory", "gd", "--spectrum", "5", "--eta", "1e308"], "--eta"),  # the rate 2ησ² − 1 overflows
    ],
)
def test_hyperparameters_beyond_float64_are_refused(argv, flag, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sim theory: error: {flag}: ") and err.count("\n") == 1


def test_momentum_interval_and_fastest_eta():
    r = calculators.momentum_report([5, 0.05], 1e-3, beta=0.1)
    lo, hi = r["best_interval"]
    assert round(lo, 4) == 0.2633 and round(hi, 3) == 3.797
    assert r["best_rate"] == pytest.approx(math.sqrt(0.9), rel=1e-12)
    assert r["predicted_steps"] == 132
    fastest = r["fastest_simulated"]
    lo_s, hi_s = r["simulated_steps_in_interval"]
    assert lo_s == fastest["steps"] < hi_s  # the flat asymptotic rate hides a spread of real counts
    assert lo <= fastest["learning_rate"] <= hi


def test_newer_course_example_and_joint_optimum():
    r = calculators.momentum_report([4, 1], 1e-3, beta=0.75)
    assert r["best_interval"] == pytest.approx([1 / 6, 3 / 8], rel=1e-12)
    assert r["best_rate"] == pytest.approx(0.5, rel=1e-12)
    opt = calculators.momentum_report([5, 0.05], 1e-3)["joint_optimum"]
    assert opt["rate"] == pytest.approx(9 / 11, rel=1e-12) and opt["learning_rate"] == pytest.approx(1.0)


def test_classify_a_point():
    r = calculators.momentum_report([5, 0.05], 1e-3, beta=0.5, learning_rate=1.0)["at"]
    assert [m["regime"] for m in r["modes"]] == ["unstable", "real distinct"]
    assert r["diverged"] and r["simulated_steps"] == -1 and r["predicted_steps"] is None
    inside = calculators.momentum_report([5, 0.05], 1e-3, beta=0.1, learning_rate=1.0)["at"]
    assert [m["regime"] for m in inside["modes"]] == ["complex", "complex"]
    assert all(m["radius"] == pytest.approx(math.sqrt(0.9), rel=1e-12) for m in inside["modes"])
    assert inside["heavy_ball"] == pytest.approx({"learning_rate": 0.1, "momentum": 0.9})


def _course_matrix(eta, beta, sigma2):
    """R of EECS 182 Sp23 HW2 Q2 on (velocity, error)."""
    return np.array([[1 - beta, 2 * beta * sigma2], [-eta * (1 - beta), 1 - 2 * eta * beta * sigma2]])


def test_eigenvalues_are_numbers_in_json_and_readable_in_text(capsys):
    """Real roots (β = 0.5) and a complex pair (β = 0.1) at η = 1 on the course's σ² = {5, 0.05}; the reference is
    numpy's eigenvalues of R, to 1e-12 (distinct roots: no square-root sensitivity)."""
    for beta in (0.5, 0.1):
        assert (
            cli.main(["theory", "momentum", "--spectrum", "5,0.05", "--eta", "1", "--beta", str(beta), "--json"]) == 0
        )
        for mode in json.loads(capsys.readouterr().out)["at"]["modes"]:
            got = mode["eigenvalues"]
            assert all(set(z) == {"real", "imag"} and all(type(v) is float for v in z.values()) for z in got)
            want = np.linalg.eigvals(_course_matrix(1.0, beta, mode["sigma2"]))
            order = lambda z: (z.real, z.imag)  # noqa: E731
            assert sorted((complex(z["real"], z["imag"]) for z in got), key=order) == pytest.approx(
                sorted(want, key=order), rel=1e-12
            )
    assert cli.main(["theory", "momentum", "--spectrum", "5,0.05", "--eta", "1", "--beta", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "eigenvalues -0.149219, -3.35078," in text and "j)" not in text
    assert cli.main(["theory", "momentum", "--spectrum", "5,0.05", "--eta", "1", "--beta", "0.1"]) == 0
    assert "eigenvalues 0.45 ± 0.835165i," in capsys.readouterr().out  # 0.45 ± √(0.9 − 0.45²) i


def test_theory_command(capsys):
    assert cli.main(["theory", "gd", "--spectrum", "5,0.05", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["at"]["simulated_steps"] == 346
    assert cli.main(["theory", "momentum", "--spectrum", "5,0.05", "--beta", "0.1"]) == 0
    text = capsys.readouterr().out
    assert "best rate" in text and "fastest at eta" in text
    assert cli.main(["theory", "momentum", "--symbolic"]) == 0
    assert "Transition matrix" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["theory", "gd", "--spectrum", "5,-1"], "--spectrum"),
        (["theory", "gd"], "--spectrum"),
        (["theory", "momentum", "--spectrum", "5", "--eta", "1"], "--beta"),
        (["theory", "momentum", "--spectrum", "5", "--beta", "2"], "--beta"),
        (["theory", "gd", "--spectrum", "5", "--tol", "3"], "--tol"),
        (["theory", "gd", "--spectrum", "5", "--eta", "-1"], "--eta"),
        (["theory", "momentum", "--spectrum", "5", "--beta", "0.5", "--eta", "-1"], "--eta"),
        (["theory", "momentum", "--spectrum", "5", "--beta", "0.5", "--lr", "-1"], "--lr"),  # the alias typed
        (["theory", "gd", "--spectrum", "5", "--beta", "0.5"], "--beta"),
        (["theory", "gd", "--symbolic"], "--symbolic"),
    ],
)
def test_theory_bad_input_names_the_flag(argv, flag, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sim theory: error: {flag}: ") and err.count("\n") == 1
