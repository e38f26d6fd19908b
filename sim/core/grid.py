"""Grid specifications: named axes (linear, logarithmic or explicit) whose product is swept, one problem per point.

Contract: an :class:`Axis` is parsed from the command-line grammar and validated on construction; a :class:`Grid`
is an ordered tuple of axes, flattened in C order (the last axis varies fastest). ``grid.values_at(indices)``
returns the coordinates of some flat indices, so the sweep engine never materializes more than one chunk. Sizes are
read from the text before any axis is built (:func:`axis_size`), so an axis or grid over the budget is refused without
allocating it (:func:`parse_axis`, :func:`parse_grid`).

Axis grammar (``parse_axis``)::

    start:stop:num         num evenly spaced values from start to stop inclusive   (0.01:1:100)
    log:start:stop:num     num log-spaced values from start to stop inclusive      (log:1e-2:1e2:512)
    v1,v2,...              an explicit list, sorted ascending (no repeats)         (0.05,5)
    v                      a single value                                          (0.5)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from sim.core.validate import InputError, check_int

MAX_POINTS = 2**26
"""Default budget on the number of grid points (≈ 67 M; about 2 GB of summaries). Raise it with ``max_points``."""


@dataclasses.dataclass(frozen=True)
class Axis:
    """One named, strictly monotone axis of a sweep.

    Attributes:
      name: the parameter name (``learning_rate``, ``beta``, ``sigma2``).
      values: the coordinates, float64 array of shape [num].
      spec: the text it was parsed from, kept for provenance.
    """

    name: str
    values: np.ndarray
    spec: str

    def __post_init__(self):
        v = np.asarray(self.values, dtype=np.float64)
        if v.ndim != 1 or v.size == 0:
            raise InputError(self.name, "axis is empty")
        if not np.all(np.isfinite(v)):
            raise InputError(self.name, f"axis values must be finite, got {v[~np.isfinite(v)][0]:g}")
        d = np.diff(v)
        if v.size > 1 and not (np.all(d > 0) or np.all(d < 0)):
            raise InputError(self.name, f"axis must be strictly monotone (no repeats), got {self.spec!r}")
        object.__setattr__(self, "values", v)

    def __len__(self) -> int:
        return int(self.values.size)


def axis_size(name: str, text: str) -> int:
    """The number of points of the axis ``text`` (grammar in the module docstring), read without building it."""
    return _split(name, text)[1]


def parse_axis(name: str, text: str, *, max_points: int = MAX_POINTS, knob: str | None = None) -> Axis:
    """Parse ``text`` in the axis grammar (module docstring) into an :class:`Axis` called ``name``.

    An axis of more than ``max_points`` points is refused before it is built; ``knob`` names the setting that raises
    the budget, for the message. A list is sorted ascending; a repeated value is refused.
    """
    text = str(text).strip()
    kind, num = _split(name, text)
    if num > max_points:
        raise InputError(
            name,
            f"{num:,} points exceed the budget of {max_points:,}; shrink the axis"
            + (f" or raise {knob}" if knob else ""),
        )
    parts = text.split(":")
    try:
        if kind == "log":
            start, stop = float(parts[1]), float(parts[2])
            if not (start > 0 and stop > 0):
                raise InputError(name, f"log axis needs start and stop > 0, got {text!r}")
            values = np.geomspace(start, stop, num)
        elif kind == "linear":
            start, stop = float(parts[0]), float(parts[1])
            values = np.linspace(start, stop, num)
        else:
            values = np.sort(np.array([float(p) for p in text.split(",") if p.strip()], dtype=np.float64))
            repeated = values[1:][np.diff(values) == 0]
            if repeated.size:
                raise InputError(name, f"a list axis must not repeat a value, got {repeated[0]:g} twice in {text!r}")
    except ValueError as err:
        if isinstance(err, InputError):
            raise
        raise InputError(name, f"cannot parse {text!r} as an axis ({err})") from None
    return Axis(name, values, text)


def parse_grid(specs: Mapping[str, str], *, max_points: int = MAX_POINTS, knob: str = "max_points") -> Grid:
    """The :class:`Grid` of the axes ``{name: text}`` (in order), refused before any axis is built when the product
    of their sizes exceeds ``max_points`` (``knob`` names the setting that raises it, for the message)."""
    max_points = check_int(knob, max_points, minimum=1)
    sizes = {name: axis_size(name, text) for name, text in specs.items()}
    _check_size(math.prod(sizes.values()), tuple(sizes.values()), max_points, knob)
    return Grid(tuple(parse_axis(name, text, max_points=max_points, knob=knob) for name, text in specs.items()))


def list_axis(name: str, values) -> Axis:
    """An :class:`Axis` of explicit ``values``, its spec the comma list (exact in float64)."""
    values = np.asarray(values, dtype=np.float64)
    return Axis(name, values, ",".join(f"{v:.17g}" for v in values))


def _split(name: str, text: str) -> tuple[str, int]:
    """The kind of the axis ``text`` (``log``, ``linear`` or ``list``) and its number of points."""
    text = str(text).strip()
    if not text:
        raise InputError(name, "axis is empty")
    parts = text.split(":")
    try:
        if parts[0] == "log":
            if len(parts) != 4:
                raise InputError(name, f"log axis is log:start:stop:num, got {text!r}")
            return "log", _count(name, parts[3])
        if len(parts) == 3:
            return "linear", _count(name, parts[2])
    except ValueError as err:
        if isinstance(err, InputError):
            raise
        raise InputError(name, f"cannot parse {text!r} as an axis ({err})") from None
    if len(parts) == 1:
        num = sum(1 for p in text.split(",") if p.strip())
        if num == 0:
            raise InputError(name, "axis is empty")
        return "list", num
    raise InputError(name, f"expected start:stop:num, log:start:stop:num or a comma list, got {text!r}")


def _count(name: str, text: str) -> int:
    num = float(text)
    if not num.is_integer() or num < 1:
        raise InputError(name, f"number of axis points must be a positive integer, got {text!r}")
    return int(num)


def _check_size(size: int, shape: tuple[int, ...], max_points: int, knob: str) -> None:
    if size > max_points:
        raise InputError(
            "grid",
            f"{size:,} points exceed the budget of {max_points:,} (shape {shape}); shrink an axis or raise {knob}",
        )


@dataclasses.dataclass(frozen=True)
class Grid:
    """The product of named axes, flattened in C order."""

    axes: tuple[Axis, ...]

    def __post_init__(self):
        names = [a.name for a in self.axes]
        if len(set(names)) != len(names):
            raise InputError("grid", f"axis names must be distinct, got {names}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a) for a in self.axes)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    def check_budget(self, max_points: int = MAX_POINTS, *, knob: str = "max_points") -> None:
        """Raise :class:`InputError` if the grid has more than ``max_points`` points (``knob`` names the setting that
        raises the budget, for the message)."""
        _check_size(self.size, self.shape, max_points, knob)

    def values_at(self, indices: np.ndarray | range) -> dict[str, np.ndarray]:
        """Coordinates of the points with these flat (C-order) indices, one float64 array per axis.

        ``indices`` is an array of flat indices, or a ``range`` of consecutive ones: the faster case (a few times,
        no index arithmetic per point), where each axis's coordinates are runs, each value repeated once per point
        of the later axes.
        """
        if not isinstance(indices, range):
            multi = np.unravel_index(indices, self.shape)
            return {a.name: a.values[i] for a, i in zip(self.axes, multi, strict=True)}
        if indices.step != 1 or not 0 <= indices.start < indices.stop <= self.size:
            raise ValueError(f"values_at: need a non-empty range of consecutive indices in the grid, got {indices}")
        start, stop = indices.start, indices.stop
        out, run = {}, self.size
        for a in self.axes:
            run //= len(a)  # points per value of this axis
            first, last = start // run, (stop - 1) // run
            begin, end = first % len(a), first % len(a) + last - first + 1  # the axis's values cycle
            values = a.values[begin:end] if end <= len(a) else np.tile(a.values, -(-end // len(a)))[begin:end]
            if run > 1:
                counts = np.full(last - first + 1, run)
                counts[0] -= start - first * run
                counts[-1] -= (last + 1) * run - stop
                values = np.repeat(values, counts)
            out[a.name] = values
        return out

    def coords(self) -> dict[str, np.ndarray]:
        return {a.name: a.values for a in self.axes}
