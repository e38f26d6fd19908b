"""Results files: the one writer and reader of the datasets that sweeps, Monte Carlo runs and trainings produce.

Contract (xarray, netCDF4 and zarr are imported only when a file is read or written, so the CLI can
check an output path without them): a results file is netCDF4 (``.nc``, written whole from memory) or a Zarr store
(``.zarr``, written as the run goes). Both hold the same variables, coordinates and provenance attrs; :func:`read` loads
either.

- :func:`write` saves an ``xarray.Dataset`` to netCDF4 atomically: a temporary file beside the target, renamed over
  it once complete, so an interrupted or failed write never leaves a truncated file (:func:`atomic_path`, which every
  file sim writes whole goes through: figures, pages, provenance).
- :class:`Results` is where a run engine puts its chunks: in memory for ``.nc`` (every variable allocated for the
  whole grid, filled with −1 / NaN / False until computed), or streamed to a Zarr store for ``.zarr``: the store's
  template (every variable chunked like the run's blocks, filled the same way) is written first, then each block's
  data as one whole-chunk region write per variable (no locks: no two blocks share a chunk), then its entries of
  ``computed``, the done marker. Nothing is held for the whole grid. A store left by a killed run can be resumed: a
  block counts as done only when its ``computed`` entries are all set, so a block being written when the process
  died is computed again.
- :func:`check_output` refuses, before anything runs, an existing output unless the run resumes it or may overwrite
  it, and a store recorded with a different specification.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from sim.core.validate import InputError

ENGINE = "netcdf4"
COMPUTED = "computed"
COMPUTED_DOC = "the point was computed (False: the run stopped before it; its other variables hold fill values)"


def is_store(path) -> bool:
    """Whether ``path`` names a Zarr store (``.zarr``) rather than a netCDF file."""
    return str(path).rstrip("/").endswith(".zarr")


def _umask() -> int:
    try:  # Linux: read it without changing it (setting it to read it back races other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, *, name: str = "output"):
    """Yield a temporary path beside ``path`` for the caller to write; when the block ends normally it replaces
    ``path`` (``os.replace``: a reader never sees a partial file), otherwise it is removed. The file gets the mode a
    newly created file would (0666 less the umask), not the temporary file's 0600.

    Raises:
      InputError: (``name``) when the folder does not take a new file.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise InputError(name, f"cannot write in {path.parent}: {err.strerror}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write(ds, path) -> Path:
    """Write the ``xarray.Dataset`` ``ds`` to ``path`` (netCDF4) atomically (:func:`atomic_path`); return the path."""
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=ENGINE)
    return Path(path)


def read(path):
    """Read a results file (netCDF written by :func:`write`, or a Zarr store) fully into memory (an
    ``xarray.Dataset``)."""
    import xarray as xr

    if is_store(path):
        with xr.open_zarr(path, consolidated=False) as ds:
            return ds.load()
    with xr.open_dataset(path, engine=ENGINE) as ds:
        return ds.load()


def export(source, target, *, max_bytes: int = 8 * 2**30) -> Path:
    """Convert a results store (``.zarr``) to netCDF (``.nc``) when it fits in ``max_bytes`` of memory."""
    import xarray as xr

    with xr.open_zarr(source, consolidated=False) as ds:
        if ds.nbytes > max_bytes:
            raise InputError("source", f"{source} holds {ds.nbytes / 2**30:.1f} GiB, more than fits in memory here")
        return write(ds.load(), target)


def check_space(path, nbytes: int) -> None:
    """Refuse a store that may not fit: ``nbytes`` (its uncompressed size) beyond the free space where it goes."""
    parent = Path(path).resolve().parent
    free = shutil.disk_usage(parent).free
    if nbytes > free:
        raise InputError(
            "--output", f"{path} may need up to {nbytes / 2**30:.1f} GiB, and {parent} has {free / 2**30:.1f} GiB free"
        )


def fill_value(dtype) -> object:
    """What an uncomputed entry holds: −1 for integers, NaN for floats, False for booleans."""
    kind = np.dtype(dtype).kind
    return {"i": -1, "u": 0, "f": np.nan, "b": False}[kind]


def check_output(path, *, resume: bool = False, overwrite: bool, spec: Mapping[str, object] | None = None) -> bool:
    """Decide what to do with an output path before anything runs; return True when the run resumes a store.

    Raises :class:`InputError` (exit status 2) for an existing output without ``--overwrite`` (or, for a store,
    ``--resume``), for ``--resume`` of anything but a store recorded with exactly ``spec``, and for both flags at once.
    """
    path = Path(path)
    if resume and overwrite:
        raise InputError("--resume", "and --overwrite exclude each other")
    if not path.exists():
        if resume:
            raise InputError("--resume", f"{path} does not exist: nothing to resume")
        return False
    if overwrite:
        return False
    if not resume:
        again = " or --resume to continue it" if is_store(path) else ""
        raise InputError("--output", f"{path} exists: add --overwrite to replace it{again}")
    if not is_store(path):
        raise InputError("--resume", f"only a .zarr store can be resumed, not {path}")
    try:
        import zarr

        attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception as err:  # a folder that is not a store, or a corrupt one
        raise InputError("--resume", f"{path} is not a results store ({type(err).__name__})") from None
    recorded = json.loads(attrs.get("spec", "{}"))
    wanted = json.loads(json.dumps(dict(spec or {})))
    differ = [k for k in sorted(set(recorded) | set(wanted)) if recorded.get(k) != wanted.get(k)]
    if differ:
        k = differ[0]
        raise InputError(
            "--resume",
            f"{path} was written by a different command: {k} is {recorded.get(k)!r} there, {wanted.get(k)!r} now"
            + (f" (and {len(differ) - 1} more)" if len(differ) > 1 else ""),
        )
    return True


