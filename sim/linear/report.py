"""Hyperparameter calculators: closed-form answers printed beside the sweep engine's simulated counts.

Contract: :func:`gd_report` and :func:`momentum_report` return plain dicts (JSON-ready) for a spectrum and a
tolerance; every predicted number (from ``sim.linear.theory``) comes with the simulated one (from
``sim.linear.sweep.engine`` in float64) so the two are always side by side. :func:`format_report` turns a report into
readable text. ``sim theory`` prints them.

References: EECS 182 Sp25 HW1 Q1 (GD), Sp23 HW2 Q2 (momentum); Polyak (1964) for the joint optimum.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from sim.core.grid import Axis, Grid
from sim.core.validate import InputError, check_in_interval
from sim.linear import dynamics, theory
from sim.linear.problems import from_spectrum
from sim.linear.sweep import engine
from sim.linear.sweep.spec import check_hyperparameter

INTERVAL_POINTS = 257  # η values simulated across a flat-rate interval
MAX_SIM_STEPS = 1_000_000


def _simulate(method: str, spectrum, tol: float, points: dict[str, list[float]], rate: float) -> dict:
    """Simulated settle steps (float64) at the given points; T is a generous multiple of the prediction."""
    predicted = float(theory.steps_to_tolerance(rate, tol)) if rate < 1 else math.inf
    steps = int(min(MAX_SIM_STEPS, 4 * predicted + 200)) if math.isfinite(predicted) else 2000
    grid = Grid(tuple(Axis(name, np.asarray(v, dtype=np.float64), "calculator") for name, v in points.items()))
    with jax.enable_x64(True):
        ds = engine.sweep(
            method, grid, steps=steps, tol=tol, spectrum=spectrum, dtype="float64", chunk_size=64, progress=False
        )
    return {
        "steps_run": steps,
        "settle_step": ds.settle_step.values.ravel().tolist(),
        "max_error": ds.max_error.values.ravel().tolist(),
        "diverged": ds.diverged.values.ravel().tolist(),
    }


def _at_point(method: str, spectrum, tol: float, rate: float, **point: float) -> dict:
    """One point's closed-form rate and predicted steps beside its simulated run."""
    sim = _simulate(method, spectrum, tol, {k: [v] for k, v in point.items()}, rate)
    return {
        **point,
        "rate": rate,
        "predicted_steps": _predicted(rate, tol),
        "simulated_steps": sim["settle_step"][0],
        "diverged": sim["diverged"][0],
        "simulated_max_error": sim["max_error"][0],
    }


def _predicted(rate: float, tol: float) -> float | None:
    steps = float(theory.steps_to_tolerance(rate, tol))
    return steps if math.isfinite(steps) else None


def _check(spectrum, tol, learning_rate=None, beta=None):
    problem = from_spectrum(spectrum)
    check_in_interval("tol", tol, 0.0, 1.0, closed_high=False)
    if learning_rate is not None:
        check_hyperparameter("learning_rate", learning_rate)
    if beta is not None:
        check_hyperparameter("beta", beta)
    return problem.spectrum


def gd_report(spectrum, tol: float, learning_rate: float | None = None) -> dict:
    """GD on one problem: stability range, optimal η and rate, predicted and simulated steps (at η* or at η)."""
    s = _check(spectrum, tol, learning_rate)
    with jax.enable_x64(True):
        eta_star = float(theory.gd_optimal_lr(s))
        report = {
            "method": "gd",
            "spectrum": s.tolist(),
            "tol": tol,
            "stable_learning_rates": [0.0, float(theory.gd_stable_lr(s))],
            "optimal_learning_rate": eta_star,
            "optimal_rate": float(theory.gd_optimal_rate(s)),
        }
        eta = eta_star if learning_rate is None else float(learning_rate)
        rate = float(theory.gd_rate(eta, s))
    report["at"] = _at_point("gd", s, tol, rate, learning_rate=eta)
    return report


