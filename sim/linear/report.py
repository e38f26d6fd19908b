"""Hyperparameter calculators: closed-form answers printed beside the sweep engine's simulated counts.

Contract: :func:`gd_report` and :func:`momentum_report` return plain dicts (JSON-ready) for a spectrum and a
tolerance; every predicted number (from ``sim.linear.theory``) comes with the simulated one (from
``sim.linear.sweep.engine`` in float64) so the two are always side by side. :func:`format_report` turns a report into
readable text. ``sim theory`` prints them.

Every closed form is evaluated in float64, and predicted steps ⌈log ε / log ρ⌉ take log ρ from the gap 1 − ρ written
without cancellation, so they stay exact for ρ within 1e-8 of 1 (κ² = 1e8). Input that float64 cannot answer is an
:class:`~sim.core.validate.InputError` naming its parameter, raised before anything is simulated: a σ² outside
:data:`SPECTRUM_RANGE` (the closed forms would overflow), a rate below 1 that rounds to 1 (the spectrum's best rate,
or the rate at the given η or β), closed forms that overflow at the given η or β. The simulation runs on the spectrum
scaled by a power of two (the error iterates are the same to the bit), capped at :data:`MAX_SIM_STEPS` steps.

References: EECS 182 Sp25 HW1 Q1 (GD), Sp23 HW2 Q2 (momentum); Polyak (1964) for the joint optimum.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from sim.core.grid import Axis, Grid
from sim.core.validate import InputError, check_in_interval
from sim.linear import dynamics, theory
from sim.linear.problems import from_spectrum
from sim.linear.sweep import engine
from sim.linear.sweep.spec import check_hyperparameter

INTERVAL_POINTS = 257  # η values simulated across a flat-rate interval
MAX_SIM_STEPS = 1_000_000
SPECTRUM_RANGE = (2.0**-1000, 2.0**1000)
"""σ_i² the closed forms take (≈ 9.3e-302 to 1.1e301): η ~ 1/σ² and 8σ² stay finite with room to spare."""


# --------------------------------------------------------------------------------------------------------------
# Gaps 1 − ρ in float64, without the cancellation of 1 − ρ where ρ is within 1e-8 of 1


def _steps(gap: float, tol: float) -> float | None:
    """Predicted steps ⌈log ε / log ρ⌉ (``theory.steps_to_tolerance``) from the gap 1 − ρ, in float64.

    log ρ is taken as log1p(−gap): with ρ = 1 − 2e-8 the log of the rounded ρ would carry a relative error of
    eps/gap ≈ 5e-9, whole steps of a count near 3e8. ``None`` for ρ ≥ 1 (gap ≤ 0).
    """
    if not gap > 0:
        return None
    if gap >= 1:  # ρ = 0: one step
        return 1.0
    return float(math.ceil(math.log(tol) / math.log1p(-gap)))


def _gd_optimal_gap(smax: float, smin: float) -> float:
    """1 − ρ* = 2σ²_min/(σ²_max + σ²_min) for GD's optimal rate ρ* = (κ² − 1)/(κ² + 1)."""
    return 2 * smin / (smax + smin)


def _gd_gap(learning_rate: float, smax: float, smin: float) -> float:
    """1 − max_i |1 − 2ησ_i²| = min(2ησ²_min, 2 − 2ησ²_max); ≤ 0 when η ≥ 1/σ²_max (unstable)."""
    return min(2 * learning_rate * smin, 2 - 2 * learning_rate * smax)


def _momentum_optimal_gap(smax: float, smin: float) -> float:
    """1 − ρ for the joint momentum optimum ρ = (σ_max − σ_min)/(σ_max + σ_min): 2σ_min/(σ_max + σ_min)."""
    return 2 * math.sqrt(smin) / (math.sqrt(smax) + math.sqrt(smin))


def _momentum_interval_gap(beta: float, smax: float, smin: float, rate: float, overlap: bool) -> float:
    """1 − ρ for the best rate of ``theory.momentum_best_interval``.

    Overlapping intervals: ρ = √(1 − β), so 1 − ρ = β/(1 + √(1 − β)). Otherwise ρ is the larger root of
    λ² − tλ + (1 − β) with t = (2 − β)(1 − g), g = 2σ²_min/(σ²_max + σ²_min); the characteristic polynomial at 1 is
    (1 − ρ)(1 − (1 − β)/ρ) = 1 − t + (1 − β) = (2 − β)g.
    """
    if overlap:
        return beta / (1 + math.sqrt(1 - beta))
    return (2 - beta) * _gd_optimal_gap(smax, smin) / (1 - (1 - beta) / rate)


