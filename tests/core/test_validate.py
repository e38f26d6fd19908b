"""Input checks: output paths are tried (a file is created and removed), not guessed; values outside a dtype's range
are refused with the parameter's name."""

import os
import re
import tempfile

import numpy as np
import pytest

from sim.core import validate
from sim.core.validate import InputError

HAS_PROC = os.path.isdir("/proc/self")


def test_check_writable_accepts_a_new_or_existing_file_and_leaves_nothing(tmp_path):
    validate.check_writable(tmp_path / "new.nc")
    (tmp_path / "old.nc").write_text("keep")
    validate.check_writable(tmp_path / "old.nc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.nc"]  # the probe file is gone
    assert (tmp_path / "old.nc").read_text() == "keep"


def test_check_writable_names_a_file_in_the_way(tmp_path):
    (tmp_path / "existing.nc").write_text("")
    for path in (tmp_path / "existing.nc" / "a.nc", tmp_path / "existing.nc" / "sub" / "a.nc"):
        with pytest.raises(InputError, match=r"^output: .*existing.nc is a file, not a directory$"):
            validate.check_writable(path)
    with pytest.raises(InputError, match=r"^out: directory .*missing does not exist$"):
        validate.check_writable(tmp_path / "missing" / "a.nc", name="out")
    with pytest.raises(InputError, match="is a directory"):
        validate.check_writable(tmp_path)
    with pytest.raises(InputError, match="is empty"):
        validate.check_writable("")


@pytest.mark.skipif(not HAS_PROC, reason="needs Linux's /proc")
def test_check_writable_tries_to_create_a_file_in_proc():
    # /proc is a folder that os.access calls writable (for root), yet no file can be created in it
    with pytest.raises(InputError, match=r"^output: cannot create a file in /proc: "):
        validate.check_writable("/proc/a.nc")
    with pytest.raises(InputError, match=r"^outdir: cannot create a file in /proc: "):
        validate.check_writable_dir("/proc/figures")


def test_check_writable_reports_a_failed_creation(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # as a read-only folder would, even for root
    with pytest.raises(InputError, match=r"^output: cannot create a file in .*: Permission denied$"):
        validate.check_writable(tmp_path / "a.nc")
    with pytest.raises(InputError, match=r"^outdir: cannot create a file in .*: Permission denied$"):
        validate.check_writable_dir(tmp_path / "figs")


def test_check_writable_dir(tmp_path):
    validate.check_writable_dir(tmp_path)
    validate.check_writable_dir(tmp_path / "a" / "b")  # missing: its nearest existing ancestor is tried
    assert list(tmp_path.iterdir()) == []  # nothing created, nothing left
    (tmp_path / "f").write_text("")
    for path in (tmp_path / "f", tmp_path / "f" / "sub"):
        with pytest.raises(InputError, match=r"^outdir: .*f is a file, not a directory$"):
            validate.check_writable_dir(path)


@pytest.mark.parametrize(
    ("values", "dtype", "bad"),
    [
        ([0.1, 1e300], "float32", "1e+300"),
        ([1e39], "float32", "1e+39"),
        ([-1e39], "float32", "-1e+39"),
        ([1e-40], "float32", "1e-40"),
        ([1e-310], "float64", "1e-310"),
    ],
)
def test_check_in_dtype_range_refuses(values, dtype, bad):
    with pytest.raises(InputError, match=rf"^eta: {re.escape(bad)} is outside {dtype}'s range .*; hint$"):
        validate.check_in_dtype_range("eta", values, dtype, hint="; hint")


def test_check_in_dtype_range_accepts_the_range_and_zero():
    info = np.finfo(np.float32)
    values = [0.0, float(info.tiny), float(info.max), -float(info.max), 1e300 / 1e300]
    np.testing.assert_array_equal(validate.check_in_dtype_range("x", values, "float32"), values)
    validate.check_in_dtype_range("x", [1e300, 1e-300], "float64")
    with pytest.raises(InputError, match="must be finite"):
        validate.check_in_dtype_range("x", [np.inf], "float64")


def test_check_product_in_dtype_range():
    limit32 = validate.product_limit("float32")
    assert limit32 == pytest.approx(np.sqrt(np.finfo(np.float32).max) / 16, rel=1e-12)  # 1.15e18
    # the limit leaves room to square it, plus a little, in the dtype
    assert np.isfinite(np.float32(2 * limit32) ** 2)
    validate.check_product_in_dtype_range("eta", limit32, "float32", what="2*eta*sigma2")
    with pytest.raises(InputError, match=r"^eta: 2\*eta\*sigma2 reaches 2e\+40, above 1.15e\+18, .*float32"):
        validate.check_product_in_dtype_range("eta", 2e40, "float32", what="2*eta*sigma2")
    validate.check_product_in_dtype_range("eta", 2e40, "float64", what="2*eta*sigma2")
    with pytest.raises(InputError, match=r"above 8.38e\+152"):
        validate.check_product_in_dtype_range("eta", 2e300, "float64", what="2*eta*sigma2")


def test_input_error_keeps_its_parts():
    err = InputError("learning_rate", "must be > 0, got -1")
    assert (err.param, err.message, str(err)) == (
        "learning_rate",
        "must be > 0, got -1",
        "learning_rate: must be > 0, got -1",
    )