def momentum_report(spectrum, tol: float, beta: float | None = None, learning_rate: float | None = None) -> dict:
    """EMA momentum on one problem.

    Without ``beta``: the joint optimum (η, β, ρ). With ``beta``: the stable η range, the best-rate η interval and
    which η in it is actually fastest in simulation. With ``beta`` and ``learning_rate``: that point's regime per
    mode, eigenvalues, rate and transient growth. Every case reports predicted and simulated steps.
    """
    if learning_rate is not None and beta is None:
        raise InputError("beta", "classifying a point needs both --eta and --beta")
    s = _check(spectrum, tol, learning_rate, beta)
    report = {"method": "momentum", "spectrum": s.tolist(), "tol": tol}
    with jax.enable_x64(True):
        if beta is None:
            eta, b, rate = theory.momentum_optimum(s)
            report["joint_optimum"] = {"learning_rate": eta, "beta": b, "rate": rate}
            report["at"] = _at_point("momentum", s, tol, rate, learning_rate=eta, beta=b)
            return report
        report["beta"] = beta
        report["stable_learning_rates"] = [0.0, float(np.min(theory.momentum_stable_lr(beta, s)))]
        lo, hi, best = (float(v) for v in theory.momentum_best_interval(beta, s))
        report["best_rate"] = best
        report["best_interval"] = [lo, hi]
        if learning_rate is None:
            etas = np.linspace(lo, hi, INTERVAL_POINTS) if hi > lo else np.array([lo])
            sim = _simulate("momentum", s, tol, {"learning_rate": etas, "beta": [beta]}, best)
            steps = np.array(sim["settle_step"], dtype=float)
            steps[steps < 0] = np.inf
            i = int(np.argmin(steps))
            report["predicted_steps"] = _predicted(best, tol)
            report["simulated_steps_in_interval"] = [int(np.min(steps)), int(np.max(steps))]
            report["fastest_simulated"] = {"learning_rate": float(etas[i]), "steps": int(steps[i])}
            return report
        eta = float(learning_rate)
        rate = float(theory.momentum_rate(eta, beta, s))
        regimes = np.atleast_1d(np.asarray(theory.momentum_regime(eta, beta, s)))
        eig = np.asarray(theory.momentum_eigenvalues(eta, beta, s))
        growth = np.asarray(theory.transient_growth(theory.momentum_matrix(eta, beta, s), 1000))
    report["at"] = _at_point("momentum", s, tol, rate, learning_rate=eta, beta=beta)
    report["at"]["modes"] = [
        {
            "sigma2": float(si),
            "regime": theory.REGIMES[int(r)],
            "eigenvalues": [str(complex(z)) for z in e],
            "radius": float(np.max(np.abs(e))),
            "max_power_norm_1000": float(g) if np.isfinite(g) else None,
        }
        for si, r, e, g in zip(s, regimes, eig.reshape(len(s), 2), growth.reshape(len(s)), strict=True)
    ]
    conv = dynamics.ema_to_heavy_ball(eta, beta)
    report["at"]["heavy_ball"] = {"learning_rate": conv[0], "momentum": conv[1]}
    return report


def format_report(report: dict) -> str:
    """Readable text for a report from :func:`gd_report` or :func:`momentum_report`."""

    def steps(v):
        return "never (rate >= 1)" if v is None else f"{v:.0f}"

    def sim_steps(v):
        return "not reached" if v is None or v < 0 else str(v)

    lines = [f"{report['method']} on spectrum sigma^2 = {report['spectrum']}, tolerance {report['tol']:g}"]
    if "stable_learning_rates" in report:
        lines.append(f"  stable for        0 < eta < {report['stable_learning_rates'][1]:.6g}")
    if "optimal_learning_rate" in report:
        lines.append(f"  optimal eta       {report['optimal_learning_rate']:.6g}  (rate {report['optimal_rate']:.6g})")
    if "joint_optimum" in report:
        o = report["joint_optimum"]
        lines.append(
            f"  joint optimum     eta = {o['learning_rate']:.6g}, beta = {o['beta']:.6g}  (rate {o['rate']:.6g})"
        )
    if "best_interval" in report:
        lo, hi = report["best_interval"]
        lines.append(f"  beta              {report['beta']:g}")
        where = f"for every eta in [{lo:.6g}, {hi:.6g}]" if hi > lo else f"at the single eta = {lo:.6g}"
        lines.append(f"  best rate         {report['best_rate']:.6g} {where}")
    if "fastest_simulated" in report:
        f = report["fastest_simulated"]
        lo_s, hi_s = report["simulated_steps_in_interval"]
        lines.append(
            f"  predicted steps   {steps(report['predicted_steps'])} (asymptotic rate, anywhere in the interval)"
        )
        lines.append(
            f"  simulated steps   {lo_s} .. {hi_s} across the interval; fastest at eta = "
            f"{f['learning_rate']:.6g} ({f['steps']} steps)"
        )
    if "at" in report:
        a = report["at"]
        where = ", ".join(f"{k} = {a[k]:.6g}" for k in ("learning_rate", "beta") if k in a)
        lines.append(f"  at {where}: rate {a['rate']:.6g}")
        lines.append(
            f"    predicted steps {steps(a['predicted_steps'])}   simulated steps {sim_steps(a['simulated_steps'])}"
            + ("   (diverged)" if a.get("diverged") else "")
        )
        for m in a.get("modes", []):
            lines.append(
                f"    mode sigma^2 = {m['sigma2']:g}: {m['regime']}, eigenvalues {', '.join(m['eigenvalues'])},"
                f" |lambda| = {m['radius']:.6g}, max_t<=1000 ||R^t|| = "
                f"{'overflows' if m['max_power_norm_1000'] is None else format(m['max_power_norm_1000'], '.6g')}"
            )
        if "heavy_ball" in a:
            hb = a["heavy_ball"]
            lines.append(
                f"    same iterates as heavy ball / optax sgd(learning_rate={hb['learning_rate']:.6g}, "
                f"momentum={hb['momentum']:.6g})"
            )
    return "\n".join(lines)
