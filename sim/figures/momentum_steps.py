"""Steps-to-tolerance figures for momentum: the (η, β) heat map on the course's spectrum and the exact counts against η
beside GD's.

Contract: one ``compute_*`` (keyword configuration in, ``xarray.Dataset`` out) and one ``plot_*`` (dataset in,
``matplotlib.figure.Figure`` out, no pyplot state) per figure; ``sim.figures.registry`` registers them. The counts are
float32 sweeps (``sim.linear.sweep.engine``), the curves closed forms (``sim.linear.theory``, float64).

Conventions (glossary in ``sim``): L(w) = ‖y − Xw‖² (no ½); momentum is the course's EMA form
z ← (1 − β) z + β ∇L, w ← w − η z. Between a mode's two repeated-root learning rates its roots are complex with
modulus √(1 − β); the course's example (β = 0.1 on σ² ∈ {5, 0.05}) gives the interval [0.2633, 3.797].

References: EECS 182 Sp23 HW2 Q1–Q2.
"""

from __future__ import annotations

import jax
import numpy as np
import xarray as xr
from matplotlib.figure import Figure as MplFigure

from sim.core.grid import Grid, list_axis, parse_axis
from sim.figures.base import DOTS, HALO, QUICK_CHUNK, STAR, Figure, log_limits, steps_heatmap
from sim.linear import theory
from sim.linear.problems import COURSE_BETA, COURSE_SPECTRUM, COURSE_TOL
from sim.linear.sweep.engine import DEFAULT_CHUNK, sweep

# --------------------------------------------------------------------------------------------------------------
# (c) EMA momentum steps to tolerance over (η, β) on the spectrum {5, 0.05}


def compute_momentum_steps_heatmap(
    *, learning_rate, beta, spectrum, steps, tol, chunk_size=DEFAULT_CHUNK, theory_points=600, progress=True
) -> xr.Dataset:
    """EMA momentum sweep over (learning_rate, beta) on one problem with ``spectrum``, plus the closed-form
    repeated-root and stability learning rates of each mode on a fine β grid."""
    grid = Grid((parse_axis("learning_rate", learning_rate), parse_axis("beta", beta)))
    spec = np.asarray(spectrum, dtype=np.float64)
    ds = sweep("momentum", grid, steps=steps, tol=tol, spectrum=spec, chunk_size=chunk_size, progress=progress)
    low, high = log_limits(ds.beta.values)  # the plotted range, β ≤ 1
    b = np.geomspace(low, min(high, 1.0), theory_points)
    dims = ("mode", "beta_theory")
    with jax.enable_x64():
        lo, hi = theory.momentum_repeated_root_lrs(b[None, :], spec[:, None])
        curves = {
            "repeated_root_lo": (dims, np.asarray(lo)),
            "repeated_root_hi": (dims, np.asarray(hi)),
            "stable_lr": (dims, np.asarray(theory.momentum_stable_lr(b[None, :], spec[:, None]))),
        }
        # the course's interval: every mode complex, from σ_min²'s smaller to σ_max²'s larger repeated root
        example = [
            float(theory.momentum_repeated_root_lrs(COURSE_BETA, spec.min())[0]),
            float(theory.momentum_repeated_root_lrs(COURSE_BETA, spec.max())[1]),
        ]
    opt = dict(
        zip(("optimum_learning_rate", "optimum_beta", "optimum_rate"), theory.momentum_optimum(spec), strict=True)
    )
    ds = ds.assign_coords(beta_theory=b, mode=np.arange(spec.size)).assign({**curves, "mode_sigma2": ("mode", spec)})
    return ds.assign_attrs(opt, example_beta=COURSE_BETA, example_interval=example)