def _momentum_mode_gaps(learning_rate: float, beta: float, spectrum: np.ndarray) -> tuple[np.ndarray, ...]:
    """1 − |λ|_max of each mode's momentum matrix R (see ``theory.momentum_eigenvalues``), from p(±1).

    p(λ) = λ² − tr λ + det (tr = 2 − β − 2ηβσ², det = 1 − β). Complex pair: 1 − √det = β/(1 + √det). Real
    roots, tr ≥ 0: the larger λ₊ satisfies (1 − λ₊)(1 − λ₋) = p(1) = 2ηβσ². tr < 0: the larger in modulus, λ₋ < 0,
    satisfies (1 + λ₋)(1 + λ₊) = p(−1) = 2(2 − β) − 2ηβσ². λ₊λ₋ = det gives the other root without cancellation.

    Returns:
      ``(gaps, positive, complex_pair)``: the gaps (not finite where tr² overflows), where each is positive in exact
      arithmetic (complex, or real with tr ≥ 0: a 0 there is an underflow, not a rate of exactly 1), and where the
      eigenvalues are a complex pair.
    """
    s = np.asarray(spectrum, dtype=np.float64)
    eta, beta = float(learning_rate), float(beta)
    det = 1 - beta
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # overflow is refused by the caller
        tr = 2 - beta - 2 * eta * beta * s
        disc = tr * tr - 4 * det
        sq = np.sqrt(np.maximum(disc, 0))
        big = (tr + np.where(tr >= 0, sq, -sq)) / 2
        other = np.where(big == 0, 0.0, det / np.where(big == 0, 1.0, big))
        pos = 2 * eta * beta * s / (1 - other)
        neg = (2 * (2 - beta) - 2 * eta * beta * s) / (1 + other)
    gaps = np.where(disc < 0, beta / (1 + math.sqrt(det)), np.where(tr >= 0, pos, neg))
    return gaps, (disc < 0) | (tr >= 0), disc < 0


def _require_resolved(param: str, gap: float, subject: str) -> None:
    """Refuse a rate ρ = 1 − gap < 1 that rounds to 1 in float64: neither its closed forms nor a float64 run resolve
    it. ``gap`` must be positive in exact arithmetic (a 0 is an underflow)."""
    if 1 - gap == 1:
        raise InputError(
            param,
            f"{subject} 1 - {gap:.3g}, which rounds to 1 in float64: neither the closed forms nor a float64 "
            "simulation can resolve it",
        )


def _require_finite(param: str, values: dict) -> None:
    """Refuse closed forms that overflow float64 (named by ``values``'s keys)."""
    bad = [name for name, v in values.items() if not np.all(np.isfinite(v))]
    if bad:
        raise InputError(param, f"the closed forms overflow float64 here ({', '.join(bad)})")


# --------------------------------------------------------------------------------------------------------------
# Simulated counts beside the predictions


def _simulate(method: str, spectrum, tol: float, points: dict[str, list[float]], predicted: float | None) -> dict:
    """Simulated settle steps (float64) at the given points; T is a generous multiple of the prediction.

    The run is made on the spectrum scaled by the power of two 2⁻ᵏ that brings σ²_max into [0.5, 1), with every η
    scaled by 2ᵏ: the error iterates are bit-identical (multiplying by a power of two commutes with rounding), while
    the velocity, ∝ σ², stays of order 1, far from the engine's divergence bound on the state norm (a momentum run
    on σ² = 1e12 would otherwise pass it and read as diverged).
    """
    steps = int(min(MAX_SIM_STEPS, 4 * predicted + 200)) if predicted is not None else 2000
    k = math.frexp(float(np.max(spectrum)))[1]
    scaled = {
        n: [math.ldexp(float(v), k) for v in vals] if n == "learning_rate" else vals for n, vals in points.items()
    }
    grid = Grid(tuple(Axis(name, np.asarray(v, dtype=np.float64), "calculator") for name, v in scaled.items()))
    with jax.enable_x64(True):
        ds = engine.sweep(
            method,
            grid,
            steps=steps,
            tol=tol,
            spectrum=np.ldexp(np.asarray(spectrum, dtype=np.float64), -k),
            dtype="float64",
            chunk_size=64,
            progress=False,
        )
    return {
        "steps_run": steps,
        "settle_step": ds.settle_step.values.ravel().tolist(),
        "max_error": ds.max_error.values.ravel().tolist(),
        "diverged": ds.diverged.values.ravel().tolist(),
    }


