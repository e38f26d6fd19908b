"""Initialization and linearization figures: per-layer gradient norms against the init scale (with the mean-field
gain), and a network trained beside its linearization.

Contract: one ``compute_*`` (keyword configuration in, ``xarray.Dataset`` out, from ``sim.networks.init_scale`` or
``sim.networks.linearized``) and one ``plot_*`` (dataset in, ``matplotlib.figure.Figure`` out, no pyplot state) per
figure, with their full and quick configurations at the top (``sim.figures.registry`` registers them). Gradient norms
are Frobenius norms of each layer's weight gradient of the full training MSE (PyTorch's MSELoss).

References: EECS 182 Sp25 HW1 Q5 Part II (initialization and depth), Sp23 HW2 Q5 (initialization).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure as MplFigure

from sim.figures.base import NOTE, unit_colors
from sim.figures.features import PF_COLORS
from sim.networks import init_scale, linearized

INIT_SCALE_FULL = {"scales": np.geomspace(1e-2, 10, 61).tolist(), "seeds": 32, "depth": 4, "width": 20}
INIT_SCALE_QUICK = INIT_SCALE_FULL | {"scales": np.geomspace(1e-2, 10, 13).tolist(), "seeds": 8, "n_train": 300}
LINEARIZED_FULL = {"model": "he", "learning_rates": [0.1, 0.03, 0.01], "steps": 468, "n_train": 1500}
LINEARIZED_QUICK = LINEARIZED_FULL | {"learning_rates": [0.1, 0.01], "n_train": 300}


# --------------------------------------------------------------------------------------------------------------
# Gradient norms against the init scale, with the mean-field gain


def compute_init_scale(*, progress=True, **config) -> xr.Dataset:
    """:func:`sim.networks.init_scale.init_scale_sweep`: per-layer gradient norms and second moments over (scale,
    seed)."""
    return init_scale.init_scale_sweep(**config, progress=progress)


def plot_init_scale(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(16.0, 5.2), layout="constrained")
    ax, ax2, ax3 = fig.subplots(1, 3)
    a = ds.scale.values
    layers = list(ds.layer.values)
    colors = PF_COLORS[: len(layers)] if len(layers) <= len(PF_COLORS) else unit_colors(len(layers))
    depth, width = ds.attrs["depth"], ds.attrs["width"]
    for i, (layer, color) in enumerate(zip(layers, colors, strict=True)):
        ax.loglog(
            np.repeat(a, ds.sizes["seed"]),
            ds.grad_norm.isel(layer=i).values.ravel(),
            ".",
            ms=1.5,
            color=color,
            alpha=0.25,
        )
        ax.loglog(a, ds.grad_norm_rms.isel(layer=i), "o", ms=3.5, mfc="none", color=color, label=f"{layer} (RMS)")
        ax.loglog(a, ds.predicted_grad_norm.isel(layer=i), "-", lw=1.2, color=color)
        ax2.loglog(a, ds.second_moment_mean.isel(layer=i), "o", ms=3.5, mfc="none", color=color, label=layer)
        ax2.loglog(a, ds.predicted_second_moment.isel(layer=i), "-", lw=1.2, color=color)
        ratio = ds.grad_norm_rms.isel(layer=i) / ds.predicted_grad_norm.isel(layer=i)
        ax3.semilogx(a, ratio, "o-", ms=3, color=color, label=layer)
    ax.plot([], [], "-", color="black", label="mean-field prediction")
    # slope guides through the first and last measured points of the output layer
    g = ds.grad_norm_rms.isel(layer=-1).values
    for slope, anchor, sel in ((depth, 0, a < a[len(a) // 3]), (2 * depth + 1, -1, a > a[2 * len(a) // 3])):
        guide = g[anchor] * (a[sel] / a[anchor]) ** slope * 10
        ax.loglog(a[sel], guide, "k--", lw=0.8)
        ax.text(a[sel][0], guide[0] * 3, rf"$\propto a^{{{slope}}}$", fontsize=9, ha="left", va="bottom")
    for axis in (ax, ax2, ax3):
        _mark_scales(axis, ds.attrs["he_scale"])
    ax.set(
        xlabel=r"weight scale $a$ (all weights $U(\pm a)$, zero biases)",
        ylabel=r"$\|\partial L/\partial W_l\|_F$ at init",
    )
    ax.set_title(
        f"gradient norms, {depth} × {width} ReLU net, {ds.sizes['seed']} seeds: "
        rf"$a^{{{depth}}}$ (residual ≈ −y), then $a^{{{2 * depth + 1}}}$ (f dominates)"
    )
    ax.legend(fontsize=7, loc="upper left")
    ax2.set(xlabel=r"weight scale $a$", ylabel=r"mean squared pre-activation $q_l$")
    ax2.set_title(r"signal second moments: $q_l=\frac{a^2}{3}\,\overline{x^2}\,g^{\,l-1}$, gain $g=Na^2/6$")
    ax2.legend(fontsize=7, loc="upper left")
    ax3.axhline(1.0, color="black", lw=0.8)
    ax3.set(xlabel=r"weight scale $a$", ylabel="measured RMS / mean-field prediction", ylim=(0, 2))
    ax3.set_title("agreement of the gradient norms with the mean-field formula")
    ax3.legend(fontsize=7)
    ax3.text(
        0.02,
        0.02,
        "finite width (N = 20) and the R–J independence assumption\nset the residual gap",
        transform=ax3.transAxes,
        **NOTE,
    )
    return fig


# --------------------------------------------------------------------------------------------------------------
# The network against its linearization


def compute_linearized(*, progress=True, **config) -> xr.Dataset:
    """:func:`sim.networks.linearized.linearized_comparison`: network and linearized model, same optimizer and
    batches."""
    return linearized.linearized_comparison(**config, progress=progress)


def plot_linearized(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(16.0, 5.0), layout="constrained")
    ax, ax2, ax3 = fig.subplots(1, 3)
    steps = ds.step.values
    lrs = ds.learning_rate.values
    for lr, color in zip(lrs, PF_COLORS, strict=False):
        for kind, ls in (("network", "-"), ("linearized", "--")):
            run = ds.sel(learning_rate=lr, kind=kind)
            label = f"{kind}, lr {lr:g}"
            if bool(run.diverged):
                label += f" (diverged at step {int(run.diverged_step)})"
            ax.semilogy(steps, run.test_loss, ls, color=color, lw=1.2, label=label)
            ax2.semilogy(steps, run.train_loss, ls, color=color, lw=1.2)
            if not bool(run.diverged):
                ax3.plot(ds.x, run.prediction, ls, color=color, lw=1.0, label=label)
            else:
                ax.plot(steps[steps >= int(run.diverged_step)][:1], run.test_loss.values[-1:], "x", color=color, ms=8)
    title = f"test MSE ({ds.attrs['model']}, {ds.attrs['optimizer']} m = {ds.attrs['momentum']:g}); "
    title += f"full-batch bound of the linearization: lr < {float(ds.lr_stable):.3g} (minibatch noise diverges earlier)"
    ax.set(xlabel="step", ylabel="test MSE", title=title)
    ax.legend(fontsize=7)
    ax2.set(xlabel="step", ylabel="training MSE (full set)", title="training MSE: network solid, linearized dashed")
    drift = ", ".join(f"lr {lr:g}: {d:.2f}" for lr, d in zip(lrs, ds.feature_drift.values, strict=True))
    ax2.text(0.02, 0.02, f"network feature drift ‖Φ_T − Φ₀‖/‖Φ₀‖: {drift}", transform=ax2.transAxes, **NOTE)
    ax3.plot(ds.x, ds.target, color="black", lw=1.4, label="target")
    ax3.plot(ds.x, ds.initial_prediction, color="0.5", lw=0.8, ls=":", label="f at init")
    ax3.set(xlabel="x", ylabel="f(x)", title="final predictions (diverged runs omitted)")
    ax3.legend(fontsize=7)
    fig.suptitle(
        r"a network against its linearization $f(\theta_0)+J(\theta_0)(\theta-\theta_0)$: same optimizer, same "
        rf"minibatches; top singular value of $\Phi_0$ = {float(ds.top_singular_value):.1f}"
    )
    return fig


# --------------------------------------------------------------------------------------------------------------
# Drawing helpers


def _mark_scales(ax, he_scale):
    kw = {"transform": ax.get_xaxis_transform(), "rotation": 90, "fontsize": 7, "va": "top", "color": "0.3"}
    for a, label in ((0.03, "course U(±0.03)"), (3.0, "course U(±3)"), (he_scale, "g = 1 (He scale for fan-in N)")):
        ax.axvline(a, color="0.5", lw=0.7, ls="-.")
        ax.text(a, 0.98, f" {label}", ha="right", **kw)