def plot_momentum_steps_heatmap(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(8.4, 6.6), layout="constrained")
    ax = fig.subplots()
    eta, beta, b, tol = ds.learning_rate.values, ds.beta.values, ds.beta_theory.values, ds.attrs["tol"]
    mesh, handles = steps_heatmap(ax, ds, "learning_rate", "beta")
    fig.colorbar(mesh, ax=ax, label=rf"steps to $\varepsilon={tol:g}$ (settle step)")
    lines = []
    for i, color in enumerate(("white", "#ff9f1c")):
        s2, kw = ds.mode_sigma2.values[i], {"color": color, "path_effects": HALO}
        (rr,) = ax.plot(ds.repeated_root_lo[i], b, lw=1.5, **kw, label=rf"$\sigma^2={s2:g}$: repeated roots")
        ax.plot(ds.repeated_root_hi[i], b, lw=1.5, **kw)
        (st,) = ax.plot(ds.stable_lr[i], b, lw=1.4, ls="--", **kw, label=rf"$\sigma^2={s2:g}$: stability limit")
        lines += [rr, st]
    (lo, hi), b_ex = ds.attrs["example_interval"], ds.attrs["example_beta"]
    label = rf"course (Sp23 HW2 Q2): $\beta={b_ex:g}$, any $\eta\in[{lo:.4f}, {hi:.3f}]$ "
    label += rf"has $\rho=\sqrt{{{1 - b_ex:g}}}$"
    kw = {"color": "#ff4fd8", "lw": 2.2, "marker": "|", "ms": 12, "mew": 2.2, "path_effects": HALO}
    (ex,) = ax.plot([lo, hi], [b_ex, b_ex], **kw, label=label)
    settle = np.where(ds.settle_step.values > 0, ds.settle_step.values, np.iinfo(np.int32).max)
    i, j = np.unravel_index(np.argmin(settle), settle.shape)
    label = rf"fastest grid point: {settle[i, j]} steps ($\eta={eta[i]:.3g}$, $\beta={beta[j]:.3g}$)"
    (best,) = ax.plot([eta[i]], [beta[j]], "o", ms=5, color="white", mec="black", mew=0.8, zorder=5, label=label)
    opt_lr, opt_beta, opt_rate = (ds.attrs[k] for k in ("optimum_learning_rate", "optimum_beta", "optimum_rate"))
    label = rf"theory optimum ($\eta={opt_lr:.3g}$, $\beta={opt_beta:.3f}$): "
    label += rf"$\rho=\frac{{\kappa-1}}{{\kappa+1}}={opt_rate:.4f}$"
    kw = {"ms": 17, "mfc": "none", "mec": "gold", "mew": 1.6, "path_effects": HALO}
    (opt,) = ax.plot([opt_lr], [opt_beta], "*", **kw, label=label)
    ax.set(xscale="log", yscale="log", xlim=log_limits(eta), ylim=log_limits(beta))
    ax.set(xlabel=r"learning rate $\eta$", ylabel=r"EMA momentum weight $\beta$ of the new gradient")
    spec = ", ".join(f"{v:g}" for v in ds.mode_sigma2.values)
    title = r"EMA momentum $z\leftarrow(1-\beta)z+\beta\nabla L$, $w\leftarrow w-\eta z$, $L=\|y-Xw\|^2$, "
    title += rf"$\sigma^2\in\{{{spec}\}}$" + f"\nsteps to relative error {tol:g} (T = {ds.attrs['steps']})"
    title += "\nbetween a mode's two repeated-root curves its roots are complex, with modulus " + r"$\sqrt{1-\beta}$"
    ax.set_title(title)
    fig.legend(handles=[*lines, ex, opt, best, *handles], loc="outside lower center", ncols=2)
    return fig


# --------------------------------------------------------------------------------------------------------------
# (g) Steps to tolerance against η for GD and momentum on the course's example: simulated and predicted