def _at_point(method: str, spectrum, tol: float, rate: float, gap: float, **point: float) -> dict:
    """One point's closed-form rate and predicted steps beside its simulated run."""
    predicted = _steps(gap, tol)
    sim = _simulate(method, spectrum, tol, {k: [v] for k, v in point.items()}, predicted)
    return {
        **point,
        "rate": rate,
        "predicted_steps": predicted,
        "simulated_steps": sim["settle_step"][0],
        "simulated_steps_run": sim["steps_run"],
        "diverged": sim["diverged"][0],
        "simulated_max_error": sim["max_error"][0],
    }


def _check(spectrum, tol, learning_rate=None, beta=None):
    problem = from_spectrum(spectrum)
    lo, hi = SPECTRUM_RANGE
    outside = (problem.spectrum < lo) | (problem.spectrum > hi)
    if np.any(outside):
        raise InputError(
            "spectrum",
            f"{problem.spectrum[outside][0]:g} is outside [{lo:.2g}, {hi:.2g}], where the closed forms "
            "(1/sigma^2, 8 sigma^2) stay finite in float64",
        )
    check_in_interval("tol", tol, 0.0, 1.0, closed_high=False)
    if learning_rate is not None:
        check_hyperparameter("learning_rate", learning_rate)
    if beta is not None:
        check_hyperparameter("beta", beta)
    return problem.spectrum


def _condition(s: np.ndarray) -> str:
    return f"sigma^2_max/sigma^2_min = {np.max(s) / np.min(s):.3g} makes"


def gd_report(spectrum, tol: float, learning_rate: float | None = None) -> dict:
    """GD on one problem: stability range, optimal η and rate, predicted and simulated steps (at η* or at η).

    Every closed form is evaluated in float64; the predicted steps come from the gap 1 − ρ (:func:`_steps`), at η* the
    closed form 2σ²_min/(σ²_max + σ²_min), exact even for κ² = 1e8.
    """
    s = _check(spectrum, tol, learning_rate)
    smax, smin = float(np.max(s)), float(np.min(s))
    _require_resolved("spectrum", _gd_optimal_gap(smax, smin), f"{_condition(s)} gd's best rate")
    with jax.enable_x64(True):
        s64 = jnp.asarray(s, dtype=jnp.float64)
        eta_star = float(theory.gd_optimal_lr(s64))
        report = {
            "method": "gd",
            "spectrum": s.tolist(),
            "tol": tol,
            "stable_learning_rates": [0.0, float(theory.gd_stable_lr(s64))],
            "optimal_learning_rate": eta_star,
            "optimal_rate": float(theory.gd_optimal_rate(s64)),
        }
        eta = eta_star if learning_rate is None else float(learning_rate)
        rate = float(theory.gd_rate(jnp.float64(eta), s64))
    _require_finite("spectrum", {k: report[k] for k in ("stable_learning_rates", "optimal_learning_rate")})
    if learning_rate is None:
        gap = _gd_optimal_gap(smax, smin)
    else:
        gap = _gd_gap(eta, smax, smin)
        _require_finite("learning_rate", {"rate": rate})
        if 2 - 2 * eta * smax > 0:  # stable: the gap is 2ησ²_min > 0 or at least one ulp of 2
            _require_resolved("learning_rate", gap, f"eta = {eta:g} makes the rate")
    report["at"] = _at_point("gd", s, tol, rate, gap, learning_rate=eta)
    return report


