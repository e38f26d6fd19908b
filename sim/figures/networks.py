"""Local-linearization figures of the course experiments: features, singular values, principal features, elbows.

Contract: one ``compute_*`` (keyword configuration in, ``xarray.Dataset`` out, from ``sim.networks.course``) and one
``plot_*`` (dataset in, ``matplotlib.figure.Figure`` out, no pyplot state) per figure, with their full and quick
configurations at the top (``sim.figures.registry`` registers them).
Parts I and II each feed two figures: their computation is memoized by configuration (the last two datasets are
kept), so rendering both figures of a part runs the experiment once; a returned dataset may be shared, and no
``plot_*`` or caller may mutate it.
Conventions: MSE is the mean squared error (PyTorch's MSELoss); gradient norms are Frobenius norms of each layer's
weight gradient of the full training MSE; Φ is the n × P Jacobian of the outputs on the training points, principal
feature k is ψ_k(x) = Σ_p V_pk ∂f(x)/∂θ_p with the training V (EECS 182 Sp25 HW1 Q5). Diverged runs are frozen and
flagged, so nothing plotted is NaN.

References: EECS 182 Sp25 HW1 Q5 (Parts I and II), Sp25 HW0 Q5 (elbows).
"""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import xarray as xr
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sim.figures.base import DIVERGED_COLOR, NOTE, Figure, unit_colors
from sim.networks import course as experiments
from sim.networks import init_scale, linearized

PART1_FULL = {"widths": [10, 20, 40], "depths": [1, 2], "steps": 150_000, "learning_rate": 0.02, "batch_size": 40}
PART1_QUICK = PART1_FULL | {"widths": [10], "steps": 3000}
PART2_FULL = {"models": list(experiments.PART2_MODELS), "steps": 468, "n_train": 1500}
PART2_QUICK = PART2_FULL | {"models": ["small", "large", "he", "he_mismatched"], "n_train": 300}
MODEL_COLORS = {"shallow": "tab:green", "small": "tab:blue", "large": DIVERGED_COLOR, "he": "tab:purple"}
MODEL_COLORS |= {"he_mismatched": "tab:orange"}
PF_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
PF_SHOWN = 4  # principal features drawn per panel in the per-model figures (the experiments' default num_pf)
PF_DEFINITION = (
    r"$\psi_k(x)=\sum_p V_{pk}\,\partial f(x)/\partial\theta_p$ on a dense grid, with $V$ from the SVD "
    r"$\Phi = U S V^\top$ of the $n \times P$ Jacobian on the training points (sign: largest $|\psi_k|$ positive)"
)
CACHE_SIZE = 2  # memoized Part I / Part II datasets (``sim figures`` renders a part's two figures in a row)
PART2_SEEDS_FULL = {"seeds": 32}
PART2_SEEDS_QUICK = {"seeds": 3, "n_train": 300, "steps": 100}


# --------------------------------------------------------------------------------------------------------------
# Parts I and II feed two figures each: one computation per configuration


def memoized(experiment, config: dict, *, progress: bool = True) -> xr.Dataset:
    """``experiment(**config, progress=progress)``, remembered for the last ``CACHE_SIZE`` configurations.

    The key is the experiment's name and the canonical JSON of ``config`` (sorted keys; ``progress`` is not part of
    it). A hit returns the very same dataset: treat it as read-only.
    """
    key = json.dumps({"experiment": experiment.__name__, "config": config}, sort_keys=True)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    ds = experiment(**config, progress=progress)
    if ds.attrs.get("complete", 1):  # an interrupted run is returned, never remembered
        _CACHE[key] = ds
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return ds


def clear_cache() -> None:
    """Forget every memoized dataset (the next call recomputes)."""
    _CACHE.clear()


_CACHE: OrderedDict[str, xr.Dataset] = OrderedDict()


# --------------------------------------------------------------------------------------------------------------
# Part I: elbow nets on the kink target


def compute_part1_features(*, progress=True, **config) -> xr.Dataset:
    """:func:`sim.networks.course.part1` (features, elbows, spectra of the elbow nets at init and trained), memoized."""
    return memoized(experiments.part1, config, progress=progress)


