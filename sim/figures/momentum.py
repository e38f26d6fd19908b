"""Momentum figures: R's eigenvalues, Distill's one-mode phase diagram and the spectrum-wide phase map (the
steps-to-tolerance figures live in ``sim.figures.steps``).

Contract: one ``compute_*`` (keyword configuration in, ``xarray.Dataset`` out) and one ``plot_*`` (dataset in,
``matplotlib.figure.Figure`` out, no pyplot state) per figure; ``sim.figures.registry`` registers them. Every figure
puts a closed form (``sim.linear.theory``, float64) beside a simulation (``sim.linear.sweep.engine`` in float32, or
``sim.linear.dynamics.run`` in float64 for a handful of runs).

Conventions (glossary in ``sim``): L(w) = ‖y − Xw‖² (no ½); momentum is the course's EMA form
z ← (1 − β) z + β ∇L, w ← w − η z, whose per-mode matrix R = [[1 − β, 2βσ²], [−η(1 − β), 1 − 2ηβσ²]] has
det R = 1 − β, so complex eigenvalues have modulus √(1 − β). Distill's "Why Momentum Really Works" writes
z ← β_D z + ∇f, w ← w − α z on f = ½λw², i.e. β_D = 1 − β, α = ηβ, λ = 2σ² (same iterates).

References: EECS 182 Sp23 HW2 Q2; G. Goh, "Why Momentum Really Works", Distill (2017).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import xarray as xr
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure as MplFigure
from matplotlib.patches import Patch

from sim.core.grid import Grid, list_axis, parse_axis
from sim.figures.base import DIVERGED_COLOR, DOTS, HALO, QUICK_CHUNK, STAR, Figure, log_edges, log_limits
from sim.linear import dynamics, theory
from sim.linear.problems import COURSE_BETA, COURSE_SPECTRUM, COURSE_TOL
from sim.linear.sweep.engine import DEFAULT_CHUNK, sweep

# --------------------------------------------------------------------------------------------------------------
# Closed-form helpers shared by the momentum figures (float64 numpy out)

REGIMES = tuple(theory.REGIMES[k] for k in sorted(theory.REGIMES))  # names in code order
_REGIME_COLORS = ("#dbe9f6", "#fde0c5", "#e5f5e0", "#f4cccc")


def _f64(fn, *args) -> np.ndarray:
    """Evaluate a ``sim.linear.theory`` closed form in float64 and return numpy."""
    with jax.enable_x64(True):
        return np.asarray(fn(*(np.asarray(a, dtype=np.float64) for a in args)))


def _radius(learning_rate, beta, sigma2) -> np.ndarray:
    return _f64(lambda e, b, s: theory.momentum_rate(e, b, s[..., None]), learning_rate, beta, sigma2)


def _eigenvalues(learning_rate, beta, sigma2) -> np.ndarray:
    """Both eigenvalues of R, complex array of shape [..., 2], sorted by real then imaginary part."""
    return np.sort_complex(_f64(theory.momentum_eigenvalues, learning_rate, beta, sigma2))


def _regime(learning_rate, beta, sigma2) -> np.ndarray:
    return _f64(theory.momentum_regime, learning_rate, beta, sigma2)


def _distill_to_ema(alpha_lambda, beta_distill, lam):
    """Distill's (αλ, β_D) on a mode of curvature λ as the course's EMA (η, β, σ²)."""
    alpha, beta_d = np.asarray(alpha_lambda, dtype=np.float64) / lam, np.asarray(beta_distill, dtype=np.float64)
    return dynamics.distill_to_ema(alpha, beta_d, lam)


def _iterates(learning_rate, beta, sigma2, steps: int) -> np.ndarray:
    """Errors x_t = w_t − w* of ``sim.linear.dynamics.momentum`` on one mode (∇L = 2σ²x) from w₀ = 0, w* = 1 (x₀ = −1),
    simulated in float64; array of shape [points, steps + 1] (inputs broadcast and flattened to points)."""

    def one(lr, b, s):
        return dynamics.run(dynamics.momentum(lr, b), lambda x: 2 * s * x, -jnp.ones((), lr.dtype), steps)

    lr, b, s = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (learning_rate, beta, sigma2)))
    with jax.enable_x64(True):
        return np.asarray(jax.jit(jax.vmap(one))(lr.ravel(), b.ravel(), s.ravel()))


def _closed_form_iterates(learning_rate, beta, sigma2, steps: int) -> np.ndarray:
    """x_t from powers of the closed-form R on u = (a, x), u₀ = (0, −1); array of shape [points, steps + 1]."""
    lr, b, s = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (learning_rate, beta, sigma2)))
    with jax.enable_x64(True):
        matrix = np.asarray(theory.momentum_matrix(lr.ravel(), b.ravel(), s.ravel()))
    u = np.zeros((matrix.shape[0], 2))
    u[:, 1] = -1.0
    out = [u[:, 1]]
    for _ in range(steps):
        u = np.einsum("pij,pj->pi", matrix, u)
        out.append(u[:, 1])
    return np.stack(out, axis=-1)


def _measured_rate(x: np.ndarray) -> np.ndarray:
    """Per-step growth of |x_t| measured from a simulated run: (max over the last quarter / max over the second
    quarter)^(1/(T/2)). Taking maxima over windows longer than an oscillation period removes the oscillation."""
    q = (x.shape[-1] - 1) // 4
    late, early = np.abs(x[..., 3 * q :]).max(axis=-1), np.abs(x[..., q : 2 * q]).max(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (late / early) ** (1 / (2 * q))


# --------------------------------------------------------------------------------------------------------------
# (d) The eigenvalues of R in the complex plane as η sweeps (the course visualization: β = 0.5, σ = 0.3)


def compute_momentum_eigenvalues(
    *, beta, sigma2, learning_rate_min, learning_rate_max, num, zoom, num_zoom, steps, progress=True
) -> xr.Dataset:
    """Eigenvalues of the closed-form R and of the Jacobian of the simulator's own step (``theory.
    transition_matrix``) at ``num`` log-spaced η in [learning_rate_min, learning_rate_max] plus ``num_zoom`` evenly
    spaced η in ``zoom``, the regime of each, and the growth rate measured from a ``steps``-step float64 run of
    ``sim.linear.dynamics.momentum`` on the mode."""
    del progress  # nothing slow to report
    eta = np.union1d(np.geomspace(learning_rate_min, learning_rate_max, num), np.linspace(*zoom, num_zoom))
    eig = _eigenvalues(eta, beta, sigma2)
    with jax.enable_x64(True):
        lo, hi = (float(v) for v in theory.momentum_repeated_root_lrs(beta, sigma2))
        stable = float(theory.momentum_stable_lr(beta, sigma2))
        jac = jax.vmap(lambda lr: theory.transition_matrix(dynamics.momentum(lr, beta), sigma2))(jnp.asarray(eta))
    jac_eig = np.sort_complex(np.linalg.eigvals(np.asarray(jac)))
    dims = ("learning_rate", "root")
    data = {
        "eig_real": (dims, eig.real),
        "eig_imag": (dims, eig.imag),
        "jacobian_eig_real": (dims, jac_eig.real),
        "jacobian_eig_imag": (dims, jac_eig.imag),
        "radius": ("learning_rate", _radius(eta, beta, sigma2)),
        "regime": ("learning_rate", _regime(eta, beta, sigma2)),
        "measured_rate": ("learning_rate", _measured_rate(_iterates(eta, beta, sigma2, steps))),
    }
    attrs = {"beta": beta, "sigma2": sigma2, "repeated_root_lrs": [lo, hi], "stable_lr": stable, "zoom": list(zoom)}
    return xr.Dataset(
        data, coords={"learning_rate": eta, "root": [0, 1]}, attrs={**attrs, "steps": steps, "dtype": "float64"}
    )


def plot_momentum_eigenvalues(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(15.0, 6.0), layout="constrained")
    ax, ax2, ax3 = fig.subplots(1, 3, width_ratios=(1.0, 0.8, 0.4))
    beta, s2, (lo, hi), stable = (ds.attrs[k] for k in ("beta", "sigma2", "repeated_root_lrs", "stable_lr"))
    eta, r = ds.learning_rate.values, np.sqrt(1 - beta)
    norm = LogNorm(eta[0], eta[-1])
    circle = np.linspace(0, 2 * np.pi, 721)
    ax.axhline(0, color="0.8", lw=0.6, zorder=0)
    ax.axvline(0, color="0.8", lw=0.6, zorder=0)
    ax.plot(np.cos(circle), np.sin(circle), color="black", lw=1.0, label=r"unit circle $|\lambda|=1$ (stability)")
    label = rf"$|\lambda|=\sqrt{{1-\beta}}={r:.4f}$ (= $\sqrt{{\det R}}$)"
    ax.plot(r * np.cos(circle), r * np.sin(circle), "--", color="tab:purple", lw=1.2, label=label)
    for k in (0, 1):
        sc = ax.scatter(ds.eig_real[:, k], ds.eig_imag[:, k], c=eta, norm=norm, cmap="viridis", s=16, zorder=3)
    sc.set_label(r"closed-form $R$ (color = $\eta$)")
    label = "simulator: eigenvalues of the Jacobian of\nsim.linear.dynamics.momentum's step (theory.transition_matrix)"
    jac_re, jac_im = ds.jacobian_eig_real.values.ravel(), ds.jacobian_eig_imag.values.ravel()
    ax.plot(jac_re, jac_im, "k.", ms=1.6, zorder=4, label=label)
    label = rf"repeated roots $\pm\sqrt{{1-\beta}}$ at $\eta={lo:.4g}$ and ${hi:.4g}$"
    ax.plot([r, -r], [0, 0], "D", ms=7, mfc="none", mec=DIVERGED_COLOR, mew=1.4, zorder=5, label=label)
    notes = (
        ((1.22, 0.4), (0.86, 0.0), f"real distinct,\npositive\n$\\eta<{lo:.3g}$"),
        ((0.0, 0.3), (0.0, r), f"complex, $|\\lambda|=\\sqrt{{1-\\beta}}$\n${lo:.3g}<\\eta<{hi:.3g}$"),
        ((-1.5, -0.33), (-0.85, 0.0), f"real distinct, negative\n${hi:.3g}<\\eta<{stable:.3g}$"),
        ((-1.45, 0.42), (-1.4, 0.0), f"unstable: $\\lambda<-1$\n$\\eta>{stable:.3g}=(2-\\beta)/(\\beta\\sigma^2)$"),
    )
    arrow = {"arrowstyle": "->", "color": "0.3", "lw": 0.8}
    for xy_text, xy, text in notes:
        ax.annotate(text, xy, xy_text, ha="center", va="center", fontsize=8, arrowprops=arrow)
    ax.set(aspect="equal", xlim=(-2.0, 1.6), ylim=(-1.55, 1.25), xlabel=r"Re $\lambda$", ylabel=r"Im $\lambda$")
    ax.legend(loc="lower left", fontsize=7.5)
    fig.colorbar(sc, ax=ax, label=r"learning rate $\eta$", shrink=0.8)
    ax.set_title(
        r"eigenvalues of the EMA-momentum mode matrix $R=[[1-\beta,\ 2\beta\sigma^2],\ [-\eta(1-\beta),\ "
        r"1-2\eta\beta\sigma^2]]$"
        + f"\n$\\beta={beta:g}$, $\\sigma^2={s2:g}$ ($\\sigma={np.sqrt(s2):g}$, the course visualization), "
        + r"$\eta$ on a log scale"
    )

    regime, zoom = ds.regime.values, ds.attrs["zoom"]
    edges = np.concatenate([[eta[0]], np.sqrt(eta[1:] * eta[:-1]), [eta[-1]]])
    for a in (ax2, ax3):
        for code, color in enumerate(_REGIME_COLORS):
            for start, stop in _runs(regime == code):
                a.axvspan(edges[start], edges[stop], color=color, lw=0)
        for k, color in ((0, "tab:blue"), (1, "tab:orange")):
            mod = np.hypot(ds.eig_real[:, k], ds.eig_imag[:, k])
            a.plot(eta, mod, color=color, lw=1.6, label=rf"closed form: $|\lambda_{k + 1}|$")
        shown = (eta < zoom[0]) if a is ax2 else (eta >= zoom[0])
        pick = np.flatnonzero(shown)[:: max(1, shown.sum() // 60)]
        label = r"simulated: growth of $|x_t|$ over $t\in[T/4,T]$" + f"\n(T = {ds.attrs['steps']}, float64)"
        a.plot(eta[pick], ds.measured_rate[pick], **DOTS, mec="black", label=label)
        a.axhline(r, color="tab:purple", ls="--", lw=1.0, label=r"$\sqrt{1-\beta}$")
        a.axhline(1, color="black", lw=0.8, ls=":")
    ax2.axvline(lo, color="0.35", lw=0.8, ls="-.")
    ax2.text(lo, 1.08, f" repeated root\n $\\eta={lo:.4g}$", fontsize=7.5, va="top")
    for x, text, ha in ((hi, "repeated ", "right"), (stable, " stability", "left")):
        ax3.axvline(x, color="0.35", lw=0.8, ls="-.")
        ax3.text(x, 1.78, f"{text}\n$\\eta={x:.4g}$", fontsize=7.5, va="top", ha=ha)
    handles = [
        Patch(color=c, label=f"regime: {n}") for n, c in zip(REGIMES, _REGIME_COLORS, strict=True) if n != "repeated"
    ]
    ax2.legend(handles=ax2.get_legend_handles_labels()[0] + handles, loc="lower right", fontsize=7.5)
    ax2.set(xscale="log", xlim=(eta[0], zoom[0]), ylim=(0, 1.1), xlabel=r"learning rate $\eta$ (log scale)")
    ax2.set(ylabel=r"eigenvalue modulus $|\lambda|$; measured rate")
    ax2.set_title("moduli against $\\eta$ (shading = regime);\nthe spectral radius $\\max|\\lambda|$ is the rate")
    ax3.set(xlim=zoom, ylim=(0, 1.8), xlabel=r"learning rate $\eta$ (linear)")
    ax3.set_title(f"zoom: $\\eta\\in[{zoom[0]:g}, {zoom[1]:g}]$")
    return fig


def _runs(mask: np.ndarray):
    """(start, stop) index pairs of the runs of True in a 1-D mask (stop exclusive)."""
    padded = np.concatenate([[False], mask, [False]]).astype(int)
    change = np.flatnonzero(np.diff(padded))
    return list(zip(change[::2], change[1::2], strict=True))


# --------------------------------------------------------------------------------------------------------------
# (e) Distill's one-mode phase diagram over (αλ, β_D), with the iterates of one example per regime

DISTILL_EXAMPLES = {  # Distill's regime names: (αλ, β_D)
    "monotonic decrease": (0.15, 0.2),
    "critical damping (repeated root)": (0.16, 0.36),
    "ripples": (0.4, 0.8),
    "one step": (1.0, 0.0),
    "monotonic oscillation": (1.8, 0.05),
    "divergence": (3.2, 0.5),
}


def compute_momentum_phase_distill(*, num_alpha, num_beta, lam, steps, progress=True) -> xr.Dataset:
    """Spectral radius of one mode of curvature ``lam`` = λ = 2σ² on a cell-centred (αλ ∈ [0, 4], β_D ∈ [0, 1])
    grid, converted to EMA (η, β) and evaluated with ``theory``; and, for each of ``DISTILL_EXAMPLES``, the
    iterates x_t simulated with ``sim.linear.dynamics.momentum`` (float64) beside the closed-form R^t u₀."""
    del progress
    alpha_lambda = (np.arange(num_alpha) + 0.5) * 4 / num_alpha
    beta_d = (np.arange(num_beta) + 0.5) / num_beta
    radius = _radius(*_distill_to_ema(alpha_lambda[:, None], beta_d[None, :], lam))
    ex_al, ex_bd = (np.array(v) for v in zip(*DISTILL_EXAMPLES.values(), strict=True))
    ex = _distill_to_ema(ex_al, ex_bd, lam)
    data = {
        "radius": (("alpha_lambda", "beta_distill"), radius),
        "example_alpha_lambda": ("example", ex_al),
        "example_beta_distill": ("example", ex_bd),
        "example_learning_rate": ("example", ex[0]),
        "example_beta": ("example", ex[1]),
        "example_radius": ("example", _radius(*ex)),
        "example_regime": ("example", _regime(*ex)),
        "iterates": (("example", "t"), _iterates(*ex, steps)),
        "closed_form_iterates": (("example", "t"), _closed_form_iterates(*ex, steps)),
    }
    coords = {"alpha_lambda": alpha_lambda, "beta_distill": beta_d, "example": list(DISTILL_EXAMPLES)}
    coords["t"] = np.arange(steps + 1)
    return xr.Dataset(data, coords=coords, attrs={"lam": lam, "sigma2": lam / 2, "steps": steps, "dtype": "float64"})


def plot_momentum_phase_distill(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(15.0, 6.6), layout="constrained")
    grid = fig.add_gridspec(2, 4, width_ratios=(2.3, 1, 1, 1))
    ax = fig.add_subplot(grid[:, 0])
    al, bd = ds.alpha_lambda.values, ds.beta_distill.values
    cmap = matplotlib.colormaps["viridis"].with_extremes(over="black")
    mesh = ax.pcolormesh(
        np.linspace(0, 4, al.size + 1),
        np.linspace(0, 1, bd.size + 1),
        ds.radius.values.T,
        cmap=cmap,
        norm=Normalize(0, 1 - 1e-12),
        rasterized=True,
    )
    fig.colorbar(
        mesh, ax=ax, extend="max", label=r"spectral radius $\rho=\max|\lambda|$ (black: $\rho\geq1$, diverges)"
    )
    b = np.linspace(0, 1, 401)
    kw = {"color": "white", "lw": 1.3}
    ax.plot((1 - np.sqrt(b)) ** 2, b, **kw, label=r"repeated roots $\alpha\lambda=(1\mp\sqrt{\beta_D})^2$")
    ax.plot((1 + np.sqrt(b)) ** 2, b, **kw)
    ax.plot(2 + 2 * b, b, color="white", lw=1.3, ls="--", label=r"stability $\alpha\lambda=2+2\beta_D$")
    text = {"color": "white", "ha": "center", "va": "center", "fontsize": 9, "path_effects": HALO}
    ax.text(1.3, 0.62, "ripples (complex roots)\n" + r"$|\lambda|=\sqrt{\beta_D}$", **text)
    ax.text(0.22, 0.035, "monotonic\ndecrease", **{**text, "fontsize": 7.5})
    ax.text(2.0, 0.12, "monotonic\noscillation", **{**text, "fontsize": 8})
    ax.text(3.35, 0.35, "divergence", **text)
    for k, (x, y) in enumerate(zip(ds.example_alpha_lambda.values, ds.example_beta_distill.values, strict=True)):
        ax.plot([x], [y], "o", ms=11, mfc="white", mec="black", mew=1.0, zorder=5, clip_on=False)
        ax.text(x, y, "abcdef"[k], ha="center", va="center", fontsize=8, zorder=6, weight="bold")
    ax.set(xlim=(0, 4), ylim=(0, 1), xlabel=r"step size times curvature $\alpha\lambda$")
    ax.set(ylabel=r"Distill momentum $\beta_D$ (weight of the old velocity)")
    ax.legend(loc="lower right", fontsize=7.5, facecolor="0.2", labelcolor="white", edgecolor="0.6")
    ax.set_title(
        "Distill's phase diagram for one mode: $z\\leftarrow\\beta_D z+\\nabla f$, $w\\leftarrow w-\\alpha z$, "
        "$f=\\frac{1}{2}\\lambda w^2$\n= our EMA momentum with $\\beta=1-\\beta_D$, $\\eta=\\alpha/\\beta$, "
        "$\\sigma^2=\\lambda/2$. Complex roots have modulus $\\sqrt{\\beta_D}$\n"
        "($\\det R=\\beta_D$; Distill's text prints $2\\sqrt{\\beta}$, which is not a modulus)"
    )
    t = ds.t.values
    for k, name in enumerate(ds.example.values):
        a = fig.add_subplot(grid[k // 3, 1 + k % 3])
        x, closed = ds.iterates.values[k], ds.closed_form_iterates.values[k]
        a.axhline(0, color="0.6", lw=0.8)
        a.plot(t, closed, color="tab:blue", lw=1.2, label=r"closed form: $x_t$ of $R^t u_0$")
        a.plot(t, x, **DOTS, mec="black", label="sim.linear.dynamics.momentum")
        al_k, bd_k, rho = (ds[v].values[k] for v in ("example_alpha_lambda", "example_beta_distill", "example_radius"))
        regime = REGIMES[int(ds.example_regime.values[k])]
        a.set_title(
            f"({'abcdef'[k]}) {name}\n$\\alpha\\lambda={al_k:g}$, $\\beta_D={bd_k:g}$: $\\rho={rho:.3f}$ ({regime})",
            fontsize=8,
        )
        if name == "divergence":
            a.set_yscale("symlog", linthresh=1.0)
        a.set_xlabel("step t", fontsize=8)
        if k % 3 == 0:
            a.set_ylabel(r"error $x_t=w_t-w^*$", fontsize=8)
        a.tick_params(labelsize=7)
        if k == 0:
            a.legend(fontsize=6.5, loc="lower right")
    return fig


# --------------------------------------------------------------------------------------------------------------
# (f) The spectrum-wide (η, β) phase diagram for σ² ∈ [σ_min², σ_max²]


def compute_momentum_phase_spectrum(
    *,
    learning_rate,
    beta,
    sigma2_min,
    sigma2_max,
    num_sigma2,
    sim_modes,
    sim_learning_rate,
    steps,
    tol,
    chunk_size=DEFAULT_CHUNK,
    theory_points=600,
    progress=True,
) -> xr.Dataset:
    """Spectral radius max over ``num_sigma2`` log-spaced σ² ∈ [σ_min², σ_max²] on an (η, β) grid (closed form),
    each extreme mode's thresholds on a fine β grid, the best-rate η interval per β and the joint optimum; and a
    float32 sweep on a problem with ``sim_modes`` log-spaced modes (equal target) along ``sim_learning_rate`` at the
    optimal β and the course's β = 0.1 (measured contraction beside the closed-form rate)."""
    eta, beta = parse_axis("learning_rate", learning_rate).values, parse_axis("beta", beta).values
    dense = np.geomspace(sigma2_min, sigma2_max, num_sigma2)
    radius = np.zeros((eta.size, beta.size))
    for s2 in dense:  # a running max keeps memory at one grid
        radius = np.maximum(radius, _radius(eta[:, None], beta[None, :], s2))
    endpoints = np.maximum(*(_radius(eta[:, None], beta[None, :], s) for s in (sigma2_min, sigma2_max)))
    low, high = log_limits(beta)
    b = np.geomspace(low, min(high, 1.0), theory_points)
    curves = {}
    with jax.enable_x64(True):
        for tag, s2 in (("min", sigma2_min), ("max", sigma2_max)):
            lo, hi = theory.momentum_repeated_root_lrs(b, s2)
            curves[f"repeated_root_lo_{tag}"] = ("beta_theory", np.asarray(lo))
            curves[f"repeated_root_hi_{tag}"] = ("beta_theory", np.asarray(hi))
            curves[f"stable_lr_{tag}"] = ("beta_theory", np.asarray(theory.momentum_stable_lr(b, s2)))
    # best rate √(1 − β) for this β: every mode complex, from σ_min²'s smaller to σ_max²'s larger repeated root
    best_lo, best_hi = curves["repeated_root_lo_min"][1], curves["repeated_root_hi_max"][1]
    curves["best_lo"] = ("beta_theory", np.where(best_lo <= best_hi, best_lo, np.nan))
    curves["best_hi"] = ("beta_theory", np.where(best_lo <= best_hi, best_hi, np.nan))
    opt_lr, opt_beta, opt_rate = theory.momentum_optimum([sigma2_min, sigma2_max])
    slices = np.array([opt_beta, COURSE_BETA])
    grid = Grid((parse_axis("learning_rate", sim_learning_rate), list_axis("beta", slices)))
    modes = np.geomspace(sigma2_min, sigma2_max, sim_modes)
    sim = sweep("momentum", grid, steps=steps, tol=tol, spectrum=modes, chunk_size=chunk_size, progress=progress)
    line = np.union1d(np.geomspace(eta[0], eta[-1], theory_points), [opt_lr])
    slice_radius = np.zeros((line.size, slices.size))
    for s2 in dense:
        slice_radius = np.maximum(slice_radius, _radius(line[:, None], slices[None, :], s2))
    data = {
        "radius": (("learning_rate", "beta"), radius),
        "endpoint_radius": (("learning_rate", "beta"), endpoints),
        **curves,
        "slice_radius": (("learning_rate_line", "slice_beta"), slice_radius),
        "sim_contraction": (("sim_learning_rate", "slice_beta"), sim.contraction.values),
        "sim_rate": (("sim_learning_rate", "slice_beta"), sim.rate.values),
        "sim_diverged": (("sim_learning_rate", "slice_beta"), sim.diverged.values),
    }
    coords = {"learning_rate": eta, "beta": beta, "beta_theory": b, "learning_rate_line": line, "slice_beta": slices}
    coords["sim_learning_rate"] = sim.learning_rate.values
    attrs = {k: sim.attrs[k] for k in ("steps", "tol", "dtype", "chunk_size", "block", "divergence_bound")}
    attrs.update(sigma2_min=sigma2_min, sigma2_max=sigma2_max, num_sigma2=num_sigma2, sim_modes=sim_modes)
    attrs.update(optimum_learning_rate=opt_lr, optimum_beta=opt_beta, optimum_rate=opt_rate)
    return xr.Dataset(data, coords=coords, attrs=attrs)


