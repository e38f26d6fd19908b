"""The explorer page's Python side: the HTML is self-contained, small and byte-stable, its data round-trips, bad
input to the builder and to ``sim explore`` is refused (one line naming the flag, exit status 2) before anything is
written, and files are written atomically. No browser needed (test_browser.py drives the page in Chromium)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim import cli, explore
from sim.core.validate import InputError

ROOT = Path(__file__).resolve().parents[2]


def _data(html: str) -> dict:
    blocks = re.findall(r'<script type="application/json" id="sim-data">(.*?)</script>', html, flags=re.S)
    assert len(blocks) == 1
    return json.loads(blocks[0])


def test_page_is_deterministic_and_small():
    page = explore.build_page()
    assert page == explore.build_page()
    # another interpreter, another hash seed: the same bytes
    code = (
        "import hashlib, sys; from sim import explore; print(hashlib.sha256(explore.build_page().encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=ROOT)
    assert out.stdout.strip() == hashlib.sha256(page.encode()).hexdigest()
    assert len(page.encode()) < explore.MAX_BYTES == 3_000_000
    biggest = explore.build_page([float(k + 1) for k in range(explore.MAX_MODES)])
    assert len(biggest.encode()) < explore.MAX_BYTES
    assert explore.build_page([4.0, 1.0]) != page and explore.build_page(point=(1.0, 0.1)) != page
    assert page.endswith("</html>\n") and "\r" not in page


def test_page_is_self_contained():
    page = explore.build_page()
    lower = page.lower()
    # nothing that could load a resource: no URL, no fetch or XHR, no dynamic import, no external script or style
    for needle in (
        "http://",
        "https://",
        "//cdn",
        "fetch(",
        "xmlhttprequest",
        "import(",
        "<link",
        " src=",
        "url(",
        "@import",
        "websocket",
        "eventsource",
        "sendbeacon",
        "<iframe",
        "<img",
    ):
        assert needle not in lower, needle
    # style, script and data inline, every placeholder filled
    assert lower.count("<style>") == 1 and lower.count("<script>") == 1
    assert "__SIM_" not in page and "window.SimExplorer" in page
    # no timestamp or random id: nothing that reads the clock or draws random numbers
    for needle in ("Date(", "Date.now", "Math.random", "crypto.", "performance.now"):
        assert needle not in page, needle


def test_data_round_trips_and_cannot_end_the_script_early():
    name = 'evil</script><script>alert("x")</script> & <b>'
    presets = {name: [1.0, 2.0], "two": (3, 0.5)}
    page = explore.build_page([9, 1, 0.25, 0.04], presets, point=(0.5, 0.2), tol=1e-6, steps=250)
    assert _data(page) == {
        "spectrum": [9.0, 1.0, 0.25, 0.04],
        "presets": [{"name": name, "spectrum": [1.0, 2.0]}, {"name": "two", "spectrum": [3.0, 0.5]}],
        "point": [0.5, 0.2],
        "tol": 1e-6,
        "steps": 250,
    }
    assert "</script><script>alert" not in page and page.lower().count("</script>") == 2
    default = _data(explore.build_page())
    assert default["spectrum"] == [5.0, 0.05] and default["point"] is None
    assert [p["spectrum"] for p in default["presets"]] == [[5.0, 0.05], [4.0, 1.0], [9.0, 1.0, 0.25, 0.04]]


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"spectrum": []}, "spectrum"),
        ({"spectrum": [5.0, -1.0]}, "spectrum"),
        ({"spectrum": [5.0, float("nan")]}, "spectrum"),
        ({"spectrum": [0.0, 1.0]}, "spectrum"),
        ({"spectrum": [float("inf")]}, "spectrum"),
        ({"spectrum": "5,0.05"}, "spectrum"),
        ({"spectrum": [1.0] * (explore.MAX_MODES + 1)}, "spectrum"),
        ({"spectrum": [True]}, "spectrum"),
        ({"presets": {"": [1.0]}}, "presets"),
        ({"presets": {"bad": [-1.0]}}, "presets['bad']"),
        ({"presets": 3}, "presets"),
        ({"point": (0.0, 0.5)}, "point"),
        ({"point": (1.0, 0.0)}, "point"),
        ({"point": (1.0, 1.5)}, "point"),
        ({"point": (1.0,)}, "point"),
        ({"tol": 1.0}, "tol"),
        ({"steps": 0}, "steps"),
        ({"steps": 2.5}, "steps"),
    ],
)
def test_build_page_rejects_bad_input(kwargs, param):
    with pytest.raises(InputError) as err:
        explore.build_page(**kwargs)
    assert err.value.param == param and "\n" not in str(err.value)


def test_write_page_is_atomic_and_refuses_to_clobber(tmp_path, monkeypatch):
    path = tmp_path / "page.html"
    assert explore.write_page(path) == path
    assert path.read_text(encoding="utf-8") == explore.build_page()
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    path.write_text("keep me")
    with pytest.raises(InputError, match="exists") as err:
        explore.write_page(path)
    assert err.value.param == "output" and path.read_text() == "keep me"
    for bad in (tmp_path / "missing" / "page.html", tmp_path):
        with pytest.raises(InputError) as err:
            explore.write_page(bad, overwrite=True)
        assert err.value.param == "output"
    with pytest.raises(InputError):  # bad input: checked before the file is touched
        explore.write_page(path, [-1.0], overwrite=True)
    assert path.read_text() == "keep me"

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(explore.os, "replace", broken_replace)
    with pytest.raises(OSError):
        explore.write_page(path, overwrite=True)
    assert path.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]
    monkeypatch.undo()
    explore.write_page(path, [4.0, 1.0], overwrite=True)
    assert path.read_text(encoding="utf-8") == explore.build_page([4.0, 1.0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]  # no temporary file left


def test_screenshot_without_a_browser(tmp_path, monkeypatch):
    monkeypatch.setenv("SIM_CHROMIUM", str(tmp_path / "no-such-chromium"))
    html = explore.write_page(tmp_path / "page.html")
    ok, reason = explore.screenshot(html, tmp_path / "page.png")
    assert not ok and reason and "\n" not in reason
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]


# --------------------------------------------------------------------------------------------------------------
# sim explore


def test_cli_writes_the_page(tmp_path, capsys):
    out = tmp_path / "explorer.html"
    assert cli.main(["explore", "--spectrum", "9,1,0.25,0.04", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == explore.build_page([9.0, 1.0, 0.25, 0.04])
    assert f"wrote {out}" in capsys.readouterr().out
    assert cli.main(["explore", "--eta", "1", "--beta", "0.1", "--steps", "500", "-o", str(out), "--overwrite"]) == 0
    assert out.read_text(encoding="utf-8") == explore.build_page(point=(1.0, 0.1), steps=500)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--spectrum", ""], "--spectrum"),
        (["--spectrum=-1,2"], "--spectrum"),
        (["--spectrum", "5,nan"], "--spectrum"),
        (["--spectrum", "0,1"], "--spectrum"),
        (["--spectrum", "5,abc"], "--spectrum"),
        (["--spectrum", ",".join(["1"] * (explore.MAX_MODES + 1))], "--spectrum"),
        (["-o", "{tmp}/missing/x.html"], "--output"),
        (["-o", "{tmp}"], "--output"),
        (["-o", "{tmp}/existing.html"], "--output"),
        (["--eta", "1"], "--beta"),
        (["--eta", "1", "--beta", "1.5"], "--beta"),
        (["--eta", "-1", "--beta", "0.5"], "--eta"),
        (["--eta", "x", "--beta", "0.5"], "--eta"),
        (["--tol", "2"], "--tol"),
        (["--steps", "0.5"], "--steps"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, flag):
    (tmp_path / "existing.html").write_text("keep me")
    argv = ["explore", *(a.replace("{tmp}", str(tmp_path)) for a in args)]
    if not any(a.startswith("-o") for a in args):
        argv += ["-o", str(tmp_path / "new.html")]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sim explore: error: {flag}: "), captured.err
    if flag == "--output" and "existing" in argv[-1]:
        assert "--overwrite" in lines[0]
    # nothing written, no temporary file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.html"]
    assert (tmp_path / "existing.html").read_text() == "keep me"


def test_cli_help_documents_every_flag(capsys):
    from sim.cli import explore as cli_explore

    parser = argparse.ArgumentParser(prog="sim")
    cli_explore.add_parser(parser.add_subparsers(dest="command"))
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["explore"]
    for action in sub._actions:
        assert action.help, action.dest


def test_writing_the_page_imports_no_heavy_library(tmp_path):
    """``sim explore`` answers at once: writing the page, its help and its argument errors load neither JAX, xarray,
    sympy nor matplotlib (the page is built from strings and plain floats)."""
    out = tmp_path / "page.html"
    code = f"""
