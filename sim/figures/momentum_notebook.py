"""The course momentum notebook's experiment (EECS 182 Sp23 HW2 Q2), re-run with ``sim.linear.dynamics`` in float64.

Contract: :func:`sim.linear.problems.course_momentum_data` regenerates the data; :func:`compute_momentum_notebook` runs
GD and EMA momentum on it with ``sim.linear.dynamics.run`` under ``jax.enable_x64(True)`` and returns the per-step
weights, gradients and losses with the closed-form rates; :func:`plot_momentum_notebook` draws them. The loss is
the course's L(w) = ‖y − Xw‖² (no ½, gradient 2Xᵀ(Xw − y)), w₀ = 0. The published final losses after 100 steps are
102.75171092 (GD, η = 1e-4), 102.75171088 (momentum, η = 1e-4, β = 0.6) and 102.75171087 (momentum, η = 2e-4,
β = 0.6); the tests hold the runs to them to 8 significant digits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from matplotlib.figure import Figure as MplFigure

from sim.figures.base import Figure
from sim.linear import dynamics, problems, theory

PUBLISHED_LOSSES = (102.75171092, 102.75171088, 102.75171087)
RUN_COLORS = ("tab:blue", "tab:orange", "tab:green")


def compute_momentum_notebook(*, n, seed, steps, runs, progress=True) -> xr.Dataset:
    """Run each of ``runs`` (a list of ``(name, learning_rate, beta)``, β = 1 meaning plain GD) for ``steps``
    steps from w₀ = 0 in float64; return weights, gradients and losses per step, the least-squares optimum and each
    run's closed-form asymptotic rate (spectral radius over the modes σ_i² = eig(XᵀX))."""
    del progress
    x, y = problems.course_momentum_data(n, seed)
    w_star = np.linalg.lstsq(x, y, rcond=None)[0]
    spectrum = np.linalg.eigvalsh(x.T @ x)
    weights, rates = [], []
    with jax.enable_x64(True):
        xj, yj = jnp.asarray(x), jnp.asarray(y)

        def grad(w):
            return 2 * xj.T @ (xj @ w - yj)

        for _, lr, beta in runs:
            dyn = dynamics.gd(lr) if beta == 1 else dynamics.momentum(lr, beta)
            weights.append(np.asarray(jax.jit(dynamics.run, static_argnums=(0, 1, 3))(dyn, grad, jnp.zeros(2), steps)))
            if beta == 1:
                rates.append(float(theory.gd_rate(lr, spectrum)))
            else:
                rates.append(float(jnp.max(theory.spectral_radius(theory.momentum_matrix(lr, beta, spectrum)))))
    w = np.stack(weights)  # [run, step, dim]
    residual = np.einsum("nd,rtd->rtn", x, w) - y
    data = {
        "w": (("run", "step", "dim"), w),
        "gradient": (("run", "step", "dim"), 2 * np.einsum("nd,rtn->rtd", x, residual)),
        "loss": (("run", "step"), (residual**2).sum(axis=-1)),
        # L(w) − L* = ‖X(w − w*)‖² exactly (the optimal residual is orthogonal to X's columns); no cancellation
        "loss_gap": (("run", "step"), (np.einsum("nd,rtd->rtn", x, w - w_star) ** 2).sum(axis=-1)),
        "rate": ("run", np.array(rates)),
        "learning_rate": ("run", np.array([r[1] for r in runs], dtype=np.float64)),
        "beta": ("run", np.array([r[2] for r in runs], dtype=np.float64)),
        "w_star": ("dim", w_star),
        "spectrum": ("mode", spectrum),
    }
    loss_star = float(((x @ w_star - y) ** 2).sum())
    coords = {"run": [r[0] for r in runs], "step": np.arange(steps + 1), "dim": [1, 2]}
    attrs = {"loss_star": loss_star, "n": n, "seed": seed, "steps": steps, "dtype": "float64"}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def plot_momentum_notebook(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(15.0, 5.4), layout="constrained")
    ax_g, ax_w, ax_l = fig.subplots(1, 3)
    t, loss_star = ds.step.values, ds.attrs["loss_star"]
    for r, (name, color) in enumerate(zip(ds.run.values, RUN_COLORS, strict=False)):
        for d, ls in zip((0, 1), ("-", "--"), strict=True):
            kw = {"color": color, "ls": ls, "lw": 1.3}
            ax_g.plot(t, np.abs(ds.gradient.values[r, :, d]), **kw, label=f"{name}, $w_{d + 1}$")
            ax_w.plot(t, np.abs(ds.w.values[r, :, d]), **kw, label=f"{name}, $w_{d + 1}$")
        gap = ds.loss_gap.values[r]
        final = ds.loss.values[r, -1]
        label = f"{name}: final loss {final:.8f}"
        if r < len(PUBLISHED_LOSSES):
            label += f" (published {PUBLISHED_LOSSES[r]:.8f})"
        ax_l.plot(t, gap, color=color, lw=1.5, label=label)
        rho = float(ds.rate.values[r])
        ax_l.plot(
            t,
            gap[-1] * rho ** (2.0 * (t - t[-1])),
            color=color,
            lw=0.9,
            ls=":",
            label=rf"closed form: slope $\rho^{{2t}}$, $\rho={rho:.4f}$",
        )
    for d in (0, 1):
        ax_w.axhline(abs(ds.w_star.values[d]), color="0.4", lw=0.8, ls="-" if d == 0 else "--")
    ax_w.text(t[-1], abs(ds.w_star.values[0]), r"$|w^*_1|$ ", ha="right", va="bottom", fontsize=8, color="0.3")
    ax_w.text(t[-1], abs(ds.w_star.values[1]), r"$|w^*_2|$ ", ha="right", va="bottom", fontsize=8, color="0.3")
    ax_g.set(yscale="log", xlabel="step t", ylabel=r"$|\partial L/\partial w_j|$, $\nabla L=2X^\top(Xw-y)$")
    ax_g.set_title("per-dimension gradient magnitude")
    ax_w.set(xlabel="step t", ylabel=r"$|w_j|$")
    ax_w.set_title("per-dimension weight magnitude (grey: least-squares $w^*$)")
    ax_l.set(yscale="log", xlabel="step t", ylabel=r"$L(w_t)-L^*$ (log scale)")
    ax_l.set_title(rf"loss gap to the least-squares optimum $L^*={loss_star:.8f}$")
    ax_g.legend(fontsize=7, ncols=1)
    ax_l.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    spec = ", ".join(f"{v:.1f}" for v in ds.spectrum.values)
    fig.suptitle(
        f"The course momentum notebook (EECS 182 Sp23 HW2 Q2): n = {ds.attrs['n']}, seed {ds.attrs['seed']}, "
        r"$L=\|y-Xw\|^2$ (no ½), $w_0=0$, "
        f"{ds.attrs['steps']} steps, float64; EMA momentum $z\\leftarrow(1-\\beta)z+\\beta\\nabla L$, "
        f"$w\\leftarrow w-\\eta z$; $\\sigma_i^2=$ eig$(X^\\top X)$ = {{{spec}}}",
        fontsize=9.5,
    )
    return fig


# --------------------------------------------------------------------------------------------------------------
# The registered figures (``sim.figures.registry`` collects them)

_NOTEBOOK = {
    "n": 500,
    "seed": 0,
    "steps": 100,
    "runs": [["GD η=1e-4", 1e-4, 1.0], ["momentum η=1e-4, β=0.6", 1e-4, 0.6], ["momentum η=2e-4, β=0.6", 2e-4, 0.6]],
}
FIGURES = {
    "momentum_notebook": Figure(
        filename="momentum_notebook.png",
        summary="the course momentum notebook: 500 points, seed 0, 100 steps, GD eta = 1e-4 and momentum beta = 0.6 "
        "with eta = 1e-4, 2e-4: per-dimension |gradient|, |w| and the loss gap (float64)",
        full=_NOTEBOOK,
        quick=_NOTEBOOK,
        compute_fn=compute_momentum_notebook,
        plot=plot_momentum_notebook,
    ),
}
