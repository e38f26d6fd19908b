"""Ridge figures: the filter factors σ²/(σ² + λ) as shrinkage, and early-stopped GD as ridge (EECS 182 HW0 Q1).

Contract: one ``compute_*`` (keyword configuration in, ``xarray.Dataset`` out, the configuration in its attrs) and
one ``plot_*`` (dataset in, ``matplotlib.figure.Figure`` out, no pyplot state) per figure; the configurations at
full and quick size are the dicts below, for ``sim.figures.registry`` to register. Everything is computed with
:mod:`sim.regression.ridge` in float64: closed forms beside numerical solutions (the primal ridge solve, a plain GD
loop).

Conventions: ridge minimizes ‖y − Xw‖² + λ‖w‖²; the early-stopping experiment is EECS 182 HW0 Q1's GD on
J(w) = ½‖y − Fw‖² (with the ½: filter factor 1 − (1 − ησ²)ᵗ, step η = 1/α², α = σ_max), which acts like ridge with
λ ≈ 1/(ηt).

References: EECS 182 Sp25 HW0 Q4 (ridge as shifted singular values, shrinkage); EECS 182 HW0 Q1 (an early-stopping
problem on GD for an ill-conditioned square system).
"""

from __future__ import annotations

import jax
import numpy as np
import xarray as xr
from matplotlib.figure import Figure as MplFigure

from sim.figures.base import DIVERGED_COLOR, DOTS, NOTE, STAR, Figure
from sim.regression import designs, early_stopping, ridge

_SHRINKAGE = {"singular_values": [3.0, 1.0, 0.3, 0.1, 0.03], "lam_min": 1e-5, "lam_max": 1e2, "n": 12, "seed": 0}
_SHRINKAGE_PANEL = {"panel_lams": [1e-3, 1e-2, 1e-1, 1.0]}
RIDGE_SHRINKAGE_FULL = _SHRINKAGE | _SHRINKAGE_PANEL | {"num_lams": 401, "num_markers": 15}
RIDGE_SHRINKAGE_QUICK = _SHRINKAGE | _SHRINKAGE_PANEL | {"num_lams": 81, "num_markers": 7}

_EARLY = {
    "alpha": 2.0,
    "singular_value_min": 1e-6,
    "dim": 30,
    "noise_std": 1e-4,
    "source_power": 1.0,
    "seed": 0,
    "max_steps": 1e16,
}
EARLY_STOPPING_FULL = _EARLY | {"num_steps": 400, "num_lams": 400, "sim_steps": 3000}
EARLY_STOPPING_QUICK = _EARLY | {"num_steps": 100, "num_lams": 100, "sim_steps": 300}

_SIGMA_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink")

# --------------------------------------------------------------------------------------------------------------
# (a) Ridge shrinkage: filter factors against λ, recovered from the primal solution of a random problem


