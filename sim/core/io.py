"""Results files: the one writer and reader of the datasets that sweeps, Monte Carlo runs and trainings produce.

Contract: :func:`write` saves an ``xarray.Dataset`` to netCDF4 atomically: it writes a temporary file beside the
target and renames it over the target only once the file is complete, so an interrupted or failed write never leaves
a truncated results file (and never half-replaces an existing one). :func:`read` loads a file written by
:func:`write` fully into memory and closes it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import xarray as xr

ENGINE = "netcdf4"


def write(ds: xr.Dataset, path) -> Path:
    """Write ``ds`` to ``path`` (netCDF4) atomically; return the path written."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine=ENGINE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def read(path) -> xr.Dataset:
    """Read a results file written by :func:`write` back into memory."""
    with xr.open_dataset(path, engine=ENGINE) as ds:
        return ds.load()
