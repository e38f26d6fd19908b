"""Results files: written atomically (a failed write leaves no partial file and the previous file intact)."""

import os
import stat
from pathlib import Path

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


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_get_the_mode_of_a_new_file(tmp_path, umask):
    """The temporary file is 0600; the result gets 0666 less the umask, like any file the user creates."""
    from matplotlib.figure import Figure as MplFigure

    from sim.figures.base import save

    before = os.umask(umask)
    try:
        (tmp_path / "plain").touch()
        written = [io.write(_ds(1.0), tmp_path / "r.nc"), save(MplFigure(figsize=(1, 1)), tmp_path / "f.png")]
    finally:
        os.umask(before)
    expected = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert expected == 0o666 & ~umask
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == expected, path.name


def test_an_interrupted_figure_save_keeps_the_previous_png(tmp_path, monkeypatch):
    from matplotlib.figure import Figure as MplFigure

    from sim.figures.base import save

    path = save(MplFigure(figsize=(1, 1)), tmp_path / "f.png")
    before = path.read_bytes()

    def interrupted(self, target, **kwargs):
        Path(target).write_bytes(b"\x89PNG partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(MplFigure, "savefig", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(MplFigure(figsize=(2, 1)), path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["f.png"]


def test_an_unwritable_folder_names_the_flag(tmp_path):
    with pytest.raises(io.InputError, match=r"^outdir: cannot write in .*missing: No such file"):
        with io.atomic_path(tmp_path / "missing" / "x.json", name="outdir"):
            pass
