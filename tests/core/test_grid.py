"""Grids: sizes are read from the axes' text, so an axis or grid over the budget is refused before anything is
allocated; a list axis is sorted (a repeated value is refused); the budget names the setting that raises it."""

import time
import tracemalloc

import numpy as np
import pytest

from sim.core import grid
from sim.core.validate import InputError


@pytest.mark.parametrize(
    ("text", "size"),
    [("0.1:1:100", 100), ("log:1e-2:1e2:512", 512), ("0.05,5", 2), ("0.5", 1), ("1,2,", 2), ("0.1:1:1e9", 10**9)],
)
def test_axis_size_reads_the_text(text, size):
    assert grid.axis_size("learning_rate", text) == size


def _refused_quickly(fn, match: str):
    """Run ``fn``, which must raise InputError matching ``match``; return (seconds, peak traced bytes)."""
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(InputError, match=match):
        fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak


def test_huge_axis_is_refused_before_it_is_built():
    # a 1e9-point linspace is 8 GB (and its diff 8 GB more): refused in well under a second, with < 1 MB allocated
    seconds, peak = _refused_quickly(lambda: grid.parse_axis("learning_rate", "0.1:1:1e9"), "learning_rate: 1,000,000")
    assert seconds < 0.5 and peak < 2**20
    with pytest.raises(InputError, match="shrink the axis or raise --max-points"):
        grid.parse_axis("learning_rate", "log:1:2:1e9", knob="--max-points")
    assert len(grid.parse_axis("learning_rate", "0.1:1:1e5", max_points=10**5)) == 10**5


def test_huge_grid_is_refused_before_any_axis_is_built():
    # each axis fits the budget, their product (1e10 points) does not: no axis is built
    specs = {"learning_rate": "0.1:1:1e5", "sigma2": "1:2:1e5"}
    seconds, peak = _refused_quickly(lambda: grid.parse_grid(specs), r"grid: 10,000,000,000 points exceed")
    assert seconds < 0.5 and peak < 2**20
    with pytest.raises(InputError, match=r"\(shape \(100000, 100000\)\); shrink an axis or raise --max-points"):
        grid.parse_grid(specs, knob="--max-points")
    with pytest.raises(InputError, match="max_points: must be >= 1, got -1"):
        grid.parse_grid({"learning_rate": "0.1"}, max_points=-1)
    g = grid.parse_grid({"learning_rate": "0.1:1:10", "sigma2": "1,2"}, max_points=20)
    assert g.shape == (10, 2) and g.names == ("learning_rate", "sigma2")
    with pytest.raises(InputError, match=r"^grid: 20 points exceed the budget of 19 .*raise max_points$"):
        grid.parse_grid({"learning_rate": "0.1:1:10", "sigma2": "1,2"}, max_points=19)


def test_grid_check_budget_names_the_knob():
    g = grid.Grid((grid.parse_axis("a", "1:2:10"), grid.parse_axis("b", "1:2:10")))
    g.check_budget(100)
    with pytest.raises(InputError, match="raise --max-points"):
        g.check_budget(99, knob="--max-points")


def test_list_axis_is_sorted_and_refuses_repeats():
    axis = grid.parse_axis("beta", "0.5, 0.1,1")
    np.testing.assert_array_equal(axis.values, [0.1, 0.5, 1.0])
    assert axis.spec == "0.5, 0.1,1"  # the text as typed, for provenance
    with pytest.raises(InputError, match="beta: a list axis must not repeat a value, got 0.1 twice"):
        grid.parse_axis("beta", "0.1,0.5,0.1")
    # a linear axis may still run downwards
    np.testing.assert_array_equal(grid.parse_axis("beta", "1:0.5:3").values, [1.0, 0.75, 0.5])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "axis is empty"),
        (",", "axis is empty"),
        ("1:2", "expected start:stop:num"),
        ("log:1:2", "log axis is log:start:stop:num"),
        ("1:2:x", "cannot parse"),
        ("1:2:0", "positive integer"),
        ("1:2:1e400", "positive integer"),
        ("a,b", "cannot parse"),
        ("log:0:1:5", "start and stop > 0"),
        ("0:nan:3", "finite"),
    ],
)
def test_bad_axis_text(text, match):
    with pytest.raises(InputError, match=match):
        grid.parse_axis("x", text)
