"""Deep-network trainability figures over seeds: initialization, optimizers, depth (EECS 182 Sp23 HW2 Q5, Sp25 HW0 Q6).

Contract: one ``compute_*`` (keyword configuration in, ``xarray.Dataset`` out, from
:mod:`sim.networks.trainability`) and one ``plot_*`` (dataset in, ``matplotlib.figure.Figure`` out, no pyplot
state) per figure, with their full and quick configurations below; :data:`FIGURES` registers them. The default data
are scikit-learn's digits (offline); the studies take ``cifar10:DIR`` as well. Bands are the interquartile range over
seeds around the median. Zero values (the zero initialization's weights, activations and hidden gradients, exactly 0)
cannot sit on log axes: they are said in the panels instead of drawn. Diverged runs are frozen and flagged by the
studies, so nothing plotted is NaN; uncomputed cells of an interrupted depth map are grey.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure as MplFigure
from matplotlib.patches import Patch

from sim.figures.base import DIVERGED_COLOR, NOT_REACHED_COLOR, NOTE, Figure, log_edges
from sim.networks import trainability

INIT_FULL = {"data": "digits", "seeds": 8}
INIT_QUICK = {"data": "digits", "seeds": 2, "steps": 20, "eval_size": 200}
OPTIMIZERS_FULL = {"data": "digits", "seeds": 8}
OPTIMIZERS_QUICK = {"data": "digits", "seeds": 2, "steps": 20, "n_train": 1000, "eval_size": 200, "eval_every": 5}
DEPTH_FULL = {"data": "digits", "seeds": 8, "scales": "log:1e-3:10:32", "lrs": "log:1e-6:10:32"}
DEPTH_QUICK = {"data": "digits", "seeds": 2, "scales": "log:1e-3:1:6", "lrs": "log:1e-4:1:6"}
SCHEME_COLORS = {"zero": "tab:gray", "random": "tab:blue", "he": "tab:purple"}
SCHEME_LABELS = {"zero": "zero", "random": r"$N(0, 0.01^2)$", "he": r"He $N(0, 2/\mathrm{fan\_in})$"}
RUN_COLORS = {
    "sgd": "tab:blue",
    "momentum": "tab:orange",
    "adam": "tab:green",
    "rmsprop": "tab:red",
    "sgd_lr_0.1": "tab:brown",
    "sgd_lr_0.1_batch_1000": "tab:purple",
}
BAND_ALPHA = 0.2


def _band(ax, x, values, color, label=None, *, ls="-", lw=1.4, positive=False):
    """Median line and interquartile band over seeds (axis 0 of ``values``)."""
    v = np.asarray(values, dtype=np.float64)
    med, lo, hi = trainability.quantiles(v, 0)
    if positive:  # log axes: drop zeros (a frozen run's logged norms)
        med, lo, hi = (np.where(a > 0, a, np.nan) for a in (med, lo, hi))
    ax.plot(x, med, ls, color=color, lw=lw, label=label)
    ax.fill_between(x, lo, hi, color=color, alpha=BAND_ALPHA, lw=0)


def _data_title(ds: xr.Dataset) -> str:
    a = ds.attrs
    return f"{a['data']} (input {a['input_dim']}, {a['n_train']} training images), {ds.sizes['seed']} seeds"


# --------------------------------------------------------------------------------------------------------------
# Initialization (EECS 182 Sp23 HW2 Q5)


def compute_init(*, progress: bool = True, **config) -> xr.Dataset:
    """:func:`sim.networks.trainability.init_study` with ``config``."""
    return trainability.init_study(**config, progress=progress)


def plot_init(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(17.0, 9.0), layout="constrained")
    (ax_loss, ax_acc, ax_norm), (ax_w, ax_act, ax_grad) = fig.subplots(2, 3)
    a = ds.attrs
    steps, evals = ds.step.values, ds.eval_step.values
    for name in ds.scheme.values:
        r = ds.sel(scheme=name)
        if not bool(r.computed):
            continue
        c, label = SCHEME_COLORS.get(str(name), "k"), SCHEME_LABELS.get(str(name), str(name))
        _band(ax_loss, steps, r.loss.values, c, label)
        _band(ax_acc, evals, r.train_accuracy.values, c, f"{label} train")
        _band(ax_acc, evals, r.val_accuracy.values, c, f"{label} val", ls="--", lw=1.0)
        _band(ax_norm, steps, r.grad_norm_frobenius.values, c, f"{label} Frobenius", positive=True)
        _band(ax_norm, steps, r.grad_norm_spectral.values, c, f"{label} spectral", ls="--", lw=1.0, positive=True)
    hidden = len(ds.hidden_layer)
    ax_loss.axhline(np.log(10), color="black", lw=0.7, ls=":", label="log 10 (uniform guess)")
    ax_loss.set(xlabel="iteration", ylabel="minibatch cross-entropy", yscale="log")
    ax_loss.set_title(
        f"{hidden} hidden layers of {int(ds.fan_in.values[1])}, SGD lr {a['learning_rate']:g}, batch "
        f"{a['batch_size']}\n{_data_title(ds)}"
    )
    ax_loss.legend(fontsize=7)
    ax_acc.set(xlabel="iteration", ylabel="accuracy", ylim=(0, 1))
    ax_acc.set_title(f"accuracy: train (first {a['eval_size']} training images, solid)\nand validation (dashed)")
    ax_acc.legend(fontsize=6.5, ncols=2)
    ax_norm.set(xlabel="iteration", ylabel="mean gradient norm over every W and b", yscale="log")
    ax_norm.set_title(
        "mean gradient norm over all weight and bias arrays:\nFrobenius of each flattened array (solid), spectral "
        "norm per matrix (dashed)"
    )
    ax_norm.legend(fontsize=6.5, ncols=2)

    layers = np.arange(1, len(ds.layer) + 1)
    zero_note = []
    for name in ds.scheme.values:
        r = ds.sel(scheme=name)
        if not bool(r.computed):
            continue
        c, label = SCHEME_COLORS.get(str(name), "k"), SCHEME_LABELS.get(str(name), str(name))
        if not np.any(r.expected_weight_std.values > 0):
            zero_note.append(label)
            continue
        ax_w.plot(layers, r.expected_weight_std.values, "-", color=c, lw=1.2)
        ax_w.plot(layers, np.median(r.weight_std.values, 0), "o", mfc="none", color=c, label=label)
        h = np.arange(1, hidden + 1)
        _band(ax_act, h, r.activation_std.values, c, f"{label} measured", positive=True)
        ax_act.plot(h, np.median(r.predicted_activation_std.values, 0), "--", color=c, lw=1.0)
        _band(ax_grad, layers, r.per_sample_grad_rms.values, c, f"{label} per-sample RMS", positive=True)
        ax_grad.plot(layers, np.median(r.predicted_per_sample_grad_rms.values, 0), "--", color=c, lw=1.0)
        ax_grad.plot(layers, np.median(r.init_grad_norm.values, 0), "s", ms=3, color=c, mfc="none")
        g = r.gain.values
        ax_act.text(
            h[-1],
            np.median(r.activation_std.values[:, -1]),
            f"  gain {g[1]:.3g}/layer",
            color=c,
            fontsize=7,
            va="center",
        )
    note = f"{', '.join(zero_note)}: every value exactly 0 (not drawn on log axes)" if zero_note else ""
    ax_w.set(xlabel="layer (W1 = input layer)", ylabel="std of the weights at init", yscale="log")
    ax_w.set_title(
        "weight std at init (dots, median over seeds)\nand the scheme's value (line): "
        r"$\sqrt{2/\mathrm{fan\_in}}$ for He"
    )
    ax_w.legend(fontsize=7)
    ax_act.set(xlabel="hidden layer", ylabel="std of the ReLU activations at init", yscale="log")
    ax_act.set_title(
        "activation std (band) and "
        r"$\sqrt{(1-1/\pi)\,m\,\prod_{k\leq l} g_k}$ (dashed)"
        "\n"
        r"gain $g=\mathrm{fan\_in}\cdot\mathrm{Var}(W)/2$, $m$ = mean square of the input"
    )
    ax_act.legend(fontsize=7)
    ax_grad.set(xlabel="layer", ylabel=r"$\|\partial \ell/\partial W_l\|_F$ at init", yscale="log")
    ax_grad.set_title(
        "weight gradients at init: per-sample RMS (band), mean-field\nprediction from the gains (dashed), "
        "gradient of the mean loss (squares)"
    )
    ax_grad.legend(fontsize=7)
    for axis in (ax_w, ax_act, ax_grad):
        if note:
            axis.text(0.02, 0.02, note, transform=axis.transAxes, **NOTE)
    return fig


# --------------------------------------------------------------------------------------------------------------
# Optimizers (EECS 182 Sp23 HW2 Q5)


def compute_optimizers(*, progress: bool = True, **config) -> xr.Dataset:
    """:func:`sim.networks.trainability.optimizer_study` with ``config``."""
    return trainability.optimizer_study(**config, progress=progress)


def _run_label(r) -> str:
    return f"{str(r.run.values)}: {str(r.optimizer.values)} lr {float(r.learning_rate):g}, batch {int(r.batch_size)}"


def plot_optimizers(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(17.0, 5.4), layout="constrained")
    ax_loss, ax_acc, ax_box = fig.subplots(1, 3, width_ratios=(1.2, 1.2, 1.0))
    a = ds.attrs
    steps, evals = ds.step.values, ds.eval_step.values
    for name in ds.run.values:
        r = ds.sel(run=name)
        if not bool(r.computed):
            continue
        c = RUN_COLORS.get(str(name), "k")
        _band(ax_loss, steps, r.loss.values, c, _run_label(r), lw=1.1)
        _band(ax_acc, evals, r.train_accuracy.values, c, f"{name} train")
        _band(ax_acc, evals, r.val_accuracy.values, c, None, ls="--", lw=1.0)
    hidden = [int(v) for v in np.atleast_1d(a["hidden"])]
    ax_loss.set(xlabel="iteration", ylabel="minibatch cross-entropy", yscale="log")
    ax_loss.set_title(f"hidden {hidden}, weights N(0, {a['weight_scale']:g}²)\n{_data_title(ds)}")
    ax_loss.legend(fontsize=6.5)
    ax_acc.set(xlabel="iteration", ylabel="accuracy", ylim=(0, 1))
    ax_acc.set_title("accuracy: train (solid) and validation (dashed),\nmedian and interquartile band over seeds")
    ax_acc.legend(fontsize=6.5, ncols=2)
    names = [n for n in ("sgd", "momentum", "sgd_lr_0.1", "sgd_lr_0.1_batch_1000") if n in ds.run.values]
    names = [n for n in names if bool(ds.computed.sel(run=n))]
    for i, name in enumerate(names):
        final = ds.train_loss.sel(run=name).values[:, -1]
        c = RUN_COLORS.get(name, "k")
        ax_box.boxplot([final], positions=[i], widths=0.5, medianprops={"color": c}, showfliers=False)
        ax_box.plot(np.full(final.size, i) + np.linspace(-0.15, 0.15, final.size), final, "o", ms=3, color=c)
    ax_box.set_xticks(
        range(len(names)), [n.replace("_batch_", "\nbatch ").replace("_lr_", "\nlr ") for n in names], fontsize=7
    )
    ax_box.set(
        ylabel=f"cross-entropy on the first {a['eval_size']} training images after {int(steps[-1])} steps",
        yscale="log",
    )
    ax_box.set_title(
        f"momentum ≈ a larger batch? μ = {a['momentum']:g}: effective step\nlr/(1−μ), gradients of ~1/(1−μ) steps "
        "averaged;\nSGD at that step with batch ×1 and ×1/(1−μ)",
        fontsize=8.5,
    )
    return fig


# --------------------------------------------------------------------------------------------------------------
# Depth (EECS 182 Sp25 HW0 Q6)


def compute_depth(*, progress: bool = True, **config) -> xr.Dataset:
    """:func:`sim.networks.trainability.depth_study` with ``config``."""
    return trainability.depth_study(**config, progress=progress)


def plot_depth(ds: xr.Dataset) -> MplFigure:
    depths = [int(d) for d in ds.depth.values]
    fig = MplFigure(figsize=(5.6 * (len(depths) + 1), 5.4), layout="constrained")
    axes = fig.subplots(1, len(depths) + 1)
    scales, lrs = ds.scale.values, ds.learning_rate.values
    xe, ye = log_edges(lrs), log_edges(scales)
    colors = {3: "tab:blue", 5: "tab:red"}
    mesh = None
    for ax, depth in zip(axes, depths, strict=False):
        r = ds.sel(depth=depth)
        fraction = r.success_fraction.transpose("scale", "learning_rate").values
        computed = np.isfinite(fraction)
        diverged = r.diverged.mean("seed").transpose("scale", "learning_rate").values > 0.5
        mesh = ax.pcolormesh(xe, ye, np.ma.masked_where(~computed, fraction), vmin=0, vmax=1, cmap="viridis")
        handles = []
        for mask, color, label in (
            (computed & diverged & (fraction == 0), DIVERGED_COLOR, "most seeds diverged"),
            (~computed, NOT_REACHED_COLOR, "not computed (interrupted)"),
        ):
            if mask.any():
                ax.pcolormesh(xe, ye, np.ma.masked_where(~mask, np.ones(mask.shape)), cmap=ListedColormap([color]))
                handles.append(Patch(color=color, label=label))
        region = trainability.success_region(r)
        hidden = str(r.hidden.values).replace(",", ", ")
        ax.set(xscale="log", yscale="log", xlabel="learning rate", ylabel="weight scale (weights N(0, scale²))")
        ax.set_title(
            f"{depth}-layer net, hidden [{hidden}]\nsuccess area {region['success_area']:.3f} "
            f"({region['cells']} of {region['cells_computed']} cells with ≥ {trainability.SUCCESS_SEED_FRACTION:.0%} "
            "of the seeds at 100 %)",
            fontsize=8.5,
        )
        if handles:
            ax.legend(handles=handles, loc="lower left", fontsize=7)
    if mesh is not None:
        fig.colorbar(mesh, ax=axes[: len(depths)], label="fraction of seeds reaching 100 % training accuracy")
    ax = axes[-1]
    good = {}
    for depth in depths:
        f = ds.success_fraction.sel(depth=depth).transpose("scale", "learning_rate").values
        good[depth] = np.where(np.isfinite(f), f, 0) >= trainability.SUCCESS_SEED_FRACTION
    both = np.logical_and.reduce(list(good.values()))
    for depth in depths:
        only = good[depth] & ~both
        color = colors.get(depth, "k")
        if only.any():
            ax.pcolormesh(
                xe, ye, np.ma.masked_where(~only, np.ones(only.shape)), cmap=ListedColormap([color]), alpha=0.6
            )
        region = trainability.success_region(ds.sel(depth=depth))
        if region["centroid"] is not None:
            c = region["centroid"]
            ax.plot(c["learning_rate"], c["scale"], "X", color=color, mec="black", ms=9)
        ax.plot([], [], "s", color=color, alpha=0.6, label=f"only {depth} layers")
    if len(depths) > 1 and both.any():
        ax.pcolormesh(
            xe, ye, np.ma.masked_where(~both, np.ones(both.shape)), cmap=ListedColormap(["tab:green"]), alpha=0.6
        )
        ax.plot([], [], "s", color="tab:green", alpha=0.6, label="both depths")
    ax.set(
        xscale="log",
        yscale="log",
        xlim=(xe[0], xe[-1]),
        ylim=(ye[0], ye[-1]),
        xlabel="learning rate",
        ylabel="weight scale",
    )
    a = ds.attrs
    ax.set_title(
        f"cells where at least half the seeds succeed; X = centroid\n{a['n_train']} images, {a['steps']} SGD "
        f"steps (batch {a['batch_size']}), {ds.sizes['seed']} seeds",
        fontsize=8.5,
    )
    ax.legend(fontsize=7, loc="lower left")
    return fig


FIGURES = {
    "trainability_init": Figure(
        filename="trainability_init.png",
        summary="Sp23 HW2 Q5: zero vs N(0, 0.01^2) vs He init of a 10 x 50 ReLU net under SGD over seeds: loss, "
        "accuracies, the mean gradient norm (Frobenius and spectral), and per layer at init the weight std, "
        "activation std and gradient norms against the gain fan_in Var(W) / 2",
        full=INIT_FULL,
        quick=INIT_QUICK,
        compute_fn=compute_init,
        plot=plot_init,
    ),
    "trainability_optimizers": Figure(
        filename="trainability_optimizers.png",
        summary="Sp23 HW2 Q5: SGD, momentum, Adam and RMSprop on a 5 x 100 ReLU net over seeds, and momentum against "
        "SGD at its effective step with a 10x larger batch",
        full=OPTIMIZERS_FULL,
        quick=OPTIMIZERS_QUICK,
        compute_fn=compute_optimizers,
        plot=plot_optimizers,
    ),
    "trainability_depth": Figure(
        filename="trainability_depth.png",
        summary="Sp25 HW0 Q6: success maps (fraction of seeds reaching 100 % training accuracy on 50 images in 40 "
        "SGD steps) of 3- and 5-layer nets over weight scale x learning rate, and each depth's success area",
        full=DEPTH_FULL,
        quick=DEPTH_QUICK,
        compute_fn=compute_depth,
        plot=plot_depth,
    ),
}
