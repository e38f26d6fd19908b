"""The project's figures: theory and simulation side by side, computed, drawn and saved by one runner.

Contract: :data:`FIGURES` maps each figure's name to a :class:`Figure`, which holds its output file name, its
configuration at full and quick size (the keyword arguments of its compute function: grid specs, steps, tol), a
``compute(quick)`` that returns an ``xarray.Dataset`` (sweep summaries and closed-form curves) and a ``plot(data)``
that draws a ``matplotlib.figure.Figure`` without pyplot's global state. The compute and plot functions live in
the ``sim.figures_*`` modules, one per topic; shared style, saving and heat-map helpers in ``sim.figures.base``.
:func:`render` computes, plots and saves figures and merges their configuration and
``sim.core.runtime.provenance()`` into ``provenance.json`` beside them. PNGs are byte-stable: fixed size, dpi and rc
parameters, and no metadata (no matplotlib version, no timestamp), so rendering a figure twice gives identical bytes.

Conventions (glossary in ``sim``): L(w) = ‖y − Xw‖² (no ½), so one GD mode is multiplied by 1 − 2ησ² per step;
momentum is the seeds' EMA form z ← (1 − β) z + β ∇L, w ← w − η z; ε is the relative-error tolerance from w₀ = 0.
The worked example is the seeds' spectrum σ² ∈ {5, 0.05} (EECS 182 Sp23 HW2 Q1–Q2). Closed forms come from
``sim.linear.theory``, evaluated in float64; the sweeps run in float32.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import matplotlib
import xarray as xr
from matplotlib.figure import Figure as MplFigure

from sim.core import runtime
from sim.core.validate import InputError
from sim.figures import features as figures_features
from sim.figures import gd as figures_gd
from sim.figures import momentum as figures_momentum
from sim.figures import noisy as figures_mc
from sim.figures import noisy_vector as figures_noisy_vector
from sim.figures import notebook as figures_notebook
from sim.figures import regression as figures_ridge
from sim.figures import steps as figures_steps
from sim.figures import training as figures_training
from sim.figures.base import DPI, EXAMPLE_BETA, QUICK_CHUNK, SPECTRUM, TOL, fixed_style, save

PROVENANCE_FILE = "provenance.json"
__all__ = ["DPI", "FIGURES", "PROVENANCE_FILE", "SPECTRUM", "TOL", "Figure", "fixed_style", "render", "save"]


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
# Registry (every output and its configuration is defined here) and runner


_SPEC = list(SPECTRUM)
_GD_RATE = {"spectrum": _SPEC, "lr_max": 0.24, "steps": 40000, "tol": TOL}
_STEPS = {"steps": 20000, "tol": TOL}
_EIGENVALUES = {"beta": 0.5, "sigma2": 0.09, "lr_min": 1e-2, "lr_max": 31.0, "zoom": [31.0, 38.0], "steps": 400}
_PHASE_SPECTRUM = {
    "sigma2_min": min(SPECTRUM),
    "sigma2_max": max(SPECTRUM),
    "num_sigma2": 64,
    "sim_modes": 8,  # the sweep kernel's compile time grows steeply with the number of modes (64: minutes)
    "sim_learning_rate": "log:1e-2:1e2:121",
    "steps": 5000,
    "tol": TOL,
}
_STEPS_VS_LR = {"spectrum": _SPEC, "beta": EXAMPLE_BETA, "steps": 20000, "tol": TOL}
_NOTEBOOK = {
    "n": 500,
    "seed": 0,
    "steps": 100,
    "runs": [["GD η=1e-4", 1e-4, 1.0], ["momentum η=1e-4, β=0.6", 1e-4, 0.6], ["momentum η=2e-4, β=0.6", 2e-4, 0.6]],
}
FIGURES: dict[str, Figure] = {
    "gd_rate_vs_lr": Figure(
        filename="gd_rate_vs_lr.png",
        summary="GD mode factors |1 - 2 eta sigma2| and rate vs eta on sigma2 in {5, 0.05} (the seeds' Figure 1), "
        "with the simulated contraction and steps to tolerance",
        full=_GD_RATE | {"num": 96},
        quick=_GD_RATE | {"num": 24, "chunk_size": QUICK_CHUNK},
        compute_fn=figures_gd.compute_gd_rate_vs_lr,
        plot=figures_gd.plot_gd_rate_vs_lr,
    ),
    "gd_steps_heatmap": Figure(
        filename="gd_steps_heatmap.png",
        summary="GD steps to tolerance over (eta, sigma2), one mode per point, with the stability limit "
        "eta = 1/sigma2, the fastest eta = 1/(2 sigma2) and closed-form iso-step curves",
        full=_STEPS | {"learning_rate": "log:1e-3:10:401", "sigma2": "log:1e-2:1e2:401"},
        quick=_STEPS | {"learning_rate": "log:1e-3:10:41", "sigma2": "log:1e-2:1e2:41", "chunk_size": QUICK_CHUNK},
        compute_fn=figures_gd.compute_gd_steps_heatmap,
        plot=figures_gd.plot_gd_steps_heatmap,
    ),
    "momentum_steps_heatmap": Figure(
        filename="momentum_steps_heatmap.png",
        summary="EMA momentum steps to tolerance over (eta, beta) on sigma2 in {5, 0.05}, with each mode's "
        "repeated-root and stability curves, the seeds' beta = 0.1 interval and the optimal (eta, beta)",
        full=_STEPS | {"spectrum": _SPEC, "learning_rate": "log:1e-2:1e2:401", "beta": "log:1e-2:1:401"},
        quick=_STEPS
        | {"spectrum": _SPEC, "learning_rate": "log:1e-2:1e2:41", "beta": "log:1e-2:1:41", "chunk_size": QUICK_CHUNK},
        compute_fn=figures_steps.compute_momentum_steps_heatmap,
        plot=figures_steps.plot_momentum_steps_heatmap,
    ),
    "momentum_eigenvalues": Figure(
        filename="momentum_eigenvalues.png",
        summary="eigenvalues of the EMA momentum mode matrix R in the complex plane as eta sweeps (beta = 0.5, "
        "sigma2 = 0.09), regimes labelled, beside the Jacobian of the simulator's step and measured growth rates",
        full=_EIGENVALUES | {"num": 300, "num_zoom": 141},
        quick=_EIGENVALUES | {"num": 60, "num_zoom": 30},
        compute_fn=figures_momentum.compute_momentum_eigenvalues,
        plot=figures_momentum.plot_momentum_eigenvalues,
    ),
    "momentum_phase_distill": Figure(
        filename="momentum_phase_distill.png",
        summary="Distill-style spectral radius over (alpha lambda, beta_D) for one mode, divergence in black, one "
        "example per regime with its simulated iterates",
        full={"num_alpha": 400, "num_beta": 200, "lam": 1.0, "steps": 30},
        quick={"num_alpha": 80, "num_beta": 40, "lam": 1.0, "steps": 30},
        compute_fn=figures_momentum.compute_momentum_phase_distill,
        plot=figures_momentum.plot_momentum_phase_distill,
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
        compute_fn=figures_momentum.compute_momentum_phase_spectrum,
        plot=figures_momentum.plot_momentum_phase_spectrum,
    ),
    "steps_vs_lr": Figure(
        filename="steps_vs_lr.png",
        summary="steps to tolerance against eta for GD and momentum (beta = 0.1) on sigma2 in {5, 0.05}: simulated "
        "and predicted, the best-rate interval [0.2633, 3.797] and its fastest simulated eta",
        full=_STEPS_VS_LR | {"lr_gd": "log:1e-2:0.25:241", "lr_momentum": "log:1e-2:5:241", "num_interval": 721},
        quick=_STEPS_VS_LR
        | {"lr_gd": "log:1e-2:0.25:25", "lr_momentum": "log:1e-2:5:25", "num_interval": 41, "chunk_size": QUICK_CHUNK},
        compute_fn=figures_steps.compute_steps_vs_lr,
        plot=figures_steps.plot_steps_vs_lr,
    ),
    "momentum_notebook": Figure(
        filename="momentum_notebook.png",
        summary="the course momentum notebook: 500 points, seed 0, 100 steps, GD eta = 1e-4 and momentum beta = 0.6 "
        "with eta = 1e-4, 2e-4: per-dimension |gradient|, |w| and the loss gap (float64)",
        full=_NOTEBOOK,
        quick=_NOTEBOOK,
        compute_fn=figures_notebook.compute_momentum_notebook,
        plot=figures_notebook.plot_momentum_notebook,
    ),
    "ridge_shrinkage": Figure(
        filename="ridge_shrinkage.png",
        summary="ridge filter factors sigma^2/(sigma^2 + lambda) against lambda, recovered from the primal solution "
        "of a random problem, beside GD's early-stopping factors at lambda = 1/(eta t); the ridge map's gain",
        full=figures_ridge.RIDGE_SHRINKAGE_FULL,
        quick=figures_ridge.RIDGE_SHRINKAGE_QUICK,
        compute_fn=figures_ridge.compute_ridge_shrinkage,
        plot=figures_ridge.plot_ridge_shrinkage,
    ),
    "early_stopping": Figure(
        filename="early_stopping.png",
        summary="seed 004: GD error on an ill-conditioned square system against steps (closed form, simulated loop, "
        "bound) beside the inverse's error and the ridge path",
        full=figures_ridge.EARLY_STOPPING_FULL,
        quick=figures_ridge.EARLY_STOPPING_QUICK,
        compute_fn=figures_ridge.compute_early_stopping,
        plot=figures_ridge.plot_early_stopping,
    ),
    "mc_scalar_paths": Figure(
        filename="mc_scalar_paths.png",
        summary="noisy-input SGD on one point: Monte Carlo mean, quantile band and sample paths of w_t against the "
        "exact mean and standard deviation, below both thresholds and between them",
        full=figures_mc.MC_SCALAR_PATHS_FULL,
        quick=figures_mc.MC_SCALAR_PATHS_QUICK,
        compute_fn=figures_mc.compute_mc_scalar_paths,
        plot=figures_mc.plot_mc_scalar_paths,
    ),
    "mc_boundaries": Figure(
        filename="mc_boundaries.png",
        summary="(eta, sigma) map of noisy-input SGD from a Monte Carlo sweep: where the mean converges, where the "
        "variance stays bounded and where single runs settle, with the three closed-form boundaries",
        full=figures_mc.MC_BOUNDARIES_FULL,
        quick=figures_mc.MC_BOUNDARIES_QUICK,
        compute_fn=figures_mc.compute_mc_boundaries,
        plot=figures_mc.plot_mc_boundaries,
    ),
    "mc_vector_ridge": Figure(
        filename="mc_vector_ridge.png",
        summary="noisy-input minibatch SGD on m points in n dimensions: distance of the Monte Carlo mean, the exact "
        "mean and single runs to the ridge and least-squares solutions; filter factors recovered from the weights",
        full=figures_noisy_vector.MC_VECTOR_RIDGE_FULL,
        quick=figures_noisy_vector.MC_VECTOR_RIDGE_QUICK,
        compute_fn=figures_noisy_vector.compute_mc_vector_ridge,
        plot=figures_noisy_vector.plot_mc_vector_ridge,
    ),
    "features_part1": Figure(
        filename="features_part1.png",
        summary="Part I elbow nets: df/dW1 and df/db1 over x at init and trained, fits, elbows over training "
        "against the kinks, top singular values of Phi, principal features and the top-2 feature scatter",
        full=figures_features.PART1_FULL,
        quick=figures_features.PART1_QUICK,
        compute_fn=figures_features.compute_part1_features,
        plot=figures_features.plot_part1_features,
    ),
    "features_part1_principal": Figure(
        filename="features_part1_principal.png",
        summary="Part I elbow nets, one row per model: the top-4 principal features psi_k(x) on a dense grid at init "
        "and trained, against the kinks, and the top-20 singular values of Phi (the features_part1 run)",
        full=figures_features.PART1_FULL,
        quick=figures_features.PART1_QUICK,
        compute_fn=figures_features.compute_part1_features,
        plot=figures_features.plot_part1_principal,
    ),
    "features_part2": Figure(
        filename="features_part2.png",
        summary="Part II shallow vs 4 x 20 nets (U(0.03), U(3), He) and mismatched data: singular values, "
        "per-layer gradient norms and test MSE against the published table, principal features, fits",
        full=figures_features.PART2_FULL,
        quick=figures_features.PART2_QUICK,
        compute_fn=figures_features.compute_part2_features,
        plot=figures_features.plot_part2_features,
    ),
    "features_part2_principal": Figure(
        filename="features_part2_principal.png",
        summary="Part II nets, one row per model: the top-4 principal features psi_k(x) on a dense grid at init and "
        "trained (mismatched training range shaded), the top-20 singular values of Phi, test MSE and divergence",
        full=figures_features.PART2_FULL,
        quick=figures_features.PART2_QUICK,
        compute_fn=figures_features.compute_part2_features,
        plot=figures_features.plot_part2_principal,
    ),
    "init_scale": Figure(
        filename="init_scale.png",
        summary="per-layer gradient norms and signal second moments at init against the weight scale a, over "
        "seeds, with the mean-field gain g = N a^2 / 6 and the a^D / a^(2D+1) power laws",
        full=figures_training.INIT_SCALE_FULL,
        quick=figures_training.INIT_SCALE_QUICK,
        compute_fn=figures_training.compute_init_scale,
        plot=figures_training.plot_init_scale,
    ),
    "linearized": Figure(
        filename="linearized.png",
        summary="He 4 x 20 net and its linearization trained side by side (heavy ball, same batches): test and "
        "training MSE, the linearization's stability bound, final predictions",
        full=figures_training.LINEARIZED_FULL,
        quick=figures_training.LINEARIZED_QUICK,
        compute_fn=figures_training.compute_linearized,
        plot=figures_training.plot_linearized,
    ),
}


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
        config.update(
            {k: data.attrs[k] for k in ("dtype", "chunk_size", "block", "divergence_bound") if k in data.attrs}
        )
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
