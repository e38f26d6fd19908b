"""Streaming estimates over many trajectories: exact float64 moments and histogram quantiles, in fixed order.

Contract: an :class:`Accumulator` is fed the recorded values of consecutive trajectories (chunk by chunk, in index
order) and reduces them in super-blocks of ``SUPER_BLOCK`` trajectories: two-pass moments inside a block, then
Pébay's exact pairwise update of count, mean and central moments M2, M3, M4 block after block, so the result is the
same for any chunking and memory does not grow with the number of trajectories. Elements that diverge (non-finite
or beyond their bound) are counted and excluded from every estimate from the first recorded step where they do.
Quantiles come from a fixed-bin histogram per element in u = asinh(value / scale). The state is replaced in one
assignment per super-block, so a Ctrl-C never leaves it half-updated. :mod:`sim.noisy.engine` is its user; its
docstring gives the estimators' details.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

SUPER_BLOCK = 1024


class Accumulator:
    """Host-side float64 reduction of trajectories' recorded values in fixed super-blocks (module docstring).

    ``shapes`` maps each output to its per-trajectory shape (recorded steps first), ``spec`` holds ``quantiles`` and
    ``sample_paths``, ``quantile_of`` the outputs that get histogram quantiles, ``bins`` and ``scale`` the
    histogram, ``bounds`` the divergence bound of each output. :meth:`feed` takes the rows of consecutive
    trajectories from index ``start``; :meth:`finish` reduces the rest; :meth:`dataset` gives the estimates.

    All state lives in ``self.state`` and is replaced in one assignment per super-block, so a Ctrl-C between two
    statements never leaves it half-updated.
    """

    def __init__(self, shapes, spec, quantile_of, bins, scale, bounds):
        self.shapes, self.quantile_of, self.bins, self.scale = shapes, quantile_of, bins, scale
        self.bounds = {k: np.float64(v) for k, v in bounds.items()}  # compared in float64 (float32 would overflow)
        self.quantiles, self.n_paths = spec["quantiles"], spec["sample_paths"]
        self.u_max = {name: float(np.arcsinh(bounds[name] / scale)) for name in quantile_of}
        zeros = {name: np.zeros(shape) for name, shape in shapes.items()}
        self.state = {
            "done": 0,
            "rows": {name: [] for name in shapes},
            "n_rows": 0,
            "moments": {name: (zeros[name],) * 5 for name in shapes},  # n, mean, M2, M3, M4
            "diverged": {name: np.zeros(shape, np.int64) for name, shape in shapes.items()},
            "hist": {
                name: np.zeros((int(np.prod(shapes[name])), bins), np.int64)
                for name in quantile_of
                if self.quantiles.size
            },
            "paths": {name: [] for name in shapes},
        }

    @property
    def done(self) -> int:
        return self.state["done"]

    def feed(self, values: dict, start: int) -> None:
        state = dict(self.state)
        n = len(next(iter(values.values())))
        if start < self.n_paths:
            state["paths"] = {k: [*v, values[k][: self.n_paths - start]] for k, v in state["paths"].items()}
        state["rows"] = {k: [*v, values[k]] for k, v in state["rows"].items()}
        state["n_rows"] += n
        self.state = self._reduce(state, final=False)

    def finish(self) -> None:
        self.state = self._reduce(dict(self.state), final=True)

    def _reduce(self, state, final: bool):
        n_rows = state["n_rows"]
        if n_rows < SUPER_BLOCK and not (final and n_rows):
            return state
        rows = {k: np.concatenate(v) for k, v in state["rows"].items()}
        moments, diverged, hist = dict(state["moments"]), dict(state["diverged"]), dict(state["hist"])
        start = 0
        while n_rows - start >= SUPER_BLOCK or (final and start < n_rows):
            stop = min(start + SUPER_BLOCK, n_rows)
            for name, x in rows.items():
                block = x[start:stop]
                bad = ~np.isfinite(block) | ~(np.abs(block) <= self.bounds[name])
                div = np.logical_or.accumulate(bad, axis=1)
                diverged[name] = diverged[name] + div.sum(axis=0)
                moments[name] = _merge(moments[name], _block_moments(block, ~div))
                if name in hist:
                    hist[name] = hist[name] + self._histogram(block, ~div, self.u_max[name])
            state["done"] += stop - start
            start = stop
        state.update(moments=moments, diverged=diverged, hist=hist, n_rows=n_rows - start)
        state["rows"] = {k: [v[start:]] if start < n_rows else [] for k, v in rows.items()}
        return state

    def _histogram(self, block, valid, u_max):
        u = np.arcsinh(np.where(valid, block, 0).astype(np.float64) / self.scale)
        b = np.clip(((u + u_max) / (2 * u_max) * self.bins).astype(np.int64), 0, self.bins - 1)
        elem = np.broadcast_to(np.arange(int(np.prod(block.shape[1:]))).reshape(block.shape[1:]), block.shape)
        flat = (elem * self.bins + b)[valid]
        n_elem = int(np.prod(block.shape[1:]))
        return np.bincount(flat, minlength=n_elem * self.bins).reshape(n_elem, self.bins)

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


def _block_moments(x, valid):
    x = x.astype(np.float64)
    n = valid.sum(axis=0).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        mean = np.where(valid, x, 0.0).sum(axis=0) / np.maximum(n, 1)
        d = np.where(valid, x - mean, 0.0)
    d2 = d * d
    return n, mean, d2.sum(axis=0), (d2 * d).sum(axis=0), (d2 * d2).sum(axis=0)


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
