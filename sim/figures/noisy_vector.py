"""Monte Carlo figure of noisy-input SGD in n dimensions: the mean goes to ridge, single runs follow with a spread.

Contract: ``compute_mc_vector_ridge`` (keyword configuration in, ``xarray.Dataset`` out: two runs of
:func:`sim.noisy.vector.vector`, constant and decaying step, along dimension ``schedule``, beside the float64
oracles) and ``plot_mc_vector_ridge`` (dataset in, ``matplotlib.figure.Figure`` out, no pyplot state); the
configurations at full and quick size are the dicts below (quick: a few seconds including compilation).

Problem: a seeded synthetic X (m × n, prescribed singular values s_i) and y; minibatch SGD on ½(x̃ᵢᵀw − yᵢ)² with
x̃ᵢ = xᵢ + N(0, σ²I) fresh at every use, w₀ = 0 (EECS 182 Sp23 HW2 Q3). Left: distances to the ridge solution
(λ = mσ²) and to least squares over steps, on log axes, for the exact mean, the Monte Carlo mean and single runs at
a constant and a decaying step, with the exact root-mean-square distance of single runs. Right: the filter factors
read off the Monte Carlo mean at T against s_i, on the ridge curve s²/(s² + mσ²), far below least squares' 1.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure as MplFigure

from sim.figures.base import NOTE
from sim.noisy import vector as noisy_vector
from sim.regression import designs as datasets

# seeds picked so that ‖w_ridge − w_LS‖ (1.5, 1.6) is several times the constant step's spread of single runs (0.3)
_PROBLEM = {"sigma": 0.5, "learning_rate": 0.1, "batch_size": 4}
MC_VECTOR_RIDGE_FULL = {
    **_PROBLEM,
    "shape": [64, 8],
    "seed": 2,
    "decay": 50.0,
    "steps": 5000,
    "trajectories": 8192,
    "chunk_size": 512,
    "block": 16,
}
MC_VECTOR_RIDGE_QUICK = {
    **_PROBLEM,
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
    x, y = datasets.synthetic_problem(shape=tuple(shape), seed=seed)
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