def compute_ridge_shrinkage(
    *, singular_values, lam_min, lam_max, num_lams, num_markers, panel_lams, n, seed, progress=True
) -> xr.Dataset:
    """Filter factors σ²/(σ² + λ) over log-spaced λ for each σ in ``singular_values``, and the same factors read off the
    primal ridge solution of a random problem X = U diag(σ) Vᵀ (n × len(singular_values)) at ``num_markers`` λ's; GD's
    factors 1 − (1 − ησ²)ᵗ at t = 1/(ηλ) (η = 1/σ_max², t ≥ 1) for comparison; and the per-mode gain σ/(σ² + λ) over a σ
    grid at ``panel_lams``, with the gains of the numerical ridge map (XᵀX + λI)⁻¹Xᵀ in X's singular basis."""
    del progress
    sig = np.sort(np.asarray(singular_values, dtype=np.float64))[::-1]
    lam = np.geomspace(lam_min, lam_max, num_lams)
    lam_marker = np.geomspace(lam_min, lam_max, num_markers)
    panel_lams = np.asarray(panel_lams, dtype=np.float64)
    sigma_grid = np.geomspace(sig[-1] / 10, sig[0] * 10, 200)
    eta = 1 / sig[0] ** 2
    with jax.enable_x64(True):
        x, y = designs.random_design(sig, shape=(n, sig.size), key=jax.random.key(seed))
        factor = np.asarray(ridge.ridge_filter_factors(sig[:, None], lam=lam[None, :]))
        t = 1 / (eta * lam)
        gd = np.asarray(
            early_stopping.gd_filter_factors(sig[:, None], learning_rate=eta, steps=np.maximum(t, 1)[None, :])
        )
        gd = np.where(t[None, :] >= 1, gd, np.nan)
        recovered = []
        for lm in lam_marker:
            s_num, f_num = ridge.recover_filter_factors(x, y, ridge.ridge_primal(x, y, lam=float(lm)))
            recovered.append(np.asarray(f_num))
        # the ridge map itself (ridge_primal on the identity), sandwiched between X's singular vectors
        maps = [np.asarray(ridge.ridge_primal(x, np.eye(n), lam=float(lm))) for lm in panel_lams]
    uu, _, vt = np.linalg.svd(np.asarray(x), full_matrices=False)
    gain_num = [np.diag(vt @ m @ uu) for m in maps]
    gain = sigma_grid[None, :] / (sigma_grid[None, :] ** 2 + panel_lams[:, None])
    data = {
        "factor": (("sigma", "lam"), factor),
        "gd_factor": (("sigma", "lam"), gd),
        "recovered": (("sigma", "lam_marker"), np.stack(recovered, axis=1)),
        "sigma_numerical": ("sigma", np.asarray(s_num)),
        "gain": (("panel_lam", "sigma_grid"), gain),
        "gain_recovered": (("panel_lam", "sigma"), np.stack(gain_num)),
    }
    coords = {"sigma": sig, "lam": lam, "lam_marker": lam_marker, "panel_lam": panel_lams, "sigma_grid": sigma_grid}
    attrs = {"singular_values": [float(v) for v in sig], "lam_min": lam_min, "lam_max": lam_max, "num_lams": num_lams}
    attrs.update(num_markers=num_markers, panel_lams=[float(v) for v in panel_lams], n=n, seed=seed)
    attrs.update(learning_rate=float(eta), dtype="float64")
    return xr.Dataset(data, coords=coords, attrs=attrs)


