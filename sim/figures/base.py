"""What every figure module shares: the :class:`Figure` record, a fixed style, byte-stable saving, drawing helpers.

Contract: each topic module (``sim.figures.gd``, ``.momentum``, …) defines ``FIGURES``, a dict of :class:`Figure`
records naming its compute and plot functions and its full and quick configurations. :func:`fixed_style` gives
matplotlib's defaults plus :data:`STYLE` whatever the user's matplotlibrc says, and :func:`save` writes a PNG without
metadata (no matplotlib version, no timestamp), so a figure drawn twice has identical bytes. The heat-map helpers
take log-spaced sweep coordinates.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path

import matplotlib
import numpy as np
import xarray as xr
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure as MplFigure
from matplotlib.patches import Patch

from sim.core import io

DPI = 150
QUICK_CHUNK = 256  # points per device per call at quick size: a padded default chunk would cost more than the grid
STYLE = {"font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 10, "legend.fontsize": 8}
NOT_REACHED_COLOR = "#c9c9c9"
DIVERGED_COLOR = "#b2182b"
HALO = [patheffects.withStroke(linewidth=2.6, foreground="black")]
THIN_HALO = [patheffects.withStroke(linewidth=1.6, foreground="0.25")]
DOTS = {"ls": "none", "marker": "o", "ms": 3.2, "mfc": "none", "mew": 0.8}
STAR = {"ls": "none", "marker": "*", "ms": 12, "color": "gold", "mec": "black", "mew": 0.6}
NOTE = {"fontsize": 7.5, "va": "bottom"}


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


@contextlib.contextmanager
def fixed_style():
    """Matplotlib's defaults plus ``STYLE``, whatever the user's matplotlibrc says (for byte-stable output)."""
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(STYLE)
        yield


def save(figure: MplFigure, path) -> Path:
    """Write ``figure`` as a byte-stable PNG: fixed dpi, no Software (matplotlib version) or time metadata; atomically
    (:func:`sim.core.io.atomic_path`: an interrupted save leaves the previous file, never a truncated one)."""
    path = Path(path)
    FigureCanvasAgg(figure)
    with io.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    return path


def steps_heatmap(ax, ds: xr.Dataset, xname: str, yname: str):
    """Draw settle steps on log axes; diverged and not-reached points get flat colors (masked, never NaN)."""
    settle = ds.settle_step.transpose(yname, xname).values
    diverged = ds.diverged.transpose(yname, xname).values.astype(bool)
    reached = ~diverged & (settle > 0)
    xe, ye = log_edges(ds[xname].values), log_edges(ds[yname].values)
    steps = int(ds.attrs["steps"])
    vmin = 10.0 ** np.floor(np.log10(settle[reached].min())) if reached.any() else 1.0
    norm = LogNorm(vmin=vmin, vmax=steps)
    mesh = ax.pcolormesh(xe, ye, np.ma.masked_where(~reached, settle), norm=norm, cmap="viridis")
    bound = rf"$10^{{{np.log10(ds.attrs['divergence_bound']):.0f}}}$"
    handles = []
    for mask, color, label in (
        (diverged, DIVERGED_COLOR, f"diverged (state norm > {bound})"),
        (~diverged & ~reached, NOT_REACHED_COLOR, f"error not below ε within T = {steps} steps"),
    ):
        if mask.any():
            ax.pcolormesh(xe, ye, np.ma.masked_where(~mask, np.ones(mask.shape)), cmap=ListedColormap([color]))
            handles.append(Patch(color=color, label=label))
    return mesh, handles


def log_edges(values: np.ndarray) -> np.ndarray:
    """Cell edges of a log-spaced coordinate: geometric midpoints, extended by half a step at both ends."""
    logs = np.log(values)
    mid = (logs[1:] + logs[:-1]) / 2
    return np.exp(np.concatenate([[2 * logs[0] - mid[0]], mid, [2 * logs[-1] - mid[-1]]]))


def log_limits(values: np.ndarray) -> tuple[float, float]:
    edges = log_edges(values)
    return float(edges[0]), float(edges[-1])


def unit_colors(count: int):
    """``count`` colors along viridis (one per unit, layer or seed), RGBA array of shape [count, 4]."""
    from matplotlib import colormaps

    return colormaps["viridis"](np.linspace(0, 0.95, max(count, 1)))
