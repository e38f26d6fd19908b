"""GD figures: the rate against the learning rate (the course's Figure 1, EECS 182 Sp23 HW2 Q1) and steps to tolerance
over (η, σ²).

Contract: one ``compute_*`` (keyword configuration in, ``xarray.Dataset`` out: sweep summaries from
``sim.linear.sweep.engine`` and closed forms from ``sim.linear.theory`` in float64) and one ``plot_*`` (dataset in,
``matplotlib.figure.Figure`` out, no pyplot state) per figure; ``sim.figures.registry`` registers them. Conventions:
L(w) = ‖y − Xw‖² (no ½), so one mode is multiplied by 1 − 2ησ² per step; ε is the relative-error tolerance from w₀ = 0.

References: EECS 182 Sp25 HW1 Q1 = Sp23 HW2 Q1.
"""

from __future__ import annotations

import jax
import numpy as np
import xarray as xr
from matplotlib.figure import Figure as MplFigure

from sim.core.grid import Grid, parse_axis
from sim.figures.base import (
    DIVERGED_COLOR,
    DOTS,
    HALO,
    NOTE,
    QUICK_CHUNK,
    STAR,
    THIN_HALO,
    Figure,
    log_limits,
    steps_heatmap,
)
from sim.linear import theory
from sim.linear.problems import COURSE_SPECTRUM, COURSE_TOL
from sim.linear.sweep.engine import DEFAULT_CHUNK, sweep

# --------------------------------------------------------------------------------------------------------------
# (a) GD rate against the learning rate (the course's Figure 1, EECS 182 Sp23 HW2 Q1), measured contraction, steps


def compute_gd_rate_vs_lr(
    *, spectrum, learning_rate_max, num, steps, tol, chunk_size=DEFAULT_CHUNK, theory_points=2001, progress=True
) -> xr.Dataset:
    """Closed-form mode factors, rate and asymptotic steps of GD on ``spectrum`` over η ∈ [0, learning_rate_max], and a
    sweep at ``num`` evenly spaced η plus η* (measured contraction and settle steps)."""
    spec = np.asarray(spectrum, dtype=np.float64)
    eta = np.linspace(0.0, learning_rate_max, theory_points)
    with jax.enable_x64():
        eta_star = float(theory.gd_optimal_lr(spec))
        rate = np.asarray(theory.gd_rate(eta, spec))
        curves = {
            "factor": (("mode", "learning_rate_theory"), np.asarray(theory.gd_factor(eta[None, :], spec[:, None]))),
            "theory_rate": ("learning_rate_theory", rate),
            "theory_steps": ("learning_rate_theory", np.asarray(theory.steps_to_tolerance(rate, tol))),
        }
        attrs = {"optimum_learning_rate": eta_star, "stable_learning_rate": float(theory.gd_stable_lr(spec))}
        attrs["rate_star"] = float(theory.gd_optimal_rate(spec))
    lrs = np.union1d(np.linspace(learning_rate_max / num, learning_rate_max, num), [eta_star])
    axis = parse_axis("learning_rate", ",".join(f"{v:.17g}" for v in lrs))
    ds = sweep("gd", Grid((axis,)), steps=steps, tol=tol, spectrum=spec, chunk_size=chunk_size, progress=progress)
    ds = ds.assign_coords(learning_rate_theory=eta, mode=np.arange(spec.size)).assign(
        {**curves, "mode_sigma2": ("mode", spec)}
    )
    return ds.assign_attrs(attrs)


