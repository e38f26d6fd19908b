"""The registry of the project's figures and the runner that computes, draws and saves them.

Contract: :data:`FIGURES` maps each figure's name to a :class:`sim.figures.base.Figure` (output file, configuration
at full and quick size, compute and plot functions). The records live beside their compute and plot functions, one
module per topic: ``gd`` (GD's rate and steps), ``momentum`` (eigenvalues and phase diagrams), ``momentum_steps``
(steps to tolerance), ``momentum_notebook``, ``regression`` (ridge, early stopping), ``noisy`` (noisy-input SGD)
``networks`` (features, initialization, linearization) and ``trainability`` (deep nets: initialization,
optimizers, depth); this module only collects them. :func:`render`
computes, plots and saves figures and merges their configuration and ``sim.core.runtime.provenance()`` into
``provenance.json`` beside them. PNGs are byte-stable: fixed size, dpi and rc parameters, and no metadata (no
matplotlib version, no timestamp), so rendering a figure twice on one machine gives identical bytes; on another CPU
model XLA's code, hence some float32 results and PNGs, may differ (``provenance.json`` records the CPU model).

Quick renders (``quick=True``) go to :data:`QUICK_OUTDIR` by default, full ones to :data:`OUTDIR`, and a quick render
never replaces a full one: :func:`render` refuses, before computing anything, a folder whose ``provenance.json``
records a full-size figure or that holds a figure's PNG without a quick record for it. Each figure's record is merged
into ``provenance.json`` (atomically) as soon as its PNG is saved, so an interrupted run leaves no PNG unrecorded.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import matplotlib

from sim.core import io, runtime
from sim.core.validate import InputError
from sim.figures import gd, momentum, momentum_notebook, momentum_steps, networks, noisy, regression, trainability
from sim.figures.base import DPI, Figure, fixed_style, save

PROVENANCE_FILE = "provenance.json"
OUTDIR = "figures"
"""Where full-size renders go by default (relative to the working directory: the repository's committed figures)."""
QUICK_OUTDIR = "figures/quick"
"""Where quick renders go by default, apart from the full-size figures (git-ignored in the repository)."""
TOPICS = (gd, momentum_steps, momentum, momentum_notebook, regression, noisy, networks, trainability)
FIGURES: dict[str, Figure] = {name: fig for topic in TOPICS for name, fig in topic.FIGURES.items()}
PAGES = {  # interactive pages rendered beside the figures: name -> (file, summary)
    "momentum_explorer": (
        "momentum_explorer.html",
        "interactive (eta, beta) map of EMA momentum's rate for an editable spectrum: every mode's eigenvalues, "
        "errors and step counts at the selected point, beside GD and in Distill's coordinates (opens from file://)",
    ),
}
__all__ = ["FIGURES", "OUTDIR", "PAGES", "PROVENANCE_FILE", "QUICK_OUTDIR", "TOPICS", "Figure", "render"]


def render(
    names: Iterable[str] | None = None,
    *,
    quick: bool = False,
    outdir=None,
    progress: bool = True,
    seconds: dict[str, float] | None = None,
) -> list[Path]:
    """Compute, plot and save figures, and merge their provenance into ``outdir/provenance.json``.

    Args:
      names: figures to render (keys of ``FIGURES``); all when None.
      quick: smoke-test size (seconds) instead of full size.
      outdir: output folder, created if missing; default :data:`OUTDIR` (``figures``), or :data:`QUICK_OUTDIR`
        (``figures/quick``) when ``quick``. A quick render into a folder holding full-size figures is refused.
      progress: show the sweeps' progress bars and print each figure's time to stderr.
      seconds: if given, filled with each figure's wall-clock seconds (compute, plot and save).

    Returns:
      The paths of the PNGs written, in the order rendered.

    Raises:
      InputError: ``only`` for an unknown name; ``outdir`` when its ``provenance.json`` is not one written here, or
        for a quick render where a full-size one is (see the module's docstring). Nothing is computed or written.
    """
    names = [*FIGURES, *PAGES] if names is None else list(names)
    for name in names:
        if name not in FIGURES and name not in PAGES:
            raise InputError("only", f"unknown figure {name!r}; choose from {', '.join([*FIGURES, *PAGES])}")
    outdir = Path((QUICK_OUTDIR if quick else OUTDIR) if outdir is None else outdir)
    existing = _read_provenance(outdir / PROVENANCE_FILE)
    if quick:
        _check_quick_outdir(outdir, names, existing)
    outdir.mkdir(parents=True, exist_ok=True)
    prov = None
    written, total = [], 0.0
    for name in names:
        if name in PAGES:
            written.append(_render_page(name, outdir, quick, existing, progress))
            continue
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
        if prov is None:
            prov = {**runtime.provenance(), "version_matplotlib": matplotlib.__version__}
        existing[name] = {"file": fig.filename, "summary": fig.summary, "config": config, "provenance": prov}
        _write_provenance(outdir / PROVENANCE_FILE, existing)
    if progress and len(names) > 1:
        print(f"total: {total:.1f} s", file=sys.stderr)
    return written


def _filename(name: str) -> str:
    return FIGURES[name].filename if name in FIGURES else PAGES[name][0]


def _render_page(name: str, outdir: Path, quick: bool, existing: dict, progress: bool) -> Path:
    """Write an interactive page and its screenshot (:func:`sim.explore.render`; the same at every size) and record
    it in ``provenance.json``. Without a browser the page is written and the screenshot skipped, with the reason."""
    from sim import explore

    filename, summary = PAGES[name]
    html, png, reason = explore.render(outdir)
    if progress:
        print(f"{name}: {html}" + (f", {png}" if png else f" (no screenshot: {reason})"), file=sys.stderr)
    config = {"spectrum": list(explore.DEFAULT_SPECTRUM), "point": list(explore.FIGURE_POINT), "quick": bool(quick)}
    config["screenshot"] = png.name if png else f"none: {reason}"
    prov = {**runtime.provenance(), "version_matplotlib": matplotlib.__version__}
    existing[name] = {"file": filename, "summary": summary, "config": config, "provenance": prov}
    _write_provenance(outdir / PROVENANCE_FILE, existing)
    return html


def _read_provenance(path: Path) -> dict:
    """The records in ``path`` (``{}`` if there is no such file).

    Raises:
      InputError: ``outdir``, when the file is not a JSON object (not written by :func:`render`: never replaced).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise InputError("outdir", f"cannot read {path}: {err.strerror}") from None
    try:
        records = json.loads(text)
    except ValueError:
        records = None
    if not isinstance(records, dict):
        raise InputError("outdir", f"{path} is not a provenance file of sim figures; move it away or choose another")
    return records


def _is_quick(record) -> bool:
    return isinstance(record, dict) and isinstance(record.get("config"), dict) and record["config"].get("quick") is True


def _check_quick_outdir(outdir: Path, names: list[str], existing: dict) -> None:
    """Refuse a quick render into a folder of full-size figures (committed ones, or a user's long render)."""
    full = sorted(name for name, record in existing.items() if not _is_quick(record))
    if full:
        raise InputError(
            "outdir",
            f"{outdir} holds full-size figures ({', '.join(full[:3])}{', …' if len(full) > 3 else ''} in "
            f"{PROVENANCE_FILE}); a quick render would replace them: choose another folder (by default quick "
            f"renders go to {QUICK_OUTDIR})",
        )
    unrecorded = [
        _filename(name) for name in names if (outdir / _filename(name)).exists() and not _is_quick(existing.get(name))
    ]
    if unrecorded:
        raise InputError(
            "outdir",
            f"{outdir} holds {', '.join(unrecorded[:3])}{', …' if len(unrecorded) > 3 else ''} not recorded as quick "
            f"renders in {PROVENANCE_FILE}; a quick render would replace them: choose another folder",
        )


def _write_provenance(path: Path, records: dict) -> None:
    """Write ``records`` as JSON to ``path`` atomically (:func:`sim.core.io.atomic_path`)."""
    text = json.dumps(records, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    with io.atomic_path(path, name="outdir") as tmp:
        tmp.write_text(text, encoding="utf-8")