def compute_steps_vs_lr(
    *,
    spectrum,
    beta,
    learning_rate_gd,
    learning_rate_momentum,
    num_interval,
    steps,
    tol,
    chunk_size=DEFAULT_CHUNK,
    progress=True,
) -> xr.Dataset:
    """Settle steps of GD (η axis ``learning_rate_gd`` plus η*) and of EMA momentum at ``beta`` (η axis
    ``learning_rate_momentum`` plus ``num_interval`` evenly spaced η inside the best-rate interval) on ``spectrum``
    (float32 sweeps), beside the asymptotic prediction ⌈log ε / log ρ(η)⌉ (``theory.steps_to_tolerance``)."""
    spec = np.asarray(spectrum, dtype=np.float64)
    with jax.enable_x64(True):
        eta_star = float(theory.gd_optimal_lr(spec))
        interval = [
            float(theory.momentum_repeated_root_lrs(beta, spec.min())[0]),
            float(theory.momentum_repeated_root_lrs(beta, spec.max())[1]),
        ]
    gd_lrs = np.union1d(parse_axis("learning_rate", learning_rate_gd).values, [eta_star])
    mom_lrs = np.union1d(
        parse_axis("learning_rate", learning_rate_momentum).values, np.linspace(*interval, num_interval)
    )
    kw = {"steps": steps, "tol": tol, "spectrum": spec, "chunk_size": chunk_size, "progress": progress}
    gd = sweep("gd", Grid((list_axis("learning_rate", gd_lrs),)), **kw)
    grid = Grid((list_axis("learning_rate", mom_lrs), parse_axis("beta", repr(float(beta)))))
    mom = sweep("momentum", grid, **kw).isel(beta=0)
    with jax.enable_x64(True):
        gd_pred = np.asarray(theory.steps_to_tolerance(theory.gd_rate(gd_lrs, spec), tol))
        rate = np.asarray(theory.momentum_rate(mom_lrs, beta, spec))
        mom_pred = np.asarray(theory.steps_to_tolerance(rate, tol))
    settle = mom.settle_step.values
    inside = (mom_lrs >= interval[0]) & (mom_lrs <= interval[1]) & (settle > 0)
    fastest = int(settle[inside].min())
    fastest_lrs = mom_lrs[inside & (settle == fastest)]
    data = {
        "gd_settle_step": ("learning_rate_gd", gd.settle_step.values),
        "gd_diverged": ("learning_rate_gd", gd.diverged.values),
        "gd_predicted": ("learning_rate_gd", gd_pred),
        "momentum_settle_step": ("learning_rate_momentum", settle),
        "momentum_diverged": ("learning_rate_momentum", mom.diverged.values),
        "momentum_rate": ("learning_rate_momentum", rate),
        "momentum_predicted": ("learning_rate_momentum", mom_pred),
    }
    attrs = {k: gd.attrs[k] for k in ("steps", "tol", "dtype", "chunk_size", "block", "divergence_bound")}
    attrs.update(spectrum=spec.tolist(), beta=float(beta), optimum_learning_rate=eta_star, interval=interval)
    attrs.update(fastest_steps=fastest, fastest_lrs=fastest_lrs.tolist())
    return xr.Dataset(data, coords={"learning_rate_gd": gd_lrs, "learning_rate_momentum": mom_lrs}, attrs=attrs)