def plot_part1_features(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(17.0, 11.5), layout="constrained")
    axes = fig.subplots(3, 4)
    shallow = [m for m in ds.model.values if int(ds.depth.sel(model=m)) == 1] or list(ds.model.values)
    m1 = shallow[0]
    width = int(ds.width.sel(model=m1))
    x = ds.x.values
    kinks = ds.attrs["kinks"]
    colors = unit_colors(width)
    for col, (var, label) in enumerate(
        (("feature_w", r"\partial f/\partial W^{(1)}_i"), ("feature_b", r"\partial f/\partial b_i"))
    ):
        for j, stage in enumerate(experiments.STAGES):
            ax = axes[0, 2 * col + j]
            curves = ds[var].sel(model=m1, stage=stage).values[:width]
            for i in range(width):
                ax.plot(x, curves[i], color=colors[i], lw=1.0)
            _mark_kinks(ax, kinks)
            ax.set(xlabel="x", title=f"${label}(x)$, {stage} ({m1}, one line per unit)")
    ax = axes[1, 0]
    ax.plot(ds.x_train.sel(model=m1), ds.y_train.sel(model=m1), ".", ms=2.5, color="0.6", label="training data")
    ax.plot(x, ds.target, color="black", lw=1.2, label="target (kinks at k/10)")
    for m, color in zip(ds.model.values, PF_COLORS, strict=False):
        mse = float(ds.final_test_mse.sel(model=m))
        ax.plot(
            x, ds.prediction.sel(model=m, stage="trained"), color=color, lw=1.0, label=f"{m} trained, MSE {mse:.3g}"
        )
    ax.plot(x, ds.prediction.sel(model=m1, stage="init"), color=PF_COLORS[0], lw=0.8, ls="--", label=f"{m1} at init")
    ax.set(
        xlabel="x", ylabel="f(x)", title=f"fits after {ds.attrs['steps']} SGD steps (lr {ds.attrs['learning_rate']:g})"
    )
    ax.legend(fontsize=7)

    ax = axes[1, 1]
    steps = ds.step.values
    pos = np.ma.masked_invalid(np.where(ds.elbow_defined.sel(model=m1).values, ds.elbows.sel(model=m1).values, np.inf))
    for i in range(width):
        ax.plot(steps, pos[:, i], color=colors[i], lw=1.0)
    for k in kinks:
        ax.axhline(k, color="0.3", lw=0.6, ls=":")
    ax.set(xlabel="SGD step", ylabel=r"elbow $e_i=-b_i/W^{(1)}_i$", ylim=(-0.15, 1.15))
    ax.set_title(f"elbows over training ({m1}); dotted: the target's kinks")

    ax = axes[1, 2]
    for m, color in zip(ds.model.values, PF_COLORS, strict=False):
        for stage, ls in zip(experiments.STAGES, ("--", "-"), strict=True):
            s = ds.singular_values.sel(model=m, stage=stage).values
            n_params = int(ds.num_params.sel(model=m))
            label = f"{m} (P = {n_params})" if stage == "trained" else None
            ax.semilogy(np.arange(1, s.size + 1), np.maximum(s, 1e-12), ls, color=color, marker=".", ms=3, label=label)
    ax.set(xlabel="index k", ylabel=r"singular value $s_k$ of $\Phi$", ylim=(1e-3, None))
    ax.set_title("top singular values: init dashed, trained solid")
    ax.legend(fontsize=7)

    m2 = [m for m in ds.model.values if int(ds.depth.sel(model=m)) > 1]
    _principal_panel(axes[1, 3], ds, m1, "trained", kinks)
    _principal_panel(axes[2, 0], ds, m1, "init", kinks)
    if m2:
        _principal_panel(axes[2, 1], ds, m2[-1], "trained", kinks)
    else:
        _missing(axes[2, 1], "no two-layer model in this run")
    for ax, stage in zip(axes[2, 2:], experiments.STAGES, strict=True):
        _scatter_panel(fig, ax, ds, m1, stage)
    fig.suptitle(
        "Part I (Sp25 HW1 Q5): features of the local linearization of elbow-initialized ReLU nets "
        f"on the kink target (n = {ds.sizes['sample']}, batch {ds.attrs['batch_size']})"
    )
    return fig