def plot_gd_rate_vs_lr(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(15.0, 4.6), layout="constrained")
    ax, zoom, ax2 = fig.subplots(1, 3, width_ratios=(1.25, 0.8, 1.1))
    eta_star, eta_stable, rate_star, tol = (
        ds.attrs[k] for k in ("optimum_learning_rate", "stable_learning_rate", "rate_star", "tol")
    )
    eta, lr, contraction = ds.learning_rate_theory.values, ds.learning_rate.values, ds.contraction.values
    ok = ~ds.diverged.values
    spec = ", ".join(f"{v:g}" for v in ds.mode_sigma2.values)
    for a in (ax, zoom):
        for i, color in enumerate(("tab:blue", "tab:orange")):
            label = rf"$|1-2\eta\sigma^2|$, $\sigma^2={ds.mode_sigma2.values[i]:g}$"
            a.plot(eta, np.abs(ds.factor.values[i]), color=color, lw=1.4, label=label)
        a.plot(eta, ds.theory_rate, color="black", lw=3, alpha=0.3, label=r"rate $\rho=\max_i|1-2\eta\sigma_i^2|$")
        label = r"simulated $(\|u_t\|/\|u_0\|)^{1/t}$ at the settle step"
        a.plot(lr[ok], contraction[ok], **DOTS, mec="black", label=label)
        label = rf"diverged: growth $>$ (bound $10^{{{np.log10(ds.attrs['divergence_bound']):.0f}}}$)$^{{1/t}}$"
        a.plot(lr[~ok], contraction[~ok], "x", ms=4, color=DIVERGED_COLOR, label=label)
        a.axhline(1.0, color="0.5", lw=0.8, ls=":")
        _mark_lrs(a, eta_star, eta_stable, labels=a is ax)
    ax.set(xlim=(0, eta[-1]), ylim=(0, 1.55), xlabel=r"learning rate $\eta$", ylabel=r"factor, rate $\rho(\eta)$")
    ax.set_title(rf"GD on $L=\|y-Xw\|^2$, $\sigma^2\in\{{{spec}\}}$: mode factors $1-2\eta\sigma^2$")
    ax.legend(loc="upper left")
    label = rf"$\eta^*={eta_star:.4f}$, $\rho^*=(\kappa^2-1)/(\kappa^2+1)={rate_star:.4f}$"
    (star,) = zoom.plot([eta_star], [rate_star], **STAR, label=label)
    zoom.set(xlim=(0.18, 0.205), ylim=(0.95, 1.03), xlabel=r"learning rate $\eta$")
    zoom.set_title(r"zoom: the two curves cross at $\eta^*=1/(\sigma_\ell^2+\sigma_s^2)$")
    zoom.legend(handles=[star], loc="upper left")
    note = "half the initial error is in each mode, so at finite t the\n"
    note += r"measured $(\|u_t\|/\|u_0\|)^{1/t}\approx\rho\,2^{-1/(2t)}$ sits just below $\rho$"
    zoom.text(0.03, 0.03, note, transform=zoom.transAxes, **NOTE)

    settle = ds.settle_step.values
    reached = ok & (settle > 0)
    ax2.plot(eta, ds.theory_steps, color="black", lw=1.4, label=r"asymptotic $\lceil\log\varepsilon/\log\rho\rceil$")
    ax2.plot(lr[reached], settle[reached], **DOTS, mec="tab:green", label="simulated settle step")
    i_star = int(np.argmin(np.abs(lr - eta_star)))
    ax2.plot([eta_star], [settle[i_star]], **STAR, label=rf"$\eta^*$: {settle[i_star]} steps (course: 346)")
    _mark_lrs(ax2, eta_star, eta_stable, labels=False)
    ax2.set(xlim=(0, eta[-1]), ylim=(100, 1e5), yscale="log", xlabel=r"learning rate $\eta$")
    ax2.set(ylabel=rf"steps to $\varepsilon={tol:g}$")
    ax2.set_title(f"steps to relative error {tol:g} from $w_0=0$ (T = {ds.attrs['steps']})")
    ax2.legend(loc="upper right")
    note = "simulated counts lie below the asymptotic line where one mode dominates:\n"
    note += r"$e_t\approx\rho^t/\sqrt{2}$ reaches $\varepsilon$ up to $\log\sqrt{2}\,/\,|\log\rho|$ steps early"
    ax2.text(0.03, 0.03, note, transform=ax2.transAxes, **NOTE)
    return fig


def _mark_lrs(ax, eta_star, eta_stable, labels=True):
    ax.axvline(eta_star, color="tab:green", lw=1.0, ls="--")
    ax.axvline(eta_stable, color=DIVERGED_COLOR, lw=1.0, ls="-.")
    if labels:
        kw = {"transform": ax.get_xaxis_transform(), "rotation": 90, "va": "center", "fontsize": 8}
        ax.text(eta_star, 0.3, r"$\eta^*=1/(\sigma_\ell^2+\sigma_s^2)$ ", ha="right", color="tab:green", **kw)
        ax.text(eta_stable, 0.3, r" stability limit $1/\sigma_\ell^2$", ha="left", color=DIVERGED_COLOR, **kw)


# --------------------------------------------------------------------------------------------------------------
# (b) GD steps to tolerance over (η, σ²)


