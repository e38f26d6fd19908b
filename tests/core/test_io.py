"""Results files: written atomically (a failed write leaves no partial file and the previous file intact)."""

import numpy as np
import pytest
import xarray as xr

from sim.core import io


def _ds(value: float) -> xr.Dataset:
    return xr.Dataset({"v": ("x", np.full(3, value))}, attrs={"note": "test"})


def test_write_then_read_round_trips(tmp_path):
    path = io.write(_ds(1.5), tmp_path / "r.nc")
    back = io.read(path)
    np.testing.assert_array_equal(back.v.values, [1.5, 1.5, 1.5])
    assert back.attrs["note"] == "test"
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]  # no temporary file left behind


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = io.write(_ds(1.0), tmp_path / "r.nc")

    def fail(self, target, **kwargs):
        with open(target, "wb") as f:
            f.write(b"partial")  # what a crash in the middle of a write would leave
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", fail)
    with pytest.raises(OSError, match="disk full"):
        io.write(_ds(2.0), path)
    monkeypatch.undo()
    np.testing.assert_array_equal(io.read(path).v.values, [1.0, 1.0, 1.0])
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]