# --------------------------------------------------------------------------------------------------------------
# Part II: depth, initialization and mismatched data


def compute_part2_features(*, progress=True, **config) -> xr.Dataset:
    """:func:`sim.networks.course.part2` (shallow vs 4 × 20 nets with three inits, and mismatched data), memoized."""
    return memoized(experiments.part2, config, progress=progress)


def plot_part2_features(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(17.0, 11.5), layout="constrained")
    axes = fig.subplots(3, 4)
    models = list(ds.model.values)
    for ax, stage in zip(axes[0, :2], experiments.STAGES, strict=True):
        for m in models:
            s = ds.singular_values.sel(model=m, stage=stage).values
            tag = " (diverged: frozen at init)" if bool(ds.diverged.sel(model=m)) and stage == "trained" else ""
            ax.semilogy(np.arange(1, s.size + 1), np.maximum(s, 1e-12), "-", marker=".", ms=3, color=MODEL_COLORS[m])
            ax.lines[-1].set_label(m + tag)
        n = ds.sizes["sample"]
        ax.axhline(np.sqrt(n), color="0.4", lw=0.8, ls=":", label=rf"$\sqrt{{n}}={np.sqrt(n):.1f}$ (bias feature)")
        ax.set(xlabel="index k", ylabel=r"singular value $s_k$ of $\Phi$", ylim=(1e-6, None))
        ax.set_title(f"singular values of Φ, {stage}")
        ax.legend(fontsize=7)

    ax = axes[0, 2]
    for m in models:
        layers = int(ds.num_layers.sel(model=m))
        g = ds.grad_norms.sel(model=m, stage="init").values[:layers]
        ax.semilogy(np.arange(1, layers + 1), g, "o-", color=MODEL_COLORS[m], ms=4, label=m)
        _mark_published_grad_norms(ax, m, layers)
    ax.plot([], [], "x", color="black", label="published (course run)")
    ax.set(xlabel="layer (last = output)", ylabel=r"$\|\partial L/\partial W_l\|_F$ at init")
    ax.set_title("per-layer weight-gradient norms at init (full training MSE)")
    ax.legend(fontsize=7, loc="center right")

    ax = axes[0, 3]
    idx = np.arange(len(models))
    mse = ds.final_test_mse.values
    bars = ax.bar(idx, mse, color=[MODEL_COLORS[m] for m in models])
    for i, m in enumerate(models):
        if bool(ds.diverged.sel(model=m)):
            bars[i].set_hatch("//")
            step = int(ds.diverge_step.sel(model=m))
            ax.text(
                i,
                0.5,
                f"diverged\nat step {step}\n(frozen)",
                ha="center",
                va="center",
                fontsize=7,
                transform=ax.get_xaxis_transform(),
                bbox={"fc": "white", "ec": "none", "alpha": 0.8},
            )
        pub = float(ds.published_test_mse.sel(model=m))
        if np.isfinite(pub):
            ax.plot(i, pub, "x", color="black", ms=7)
    ax.plot([], [], "x", color="black", label="published test MSE")
    ax.axhline(float(ds.constant_mse.values[0]), color="0.4", ls=":", label="constant predictor (training mean)")
    ax.set(yscale="log", xticks=idx, ylabel="final test MSE")
    ax.set_xticklabels(models, rotation=20, fontsize=8)
    ax.set_title(f"test MSE after {ds.attrs['steps']} heavy-ball steps (m = {ds.attrs['momentum']:g})")
    ax.legend(fontsize=7, loc="upper left")

    panels = [("small", "init"), ("large", "init"), ("he", "init"), ("he", "trained")]
    panels += [("shallow", "trained"), ("he_mismatched", "trained")]
    for ax, (m, stage) in zip([*axes[1], *axes[2, 1:3]], panels, strict=True):
        if m in models:
            _principal_panel(ax, ds, m, stage, None)
        else:
            _missing(ax, f"model {m!r} not in this run")
    ax = axes[2, 0]
    x = ds.x.values
    ax.plot(x, ds.target, color="black", lw=1.4, label="target Σ F_k sin(kπx)")
    for m in models:
        if not bool(ds.diverged.sel(model=m)):
            ax.plot(x, ds.prediction.sel(model=m, stage="trained"), color=MODEL_COLORS[m], lw=1.0, label=m)
    if "he_mismatched" in models:
        lo, hi = experiments.PART2_MODELS["he_mismatched"]["train_interval"]
        ax.axvspan(hi, x[-1], color="tab:orange", alpha=0.1, label="outside the mismatched training range")
    ax.set(xlabel="x", ylabel="f(x)", title="trained predictions")
    ax.legend(fontsize=7)
    _scatter_panel(fig, axes[2, 3], ds, "he" if "he" in models else models[0], "trained")
    fig.suptitle(
        "Part II (Sp25 HW1 Q5): depth, initialization scale and mismatched data through the features of the local "
        f"linearization (n = {ds.sizes['sample']}, batch {ds.attrs['batch_size']}, lr {ds.attrs['learning_rate']:g})"
    )
    return fig