import contextlib, io, sys
from sim.cli import main
codes = []
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    codes.append(main(["explore", "-o", {str(out)!r}]))
    codes.append(main(["explore", "--spectrum=-1,2", "-o", {str(out)!r}]))
    try:
        main(["explore", "--help"])
    except SystemExit as e:
        codes.append(e.code)
heavy = ("jax", "jaxlib", "xarray", "sympy", "matplotlib", "optax", "netCDF4")
print(codes, sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy)))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert run.stdout.strip() == "[0, 2, 0] []", run.stdout + run.stderr
    assert out.read_text(encoding="utf-8") == explore.build_page()


class _FakePage:
    """Returns the given screenshots in turn; counts the settling waits."""

    def __init__(self, shots):
        self.shots, self.waits = list(shots), 0

    def evaluate(self, script):
        assert script.count("requestAnimationFrame") == 2
        self.waits += 1

    def screenshot(self, **kwargs):
        return self.shots.pop(0)


def test_a_screenshot_is_kept_once_two_in_a_row_agree():
    page = _FakePage([b"painting", b"done", b"done", b"never taken"])
    assert explore._settled_screenshot(page) == (b"done", "")
    assert page.waits == 3 and page.shots == [b"never taken"]


def test_a_page_that_keeps_changing_gives_no_screenshot():
    page = _FakePage([b"a", b"b"] * 4)
    assert explore._settled_screenshot(page, attempts=8) == (None, "the page kept changing over 8 screenshots")