def momentum_report(spectrum, tol: float, beta: float | None = None, learning_rate: float | None = None) -> dict:
    """EMA momentum on one problem.

    Without ``beta``: the joint optimum (η, β, ρ). With ``beta``: the stable η range, the best-rate η interval and
    which η in it is actually fastest in simulation. With ``beta`` and ``learning_rate``: that point's regime per
    mode, eigenvalues, rate and transient growth. Every case reports predicted and simulated steps; every closed
    form is evaluated in float64.
    """
    if learning_rate is not None and beta is None:
        raise InputError("beta", "classifying a point needs both --eta and --beta")
    s = _check(spectrum, tol, learning_rate, beta)
    smax, smin = float(np.max(s)), float(np.min(s))
    report = {"method": "momentum", "spectrum": s.tolist(), "tol": tol}
    if beta is None:
        gap = _momentum_optimal_gap(smax, smin)
        _require_resolved("spectrum", gap, f"{_condition(s)} momentum's best rate")
        eta, b, rate = theory.momentum_optimum(s)
        _require_finite("spectrum", {"joint optimum": [eta, b, rate]})
        report["joint_optimum"] = {"learning_rate": eta, "beta": b, "rate": rate}
        report["at"] = _at_point("momentum", s, tol, rate, gap, learning_rate=eta, beta=b)
        return report
    beta = float(beta)
    with jax.enable_x64(True):
        s64 = jnp.asarray(s, dtype=jnp.float64)
        stable = float(np.min(theory.momentum_stable_lr(jnp.float64(beta), s64)))
        lo, hi, best = (float(v) for v in theory.momentum_best_interval(jnp.float64(beta), s64))
        lowest, _ = theory.momentum_repeated_root_lrs(beta, smin)
        _, highest = theory.momentum_repeated_root_lrs(beta, smax)
        overlap = bool(lowest <= highest)  # as in theory.momentum_best_interval
    _require_finite("beta", {"stable learning rates": stable, "best interval": [lo, hi, best]})
    best_gap = _momentum_interval_gap(beta, smax, smin, best, overlap)
    if overlap:
        _require_resolved("beta", best_gap, f"beta = {beta:g} makes the best rate")
    else:
        _require_resolved("spectrum", best_gap, f"{_condition(s)} at beta = {beta:g} the best rate")
    report["beta"] = beta
    report["stable_learning_rates"] = [0.0, stable]
    report["best_rate"] = best
    report["best_interval"] = [lo, hi]
    if learning_rate is None:
        etas = np.linspace(lo, hi, INTERVAL_POINTS) if hi > lo else np.array([lo])
        predicted = _steps(best_gap, tol)
        sim = _simulate("momentum", s, tol, {"learning_rate": etas, "beta": [beta]}, predicted)
        steps = np.array(sim["settle_step"], dtype=float)
        steps[steps < 0] = np.inf
        i = int(np.argmin(steps))
        reached = np.isfinite(steps)
        report["predicted_steps"] = predicted
        report["simulated_steps_run"] = sim["steps_run"]
        report["simulated_steps_in_interval"] = [
            int(np.min(steps)) if reached.any() else None,
            int(np.max(steps)) if reached.all() else None,
        ]
        report["fastest_simulated"] = {
            "learning_rate": float(etas[i]),
            "steps": int(steps[i]) if reached[i] else None,
        }
        return report
    eta = float(learning_rate)
    gaps, positive, complex_pair = _momentum_mode_gaps(eta, beta, s)
    _require_finite("learning_rate", {"trace^2 of R": gaps})  # 2ηβσ² or its square overflows
    worst = int(np.argmin(gaps))
    if positive[worst]:
        _require_resolved(
            "beta" if complex_pair[worst] else "learning_rate",
            float(gaps[worst]),
            f"eta = {eta:g}, beta = {beta:g} make the rate of mode sigma^2 = {s[worst]:g}",
        )
    with jax.enable_x64(True):
        s64 = jnp.asarray(s, dtype=jnp.float64)
        eta64, beta64 = jnp.float64(eta), jnp.float64(beta)
        rate = float(theory.momentum_rate(eta64, beta64, s64))
        regimes = np.atleast_1d(np.asarray(theory.momentum_regime(eta64, beta64, s64)))
        eig = np.asarray(theory.momentum_eigenvalues(eta64, beta64, s64))
        growth = np.asarray(theory.transient_growth(theory.momentum_matrix(eta64, beta64, s64), 1000))
    _require_finite("learning_rate", {"rate": rate, "eigenvalues": eig})
    report["at"] = _at_point("momentum", s, tol, rate, float(gaps[worst]), learning_rate=eta, beta=beta)
    report["at"]["modes"] = [
        {
            "sigma2": float(si),
            "regime": theory.REGIMES[int(r)],
            "eigenvalues": [{"real": float(z.real) + 0.0, "imag": float(z.imag) + 0.0} for z in e],  # no -0.0
            "radius": float(np.max(np.abs(e))),
            "max_power_norm_1000": float(g) if np.isfinite(g) else None,
        }
        for si, r, e, g in zip(s, regimes, eig.reshape(len(s), 2), growth.reshape(len(s)), strict=True)
    ]
    conv = dynamics.ema_to_heavy_ball(eta, beta)
    report["at"]["heavy_ball"] = {"learning_rate": conv[0], "momentum": conv[1]}
    return report