# --------------------------------------------------------------------------------------------------------------
# Per model: top principal features at init and trained, and the top singular values (Parts I and II)


def plot_part1_principal(ds: xr.Dataset) -> MplFigure:
    kinks = ds.attrs["kinks"]

    def label(m):
        d, w = int(ds.depth.sel(model=m)), int(ds.width.sel(model=m))
        layers = f"{d} hidden layer{'s' if d > 1 else ''} of {w} units"
        return f"{m}: {layers}, elbow init, P = {int(ds.num_params.sel(model=m))}; {_mse_note(ds, m)}"

    def decorate(ax, m):
        _mark_kinks(ax, kinks)
        _shade_outside(ax, ds.x.values, ds.attrs["interval"], "0.5")

    extra = [Line2D([], [], color="0.75", lw=0.8, ls=":", label="the target's kinks k/10")]
    lo, hi = ds.attrs["interval"]
    extra.append(Patch(color="0.5", alpha=0.15, label=f"x outside the training interval [{lo:g}, {hi:g}]"))
    title = (
        "Part I (Sp25 HW1 Q5), elbow-initialized ReLU nets on the kink target: top principal features and singular "
        f"values of Φ at init and after {ds.attrs['steps']} SGD steps (lr {ds.attrs['learning_rate']:g}, "
        f"batch {ds.attrs['batch_size']}, n = {ds.sizes['sample']})"
    )
    return _principal_rows(ds, title, label, decorate, extra)


def plot_part2_principal(ds: xr.Dataset) -> MplFigure:
    def label(m):
        d, w, init = int(ds.depth.sel(model=m)), int(ds.width.sel(model=m)), str(ds.init.sel(model=m).values)
        inits = {"pytorch": "PyTorch default init", "he_uniform": "He uniform, zero biases"}
        text = f"{m}: {d} × {w}, " + inits.get(init, f"weights U(±{float(ds.scale.sel(model=m)):g}), zero biases")
        lo, hi = _train_interval(ds, m)
        if (lo, hi) != tuple(ds.attrs["interval"]):
            text += f", trained on x ∈ [{lo:g}, {hi:g}]"
        text += f", P = {int(ds.num_params.sel(model=m))}; {_mse_note(ds, m)}"
        pub = float(ds.published_test_mse.sel(model=m)) if "published_test_mse" in ds else np.nan
        if not np.isnan(pub):
            text += f" (published {pub:g})" if np.isfinite(pub) else " (published NaN)"
        return text

    def decorate(ax, m):
        mismatched = _train_interval(ds, m) != tuple(ds.attrs["interval"])
        _shade_outside(ax, ds.x.values, _train_interval(ds, m), MODEL_COLORS["he_mismatched"] if mismatched else "0.5")

    lo, hi = ds.attrs["interval"]
    extra = [Patch(color="0.5", alpha=0.15, label=f"x outside the training interval [{lo:g}, {hi:g}]")]
    if any(_train_interval(ds, m) != tuple(ds.attrs["interval"]) for m in ds.model.values):
        extra.append(Patch(color=MODEL_COLORS["he_mismatched"], alpha=0.15, label="outside the mismatched interval"))
    title = (
        "Part II (Sp25 HW1 Q5), sum of sines: top principal features and singular values of Φ at init and after "
        f"{ds.attrs['steps']} heavy-ball steps (m = {ds.attrs['momentum']:g}, lr {ds.attrs['learning_rate']:g}, "
        f"batch {ds.attrs['batch_size']}, n = {ds.sizes['sample']})"
    )
    return _principal_rows(ds, title, label, decorate, extra)


