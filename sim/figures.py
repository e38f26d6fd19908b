"""The project's figures: theory and simulation side by side, computed, drawn and saved by one runner.

Contract: :data:`FIGURES` maps each figure's name to a :class:`Figure`, which holds its output file name, its
configuration at full and quick size (the keyword arguments of its compute function: grid specs, steps, tol), a
``compute(quick)`` that returns an ``xarray.Dataset`` (sweep summaries and closed-form curves) and a ``plot(data)``
that draws a ``matplotlib.figure.Figure`` without pyplot's global state. :func:`render` computes, plots and saves
figures and merges their configuration and ``sim.runtime.provenance()`` into ``provenance.json`` beside them. PNGs
are byte-stable: fixed size, dpi and rc parameters, and no metadata (no matplotlib version, no timestamp), so
rendering a figure twice gives identical bytes.

Conventions (glossary in ``sim``): L(w) = ‖y − Xw‖² (no ½), so one GD mode is multiplied by 1 − 2ησ² per step;
momentum is the seeds' EMA form z ← (1 − β) z + β ∇L, w ← w − η z; ε is the relative-error tolerance from w₀ = 0.
The worked example is the seeds' spectrum σ² ∈ {5, 0.05} (EECS 182 Sp23 HW2 Q1–Q2). Closed forms come from
``sim.theory``, evaluated in float64; the sweeps run in float32.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import jax
import matplotlib
import numpy as np
import xarray as xr
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure as MplFigure
from matplotlib.patches import Patch

from sim import runtime, theory
from sim.grid import Grid, parse_axis
from sim.sweep import DEFAULT_CHUNK, sweep
from sim.validate import InputError

DPI = 150
TOL = 1e-3
SPECTRUM = (5.0, 0.05)  # the seeds' worked example: σ_ℓ² = 5, σ_s² = 0.05
EXAMPLE_BETA = 0.1  # the seeds' momentum example (Sp23 HW2 Q2 (g)): optimal interval [0.2633, 3.797]
PROVENANCE_FILE = "provenance.json"
QUICK_CHUNK = 256  # points per device per call at quick size: a padded default chunk would cost more than the grid
STYLE = {"font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 10, "legend.fontsize": 8}
NOT_REACHED_COLOR = "#c9c9c9"
DIVERGED_COLOR = "#b2182b"
_HALO = [patheffects.withStroke(linewidth=2.6, foreground="black")]
_THIN_HALO = [patheffects.withStroke(linewidth=1.6, foreground="0.25")]
_DOTS = {"ls": "none", "marker": "o", "ms": 3.2, "mfc": "none", "mew": 0.8}
_STAR = {"ls": "none", "marker": "*", "ms": 12, "color": "gold", "mec": "black", "mew": 0.6}
_NOTE = {"fontsize": 7.5, "va": "bottom"}


@dataclasses.dataclass(frozen=True)
class Figure:
    """One figure: its output file, its configuration at each size, how its data is computed and drawn.

    Attributes:
      filename: the PNG's name inside the output folder.
      summary: one line saying what it shows (also written to ``provenance.json``).
      full: keyword arguments of ``compute_fn`` at full size.
      quick: the same at smoke-test size (seconds).
      compute_fn: ``compute_fn(**config, progress=...) -> xarray.Dataset``.
      plot: ``plot(data) -> matplotlib.figure.Figure``.
    """

    filename: str
    summary: str
    full: Mapping
    quick: Mapping
    compute_fn: Callable[..., xr.Dataset]
    plot: Callable[[xr.Dataset], MplFigure]

    def config(self, quick: bool = False) -> dict:
        return dict(self.quick if quick else self.full)

    def compute(self, quick: bool = False, *, progress: bool = True) -> xr.Dataset:
        return self.compute_fn(**self.config(quick), progress=progress)


# --------------------------------------------------------------------------------------------------------------
# (a) GD rate against the learning rate (the seeds' Figure 1), with measured contraction and steps


def compute_gd_rate_vs_lr(
    *, spectrum, lr_max, num, steps, tol, chunk_size=DEFAULT_CHUNK, theory_points=2001, progress=True
) -> xr.Dataset:
    """Closed-form mode factors, rate and asymptotic steps of GD on ``spectrum`` over η ∈ [0, lr_max], and a
    sweep at ``num`` evenly spaced η plus η* (measured contraction and settle steps)."""
    spec = np.asarray(spectrum, dtype=np.float64)
    eta = np.linspace(0.0, lr_max, theory_points)
    with jax.enable_x64():
        eta_star = float(theory.gd_optimal_lr(spec))
        rate = np.asarray(theory.gd_rate(eta, spec))
        curves = {
            "factor": (("mode", "eta"), np.asarray(theory.gd_factor(eta[None, :], spec[:, None]))),
            "theory_rate": ("eta", rate),
            "theory_steps": ("eta", np.asarray(theory.steps_to_tolerance(rate, tol))),
        }
        attrs = {"eta_star": eta_star, "eta_stable": float(theory.gd_stable_lr(spec))}
        attrs["rate_star"] = float(theory.gd_optimal_rate(spec))
    lrs = np.union1d(np.linspace(lr_max / num, lr_max, num), [eta_star])
    axis = parse_axis("learning_rate", ",".join(f"{v:.17g}" for v in lrs))
    ds = sweep("gd", Grid((axis,)), steps=steps, tol=tol, spectrum=spec, chunk_size=chunk_size, progress=progress)
    ds = ds.assign_coords(eta=eta, mode=np.arange(spec.size)).assign({**curves, "mode_sigma2": ("mode", spec)})
    return ds.assign_attrs(attrs)


def plot_gd_rate_vs_lr(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(15.0, 4.6), layout="constrained")
    ax, zoom, ax2 = fig.subplots(1, 3, width_ratios=(1.25, 0.8, 1.1))
    eta_star, eta_stable, rate_star, tol = (ds.attrs[k] for k in ("eta_star", "eta_stable", "rate_star", "tol"))
    eta, lr, contraction = ds.eta.values, ds.learning_rate.values, ds.contraction.values
    ok = ~ds.diverged.values
    spec = ", ".join(f"{v:g}" for v in ds.mode_sigma2.values)
    for a in (ax, zoom):
        for i, color in enumerate(("tab:blue", "tab:orange")):
            label = rf"$|1-2\eta\sigma^2|$, $\sigma^2={ds.mode_sigma2.values[i]:g}$"
            a.plot(eta, np.abs(ds.factor.values[i]), color=color, lw=1.4, label=label)
        a.plot(eta, ds.theory_rate, color="black", lw=3, alpha=0.3, label=r"rate $\rho=\max_i|1-2\eta\sigma_i^2|$")
        label = r"simulated $(\|u_t\|/\|u_0\|)^{1/t}$ at the settle step"
        a.plot(lr[ok], contraction[ok], **_DOTS, mec="black", label=label)
        label = rf"diverged: growth $>$ (bound $10^{{{np.log10(ds.attrs['divergence_bound']):.0f}}}$)$^{{1/t}}$"
        a.plot(lr[~ok], contraction[~ok], "x", ms=4, color=DIVERGED_COLOR, label=label)
        a.axhline(1.0, color="0.5", lw=0.8, ls=":")
        _mark_lrs(a, eta_star, eta_stable, labels=a is ax)
    ax.set(xlim=(0, eta[-1]), ylim=(0, 1.55), xlabel=r"learning rate $\eta$", ylabel=r"factor, rate $\rho(\eta)$")
    ax.set_title(rf"GD on $L=\|y-Xw\|^2$, $\sigma^2\in\{{{spec}\}}$: mode factors $1-2\eta\sigma^2$")
    ax.legend(loc="upper left")
    label = rf"$\eta^*={eta_star:.4f}$, $\rho^*=(\kappa^2-1)/(\kappa^2+1)={rate_star:.4f}$"
    (star,) = zoom.plot([eta_star], [rate_star], **_STAR, label=label)
    zoom.set(xlim=(0.18, 0.205), ylim=(0.95, 1.03), xlabel=r"learning rate $\eta$")
    zoom.set_title(r"zoom: the two curves cross at $\eta^*=1/(\sigma_\ell^2+\sigma_s^2)$")
    zoom.legend(handles=[star], loc="upper left")
    note = "half the initial error is in each mode, so at finite t the\n"
    note += r"measured $(\|u_t\|/\|u_0\|)^{1/t}\approx\rho\,2^{-1/(2t)}$ sits just below $\rho$"
    zoom.text(0.03, 0.03, note, transform=zoom.transAxes, **_NOTE)

    settle = ds.settle_step.values
    reached = ok & (settle > 0)
    ax2.plot(eta, ds.theory_steps, color="black", lw=1.4, label=r"asymptotic $\lceil\log\varepsilon/\log\rho\rceil$")
    ax2.plot(lr[reached], settle[reached], **_DOTS, mec="tab:green", label="simulated settle step")
    i_star = int(np.argmin(np.abs(lr - eta_star)))
    ax2.plot([eta_star], [settle[i_star]], **_STAR, label=rf"$\eta^*$: {settle[i_star]} steps (seeds: 346)")
    _mark_lrs(ax2, eta_star, eta_stable, labels=False)
    ax2.set(xlim=(0, eta[-1]), ylim=(100, 1e5), yscale="log", xlabel=r"learning rate $\eta$")
    ax2.set(ylabel=rf"steps to $\varepsilon={tol:g}$")
    ax2.set_title(f"steps to relative error {tol:g} from $w_0=0$ (T = {ds.attrs['steps']})")
    ax2.legend(loc="upper right")
    note = "simulated counts lie below the asymptotic line where one mode dominates:\n"
    note += r"$e_t\approx\rho^t/\sqrt{2}$ reaches $\varepsilon$ up to $\log\sqrt{2}\,/\,|\log\rho|$ steps early"
    ax2.text(0.03, 0.03, note, transform=ax2.transAxes, **_NOTE)
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
    mesh, handles = _steps_heatmap(ax, ds, "learning_rate", "sigma2")
    fig.colorbar(mesh, ax=ax, label=rf"steps to $\varepsilon={tol:g}$ (settle step)")
    line = np.geomspace(eta[0], eta[-1], 200)
    for n in (10, 100, 1000, 10000):
        # theory: one GD mode is below ε after n steps iff |1 − 2ησ²| < ε^(1/n): a band around η = 1/(2σ²)
        width = tol ** (1 / n)
        for sign in (-1, 1):
            (iso,) = ax.plot(
                line, (1 + sign * width) / (2 * line), "w", lw=0.8, ls=(0, (1, 2)), path_effects=_THIN_HALO
            )
        c = (1 - width) / 2  # label the lower curve σ² = c/η where it enters the plot
        x = max(eta[0] * 1.25, c / (s2[-1] * 0.6))
        ax.text(x, c / x, f" n = {n}", color="white", fontsize=8, va="bottom", path_effects=_THIN_HALO)
    iso.set_label(r"theory: $|1-2\eta\sigma^2|=\varepsilon^{1/n}$ (within n steps between each pair)")
    (stab,) = ax.plot(line, 1 / line, "w", lw=1.8, path_effects=_HALO, label=r"stability limit $\eta=1/\sigma^2$")
    label = r"fastest $\eta=1/(2\sigma^2)$ (1 step)"
    (fast,) = ax.plot(line, 1 / (2 * line), "w", lw=1.6, ls="--", path_effects=_HALO, label=label)
    ax.set(xscale="log", yscale="log", xlim=_log_limits(eta), ylim=_log_limits(s2))
    ax.set(xlabel=r"learning rate $\eta$", ylabel=r"squared singular value $\sigma^2$ (one mode)")
    title = rf"GD steps to relative error $\varepsilon={tol:g}$ on $L=\|y-Xw\|^2$ (mode factor $1-2\eta\sigma^2$)"
    shape = f"{ds.sizes['learning_rate']}×{ds.sizes['sigma2']}"
    ax.set_title(f"{title}\nfloat32 sweep, {shape} points, T = {ds.attrs['steps']} steps")
    fig.legend(handles=[stab, fast, iso, *handles], loc="outside lower center", ncols=2)
    return fig


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
    low, high = _log_limits(ds.beta.values)  # the plotted range, β ≤ 1
    b = np.geomspace(low, min(high, 1.0), theory_points)
    dims = ("mode", "beta_theory")
    with jax.enable_x64():
        lo, hi = theory.momentum_repeated_root_lrs(b[None, :], spec[:, None])
        curves = {
            "repeated_root_lo": (dims, np.asarray(lo)),
            "repeated_root_hi": (dims, np.asarray(hi)),
            "stable_lr": (dims, np.asarray(theory.momentum_stable_lr(b[None, :], spec[:, None]))),
        }
        # the seeds' interval: every mode complex, from σ_min²'s smaller to σ_max²'s larger repeated root
        example = [
            float(theory.momentum_repeated_root_lrs(EXAMPLE_BETA, spec.min())[0]),
            float(theory.momentum_repeated_root_lrs(EXAMPLE_BETA, spec.max())[1]),
        ]
    opt = dict(
        zip(("optimum_learning_rate", "optimum_beta", "optimum_rate"), theory.momentum_optimum(spec), strict=True)
    )
    ds = ds.assign_coords(beta_theory=b, mode=np.arange(spec.size)).assign({**curves, "mode_sigma2": ("mode", spec)})
    return ds.assign_attrs(opt, example_beta=EXAMPLE_BETA, example_interval=example)


def plot_momentum_steps_heatmap(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(8.4, 6.6), layout="constrained")
    ax = fig.subplots()
    eta, beta, b, tol = ds.learning_rate.values, ds.beta.values, ds.beta_theory.values, ds.attrs["tol"]
    mesh, handles = _steps_heatmap(ax, ds, "learning_rate", "beta")
    fig.colorbar(mesh, ax=ax, label=rf"steps to $\varepsilon={tol:g}$ (settle step)")
    lines = []
    for i, color in enumerate(("white", "#ff9f1c")):
        s2, kw = ds.mode_sigma2.values[i], {"color": color, "path_effects": _HALO}
        (rr,) = ax.plot(ds.repeated_root_lo[i], b, lw=1.5, **kw, label=rf"$\sigma^2={s2:g}$: repeated roots")
        ax.plot(ds.repeated_root_hi[i], b, lw=1.5, **kw)
        (st,) = ax.plot(ds.stable_lr[i], b, lw=1.4, ls="--", **kw, label=rf"$\sigma^2={s2:g}$: stability limit")
        lines += [rr, st]
    (lo, hi), b_ex = ds.attrs["example_interval"], ds.attrs["example_beta"]
    label = rf"seeds: $\beta={b_ex:g}$, any $\eta\in[{lo:.4f}, {hi:.3f}]$ has $\rho=\sqrt{{{1 - b_ex:g}}}$"
    kw = {"color": "#ff4fd8", "lw": 2.2, "marker": "|", "ms": 12, "mew": 2.2, "path_effects": _HALO}
    (ex,) = ax.plot([lo, hi], [b_ex, b_ex], **kw, label=label)
    settle = np.where(ds.settle_step.values > 0, ds.settle_step.values, np.iinfo(np.int32).max)
    i, j = np.unravel_index(np.argmin(settle), settle.shape)
    label = rf"fastest grid point: {settle[i, j]} steps ($\eta={eta[i]:.3g}$, $\beta={beta[j]:.3g}$)"
    (best,) = ax.plot([eta[i]], [beta[j]], "o", ms=5, color="white", mec="black", mew=0.8, zorder=5, label=label)
    opt_lr, opt_beta, opt_rate = (ds.attrs[k] for k in ("optimum_learning_rate", "optimum_beta", "optimum_rate"))
    label = rf"theory optimum ($\eta={opt_lr:.3g}$, $\beta={opt_beta:.3f}$): "
    label += rf"$\rho=\frac{{\kappa-1}}{{\kappa+1}}={opt_rate:.4f}$"
    kw = {"ms": 17, "mfc": "none", "mec": "gold", "mew": 1.6, "path_effects": _HALO}
    (opt,) = ax.plot([opt_lr], [opt_beta], "*", **kw, label=label)
    ax.set(xscale="log", yscale="log", xlim=_log_limits(eta), ylim=_log_limits(beta))
    ax.set(xlabel=r"learning rate $\eta$", ylabel=r"EMA momentum weight $\beta$ of the new gradient")
    spec = ", ".join(f"{v:g}" for v in ds.mode_sigma2.values)
    title = r"EMA momentum $z\leftarrow(1-\beta)z+\beta\nabla L$, $w\leftarrow w-\eta z$, $L=\|y-Xw\|^2$, "
    title += rf"$\sigma^2\in\{{{spec}\}}$" + f"\nsteps to relative error {tol:g} (T = {ds.attrs['steps']})"
    title += "\nbetween a mode's two repeated-root curves its roots are complex, with modulus " + r"$\sqrt{1-\beta}$"
    ax.set_title(title)
    fig.legend(handles=[*lines, ex, opt, best, *handles], loc="outside lower center", ncols=2)
    return fig


# --------------------------------------------------------------------------------------------------------------
# Shared drawing helpers


def _steps_heatmap(ax, ds: xr.Dataset, xname: str, yname: str):
    """Draw settle steps on log axes; diverged and not-reached points get flat colors (masked, never NaN)."""
    settle = ds.settle_step.transpose(yname, xname).values
    diverged = ds.diverged.transpose(yname, xname).values.astype(bool)
    reached = ~diverged & (settle > 0)
    xe, ye = _log_edges(ds[xname].values), _log_edges(ds[yname].values)
    steps = int(ds.attrs["steps"])
    vmin = 10.0 ** np.floor(np.log10(settle[reached].min())) if reached.any() else 1.0
    norm = LogNorm(vmin=vmin, vmax=steps)
    mesh = ax.pcolormesh(xe, ye, np.ma.masked_where(~reached, settle), norm=norm, cmap="viridis")
    bound = rf"$10^{{{np.log10(ds.attrs['divergence_bound']):.0f}}}$"
    handles = []
    for mask, color, label in (
        (diverged, DIVERGED_COLOR, f"diverged (state norm > {bound})"),
        (~diverged & ~reached, NOT_REACHED_COLOR, f"error not below ε within T = {steps} steps"),
    ):
        if mask.any():
            ax.pcolormesh(xe, ye, np.ma.masked_where(~mask, np.ones(mask.shape)), cmap=ListedColormap([color]))
            handles.append(Patch(color=color, label=label))
    return mesh, handles


def _log_edges(values: np.ndarray) -> np.ndarray:
    """Cell edges of a log-spaced coordinate: geometric midpoints, extended by half a step at both ends."""
    logs = np.log(values)
    mid = (logs[1:] + logs[:-1]) / 2
    return np.exp(np.concatenate([[2 * logs[0] - mid[0]], mid, [2 * logs[-1] - mid[-1]]]))


def _log_limits(values: np.ndarray) -> tuple[float, float]:
    edges = _log_edges(values)
    return float(edges[0]), float(edges[-1])


# --------------------------------------------------------------------------------------------------------------
# Registry (every output and its configuration is defined here) and runner


_SPEC = list(SPECTRUM)
FIGURES: dict[str, Figure] = {
    "gd_rate_vs_lr": Figure(
        filename="gd_rate_vs_lr.png",
        summary="GD mode factors |1 - 2 eta sigma2| and rate vs eta on sigma2 in {5, 0.05} (the seeds' Figure 1), "
        "with the simulated contraction and steps to tolerance",
        full={"spectrum": _SPEC, "lr_max": 0.24, "num": 96, "steps": 40000, "tol": TOL},
        quick={"spectrum": _SPEC, "lr_max": 0.24, "num": 24, "steps": 40000, "tol": TOL, "chunk_size": QUICK_CHUNK},
        compute_fn=compute_gd_rate_vs_lr,
        plot=plot_gd_rate_vs_lr,
    ),
    "gd_steps_heatmap": Figure(
        filename="gd_steps_heatmap.png",
        summary="GD steps to tolerance over (eta, sigma2), one mode per point, with the stability limit "
        "eta = 1/sigma2, the fastest eta = 1/(2 sigma2) and closed-form iso-step curves",
        full={"learning_rate": "log:1e-3:10:401", "sigma2": "log:1e-2:1e2:401", "steps": 20000, "tol": TOL},
        quick={
            "learning_rate": "log:1e-3:10:41",
            "sigma2": "log:1e-2:1e2:41",
            "steps": 20000,
            "tol": TOL,
            "chunk_size": QUICK_CHUNK,
        },
        compute_fn=compute_gd_steps_heatmap,
        plot=plot_gd_steps_heatmap,
    ),
    "momentum_steps_heatmap": Figure(
        filename="momentum_steps_heatmap.png",
        summary="EMA momentum steps to tolerance over (eta, beta) on sigma2 in {5, 0.05}, with each mode's "
        "repeated-root and stability curves, the seeds' beta = 0.1 interval and the optimal (eta, beta)",
        full={
            "learning_rate": "log:1e-2:1e2:401",
            "beta": "log:1e-2:1:401",
            "spectrum": _SPEC,
            "steps": 20000,
            "tol": TOL,
        },
        quick={
            "learning_rate": "log:1e-2:1e2:41",
            "beta": "log:1e-2:1:41",
            "spectrum": _SPEC,
            "steps": 20000,
            "tol": TOL,
            "chunk_size": QUICK_CHUNK,
        },
        compute_fn=compute_momentum_steps_heatmap,
        plot=plot_momentum_steps_heatmap,
    ),
}


@contextlib.contextmanager
def fixed_style():
    """Matplotlib's defaults plus ``STYLE``, whatever the user's matplotlibrc says (for byte-stable output)."""
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(STYLE)
        yield


def save(figure: MplFigure, path) -> Path:
    """Write ``figure`` as a byte-stable PNG: fixed dpi, no Software (matplotlib version) or time metadata."""
    path = Path(path)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=DPI, metadata={"Software": None})
    return path


def render(
    names: Iterable[str] | None = None,
    *,
    quick: bool = False,
    outdir="figures",
    progress: bool = True,
    seconds: dict[str, float] | None = None,
) -> list[Path]:
    """Compute, plot and save figures, and merge their provenance into ``outdir/provenance.json``.

    Args:
      names: figures to render (keys of ``FIGURES``); all when None.
      quick: smoke-test size (seconds) instead of full size.
      outdir: output folder, created if missing.
      progress: show the sweeps' progress bars and print each figure's time to stderr.
      seconds: if given, filled with each figure's wall-clock seconds (compute, plot and save).

    Returns:
      The paths of the PNGs written, in the order rendered.
    """
    names = list(FIGURES) if names is None else list(names)
    for name in names:
        if name not in FIGURES:
            raise InputError("only", f"unknown figure {name!r}; choose from {', '.join(FIGURES)}")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written, records, total = [], {}, 0.0
    for name in names:
        fig = FIGURES[name]
        start = time.perf_counter()
        data = fig.compute(quick, progress=progress)
        with fixed_style():
            written.append(save(fig.plot(data), outdir / fig.filename))
        elapsed = time.perf_counter() - start
        total += elapsed
        if seconds is not None:
            seconds[name] = elapsed
        if progress:
            print(f"{name}: {written[-1]} ({elapsed:.1f} s)", file=sys.stderr)
        config = {**fig.config(quick), "quick": bool(quick), "dpi": DPI}
        config.update({k: data.attrs[k] for k in ("dtype", "chunk_size", "block", "divergence_bound")})
        records[name] = {"file": fig.filename, "summary": fig.summary, "config": config}
    if progress and len(names) > 1:
        print(f"total: {total:.1f} s", file=sys.stderr)
    _merge_provenance(outdir / PROVENANCE_FILE, records)
    return written


def _merge_provenance(path: Path, records: dict) -> None:
    """Write ``records`` (one per figure, with the runtime provenance) into the JSON at ``path``, keeping others."""
    try:
        existing = json.loads(path.read_text())
    except (OSError, ValueError):
        existing = {}
    if not isinstance(existing, dict):
        existing = {}
    prov = {**runtime.provenance(), "version_matplotlib": matplotlib.__version__}
    for name, record in records.items():
        existing[name] = {**record, "provenance": prov}
    path.write_text(json.dumps(existing, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