def plot_momentum_phase_spectrum(ds: xr.Dataset) -> MplFigure:
    fig = MplFigure(figsize=(15.0, 6.8), layout="constrained")
    ax, ax2 = fig.subplots(1, 2, width_ratios=(1.15, 1.0))
    eta, beta, b = ds.learning_rate.values, ds.beta.values, ds.beta_theory.values
    smin, smax = ds.attrs["sigma2_min"], ds.attrs["sigma2_max"]
    opt_lr, opt_beta, opt_rate = (ds.attrs[k] for k in ("optimum_learning_rate", "optimum_beta", "optimum_rate"))
    cmap = matplotlib.colormaps["viridis"].with_extremes(over="black")
    norm = Normalize(np.floor(ds.radius.values.min() * 20) / 20, 1 - 1e-12)
    mesh = ax.pcolormesh(log_edges(eta), log_edges(beta), ds.radius.values.T, cmap=cmap, norm=norm, rasterized=True)
    label = r"worst-mode spectral radius: max over $\sigma^2$ of $\rho(R)$ (black: $\geq1$, diverges)"
    fig.colorbar(mesh, ax=ax, extend="max", label=label)
    handles = []
    for tag, s2, color in (("min", smin, "white"), ("max", smax, "#ff9f1c")):
        kw = {"color": color, "path_effects": HALO}
        (rr,) = ax.plot(ds[f"repeated_root_lo_{tag}"], b, lw=1.4, **kw, label=rf"$\sigma^2={s2:g}$: repeated roots")
        ax.plot(ds[f"repeated_root_hi_{tag}"], b, lw=1.4, **kw)
        (st,) = ax.plot(ds[f"stable_lr_{tag}"], b, lw=1.3, ls="--", **kw, label=rf"$\sigma^2={s2:g}$: stability limit")
        handles += [rr, st]
    label = r"best-rate interval $\rho=\sqrt{1-\beta}$: [$\sigma_{min}^2$'s lower, $\sigma_{max}^2$'s upper root]"
    band = ax.fill_betweenx(b, ds.best_lo, ds.best_hi, fc="none", ec="#ff4fd8", hatch="///", lw=0, label=label)
    label = rf"joint optimum $\eta={opt_lr:.3g}$, $\beta={opt_beta:.4f}$: $\rho=(\kappa-1)/(\kappa+1)={opt_rate:.4f}$"
    (star,) = ax.plot([opt_lr], [opt_beta], **STAR, zorder=6, label=label)
    for k, bs in enumerate(ds.slice_beta.values):
        ax.axhline(bs, color="white", lw=0.8, ls=":")
        ax.text(eta[-1], bs, f"slice {k + 1} ", color="white", ha="right", va="bottom", fontsize=7.5, path_effects=HALO)
    ax.set(xscale="log", yscale="log", xlim=log_limits(eta), ylim=log_limits(beta))
    ax.set(xlabel=r"learning rate $\eta$", ylabel=r"EMA momentum weight $\beta$ of the new gradient")
    ax.set_title(
        rf"EMA momentum on a whole spectrum $\sigma^2\in[{smin:g}, {smax:g}]$: worst-mode spectral radius"
        + f"\n(max over {ds.attrs['num_sigma2']} log-spaced $\\sigma^2$; "
        + "$\\rho$ is quasi-convex in tr $R$, which is linear in $\\sigma^2$,\nso the max is at an endpoint: "
        + "the dense max equals the endpoints' max)"
    )
    fig.legend(handles=[*handles, band, star], loc="outside lower left", ncols=2, fontsize=7.5)

    line, sim_eta = ds.learning_rate_line.values, ds.sim_learning_rate.values
    for k, (bs, color) in enumerate(zip(ds.slice_beta.values, ("tab:blue", "tab:green"), strict=True)):
        ax2.plot(
            line, ds.slice_radius[:, k], color=color, lw=1.5, label=f"slice {k + 1}: closed form, $\\beta={bs:.4g}$"
        )
        ok = ~ds.sim_diverged.values[:, k]
        label = f"slice {k + 1}: simulated contraction ({ds.attrs['sim_modes']} modes, float32)"
        ax2.plot(sim_eta[ok], ds.sim_contraction[ok, k], **DOTS, mec=color, label=label)
        lo, hi = np.interp(bs, b, ds.best_lo), np.interp(bs, b, ds.best_hi)
        if np.isfinite(lo) and hi > lo:
            ax2.axvspan(lo, hi, color=color, alpha=0.12, lw=0)
    ax2.plot([opt_lr], [opt_rate], **STAR, zorder=6)
    ax2.axhline(1, color="black", lw=0.8, ls=":")
    ax2.set(xscale="log", xlim=(line[0], line[-1]), ylim=(0.75, 1.02), xlabel=r"learning rate $\eta$")
    ax2.set(ylabel=r"rate: spectral radius / measured $(\|u_t\|/\|u_0\|)^{1/t}$")
    ax2.set_title(
        f"slices: closed-form worst-mode radius vs a sweep on {ds.attrs['sim_modes']} modes (T = {ds.attrs['steps']})"
        "\nshaded: best-rate interval of each slice; star: joint optimum"
    )
    ax2.legend(loc="lower left", fontsize=7.5)
    note = "measured at the settle step (or T): at finite t it sits\nslightly below the asymptotic rate"
    ax2.text(0.98, 0.97, note, transform=ax2.transAxes, ha="right", fontsize=7.5, va="top")
    return fig