def _principal_rows(ds, title, label, decorate, extra_handles):
    """One row per model: ψ_1..ψ_4 at init, the same trained, and the top singular values (init dashed)."""
    models = list(ds.model.values)
    k_shown = min(PF_SHOWN, ds.sizes["pf_index"])
    colors = [PF_COLORS[k % len(PF_COLORS)] for k in range(k_shown)]
    fig = MplFigure(figsize=(15.0, 0.9 + 2.9 * len(models)), layout="constrained")
    key, *rows = fig.subfigures(len(models) + 1, 1, height_ratios=[0.3] + [2.9] * len(models))
    handles = [Line2D([], [], color=c, lw=1.4, label=rf"$\psi_{k + 1}$") for k, c in enumerate(colors)]
    handles += [Line2D([], [], color="0.45", ls="--", marker=".", label="singular values at init")]
    handles += [Line2D([], [], color="black", marker=".", label=r"trained (colored: the $s_k$ of the drawn $\psi_k$)")]
    key.legend(handles=handles + extra_handles, loc="center", ncols=len(handles) + len(extra_handles), frameon=False)
    x = ds.x.values
    for sub, m in zip(rows, models, strict=True):
        sub.suptitle(label(m), x=0.005, ha="left", fontsize=10, fontweight="bold")
        *feature_axes, ax_sv = sub.subplots(1, 3, width_ratios=[1.4, 1.4, 1.0])
        frozen = bool(ds.diverged.sel(model=m))
        for ax, stage in zip(feature_axes, experiments.STAGES, strict=True):
            psi = ds.principal_features.sel(model=m, stage=stage).values
            for k, color in enumerate(colors):
                ax.plot(x, psi[k], color=color, lw=1.1)
            decorate(ax, m)
            ax.set_xlim(x[0], x[-1])
            tag = f" (diverged at step {int(ds.diverge_step.sel(model=m))}: frozen at init)" if frozen else ""
            ax.set(xlabel="x", title=f"top {k_shown} principal features, {stage}{tag if stage == 'trained' else ''}")
        feature_axes[0].set_ylabel(r"$\psi_k(x)$")
        for stage, ls, color in (("init", "--", "0.45"), ("trained", "-", "black")):
            s = np.maximum(ds.singular_values.sel(model=m, stage=stage).values, 1e-12)  # zero padding
            index = np.arange(1, s.size + 1)
            ax_sv.semilogy(index, s, ls, color=color, lw=1.0, marker=".", ms=3)
            ax_sv.scatter(index[:k_shown], s[:k_shown], c=colors, s=16, zorder=3, edgecolors="none")
        ax_sv.set(xlabel="index k", ylabel=r"$s_k$", xticks=[1, 5, 10, 15, 20][: 1 + ds.sizes["sv_index"] // 5])
        ax_sv.set_title(f"top {ds.sizes['sv_index']} singular values of Φ (init dashed)")
    fig.suptitle(title + "\n" + PF_DEFINITION, fontsize=11)
    return fig


def _mse_note(ds, model):
    note = f"final test MSE {float(ds.final_test_mse.sel(model=model)):.3g}"
    if bool(ds.diverged.sel(model=model)):
        note += f", DIVERGED at step {int(ds.diverge_step.sel(model=model))} (frozen at init)"
    return note


def _train_interval(ds, model):
    """Training x-interval of ``model``: Part II's per-model interval, else the experiment's."""
    if ds.attrs.get("experiment") == "part2" and model in experiments.PART2_MODELS:
        return tuple(experiments.PART2_MODELS[model]["train_interval"])
    return tuple(ds.attrs["interval"])


def _shade_outside(ax, x, interval, color):
    lo, hi = interval
    for a, b in ((x[0], lo), (hi, x[-1])):
        if b > a:
            ax.axvspan(a, b, color=color, alpha=0.15, lw=0)


# --------------------------------------------------------------------------------------------------------------
# Shared drawing helpers


def _mark_kinks(ax, kinks):
    for k in kinks:
        ax.axvline(k, color="0.75", lw=0.5, ls=":")


def _principal_panel(ax, ds, model, stage, kinks):
    psi = ds.principal_features.sel(model=model, stage=stage).values
    s = ds.singular_values.sel(model=model, stage=stage).values
    for k in range(psi.shape[0]):
        ax.plot(ds.x, psi[k], color=PF_COLORS[k % len(PF_COLORS)], lw=1.1, label=rf"$\psi_{k + 1}$, $s={s[k]:.3g}$")
    if kinks is not None:
        _mark_kinks(ax, kinks)
    tag = " (diverged: frozen)" if bool(ds.diverged.sel(model=model)) and stage == "trained" else ""
    ax.set(xlabel="x", ylabel=r"$\psi_k(x)=\sum_p V_{pk}\,\partial f(x)/\partial\theta_p$")
    ax.set_title(f"top principal features, {model}, {stage}{tag}")
    ax.legend(fontsize=7)


def _scatter_panel(fig, ax, ds, model, stage):
    psi = ds.principal_train.sel(model=model, stage=stage).values
    x = ds.x_train.sel(model=model).values
    points = ax.scatter(psi[0], psi[1], c=x, s=5, cmap="viridis")
    fig.colorbar(points, ax=ax, label="x")
    ax.set(xlabel=r"$\psi_1(x_j)$", ylabel=r"$\psi_2(x_j)$")
    ax.set_title(f"training points in the top-2 principal features ({model}, {stage})")


def _missing(ax, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_axis_off()


# --------------------------------------------------------------------------------------------------------------
# Initialization and linearization figures: per-layer gradient norms against the init scale (with the mean-field

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
                label += f" (diverged at step {int(run.diverge_step)})"
            ax.semilogy(steps, run.test_loss, ls, color=color, lw=1.2, label=label)
            ax2.semilogy(steps, run.train_loss, ls, color=color, lw=1.2)
            if not bool(run.diverged):
                ax3.plot(ds.x, run.prediction, ls, color=color, lw=1.0, label=label)
            else:
                ax.plot(steps[steps >= int(run.diverge_step)][:1], run.test_loss.values[-1:], "x", color=color, ms=8)
    title = f"test MSE ({ds.attrs['model']}, {ds.attrs['optimizer']} m = {ds.attrs['momentum']:g}); "
    bound = float(ds.learning_rate_stable)
    title += f"full-batch bound of the linearization: lr < {bound:.3g} (minibatch noise diverges earlier)"
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


# --------------------------------------------------------------------------------------------------------------
# Part II over seeds: where the published numbers fall


def compute_part2_seeds(*, progress=True, **config) -> xr.Dataset:
    """:func:`sim.networks.course.part2_seeds`: every Part II model over seeds, beside the published numbers."""
    return experiments.part2_seeds(**config, progress=progress)


def plot_part2_seeds(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(17.0, 5.4), layout="constrained")
    ax_grad, ax_mse, ax_loss = fig.subplots(1, 3)
    seeds = ds.sizes["seed"]
    for m in ("small", "large", "he"):
        layers = int(experiments.PART2_MODELS[m]["depth"]) + 1
        g = ds.grad_norms.sel(model=m).values[:, :layers]
        x = np.arange(1, layers + 1)
        ax_grad.semilogy(x, np.median(g, axis=0), "o-", color=MODEL_COLORS[m], ms=4, label=f"{m}: median")
        ax_grad.fill_between(x, *np.percentile(g, [25, 75], axis=0), color=MODEL_COLORS[m], alpha=0.3, lw=0)
        ax_grad.fill_between(x, g.min(axis=0), g.max(axis=0), color=MODEL_COLORS[m], alpha=0.1, lw=0)
        _mark_published_grad_norms(ax_grad, m, layers)
    ax_grad.plot([], [], "x", color="black", label="published (the course's one run)")
    ax_grad.fill_between([], [], [], color="0.5", alpha=0.3, label="interquartile range over seeds")
    ax_grad.fill_between([], [], [], color="0.5", alpha=0.1, label="range over seeds")
    ax_grad.fill_between([], [], [], facecolor="none", edgecolor="black", hatch="//", lw=0.5, label="published range")
    ax_grad.set(xlabel="layer (last = output)", ylabel=r"$\|\partial L/\partial W_l\|_F$ at init", xticks=x)
    ax_grad.set_title("per-layer weight-gradient norms at init (full training MSE)")
    ax_grad.legend(fontsize=7, loc="center", bbox_to_anchor=(0.5, 0.32))

    models = list(ds.model.values)
    rng = np.random.default_rng(0)  # horizontal jitter of the seed dots only
    for i, m in enumerate(models):
        v, bad = ds.final_test_mse.sel(model=m).values, ds.diverged.sel(model=m).values
        jitter = i + rng.uniform(-0.18, 0.18, v.size)
        ax_mse.plot(jitter[~bad], v[~bad], ".", color=MODEL_COLORS[m], ms=5, alpha=0.7)
        if (~bad).any():
            ax_mse.plot([i - 0.3, i + 0.3], [np.median(v[~bad])] * 2, color="black", lw=1.5)
        if bad.any():
            ax_mse.text(
                i,
                0.04,
                f"{bad.sum()} of {seeds}\ndiverged",
                ha="center",
                fontsize=7,
                color=DIVERGED_COLOR,
                transform=ax_mse.get_xaxis_transform(),
            )
        pub = float(ds.published_test_mse.sel(model=m))
        if np.isfinite(pub):
            ax_mse.plot(i, pub, "x", color="black", ms=8, mew=2)
            pct = float(ds.percentile.sel(quantity=experiments.mse_quantity(m)))
            ax_mse.annotate(f"{pct:.0f}%", (i, pub), xytext=(8, 0), textcoords="offset points", fontsize=7, va="center")
    ax_mse.plot([], [], "x", color="black", mew=2, label="published; label: its percentile among the seeds")
    ax_mse.plot([], [], color="black", lw=1.5, label="median over the seeds that did not diverge")
    ax_mse.set(yscale="log", xticks=np.arange(len(models)), ylabel="final test MSE (one dot per seed)")
    ax_mse.set_xticklabels([f"{m}\n(OOD)" if m == experiments.OOD_MODEL else m for m in models], fontsize=8)
    ax_mse.set_title("test MSE over seeds against the published run")
    ax_mse.legend(fontsize=7, loc="upper left")

    steps = ds.step.values
    for m in models:
        bad = ds.diverged.sel(model=m).values
        if bad.all():
            continue
        loss = ds.test_loss.sel(model=m).values[~bad]
        ax_loss.semilogy(steps, np.median(loss, axis=0), color=MODEL_COLORS[m], label=m)
        ax_loss.fill_between(steps, *np.percentile(loss, [25, 75], axis=0), color=MODEL_COLORS[m], alpha=0.25, lw=0)
    ax_loss.set(xlabel="step", ylabel="test MSE", title="test MSE over training: median and interquartile band")
    ax_loss.legend(fontsize=7, title="diverged seeds left out", title_fontsize=7)
    a = ds.attrs
    fig.suptitle(
        f"Part II (Sp25 HW1 Q5) over {seeds} seeds (each draws the initial parameters and the minibatches; the data "
        f"are the course's): n = {a['n_train']}, {a['steps']} heavy-ball steps, lr {a['learning_rate']:g}"
    )
    return fig


def _mark_published_grad_norms(ax, model: str, layers: int) -> None:
    """The course's per-layer gradient norms as black crosses, or its range over the layers as a hatched band."""
    if model in experiments.PUBLISHED_GRAD_NORMS:
        ax.semilogy(np.arange(1, layers + 1), experiments.PUBLISHED_GRAD_NORMS[model], "x", color="black", ms=6)
    elif model in experiments.PUBLISHED_GRAD_NORM_RANGE:
        lo, hi = experiments.PUBLISHED_GRAD_NORM_RANGE[model]
        ax.fill_between([1, layers], lo, hi, facecolor="none", edgecolor="black", hatch="//", lw=0.5, alpha=0.5)


# --------------------------------------------------------------------------------------------------------------
# The registered figures (``sim.figures.registry`` collects them)

FIGURES = {
    "features_part1": Figure(
        filename="features_part1.png",
        summary="Part I elbow nets: df/dW1 and df/db1 over x at init and trained, fits, elbows over training "
        "against the kinks, top singular values of Phi, principal features and the top-2 feature scatter",
        full=PART1_FULL,
        quick=PART1_QUICK,
        compute_fn=compute_part1_features,
        plot=plot_part1_features,
    ),
    "features_part1_principal": Figure(
        filename="features_part1_principal.png",
        summary="Part I elbow nets, one row per model: the top-4 principal features psi_k(x) on a dense grid at init "
        "and trained, against the kinks, and the top-20 singular values of Phi (the features_part1 run)",
        full=PART1_FULL,
        quick=PART1_QUICK,
        compute_fn=compute_part1_features,
        plot=plot_part1_principal,
    ),
    "features_part2": Figure(
        filename="features_part2.png",
        summary="Part II shallow vs 4 x 20 nets (U(0.03), U(3), He) and mismatched data: singular values, "
        "per-layer gradient norms and test MSE against the published table, principal features, fits",
        full=PART2_FULL,
        quick=PART2_QUICK,
        compute_fn=compute_part2_features,
        plot=plot_part2_features,
    ),
    "features_part2_principal": Figure(
        filename="features_part2_principal.png",
        summary="Part II nets, one row per model: the top-4 principal features psi_k(x) on a dense grid at init and "
        "trained (mismatched training range shaded), the top-20 singular values of Phi, test MSE and divergence",
        full=PART2_FULL,
        quick=PART2_QUICK,
        compute_fn=compute_part2_features,
        plot=plot_part2_principal,
    ),
    "features_part2_seeds": Figure(
        filename="features_part2_seeds.png",
        summary="Part II over seeds: per-layer gradient norms at init and test MSE with median, interquartile and "
        "full-range bands, the published run's numbers and their percentiles among the seeds",
        full=PART2_SEEDS_FULL,
        quick=PART2_SEEDS_QUICK,
        compute_fn=compute_part2_seeds,
        plot=plot_part2_seeds,
    ),
    "init_scale": Figure(
        filename="init_scale.png",
        summary="per-layer gradient norms and signal second moments at init against the weight scale a, over "
        "seeds, with the mean-field gain g = N a^2 / 6 and the a^D / a^(2D+1) power laws",
        full=INIT_SCALE_FULL,
        quick=INIT_SCALE_QUICK,
        compute_fn=compute_init_scale,
        plot=plot_init_scale,
    ),
    "linearized": Figure(
        filename="linearized.png",
        summary="He 4 x 20 net and its linearization trained side by side (heavy ball, same batches): test and "
        "training MSE, the linearization's stability bound, final predictions",
        full=LINEARIZED_FULL,
        quick=LINEARIZED_QUICK,
        compute_fn=compute_linearized,
        plot=plot_linearized,
    ),
}