def plot_steps_vs_lr(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(15.0, 5.6), layout="constrained")
    ax, zoom = fig.subplots(1, 2, width_ratios=(1.2, 1.0))
    beta, (lo, hi), tol, eta_star = (ds.attrs[k] for k in ("beta", "interval", "tol", "optimum_learning_rate"))
    fastest, fastest_lrs = ds.attrs["fastest_steps"], np.atleast_1d(ds.attrs["fastest_lrs"])
    spec = ", ".join(f"{v:g}" for v in np.atleast_1d(ds.attrs["spectrum"]))
    e_gd, e_m = ds.learning_rate_gd.values, ds.learning_rate_momentum.values
    ax.axvspan(lo, hi, color="#ff4fd8", alpha=0.13, lw=0)
    runs = (
        ("GD", e_gd, ds.gd_settle_step.values, ds.gd_predicted.values, "tab:blue"),
        (
            f"momentum $\\beta={beta:g}$",
            e_m,
            ds.momentum_settle_step.values,
            ds.momentum_predicted.values,
            "tab:orange",
        ),
    )
    for name, e, settle, pred, color in runs:
        ok = settle > 0
        ax.plot(e, np.where(np.isfinite(pred), pred, np.nan), color=color, lw=1.4, label=f"{name}: predicted")
        ax.plot(e[ok], settle[ok], **{**DOTS, "ms": 2.6}, mec=color, label=f"{name}: simulated settle step")
    i_star = int(np.argmin(np.abs(e_gd - eta_star)))
    label = rf"GD at $\eta^*={eta_star:.4f}$: {ds.gd_settle_step.values[i_star]} steps (course: 346)"
    ax.plot([eta_star], [ds.gd_settle_step.values[i_star]], "D", ms=6, color="tab:blue", mec="black", label=label)
    label = rf"fastest simulated momentum $\eta$ in the interval: {fastest} steps"
    ax.plot(fastest_lrs, np.full(fastest_lrs.shape, fastest), **STAR, zorder=6, label=label)
    ax.set(xscale="log", yscale="log", xlim=(min(e_gd[0], e_m[0]), e_m[-1]), ylim=(50, 2 * ds.attrs["steps"]))
    ax.set(xlabel=r"learning rate $\eta$", ylabel=rf"steps to relative error $\varepsilon={tol:g}$")
    ax.set_title(
        rf"GD vs EMA momentum ($\beta={beta:g}$) on $\sigma^2\in\{{{spec}\}}$ from $w_0=0$, T = {ds.attrs['steps']}"
        + "\npredicted: $\\lceil\\log\\varepsilon/\\log\\rho(\\eta)\\rceil$ of the asymptotic rate; simulated: float32 "
        + f"sweep; shaded: best-rate interval [{lo:.4f}, {hi:.3f}]"
    )
    ax.legend(loc="upper right", fontsize=7.5)

    inside = (e_m >= lo) & (e_m <= hi)
    settle, pred = ds.momentum_settle_step.values[inside], ds.momentum_predicted.values[inside]
    zoom.plot(e_m[inside], settle, "-", color="tab:orange", lw=0.6, alpha=0.6)
    zoom.plot(e_m[inside], settle, **{**DOTS, "ms": 2.4}, mec="tab:orange", label="simulated settle step")
    label = rf"predicted: rate $\sqrt{{1-\beta}}={np.sqrt(1 - beta):.4f}$ $\Rightarrow$ {int(pred.max())} steps"
    zoom.plot(e_m[inside], pred, color="black", lw=1.4, label=label)
    where = ", ".join(f"{v:.4g}" for v in fastest_lrs[:4]) + (" …" if fastest_lrs.size > 4 else "")
    label = rf"fastest: {fastest} steps at $\eta$ = {where}"
    zoom.plot(fastest_lrs, np.full(fastest_lrs.shape, fastest), **STAR, zorder=6, label=label)
    zoom.set(xlim=(lo, hi), xlabel=r"learning rate $\eta$ (linear)", ylabel=r"steps to $\varepsilon$")
    zoom.set_title(
        f"inside the interval the asymptotic rate is flat, the exact counts are not (transients):\n"
        f"{inside.sum()} $\\eta$ (evenly spaced, and the log grid's inside it), counts from {settle.min()} to "
        f"{settle.max()}"
    )
    zoom.legend(loc="upper center", fontsize=7.5)
    return fig


# --------------------------------------------------------------------------------------------------------------
# The registered figures (``sim.figures.registry`` collects them)

_STEPS = {"steps": 20000, "tol": COURSE_TOL}
_SPEC = list(COURSE_SPECTRUM)
_STEPS_VS_LR = {"spectrum": _SPEC, "beta": COURSE_BETA, "steps": 20000, "tol": COURSE_TOL}
FIGURES = {
    "momentum_steps_heatmap": Figure(
        filename="momentum_steps_heatmap.png",
        summary="EMA momentum steps to tolerance over (eta, beta) on sigma2 in {5, 0.05}, with each mode's "
        "repeated-root and stability curves, the course's beta = 0.1 interval and the optimal (eta, beta)",
        full=_STEPS | {"spectrum": _SPEC, "learning_rate": "log:1e-2:1e2:401", "beta": "log:1e-2:1:401"},
        quick=_STEPS
        | {"spectrum": _SPEC, "learning_rate": "log:1e-2:1e2:41", "beta": "log:1e-2:1:41", "chunk_size": QUICK_CHUNK},
        compute_fn=compute_momentum_steps_heatmap,
        plot=plot_momentum_steps_heatmap,
    ),
    "steps_vs_lr": Figure(
        filename="steps_vs_lr.png",
        summary="steps to tolerance against eta for GD and momentum (beta = 0.1) on sigma2 in {5, 0.05}: simulated "
        "and predicted, the best-rate interval [0.2633, 3.797] and its fastest simulated eta",
        full=_STEPS_VS_LR
        | {"learning_rate_gd": "log:1e-2:0.25:241", "learning_rate_momentum": "log:1e-2:5:241", "num_interval": 721},
        quick=_STEPS_VS_LR
        | {
            "learning_rate_gd": "log:1e-2:0.25:25",
            "learning_rate_momentum": "log:1e-2:5:25",
            "num_interval": 41,
            "chunk_size": QUICK_CHUNK,
        },
        compute_fn=compute_steps_vs_lr,
        plot=plot_steps_vs_lr,
    ),
}
