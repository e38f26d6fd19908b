"""Calculators: closed forms printed beside simulated counts, for the course's worked examples."""

import json
import math

import pytest

from sim import cli
from sim.linear import report as calculators


def test_gd_worked_example():
    r = calculators.gd_report([5, 0.05], 1e-3)
    assert r["stable_learning_rates"][1] == pytest.approx(0.2, rel=1e-15)
    assert r["optimal_learning_rate"] == pytest.approx(1 / 5.05, rel=1e-15)
    assert r["at"]["predicted_steps"] == 346 and r["at"]["simulated_steps"] == 346


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


def test_theory_command(capsys):
    assert cli.main(["theory", "gd", "--spectrum", "5,0.05", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["at"]["simulated_steps"] == 346
    assert cli.main(["theory", "momentum", "--spectrum", "5,0.05", "--beta", "0.1"]) == 0
    text = capsys.readouterr().out
    assert "best rate" in text and "fastest at eta" in text
    assert cli.main(["theory", "momentum", "--symbolic"]) == 0
    assert "Transition matrix" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "param"),
    [
        (["theory", "gd", "--spectrum", "5,-1"], "spectrum"),
        (["theory", "gd"], "spectrum"),
        (["theory", "momentum", "--spectrum", "5", "--eta", "1"], "beta"),
        (["theory", "momentum", "--spectrum", "5", "--beta", "2"], "beta"),
        (["theory", "gd", "--spectrum", "5", "--tol", "3"], "tol"),
        (["theory", "gd", "--spectrum", "5", "--eta", "-1"], "learning_rate"),
    ],
)
def test_theory_bad_input(argv, param, capsys):
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.startswith(f"sim theory: error: {param}:")
