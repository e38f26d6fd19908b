"""Streaming estimates over many trajectories: exact float64 moments and histogram quantiles, in fixed order.

Contract: an :class:`Accumulator` reduces the recorded values of trajectories 0 … N − 1 in two stages, so that the
work can be cut into chunks run anywhere, in any order, and still give the same bits:

1. :meth:`Accumulator.reduce` (pure: it reads only the settings, so worker threads call it at once, in parallel) turns
   one chunk of consecutive trajectories into a :class:`Partial`: the moments (count, mean, M2, M3, M4; two-pass
   inside the block) of every whole super-block of ``SUPER_BLOCK`` trajectories that lies in the chunk (super-blocks
   start at multiples of ``SUPER_BLOCK`` of the GLOBAL index, whatever the chunk), the raw rows of the pieces of
   super-blocks at its two ends, and its diverged counts, histogram counts and sample paths (integers and rows: they
   combine exactly in any order).
2. :meth:`Accumulator.add` takes the partials in any order and merges them in trajectory-index order (buffering the
   ones that come early): the end rows of neighbouring chunks are joined into their super-block, and the super-blocks'
   moments are merged by Pébay's exact pairwise update, one after another in index order.

Every super-block is therefore reduced from the same rows by the same code, and the merges happen in the same order,
for any chunking, device count or finishing order; memory does not grow with the number of trajectories. Elements that
diverge (non-finite or beyond their bound) are counted and excluded from every estimate from the first recorded step
where they do. Quantiles come from a fixed-bin histogram per element in u = asinh(value / scale).
:mod:`sim.noisy.engine` is its user; its docstring gives the estimators' details.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import xarray as xr

SUPER_BLOCK = 1024


@dataclasses.dataclass
class Partial:
    """One chunk's reduction: trajectories ``[start, stop)``.

    Attributes:
      head: per output, the rows from ``start`` to the first super-block boundary (or ``stop``); empty when ``start``
        is a boundary.
      closes: whether ``head`` reaches that boundary (completing the super-block the previous chunks began).
      blocks: per output, the moments (n, mean, M2, M3, M4) of each whole super-block in the chunk, in order.
      tail: per output, the rows from the last boundary to ``stop`` (the start of a super-block the next chunks end).
      diverged, hist: per output, the chunk's diverged counts per element and histogram counts (integers).
      paths: per output, the rows of the chunk's trajectories below the number of sample paths.
    """

    start: int
    stop: int
    head: dict
    closes: bool
    blocks: dict
    tail: dict
    diverged: dict
    hist: dict
    paths: dict


class Accumulator:
    """Host-side float64 reduction of trajectories' recorded values in fixed super-blocks (module docstring).

    ``shapes`` maps each output to its per-trajectory shape (recorded steps first), ``spec`` holds ``quantiles`` and
    ``sample_paths``, ``quantile_of`` the outputs that get histogram quantiles, ``bins`` and ``scale`` the
    histogram, ``bounds`` the divergence bound of each output. :meth:`reduce` makes a chunk's :class:`Partial`
    (any thread), :meth:`add` merges it (thread-safe; partials may come in any order, they are merged in index
    order), :meth:`feed` does both; :meth:`finish` reduces the last, incomplete super-block; :meth:`dataset` gives
    the estimates. ``done`` counts the trajectories merged (a prefix 0 … done − 1 of the indices).
    """

    def __init__(self, shapes, spec, quantile_of, bins, scale, bounds):
        self.shapes, self.quantile_of, self.bins, self.scale = shapes, quantile_of, bins, scale
        self.bounds = {k: np.float64(v) for k, v in bounds.items()}  # compared in float64 (float32 would overflow)
        self.quantiles, self.n_paths = spec["quantiles"], spec["sample_paths"]
        self.hist_of = tuple(name for name in quantile_of if self.quantiles.size)
        self.u_max = {name: float(np.arcsinh(bounds[name] / scale)) for name in quantile_of}
        self.n_elem = {name: int(np.prod(shape)) for name, shape in shapes.items()}
        zeros = {name: np.zeros(shape) for name, shape in shapes.items()}
        self.state = {
            "done": 0,
            "carry": {name: [] for name in shapes},  # rows of the super-block begun but not finished
            "moments": {name: (zeros[name],) * 5 for name in shapes},  # n, mean, M2, M3, M4
            "diverged": {name: np.zeros(shape, np.int64) for name, shape in shapes.items()},
            "hist": {name: np.zeros((self.n_elem[name], bins), np.int64) for name in self.hist_of},
            "paths": {name: [] for name in shapes},
        }
        self.early: dict[int, Partial] = {}  # partials that came before their predecessors, by start
        self.lock = threading.Lock()

    @property
    def done(self) -> int:
        return self.state["done"]

    # ----------------------------------------------------------------------------------------------------------
    # Stage 1: one chunk (pure)

    def reduce(self, values: dict, start: int) -> Partial:
        """The :class:`Partial` of trajectories ``start`` … ``start + len(rows) − 1`` (their recorded values)."""
        n = len(next(iter(values.values())))
        stop = start + n
        first = min(-(-start // SUPER_BLOCK) * SUPER_BLOCK, stop)  # the first boundary at or after start (or stop)
        last = max(stop // SUPER_BLOCK * SUPER_BLOCK, first)  # the last boundary before stop (or first)
        head, blocks, tail, diverged, hist, paths = {}, {}, {}, {}, {}, {}
        for name, rows in values.items():
            rows = np.asarray(rows)
            head[name] = rows[: first - start]
            tail[name] = rows[last - start :]
            x, valid = self._valid(name, rows)
            blocks[name] = [
                _block_moments(x[a - start : a - start + SUPER_BLOCK], _rows(valid, a - start, SUPER_BLOCK))
                for a in range(first, last, SUPER_BLOCK)
            ]
            diverged[name] = np.zeros(x.shape[1:], np.int64) if valid is None else (~valid).sum(axis=0, dtype=np.int64)
            if name in self.hist_of:
                hist[name] = self._histogram(rows, valid, self.u_max[name])
            if start < self.n_paths:
                paths[name] = rows[: self.n_paths - start]
        closes = first % SUPER_BLOCK == 0 and first > start
        return Partial(start, stop, head, closes, blocks, tail, diverged, hist, paths)

    def _valid(self, name, rows):
        """``rows`` in float64 and the mask of elements not (yet) diverged at each recorded step, None when every
        element is valid (the common case, found from the extremes alone and computed faster to the same bits)."""
        x = rows.astype(np.float64)
        bound = self.bounds[name]
        if rows.size:
            low, high = float(rows.min()), float(rows.max())  # NaN if any is NaN
            if -bound <= low and high <= bound and np.isfinite(low) and np.isfinite(high):
                return x, None
        with np.errstate(invalid="ignore"):
            ok = np.abs(x) <= bound  # False for NaN (and ±inf, beyond any finite bound)
        if not np.isfinite(bound):
            ok &= np.isfinite(x)  # an infinite bound: only non-finite values diverge
        return x, np.logical_and.accumulate(ok, axis=1)

    # ----------------------------------------------------------------------------------------------------------
    # Stage 2: merging in index order

    def add(self, partial: Partial) -> None:
        """Merge ``partial`` (thread-safe): at once if it continues the merged prefix, else once its predecessors
        have been added."""
        with self.lock:
            self.early[partial.start] = partial
            while self.state["done"] in self.early:
                self.state = self._merge(dict(self.state), self.early.pop(self.state["done"]))

    def feed(self, values: dict, start: int) -> None:
        self.add(self.reduce(values, start))

    def finish(self) -> None:
        """Reduce the last, incomplete super-block (call once no more chunks will come)."""
        with self.lock:
            state = dict(self.state)
            moments = dict(state["moments"])
            for name, rows in state["carry"].items():
                if rows:
                    moments[name] = _merge(moments[name], _block_moments(*self._valid(name, np.concatenate(rows))))
            self.state = {**state, "moments": moments, "carry": {name: [] for name in self.shapes}}

    def _merge(self, state, p: Partial):
        moments, carry = dict(state["moments"]), {}
        for name in self.shapes:
            rows = [*state["carry"][name], p.head[name]] if len(p.head[name]) else list(state["carry"][name])
            m = moments[name]
            if p.closes and rows:
                m = _merge(m, _block_moments(*self._valid(name, np.concatenate(rows))))
                rows = []
            for block in p.blocks[name]:
                m = _merge(m, block)
            moments[name] = m
            carry[name] = [*rows, p.tail[name]] if len(p.tail[name]) else rows
        state.update(
            done=p.stop,
            carry=carry,
            moments=moments,
        )
        for k, v in state["diverged"].items():  # integers: in place (the merge holds the lock)
            v += p.diverged[k]
        for k, v in state["hist"].items():
            v += p.hist[k]
        if p.paths:
            state["paths"] = {k: [*v, p.paths[k]] for k, v in state["paths"].items()}
        return state

    def _histogram(self, rows, valid, u_max):
        """Histogram counts [elements, bins] of the valid entries of ``rows`` (``valid`` None: all of them).

        The bins are computed in the rows' own float dtype (float32: 2.3x faster than float64 here); an entry within
        about 1e-3 of a bin's width of an edge may land in the neighbouring bin, far below the quantiles' resolution.
        """
        dtype = rows.dtype.type
        n_elem = int(np.prod(rows.shape[1:]))
        with np.errstate(invalid="ignore", over="ignore"):
            u = rows * dtype(1 / self.scale)
            np.arcsinh(u, out=u)
            # bin = floor((u + U) / (2U) × bins), clipped to [0, bins − 1]; then offset by the element's range of bins
            u *= dtype(self.bins / (2 * u_max))
            u += dtype(self.bins / 2)
            np.clip(u, 0, self.bins - 1, out=u)
            b = u.astype(np.intp)
        b += (np.arange(n_elem, dtype=np.intp) * self.bins).reshape(rows.shape[1:])
        if valid is not None:
            b[~valid] = n_elem * self.bins  # one more bin for the invalid entries, dropped
        counts = np.bincount(b.ravel(), minlength=n_elem * self.bins + 1)
        return counts[: n_elem * self.bins].reshape(n_elem, self.bins)

    def _quantiles(self, counts, shape, u_max):
        total = counts.sum(axis=1)
        cum = np.cumsum(counts, axis=1)
        width = 2 * u_max / self.bins
        out = np.zeros((self.quantiles.size, counts.shape[0]))
        for i, q in enumerate(self.quantiles):
            target = q * total
            # first bin whose cumulative count reaches the target (and holds data: q = 0 gives the lowest value)
            b = np.minimum(np.argmax(cum >= np.maximum(target, 0.5)[:, None], axis=1), self.bins - 1)
            below = np.where(b > 0, np.take_along_axis(cum, np.maximum(b - 1, 0)[:, None], 1)[:, 0], 0)
            inside = np.take_along_axis(counts, b[:, None], 1)[:, 0]
            frac = np.clip((target - below) / np.maximum(inside, 1), 0, 1)
            u = -u_max + (b + frac) * width
            out[i] = np.where(total > 0, self.scale * np.sinh(u), 0.0)
        return out.reshape(self.quantiles.size, *shape)

    def _paths(self, name, shape) -> np.ndarray:
        parts = self.state["paths"][name]
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, *shape))

    def dataset(self, dims, z, record_steps, attrs) -> xr.Dataset:
        data = {}
        for name, shape in self.shapes.items():
            d = ("step", *dims[name])
            n, mean, m2, m3, m4 = self.state["moments"][name]
            with np.errstate(divide="ignore", invalid="ignore"):
                var = np.where(n > 1, m2 / np.maximum(n - 1, 1), 0.0)
                mean_se = np.where(n > 0, np.sqrt(var / np.maximum(n, 1)), 0.0)
                fourth = np.where(n > 0, m4 / np.maximum(n, 1), 0.0)
                var_se2 = (fourth - var * var * np.where(n > 1, (n - 3) / np.maximum(n - 1, 1), 1.0)) / np.maximum(n, 1)
                var_se = np.where(n > 3, np.sqrt(np.maximum(var_se2, 0.0)), 0.0)
            done = max(self.done, 1)
            data[f"{name}_mean"] = (d, mean, {"description": "sample mean over non-diverged trajectories"})
            data[f"{name}_var"] = (d, var, {"description": "unbiased sample variance over non-diverged trajectories"})
            data[f"{name}_mean_ci_low"] = (d, mean - z * mean_se)
            data[f"{name}_mean_ci_high"] = (d, mean + z * mean_se)
            data[f"{name}_var_ci_low"] = (d, var - z * var_se)
            data[f"{name}_var_ci_high"] = (d, var + z * var_se)
            data[f"{name}_count"] = (d, n.astype(np.int64), {"description": "non-diverged trajectories"})
            data[f"{name}_diverged_fraction"] = (d, self.state["diverged"][name] / done)
            if name in self.state["hist"]:
                q = self._quantiles(self.state["hist"][name], shape, self.u_max[name])
                data[f"{name}_quantile"] = (("quantile", *d), q, {"description": "histogram quantile (0: no data)"})
            if self.n_paths:
                paths = self._paths(name, shape)
                bad = ~np.isfinite(paths) | ~(np.abs(paths) <= self.bounds[name])
                data[f"{name}_paths"] = (("path", *d), _forward_fill(paths, ~np.isfinite(paths)))
                data[f"{name}_path_diverged"] = (("path", *d), np.logical_or.accumulate(bad, axis=1))
        coords = {"step": record_steps}
        if self.quantiles.size and self.state["hist"]:
            coords["quantile"] = self.quantiles
        if self.n_paths:
            first = next(iter(self.shapes))
            coords["path"] = np.arange(len(self._paths(first, self.shapes[first])))
        return xr.Dataset(data, coords=coords, attrs=attrs)


def _rows(valid, start: int, size: int):
    return None if valid is None else valid[start : start + size]


def _block_moments(x, valid):
    """(n, mean, M2, M3, M4) of the valid entries of one super-block ``x`` (float64 rows; ``valid`` None: all),
    two-pass. Where every entry is valid both branches compute the same numbers in the same order."""
    if valid is None:
        n = np.full(x.shape[1:], float(len(x)))
        mean = x.sum(axis=0) / np.maximum(n, 1)
        d = x - mean
    else:
        n = valid.sum(axis=0).astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            mean = np.where(valid, x, 0.0).sum(axis=0) / np.maximum(n, 1)
            d = np.where(valid, x - mean, 0.0)
    d2 = d * d
    return n, mean, d2.sum(axis=0), np.einsum("i...,i...->...", d2, d), np.einsum("i...,i...->...", d2, d2)


def _merge(a, b):
    """Pébay's (2008) exact update of (n, mean, M2, M3, M4) for the union of two samples (elementwise)."""
    na, ma, a2, a3, a4 = a
    nb, mb, b2, b3, b4 = b
    n = na + nb
    inv = 1 / np.maximum(n, 1)
    d = mb - ma
    nab = na * nb
    mean = ma + d * nb * inv
    m2 = a2 + b2 + d * d * nab * inv
    m3 = a3 + b3 + d**3 * nab * (na - nb) * inv**2 + 3 * d * (na * b2 - nb * a2) * inv
    m4 = (
        a4
        + b4
        + d**4 * nab * (na * na - nab + nb * nb) * inv**3
        + 6 * d * d * (na * na * b2 + nb * nb * a2) * inv**2
        + 4 * d * (na * b3 - nb * a3) * inv
    )
    return n, mean, m2, m3, m4


def _forward_fill(x, bad):
    """Replace flagged entries along axis 1 by the last good one before them (0 if none)."""
    idx = np.where(bad, 0, np.arange(x.shape[1]).reshape((1, -1) + (1,) * (x.ndim - 2)))
    idx = np.maximum.accumulate(idx, axis=1)
    out = np.take_along_axis(x, idx, axis=1)
    return np.where(np.take_along_axis(bad, idx, axis=1), 0.0, out)