def compute_gd_steps_heatmap(
    *, learning_rate, sigma2, steps, tol, chunk_size=DEFAULT_CHUNK, progress=True
) -> xr.Dataset:
    """GD sweep over a (learning_rate, sigma2) grid of single-mode problems."""
    grid = Grid((parse_axis("learning_rate", learning_rate), parse_axis("sigma2", sigma2)))
    return sweep("gd", grid, steps=steps, tol=tol, chunk_size=chunk_size, progress=progress)


def plot_gd_steps_heatmap(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(7.6, 6.0), layout="constrained")
    ax = fig.subplots()
    eta, s2, tol = ds.learning_rate.values, ds.sigma2.values, ds.attrs["tol"]
    mesh, handles = steps_heatmap(ax, ds, "learning_rate", "sigma2")
    fig.colorbar(mesh, ax=ax, label=rf"steps to $\varepsilon={tol:g}$ (settle step)")
    line = np.geomspace(eta[0], eta[-1], 200)
    for n in (10, 100, 1000, 10000):
        # theory: one GD mode is below ε after n steps iff |1 − 2ησ²| < ε^(1/n): a band around η = 1/(2σ²)
        width = tol ** (1 / n)
        for sign in (-1, 1):
            (iso,) = ax.plot(line, (1 + sign * width) / (2 * line), "w", lw=0.8, ls=(0, (1, 2)), path_effects=THIN_HALO)
        c = (1 - width) / 2  # label the lower curve σ² = c/η where it enters the plot
        x = max(eta[0] * 1.25, c / (s2[-1] * 0.6))
        ax.text(x, c / x, f" n = {n}", color="white", fontsize=8, va="bottom", path_effects=THIN_HALO)
    iso.set_label(r"theory: $|1-2\eta\sigma^2|=\varepsilon^{1/n}$ (within n steps between each pair)")
    (stab,) = ax.plot(line, 1 / line, "w", lw=1.8, path_effects=HALO, label=r"stability limit $\eta=1/\sigma^2$")
    label = r"fastest $\eta=1/(2\sigma^2)$ (1 step)"
    (fast,) = ax.plot(line, 1 / (2 * line), "w", lw=1.6, ls="--", path_effects=HALO, label=label)
    ax.set(xscale="log", yscale="log", xlim=log_limits(eta), ylim=log_limits(s2))
    ax.set(xlabel=r"learning rate $\eta$", ylabel=r"squared singular value $\sigma^2$ (one mode)")
    title = rf"GD steps to relative error $\varepsilon={tol:g}$ on $L=\|y-Xw\|^2$ (mode factor $1-2\eta\sigma^2$)"
    shape = f"{ds.sizes['learning_rate']}×{ds.sizes['sigma2']}"
    ax.set_title(f"{title}\nfloat32 sweep, {shape} points, T = {ds.attrs['steps']} steps")
    fig.legend(handles=[stab, fast, iso, *handles], loc="outside lower center", ncols=2)
    return fig


# --------------------------------------------------------------------------------------------------------------
# The registered figures (``sim.figures.registry`` collects them)

_GD_RATE = {"spectrum": list(COURSE_SPECTRUM), "learning_rate_max": 0.24, "steps": 40000, "tol": COURSE_TOL}
_STEPS = {"steps": 20000, "tol": COURSE_TOL}
FIGURES = {
    "gd_rate_vs_lr": Figure(
        filename="gd_rate_vs_lr.png",
        summary="GD mode factors |1 - 2 eta sigma2| and rate vs eta on sigma2 in {5, 0.05} (the course's Figure 1, "
        "EECS 182 Sp23 HW2 Q1), "
        "with the simulated contraction and steps to tolerance",
        full=_GD_RATE | {"num": 96},
        quick=_GD_RATE | {"num": 24, "chunk_size": QUICK_CHUNK},
        compute_fn=compute_gd_rate_vs_lr,
        plot=plot_gd_rate_vs_lr,
    ),
    "gd_steps_heatmap": Figure(
        filename="gd_steps_heatmap.png",
        summary="GD steps to tolerance over (eta, sigma2), one mode per point, with the stability limit "
        "eta = 1/sigma2, the fastest eta = 1/(2 sigma2) and closed-form iso-step curves",
        full=_STEPS | {"learning_rate": "log:1e-3:10:401", "sigma2": "log:1e-2:1e2:401"},
        quick=_STEPS | {"learning_rate": "log:1e-3:10:41", "sigma2": "log:1e-2:1e2:41", "chunk_size": QUICK_CHUNK},
        compute_fn=compute_gd_steps_heatmap,
        plot=plot_gd_steps_heatmap,
    ),
}
