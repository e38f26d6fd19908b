"""Monte Carlo figures of noisy-input SGD: runs against the exact moments, and where the mean and variance settle.

Contract: one ``compute_*`` (keyword configuration in, ``xarray.Dataset`` out: Monte Carlo estimates from
:mod:`sim.noisy.scalar`, on the engine of :mod:`sim.noisy.engine`, beside the float64 closed forms of
:mod:`sim.noisy.scalar`) and one ``plot_*`` (dataset in, ``matplotlib.figure.Figure`` out, no pyplot state) per
figure; the configurations at full and quick size are the dicts at the top (quick: a few seconds including compilation).
Problem: one data point (x, y), inputs x̃ = x + N(0, σ²) fresh at every step, ℓ = ½(x̃w − y)², w₀ = 0 (EECS 182 Sp23 HW2
Q3). The vector problem's figure is in :mod:`sim.figures.noisy_vector`.

(a) ``mc_scalar_paths``: two learning rates, one below both thresholds and one between the variance threshold
    2(x² + σ²)/(x⁴ + 6x²σ² + 3σ⁴) and the mean threshold 2/(x² + σ²). Top: the Monte Carlo mean with its CI, the
    5–95 % band of single runs and a few runs, against the exact mean ± one exact standard deviation. Bottom: Var w_t,
    exact against the sample variance of the N runs (log scale).
(b) ``mc_boundaries``: the (η, σ) map of the Monte Carlo sweep with both thresholds (and the single-run Lyapunov
    threshold) drawn, beside what N runs see at step T.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure as MplFigure
from matplotlib.patches import Patch

from sim.core.grid import Grid, parse_axis
from sim.figures.base import DIVERGED_COLOR, HALO, NOTE, Figure
from sim.noisy import scalar
from sim.noisy import vector as noisy_vector
from sim.regression import designs

_PROBLEM = {"x": 1.0, "y": 1.0, "sigma": 0.5}  # thresholds: variance 0.930, mean 1.6, single runs 1.98
MC_SCALAR_PATHS_FULL = {
    **_PROBLEM,
    "learning_rates": [0.5, 1.25],
    "steps": 200,
    "trajectories": 200_000,
    "sample_paths": 6,
    "chunk_size": 4096,
}
MC_SCALAR_PATHS_QUICK = {
    **_PROBLEM,
    "learning_rates": [0.5, 1.25],
    "steps": 60,
    "trajectories": 4096,
    "sample_paths": 6,
    "chunk_size": 256,
}
MC_BOUNDARIES_FULL = {
    "x": 1.0,
    "y": 1.0,
    "learning_rate": "0.02:2.6:130",
    "sigma": "0:1.5:76",
    "steps": 200,
    "trajectories": 2048,
    "chunk_size": 128,
    "point_chunk": 256,
}
MC_BOUNDARIES_QUICK = {
    "x": 1.0,
    "y": 1.0,
    "learning_rate": "0.05:2.6:24",
    "sigma": "0:1.5:12",
    "steps": 60,
    "trajectories": 256,
    "chunk_size": 32,
    "point_chunk": 128,
}

MEAN_COLOR, VAR_COLOR, LYAP_COLOR = "black", "tab:blue", DIVERGED_COLOR
REGIMES = (  # (label, color) of the regime map, in the order of increasing η
    ("mean and variance settle", "#d9f0d3"),
    ("mean settles, variance grows without bound", "#fee08b"),
    ("mean diverges, single runs still settle", "#fc8d59"),
    ("single runs diverge (λ > 0)", "#7f0000"),
)


# --------------------------------------------------------------------------------------------------------------
# (a) paths and moments at two learning rates


def compute_mc_scalar_paths(
    *, x, y, sigma, learning_rates, steps, trajectories, sample_paths, chunk_size, seed=0, progress=True
) -> xr.Dataset:
    """Monte Carlo of w_t at every step for each learning rate (dimension ``case``), with the exact moments."""
    runs = []
    for eta in learning_rates:
        ds = scalar.scalar(
            x=x,
            y=y,
            sigma=sigma,
            learning_rate=eta,
            steps=steps,
            trajectories=trajectories,
            record_steps=np.arange(steps + 1),
            sample_paths=sample_paths,
            chunk_size=chunk_size,
            seed=seed,
            progress=progress,
        )
        names = (
            "mean_threshold",
            "variance_threshold",
            "mean_limit",
            "variance_limit",
            "second_moment_factor",
            "lyapunov_exponent",
            "confidence",
            "trajectories",
        )
        keep = {k: ds.attrs[k] for k in names}
        prng = ds.attrs["prng"]
        runs.append(ds.drop_attrs().assign(**{k: ((), v) for k, v in keep.items()}))
    out = xr.concat(runs, dim="case", data_vars="all", coords="minimal", compat="override", join="override")
    out = out.assign_coords(case=np.arange(len(learning_rates)), learning_rate=("case", list(learning_rates)))
    return out.assign_attrs(
        x=x,
        y=y,
        sigma=sigma,
        steps=steps,
        trajectories=trajectories,
        prng=prng,
        lyapunov_threshold=scalar.lyapunov_threshold(x, sigma),
    )


def plot_mc_scalar_paths(ds: xr.Dataset) -> MplFigure:
    n = ds.sizes["case"]
    fig = MplFigure(figsize=(6.2 * n, 7.6), layout="constrained")
    axes = fig.subplots(2, n, height_ratios=(1.5, 1), squeeze=False)
    t = ds.step.values
    for i in range(n):
        d = ds.isel(case=i)
        eta = float(d.learning_rate)
        top, bottom = axes[0, i], axes[1, i]
        q = d.w_quantile
        top.fill_between(
            t,
            q.sel(quantile=0.05),
            q.sel(quantile=0.95),
            color="tab:orange",
            alpha=0.25,
            lw=0,
            label="5–95 % of single runs (MC)",
        )
        top.plot(t, q.sel(quantile=0.5), color="tab:orange", lw=1.0, label="median of single runs (MC)")
        for k in range(d.sizes["path"]):
            top.plot(
                t, d.w_paths.isel(path=k), color="0.45", lw=0.6, alpha=0.8, label="single runs" if k == 0 else None
            )
        top.fill_between(t, d.w_mean_ci_low, d.w_mean_ci_high, color="tab:green", alpha=0.6, lw=0)
        top.plot(t, d.w_mean, color="tab:green", lw=1.4, label=f"MC mean, {float(d.confidence):.0%} CI")
        std = np.sqrt(d.exact_var.values)
        top.plot(t, d.exact_mean, color=MEAN_COLOR, lw=1.2, ls="--", label=r"exact $E\,w_t$")
        with np.errstate(invalid="ignore", over="ignore"):
            for sign in (-1, 1):
                top.plot(
                    t,
                    d.exact_mean + sign * std,
                    color=VAR_COLOR,
                    lw=1.0,
                    ls=":",
                    label=r"exact $E\,w_t \pm \sqrt{\mathrm{Var}\,w_t}$" if sign > 0 else None,
                )
        lo, hi = float(q.sel(quantile=0.05).min()), float(q.sel(quantile=0.95).max())
        pad = 0.35 * (hi - lo)
        top.set(ylim=(lo - pad, hi + pad), xlim=(0, t[-1]), ylabel=r"$w_t$")
        between = float(d.variance_threshold) < eta < float(d.mean_threshold)
        where = "between the thresholds" if between else "below both thresholds"
        top.set_title(
            f"η = {eta:g} ({where}): q = E(1−ηx̃²)² = {float(d.second_moment_factor):.3g}, "
            f"λ = {float(d.lyapunov_exponent):.3g}"
        )
        top.legend(loc="lower right", fontsize=7.5)
        if between:
            note = "the exact ±std band leaves the plot: Var w_t grows like qᵗ,\n"
            note += "yet the median and the 5–95 % band settle (λ < 0): the\nvariance is carried by rare large runs"
            box = {"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"}
            top.text(0.02, 0.97, note, transform=top.transAxes, bbox=box, **NOTE | {"va": "top"})

        var, ok = d.w_var.values[1:], d.w_count.values[1:] > 1
        exact_var = d.exact_var.values[1:]
        positive = np.concatenate([var[ok & (var > 0)], exact_var[(exact_var > 0) & np.isfinite(exact_var)]])
        floor = positive.min() / 3 if positive.size else 1e-12
        bottom.plot(t[1:], exact_var, color=VAR_COLOR, lw=1.4, label=r"exact Var $w_t$")
        bottom.fill_between(
            t[1:],
            np.maximum(d.w_var_ci_low.values[1:], floor),
            d.w_var_ci_high.values[1:],
            color="tab:orange",
            alpha=0.35,
            lw=0,
        )
        bottom.plot(
            t[1:][ok],
            var[ok],
            color="tab:orange",
            lw=1.2,
            label=f"sample variance of N = {int(d.trajectories):,} runs, CI",
        )
        if np.isfinite(float(d.variance_limit)):
            bottom.axhline(float(d.variance_limit), color="0.5", lw=0.8, ls=":", label="exact stationary variance")
        top_limit = np.nanmax(np.where(np.isfinite(exact_var), exact_var, np.nan)) * 3
        bottom.set(
            yscale="log",
            ylim=(floor, max(top_limit, floor * 10)),
            xlim=(0, t[-1]),
            xlabel="step t",
            ylabel=r"Var $w_t$",
        )
        bottom.legend(loc="upper left" if between else "lower right", fontsize=7.5)
    fig.suptitle(
        f"SGD with noisy inputs x̃ = x + N(0, σ²), x = {ds.attrs['x']:g}, y = {ds.attrs['y']:g}, σ = "
        f"{ds.attrs['sigma']:g}: thresholds η < {float(ds.variance_threshold[0]):.3g} (variance), "
        f"η < {float(ds.mean_threshold[0]):.3g} (mean), η < {ds.attrs['lyapunov_threshold']:.3g} (single runs)",
        fontsize=10,
    )
    return fig


# --------------------------------------------------------------------------------------------------------------
# (b) the (η, σ) map


def compute_mc_boundaries(
    *, x, y, learning_rate, sigma, steps, trajectories, chunk_size, point_chunk, seed=0, curve_points=61, progress=True
) -> xr.Dataset:
    """:func:`sim.noisy.scalar.scalar_sweep` over (learning_rate, sigma) plus the three thresholds as curves of σ."""
    grid = Grid((parse_axis("learning_rate", learning_rate), parse_axis("sigma", sigma)))
    ds = scalar.scalar_sweep(
        grid,
        x=x,
        y=y,
        steps=steps,
        trajectories=trajectories,
        seed=seed,
        chunk_size=chunk_size,
        point_chunk=point_chunk,
        progress=progress,
    )
    s = np.linspace(grid.axes[1].values.min(), grid.axes[1].values.max(), curve_points)
    lyap = np.array([scalar.lyapunov_threshold(x, v, rtol=1e-6) for v in s])
    return ds.assign_coords(sigma_curve=s).assign(
        mean_threshold=("sigma_curve", scalar.mean_threshold(x, s)),
        variance_threshold=("sigma_curve", scalar.variance_threshold(x, s)),
        lyapunov_threshold=("sigma_curve", lyap),
    )


def _edges(values: np.ndarray) -> np.ndarray:
    mid = (values[1:] + values[:-1]) / 2
    return np.concatenate([[2 * values[0] - mid[0]], mid, [2 * values[-1] - mid[-1]]])


def plot_mc_boundaries(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(17.0, 5.4), layout="constrained")
    ax, ax2, ax3 = fig.subplots(1, 3)
    eta, s = ds.learning_rate.values, ds.sigma.values
    xe, ye = _edges(eta), _edges(s)
    tr = ("sigma", "learning_rate")
    regime = np.where(
        ~ds.runs_settle.transpose(*tr).values,
        3,
        np.where(
            ~ds.mean_converges.transpose(*tr).values, 2, np.where(~ds.variance_bounded.transpose(*tr).values, 1, 0)
        ),
    )
    ax.pcolormesh(xe, ye, regime, cmap=ListedColormap([c for _, c in REGIMES]), vmin=-0.5, vmax=3.5)
    handles = [Patch(color=c, label=label) for label, c in REGIMES]

    def curves(a, labels):
        kw = {"path_effects": HALO} if not labels else {}
        sc = ds.sigma_curve.values
        lines = [
            a.plot(
                ds.variance_threshold,
                sc,
                color="white",
                lw=2.0,
                **kw,
                label=r"theory: $\eta = 2(x^2+\sigma^2)/(x^4+6x^2\sigma^2+3\sigma^4)$ (variance)",
            )[0],
            a.plot(
                ds.mean_threshold,
                sc,
                color="white",
                lw=2.0,
                ls="--",
                **kw,
                label=r"theory: $\eta = 2/(x^2+\sigma^2)$ (mean)",
            )[0],
            a.plot(
                ds.lyapunov_threshold,
                sc,
                color="white",
                lw=1.4,
                ls=":",
                **kw,
                label=r"quadrature: $E\log|1-\eta\tilde x^2| = 0$ (single runs)",
            )[0],
        ]
        for line in lines:
            line.set_path_effects(HALO)
        return lines

    handles += curves(ax, labels=True)
    ax.set(xlim=(xe[0], xe[-1]), ylim=(ye[0], ye[-1]), xlabel=r"learning rate $\eta$", ylabel=r"input noise $\sigma$")
    ax.set_title(
        "Monte Carlo regimes: the per-step factors p̂ = mean(1−ηx̃²), q̂ = mean((1−ηx̃²)²)\n"
        f"and λ̂ = mean log|1−ηx̃²| over N·T = {ds.attrs['trajectories']}·{ds.attrs['steps']} draws per point"
    )

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # exact moments may overflow: ratio -> 0
        n = ds.w_count.values
        sample = ds.w_mean.values**2 + ds.w_var.values * np.where(n > 1, (n - 1) / np.maximum(n, 1), 0)
        exact = ds.exact_var.values + ds.exact_mean.values**2
        ratio = np.log10(np.where(n > 0, sample, np.nan) / exact)
    ratio = np.clip(np.nan_to_num(ratio, nan=-12, neginf=-12, posinf=1), -12, 1)
    dims = list(ds.w_mean.dims)
    order = [dims.index(d) for d in tr]
    m2 = ax2.pcolormesh(xe, ye, ratio.transpose(order), cmap="magma", vmin=-12, vmax=1)
    fig.colorbar(m2, ax=ax2, label=r"$\log_{10}$(sample $E\,w_T^2$ of N runs / exact $E\,w_T^2$)")
    curves(ax2, labels=False)
    ax2.set(xlim=(xe[0], xe[-1]), ylim=(ye[0], ye[-1]), xlabel=r"learning rate $\eta$")
    ax2.set_title(
        f"what N = {ds.attrs['trajectories']} runs see at T = {ds.attrs['steps']}: past the variance "
        "threshold\nthe sample second moment misses E w² (rare runs carry it)"
    )

    q = ds.w_quantile
    spread = (q.sel(quantile=0.95) - q.sel(quantile=0.05)).transpose(*tr).values
    with np.errstate(divide="ignore"):
        spread = np.log10(np.maximum(spread, 1e-6))
    gone = ds.w_count.transpose(*tr).values < 2  # (almost) every run beyond the bound: no spread to show
    m3 = ax3.pcolormesh(
        xe, ye, np.ma.masked_where(gone, spread), cmap="viridis", vmin=-3, vmax=np.log10(ds.attrs["divergence_bound"])
    )
    if gone.any():
        ax3.pcolormesh(xe, ye, np.ma.masked_where(~gone, np.ones(gone.shape)), cmap=ListedColormap([REGIMES[-1][1]]))
    fig.colorbar(m3, ax=ax3, label=r"$\log_{10}$(95 % − 5 % quantile of $w_T$)")
    div = ds.diverged_fraction.transpose(*tr).values
    if (div >= 0.5).any() and (div < 0.5).any():
        ax3.contour(eta, s, div, levels=[0.5], colors=[DIVERGED_COLOR], linewidths=1.2)
    curves(ax3, labels=False)
    ax3.set(xlim=(xe[0], xe[-1]), ylim=(ye[0], ye[-1]), xlabel=r"learning rate $\eta$")
    ax3.set_title(
        "single runs: the 5–95 % spread of $w_T$ grows smoothly through both moment\nthresholds and "
        "explodes only past λ = 0 (red line: half the runs beyond the bound; dark: all)"
    )
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8)
    fig.suptitle(
        f"Noisy-input SGD, x = {ds.attrs['x']:g}, y = {ds.attrs['y']:g}: where the mean, the variance and "
        "single runs settle (EECS 182 Sp23 HW2 Q3; second moment derived in sim.noisy)",
        fontsize=10,
    )
    return fig


# --------------------------------------------------------------------------------------------------------------
# Monte Carlo figure of noisy-input SGD in n dimensions: the mean goes to ridge, single runs follow with a spread.

# seeds picked so that ‖w_ridge − w_LS‖ (1.5, 1.6) is several times the constant step's spread of single runs (0.3)
_VECTOR_PROBLEM = {"sigma": 0.5, "learning_rate": 0.1, "batch_size": 4}
MC_VECTOR_RIDGE_FULL = {
    **_VECTOR_PROBLEM,
    "shape": [64, 8],
    "seed": 2,
    "decay": 50.0,
    "steps": 5000,
    "trajectories": 8192,
    "chunk_size": 512,
    "block": 16,
}
MC_VECTOR_RIDGE_QUICK = {
    **_VECTOR_PROBLEM,
    "shape": [32, 6],
    "seed": 3,
    "decay": 20.0,
    "steps": 400,
    "trajectories": 1024,
    "chunk_size": 64,
    "block": 8,
}
SCHEDULES = ("constant", "decay")
COLORS = {"exact": "black", "mean": "tab:green", "constant": "tab:blue", "decay": "tab:orange"}


def compute_mc_vector_ridge(
    *, shape, sigma, learning_rate, batch_size, decay, steps, trajectories, chunk_size, block, seed=0, progress=True
) -> xr.Dataset:
    """Two runs of :func:`sim.noisy.vector.vector` on :func:`sim.regression.designs.synthetic_problem` (dimension
    ``schedule``: constant step, then η/(1 + t/decay)), plus the ridge curve over a grid of singular values."""
    x, y = designs.synthetic_problem(shape=tuple(shape), seed=seed)
    runs, attrs = [], {}
    for tau in (None, decay):
        ds = noisy_vector.vector(
            x,
            y,
            sigma=sigma,
            learning_rate=learning_rate,
            batch_size=batch_size,
            decay=tau,
            steps=steps,
            trajectories=trajectories,
            chunk_size=chunk_size,
            block=block,
            sample_paths=1,
            seed=seed,
            progress=progress,
        )
        attrs = attrs or dict(ds.attrs)
        runs.append(ds.drop_attrs().assign(second_moment_factor=((), ds.attrs.get("second_moment_factor", np.nan))))
    out = xr.concat(runs, dim="schedule", data_vars="all", coords="minimal", compat="override", join="override")
    s = out.singular_value.values[0]
    s_curve = np.geomspace(s.min() / 4, s.max() * 4, 200)
    lam = attrs["ridge_lambda"]
    keep = ("m", "n", "sigma", "learning_rate", "batch_size", "steps", "trajectories", "confidence", "prng")
    return (
        out.assign_coords(schedule=list(SCHEDULES), s_curve=s_curve)
        .assign(ridge_curve=("s_curve", s_curve**2 / (s_curve**2 + lam), {"description": "s^2 / (s^2 + m sigma^2)"}))
        .assign_attrs(
            {k: attrs[k] for k in keep}, decay=decay, ridge_lambda=lam, ridge_to_lstsq=attrs["ridge_to_lstsq"]
        )
    )


def plot_mc_vector_ridge(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(13.5, 5.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1.35, 1))
    t = ds.step.values[1:]
    const, dec = (ds.sel(schedule=name).isel(step=slice(1, None)) for name in SCHEDULES)
    gap = ds.attrs["ridge_to_lstsq"]
    n_traj = ds.attrs["trajectories"]
    left.plot(t, const.exact_mean_dist_ridge, color=COLORS["exact"], lw=1.3, label=r"exact $E\,w_t$ (constant η)")
    left.plot(t, const.exact_mean_dist_lstsq, color=COLORS["exact"], lw=1.0, ls="--")
    left.plot(t, const.mean_dist_ridge, color=COLORS["mean"], lw=1.6, label=f"MC mean of N = {n_traj:,} runs")
    left.plot(t, const.mean_dist_lstsq, color=COLORS["mean"], lw=1.0, ls="--")
    floor = np.sqrt(const.w_var.values[-1].sum() / n_traj)
    left.axhline(floor, color=COLORS["mean"], lw=0.7, ls=":", label=r"MC noise floor $\sqrt{\mathrm{tr\,Cov}\,w_T/N}$")
    for name, d in (("constant", const), ("decay", dec)):
        label = "constant η" if name == "constant" else f"η/(1 + t/{ds.attrs['decay']:g})"
        left.plot(t, d.path_dist_ridge.isel(path=0), color=COLORS[name], lw=0.9, alpha=0.85, label=f"one run, {label}")
        left.plot(
            t,
            np.sqrt(d.exact_sq_dist),
            color=COLORS[name],
            lw=1.6,
            ls=":",
            label=rf"exact $\sqrt{{E\|w_t - w_{{ridge}}\|^2}}$, {label}",
        )
    left.axhline(gap, color="0.5", lw=0.8)
    note = r"$\|w_{ridge} - w_{LS}\|$: where the dashed distances to least squares end"
    left.text(t[-1], gap * 1.12, note, ha="right", **NOTE)
    positive = np.concatenate([const.mean_dist_ridge.values, dec.path_dist_ridge.values.ravel()])
    left.set(
        xscale="log",
        yscale="log",
        xlim=(t[0], t[-1]),
        ylim=(max(positive[positive > 0].min() / 3, 1e-12), gap * 4),
        xlabel="step t",
        ylabel="distance",
    )
    left.set_title("solid and dotted: distance to the ridge solution (λ = mσ²); dashed: to least squares")
    left.legend(loc="lower left", fontsize=7.5)

    d = ds.isel(step=-1)
    right.plot(ds.s_curve, ds.ridge_curve, color=COLORS["exact"], lw=1.3, label=r"ridge: $s^2/(s^2 + m\sigma^2)$")
    right.axhline(1.0, color="0.5", lw=1.0, ls="--", label="least squares: 1")
    shift = {"constant": 0.97, "decay": 1.03}  # side by side at each s_i
    for name in SCHEDULES:
        e = d.sel(schedule=name)
        s = e.singular_value.values
        err = np.stack([e.factor - e.factor_ci_low, e.factor_ci_high - e.factor])
        right.errorbar(
            s * shift[name],
            e.factor,
            yerr=np.maximum(err, 0),
            color=COLORS[name],
            ls="none",
            marker="o",
            ms=4,
            capsize=2.5,
            label=f"recovered from the MC mean at T ({name} step), {ds.attrs['confidence']:.0%} CI",
        )
        right.plot(
            s * shift[name],
            e.exact_factor,
            color=COLORS[name],
            ls="none",
            marker="_",
            ms=11,
            mew=1.6,
            label=r"of the exact $E\,w_T$" + (" (a decaying step is still on its way)" if name == "decay" else ""),
        )
    right.set(xscale="log", ylim=(0, 1.12), xlabel=r"singular value $s_i$ of X", ylabel="filter factor")
    right.set_title(f"filter factors at T = {ds.attrs['steps']:,}")
    right.legend(loc="upper left", fontsize=7.5)
    fig.suptitle(
        f"Noisy-input SGD, m = {ds.attrs['m']}, n = {ds.attrs['n']}, σ = {ds.attrs['sigma']:g}, batch "
        f"{ds.attrs['batch_size']}, η = {ds.attrs['learning_rate']:g}: E w_t follows GD on ridge with λ = mσ² = "
        f"{ds.attrs['ridge_lambda']:g} exactly (EECS 182 Sp23 HW2 Q3)",
        fontsize=10,
    )
    return fig


# --------------------------------------------------------------------------------------------------------------
# The registered figures (``sim.figures.registry`` collects them)

FIGURES = {
    "mc_scalar_paths": Figure(
        filename="mc_scalar_paths.png",
        summary="noisy-input SGD on one point: Monte Carlo mean, quantile band and sample paths of w_t against the "
        "exact mean and standard deviation, below both thresholds and between them",
        full=MC_SCALAR_PATHS_FULL,
        quick=MC_SCALAR_PATHS_QUICK,
        compute_fn=compute_mc_scalar_paths,
        plot=plot_mc_scalar_paths,
    ),
    "mc_boundaries": Figure(
        filename="mc_boundaries.png",
        summary="(eta, sigma) map of noisy-input SGD from a Monte Carlo sweep: where the mean converges, where the "
        "variance stays bounded and where single runs settle, with the three closed-form boundaries",
        full=MC_BOUNDARIES_FULL,
        quick=MC_BOUNDARIES_QUICK,
        compute_fn=compute_mc_boundaries,
        plot=plot_mc_boundaries,
    ),
    "mc_vector_ridge": Figure(
        filename="mc_vector_ridge.png",
        summary="noisy-input minibatch SGD on m points in n dimensions: distance of the Monte Carlo mean, the exact "
        "mean and single runs to the ridge and least-squares solutions; filter factors recovered from the weights",
        full=MC_VECTOR_RIDGE_FULL,
        quick=MC_VECTOR_RIDGE_QUICK,
        compute_fn=compute_mc_vector_ridge,
        plot=plot_mc_vector_ridge,
    ),
}