def plot_ridge_shrinkage(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(13.0, 5.8), layout="constrained")
    ax, ax2 = fig.subplots(1, 2, width_ratios=(1.2, 1.0))
    lam, lam_marker = ds.lam.values, ds.lam_marker.values
    for i, s in enumerate(ds.sigma.values):
        color = _SIGMA_COLORS[i % len(_SIGMA_COLORS)]
        ax.plot(lam, ds.factor.values[i], color=color, lw=1.6, label=rf"$\sigma={s:g}$")
        ax.plot(lam, ds.gd_factor.values[i], color=color, lw=0.9, ls="--")
        ax.plot(lam_marker, ds.recovered.values[i], **DOTS, color=color, mec=color)
        ax.plot([s**2], [0.5], "|", color=color, ms=10, mew=1.2)
    ax.plot([], [], "k-", lw=1.6, label=r"closed form $\sigma^2/(\sigma^2+\lambda)$")
    ax.plot(
        [], [], **DOTS, color="k", mec="k", label=r"from primal $\hat w_\lambda$: $\sigma_i v_i^\top\hat w/u_i^\top y$"
    )
    label = rf"GD after $t=1/(\eta\lambda)$ steps: $1-(1-\eta\sigma^2)^t$, $\eta={ds.attrs['learning_rate']:.3g}$"
    ax.plot([], [], "k--", lw=0.9, label=label)
    ax.plot([], [], "k|", ms=10, label=r"$\lambda=\sigma^2$: factor $=\frac{1}{2}$")
    ax.set(xscale="log", xlim=(lam[0], lam[-1]), ylim=(-0.03, 1.03), xlabel=r"ridge parameter $\lambda$")
    ax.set(ylabel=r"filter factor of mode $\sigma$")
    shape = f"{ds.attrs['n']}×{ds.sigma.size}"
    ax.set_title(f"ridge = pseudo-inverse × filter factors; markers: a random {shape} X with these σ (float64)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=3, fontsize=7.5)

    sg = ds.sigma_grid.values
    for k, lm in enumerate(ds.panel_lam.values):
        color = f"C{k}"
        ax2.plot(sg, ds.gain.values[k], color=color, lw=1.5, label=rf"$\sigma/(\sigma^2+\lambda)$, $\lambda={lm:g}$")
        ax2.plot(ds.sigma.values, ds.gain_recovered.values[k], **DOTS, color=color, mec=color)
    ax2.plot(sg, 1 / sg, color="0.3", lw=1.0, ls=":", label=r"pseudo-inverse $1/\sigma$ ($\lambda=0$)")
    ax2.plot([], [], **DOTS, color="k", mec="k", label=r"$v_i^\top(X^\top X+\lambda I)^{-1}X^\top u_i$ (numerical)")
    ax2.set(xscale="log", yscale="log", xlim=(sg[0], sg[-1]), xlabel=r"singular value $\sigma$")
    ax2.set(ylim=(np.min(ds.gain.values) / 2, 2 / sg[0]), ylabel="gain of the ridge map on mode σ")
    ax2.set_title(
        r"shifted singular values: $\approx 1/\sigma$ for $\sigma^2\gg\lambda$, $\approx\sigma/\lambda$ below"
    )
    ax2.legend(loc="lower center", fontsize=7.5)
    ax2.text(0.02, 0.02, r"peak $1/(2\sqrt{\lambda})$ at $\sigma=\sqrt{\lambda}$", transform=ax2.transAxes, **NOTE)
    return fig


# --------------------------------------------------------------------------------------------------------------
# (b) Early stopping (EECS 182 HW0 Q1): GD error over steps, the inverse's error, the ridge path


def compute_early_stopping(
    *,
    alpha,
    singular_value_min,
    dim,
    noise_std,
    source_power,
    seed,
    max_steps,
    num_steps,
    num_lams,
    sim_steps,
    progress=True,
) -> xr.Dataset:
    """The early-stopping experiment (EECS 182 HW0 Q1) on F with ``dim`` log-spaced singular values from ``alpha`` down
    to ``singular_value_min``: closed-form GD errors at ``num_steps`` log-spaced steps up to ``max_steps`` (η = 1/α²), a
    simulated GD loop for ``sim_steps`` steps, the error bound, the inverse's error and the ridge path at ``num_lams``
    λ's spanning the equivalent λ = 1/(ηt)."""
    del progress
    steps = np.unique(np.round(np.geomspace(1, max_steps, num_steps)))
    eta = 1 / alpha**2
    lams = np.geomspace(1 / (eta * max_steps), 10 / eta, num_lams)
    with jax.enable_x64(True):
        singular_values = np.geomspace(alpha, singular_value_min, dim)
        problem = early_stopping.ill_conditioned_problem(
            singular_values, noise_std=noise_std, key=jax.random.key(seed), source_power=source_power
        )
        res = early_stopping.early_stopping(problem, steps=steps, lams=lams, sim_steps=sim_steps, learning_rate=eta)
        res = jax.tree.map(np.asarray, res)
    data = {
        "gd_error": ("step", res.gd_error),
        "gd_bound": ("step", res.gd_bound),
        "ridge_error": ("lam", res.ridge_error),
        "ridge_bound": ("lam", res.ridge_bound),
        "sim_error": ("sim_step", res.sim_error),
        "singular_value": ("mode", singular_values),
    }
    coords = {"step": steps, "lam": lams, "sim_step": np.arange(sim_steps + 1), "mode": np.arange(dim)}
    attrs = {"alpha": alpha, "singular_value_min": singular_value_min, "dim": dim, "noise_std": noise_std}
    attrs.update(source_power=source_power, seed=seed, max_steps=max_steps, num_steps=num_steps)
    attrs.update(num_lams=num_lams, sim_steps=sim_steps, learning_rate=eta, dtype="float64")
    for k in ("inverse_error", "best_step", "best_gd_error", "best_lam", "best_ridge_error"):
        attrs[k] = float(getattr(res, k))
    return xr.Dataset(data, coords=coords, attrs=attrs)


def plot_early_stopping(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(14.0, 5.4), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    a = ds.attrs
    eta, inverse = a["learning_rate"], a["inverse_error"]
    t = ds.step.values
    ax.plot(t, ds.gd_error, color="tab:blue", lw=1.8, label=r"GD $\|w_t-w^*\|$ (closed form per SVD mode)")
    sim_t = ds.sim_step.values
    pick = np.unique(np.round(np.geomspace(1, sim_t[-1], 30)).astype(int))
    ax.plot(pick, ds.sim_error.values[pick], **DOTS, mec="black", label="GD, simulated loop on F")
    ax.plot(
        t, ds.gd_bound, color="tab:blue", lw=1.0, ls=":", label=r"bound $\|e^{-\eta t\sigma^2}c\|+\sqrt{\eta t}\|e\|$"
    )
    ax.axhline(inverse, color=DIVERGED_COLOR, lw=1.2, ls="--", label=rf"inverse $\|F^{{-1}}y-w^*\|={inverse:.3g}$")
    ax.axhline(1.0, color="0.6", lw=0.8, ls="-.", label=r"$\|w^*\|=1$ (the error of $w_0=0$)")
    label = f"best early stop t = {a['best_step']:.3g}: error {a['best_gd_error']:.3g}"
    ax.plot([a["best_step"]], [a["best_gd_error"]], **STAR, label=label)
    ax.set(xscale="log", yscale="log", xlim=(t[0], t[-1]), xlabel=r"GD step $t$ ($\eta=1/\alpha^2$)")
    ax.set(ylim=(a["best_gd_error"] / 5, inverse * 5), ylabel=r"error $\|w-w^*\|$")
    top = ax.secondary_xaxis("top", functions=(_inverse_eta(eta), _inverse_eta(eta)))
    top.set_xlabel(r"equivalent $\lambda\approx 1/(\eta t)$")
    span = rf"$\sigma\in[10^{{{np.log10(a['singular_value_min']):.3g}}}, {a['alpha']:g}]$"
    title = (
        rf"EECS 182 HW0 Q1: GD on $\frac{{1}}{{2}}\|y-Fw\|^2$, F {a['dim']}×{a['dim']}, {span}, "
        rf"noise std {a['noise_std']:g}"
    )
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=7.5)

    lam = ds.lam.values
    ax2.plot(lam, ds.ridge_error, color="tab:green", lw=1.8, label=r"ridge $\|\hat w_\lambda-w^*\|$")
    ax2.plot(
        lam,
        ds.ridge_bound,
        color="tab:green",
        lw=1.0,
        ls=":",
        label=r"bound $\|\frac{\lambda}{\sigma^2+\lambda}c\|"
        r"+\|e\|/(2\sqrt{\lambda})$",
    )
    ax2.plot(1 / (eta * t), ds.gd_error, color="tab:blue", lw=1.2, ls="--", label=r"GD at $t=1/(\eta\lambda)$")
    ax2.axhline(inverse, color=DIVERGED_COLOR, lw=1.2, ls="--", label=r"inverse ($\lambda=0$)")
    label = f"best λ = {a['best_lam']:.3g}: error {a['best_ridge_error']:.3g}"
    ax2.plot([a["best_lam"]], [a["best_ridge_error"]], **STAR, label=label)
    best_t_lam = 1 / (eta * a["best_step"])
    (gd_star,) = ax2.plot([best_t_lam], [a["best_gd_error"]], "*", ms=10, color="tab:blue", mec="black", mew=0.6)
    gd_star.set_label(f"best early stop, at 1/(ηt) = {best_t_lam:.3g}")
    ax2.set(xscale="log", yscale="log", xlim=(lam[-1], lam[0]), ylim=ax.get_ylim())
    ax2.set(xlabel=r"ridge $\lambda$ (decreasing: less regularization to the right)")
    title = r"ridge path vs early stopping: $1-(1-\eta\sigma^2)^t\approx\sigma^2/(\sigma^2+\lambda)$"
    ax2.set_title(title + r" at $\lambda\approx1/(\eta t)$")
    ax2.legend(loc="upper left", fontsize=7.5)
    return fig


def _inverse_eta(eta):
    def fn(v):
        v = np.asarray(v, dtype=np.float64)
        with np.errstate(divide="ignore"):
            return 1 / (eta * np.where(v > 0, v, np.nan))

    return fn


# --------------------------------------------------------------------------------------------------------------
# The registered figures (``sim.figures.registry`` collects them)

FIGURES = {
    "ridge_shrinkage": Figure(
        filename="ridge_shrinkage.png",
        summary="ridge filter factors sigma^2/(sigma^2 + lambda) against lambda, recovered from the primal solution "
        "of a random problem, beside GD's early-stopping factors at lambda = 1/(eta t); the ridge map's gain",
        full=RIDGE_SHRINKAGE_FULL,
        quick=RIDGE_SHRINKAGE_QUICK,
        compute_fn=compute_ridge_shrinkage,
        plot=plot_ridge_shrinkage,
    ),
    "early_stopping": Figure(
        filename="early_stopping.png",
        summary="EECS 182 HW0 Q1: GD error on an ill-conditioned square system against steps (closed form, simulated "
        "loop, "
        "bound) beside the inverse's error and the ridge path",
        full=EARLY_STOPPING_FULL,
        quick=EARLY_STOPPING_QUICK,
        compute_fn=compute_early_stopping,
        plot=plot_early_stopping,
    ),
}