class Results:
    """Per-point results of a grid computation, filled block by block (module docstring).

    Args:
      path: a ``.zarr`` path to stream to, or None to keep everything in memory.
      dims, shape, coords: the grid's dimension names, shape and coordinate arrays.
      variables: name → (dtype, attrs) of each per-point variable.
      attrs: the dataset's attrs (JSON-compatible values); ``spec`` (a dict) is recorded as JSON for resuming.
      block_shape: the shape of the run's blocks (:func:`sim.core.engine.block_shape`).
      resume: open the existing store at ``path`` instead of creating it.
    """

    def __init__(
        self,
        path,
        *,
        dims: Sequence[str],
        shape: Sequence[int],
        coords: Mapping[str, np.ndarray],
        variables: Mapping[str, tuple[object, Mapping]],
        attrs: Mapping[str, object],
        block_shape: Sequence[int],
        resume: bool = False,
    ):
        self.path, self.dims, self.shape = path, tuple(dims), tuple(int(n) for n in shape)
        self.block_shape = tuple(int(n) for n in block_shape)
        self.variables = {**variables, COMPUTED: (np.bool_, {"description": COMPUTED_DOC})}
        self.coords, self.attrs = dict(coords), dict(attrs)
        if path is None:
            self.arrays = {
                name: np.full(self.shape, fill_value(dtype), dtype=dtype) for name, (dtype, _) in self.variables.items()
            }
            return
        import zarr

        if resume:
            self.group = zarr.open_group(str(path), mode="r+")
        else:
            if Path(path).exists():
                shutil.rmtree(path) if Path(path).is_dir() else Path(path).unlink()
            self.group = zarr.open_group(str(path), mode="w")
            for name, values in self.coords.items():
                arr = self.group.create_array(name, shape=values.shape, dtype=values.dtype, dimension_names=(name,))
                arr[:] = values
            for name, (dtype, var_attrs) in self.variables.items():
                arr = self.group.create_array(
                    name,
                    shape=self.shape,
                    chunks=tuple(block_shape),
                    dtype=dtype,
                    fill_value=fill_value(dtype),
                    dimension_names=self.dims,
                )
                arr.attrs.update(dict(var_attrs))
            self.group.attrs.update({**_jsonable(self.attrs), "complete": 0})
        self.arrays = {name: self.group[name] for name in self.variables}

    def done(self, blocks) -> list:
        """The blocks whose every point is already computed (all of them in a fresh run: none)."""
        if self.path is None:
            return []
        computed = self.arrays[COMPUTED]
        return [b for b in blocks if bool(np.all(computed[b.region]))]

    def store(self, block, values: Mapping[str, np.ndarray]) -> None:
        """Keep one block's results (flat arrays of ``block.size`` points, C order), its done marker last.

        In memory, ``block`` may also be an array of flat indices (points in any order)."""
        if not hasattr(block, "region"):
            for name in self.variables:
                flat = self.arrays[name].reshape(-1)  # a view: the arrays are contiguous
                flat[block] = True if name == COMPUTED else np.asarray(values[name])
            return
        bshape = tuple(r.stop - r.start for r in block.region)
        for name in self.variables:
            if name != COMPUTED:
                self.arrays[name][block.region] = np.asarray(values[name]).reshape(bshape)
        self.arrays[COMPUTED][block.region] = np.ones(bshape, bool)

    def finish(self, **attrs) -> None:
        """Record final attrs (e.g. ``complete``) once the run has ended."""
        self.attrs.update(attrs)
        if self.path is not None:
            self.group.attrs.update(_jsonable(attrs))

    def dataset(self):
        """The results as an ``xarray.Dataset``: in memory, or lazily backed by the store."""
        import xarray as xr

        if self.path is not None:
            return xr.open_zarr(self.path, consolidated=False)
        data = {name: (self.dims, self.arrays[name], dict(a)) for name, (_, a) in self.variables.items()}
        attrs = {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in self.attrs.items()}
        return xr.Dataset(data, coords=self.coords, attrs=attrs)


def _jsonable(attrs: Mapping[str, object]) -> dict:
    out = {}
    for k, v in attrs.items():
        if isinstance(v, dict):
            v = json.dumps(v)
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out