# --------------------------------------------------------------------------------------------------------------
# The registered figures (``sim.figures.registry`` collects them)

_EIGENVALUES = {
    "beta": 0.5,
    "sigma2": 0.09,
    "learning_rate_min": 1e-2,
    "learning_rate_max": 31.0,
    "zoom": [31.0, 38.0],
    "steps": 400,
}
_PHASE_SPECTRUM = {
    "sigma2_min": min(COURSE_SPECTRUM),
    "sigma2_max": max(COURSE_SPECTRUM),
    "num_sigma2": 64,
    "sim_modes": 8,  # the sweep kernel's compile time grows steeply with the number of modes (64: minutes)
    "sim_learning_rate": "log:1e-2:1e2:121",
    "steps": 5000,
    "tol": COURSE_TOL,
}
FIGURES = {
    "momentum_eigenvalues": Figure(
        filename="momentum_eigenvalues.png",
        summary="eigenvalues of the EMA momentum mode matrix R in the complex plane as eta sweeps (beta = 0.5, "
        "sigma2 = 0.09), regimes labelled, beside the Jacobian of the simulator's step and measured growth rates",
        full=_EIGENVALUES | {"num": 300, "num_zoom": 141},
        quick=_EIGENVALUES | {"num": 60, "num_zoom": 30},
        compute_fn=compute_momentum_eigenvalues,
        plot=plot_momentum_eigenvalues,
    ),
    "momentum_phase_distill": Figure(
        filename="momentum_phase_distill.png",
        summary="Distill-style spectral radius over (alpha lambda, beta_D) for one mode, divergence in black, one "
        "example per regime with its simulated iterates",
        full={"num_alpha": 400, "num_beta": 200, "lam": 1.0, "steps": 30},
        quick={"num_alpha": 80, "num_beta": 40, "lam": 1.0, "steps": 30},
        compute_fn=compute_momentum_phase_distill,
        plot=plot_momentum_phase_distill,
    ),
    "momentum_phase_spectrum": Figure(
        filename="momentum_phase_spectrum.png",
        summary="worst-mode spectral radius over (eta, beta) for sigma2 in [0.05, 5], extreme modes' thresholds, "
        "best-rate eta interval per beta, joint optimum; slices against a sweep",
        full=_PHASE_SPECTRUM | {"learning_rate": "log:1e-2:1e2:301", "beta": "log:1e-2:1:301"},
        quick=_PHASE_SPECTRUM
        | {
            "learning_rate": "log:1e-2:1e2:41",
            "beta": "log:1e-2:1:41",
            "sim_learning_rate": "log:1e-2:1e2:25",
            "chunk_size": QUICK_CHUNK,
        },
        compute_fn=compute_momentum_phase_spectrum,
        plot=plot_momentum_phase_spectrum,
    ),
}