def _eigenvalues_text(eigenvalues: list[dict]) -> str:
    """``a, b`` for two real eigenvalues, ``re ± im i`` for a complex pair."""
    (a, b) = eigenvalues
    if a["imag"] == 0 and b["imag"] == 0:
        return f"{a['real']:.6g}, {b['real']:.6g}"
    return f"{a['real']:.6g} ± {abs(a['imag']):.6g}i"


def _rate_text(rate: float) -> str:
    """The rate to 6 digits, with 1 − ρ beside it when those digits read 1 (1 − ρ is exact there: Sterbenz)."""
    text = f"{rate:.6g}"
    return text + (f" (1 - {1 - rate:.3g})" if text == "1" and rate < 1 else "")


def format_report(report: dict) -> str:
    """Readable text for a report from :func:`gd_report` or :func:`momentum_report`."""

    def steps(v):
        return "never (rate >= 1)" if v is None else f"{v:.0f}"

    def sim_steps(v, run):
        return f"not reached within the {run:,} simulated steps" if v is None or v < 0 else str(v)

    lines = [f"{report['method']} on spectrum sigma^2 = {report['spectrum']}, tolerance {report['tol']:g}"]
    if "stable_learning_rates" in report:
        lines.append(f"  stable for        0 < eta < {report['stable_learning_rates'][1]:.6g}")
    if "optimal_learning_rate" in report:
        lines.append(
            f"  optimal eta       {report['optimal_learning_rate']:.6g}  (rate {_rate_text(report['optimal_rate'])})"
        )
    if "joint_optimum" in report:
        o = report["joint_optimum"]
        lines.append(
            f"  joint optimum     eta = {o['learning_rate']:.6g}, beta = {o['beta']:.6g}"
            f"  (rate {_rate_text(o['rate'])})"
        )
    if "best_interval" in report:
        lo, hi = report["best_interval"]
        lines.append(f"  beta              {report['beta']:g}")
        where = f"for every eta in [{lo:.6g}, {hi:.6g}]" if hi > lo else f"at the single eta = {lo:.6g}"
        lines.append(f"  best rate         {_rate_text(report['best_rate'])} {where}")
    if "fastest_simulated" in report:
        f = report["fastest_simulated"]
        lo_s, hi_s = report["simulated_steps_in_interval"]
        run = report["simulated_steps_run"]
        lines.append(
            f"  predicted steps   {steps(report['predicted_steps'])} (asymptotic rate, anywhere in the interval)"
        )
        if f["steps"] is None:
            lines.append(f"  simulated steps   not reached within the {run:,} simulated steps anywhere in the interval")
        else:
            lines.append(
                f"  simulated steps   {lo_s} .. {sim_steps(hi_s, run)} across the interval; fastest at eta = "
                f"{f['learning_rate']:.6g} ({f['steps']} steps)"
            )
    if "at" in report:
        a = report["at"]
        where = ", ".join(f"{k} = {a[k]:.6g}" for k in ("learning_rate", "beta") if k in a)
        lines.append(f"  at {where}: rate {_rate_text(a['rate'])}")
        simulated = "diverged" if a.get("diverged") else sim_steps(a["simulated_steps"], a["simulated_steps_run"])
        lines.append(f"    predicted steps {steps(a['predicted_steps'])}   simulated steps {simulated}")
        for m in a.get("modes", []):
            lines.append(
                f"    mode sigma^2 = {m['sigma2']:g}: {m['regime']}, eigenvalues {_eigenvalues_text(m['eigenvalues'])},"
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
