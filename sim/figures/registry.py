"""The registry of the project's figures and the runner that computes, draws and saves them.

Contract: :data:`FIGURES` maps each figure's name to a :class:`sim.figures.base.Figure` (output file, configuration
at full and quick size, compute and plot functions). The records live beside their compute and plot functions, one
module per topic: ``gd`` (GD's rate and steps), ``momentum`` (eigenvalues and phase diagrams), ``momentum_steps``
(steps to tolerance), ``momentum_notebook``, ``regression`` (ridge, early stopping), ``noisy`` (noisy-input SGD)
and ``networks`` (features, initialization, linearization); this module only collects them. :func:`render`
computes, plots and saves figures and merges their configuration and ``sim.core.runtime.provenance()`` into
``provenance.json`` beside them. PNGs are byte-stable: fixed size, dpi and rc parameters, and no metadata (no
matplotlib version, no timestamp), so rendering a figure twice on one machine gives identical bytes.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import matplotlib

from sim.core import runtime
from sim.core.validate import InputError
from sim.figures import gd, momentum, momentum_notebook, momentum_steps, networks, noisy, regression
from sim.figures.base import DPI, Figure, fixed_style, save

PROVENANCE_FILE = "provenance.json"
TOPICS = (gd, momentum_steps, momentum, momentum_notebook, regression, noisy, networks)
FIGURES: dict[str, Figure] = {name: fig for topic in TOPICS for name, fig in topic.FIGURES.items()}
__all__ = ["FIGURES", "PROVENANCE_FILE", "TOPICS", "Figure", "render"]


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
