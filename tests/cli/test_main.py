"""The sim command: bad input gets a one-line error naming the flag the user typed (exit 2, before any compilation
or allocation); negative values after a flag are values; every command runs at a tiny size."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

from sim import cli
from sim.core import grid, io
from sim.core.validate import InputError
from sim.linear.sweep import engine as sweep
from sim.linear.sweep import native

BASE = ["sweep", "momentum", "--eta", "0.1:1:4", "--beta", "0.5", "--spectrum", "0.05,5", "--steps", "400"]

BAD = [  # (arguments, flag named in the error)
    (["sweep", "gd", "--eta", "-0.1", "--sigma2", "1"], "--eta"),
    (["sweep", "gd", "--lr", "-0.1", "--sigma2", "1"], "--lr"),  # the alias the user typed
    (["sweep", "gd", "--eta", "0", "--sigma2", "1"], "--eta"),
    (["sweep", "gd", "--eta", "0:1:5", "--sigma2", "1"], "--eta"),
    (["sweep", "gd", "--eta", "-1:1:10", "--sigma2", "1"], "--eta"),  # a value, judged by its value
    (["sweep", "gd", "--eta", "nan", "--sigma2", "1"], "--eta"),
    (["sweep", "gd", "--eta", "-inf", "--sigma2", "1"], "--eta"),
    (["sweep", "gd", "--eta", "0.1,0.1", "--sigma2", "1"], "--eta"),
    (["sweep", "gd", "--eta", "0.1,0.3,0.1", "--sigma2", "1"], "--eta"),
    (["sweep", "gd", "--eta", "", "--sigma2", "1"], "--eta"),
    (["sweep", "gd", "--eta", "1:2:0", "--sigma2", "1"], "--eta"),
    (["sweep", "gd", "--eta", "log:0:1:5", "--sigma2", "1"], "--eta"),
    (["sweep", "gd", "--eta", "a:b:c", "--sigma2", "1"], "--eta"),
    (["sweep", "gd", "--sigma2", "1"], "--eta"),
    (["sweep", "momentum", "--eta", "0.1", "--beta", "0", "--sigma2", "1"], "--beta"),
    (["sweep", "momentum", "--eta", "0.1", "--beta", "1.5", "--sigma2", "1"], "--beta"),
    (["sweep", "momentum", "--eta", "0.1", "--beta=-0.5:0.5:3", "--sigma2", "1"], "--beta"),
    (["sweep", "momentum", "--eta", "0.1", "--beta", "-0.5:0.5:3", "--sigma2", "1"], "--beta"),
    (["sweep", "momentum", "--eta", "0.1", "--sigma2", "1"], "--beta"),
    (["sweep", "heavy-ball", "--eta", "0.1", "--momentum", "1", "--sigma2", "1"], "--momentum"),
    (["sweep", "heavy-ball", "--eta", "0.1", "--momentum", "-.5", "--sigma2", "1"], "--momentum"),
    (["sweep", "gd", "--eta", "0.1", "--beta", "0.5", "--sigma2", "1"], "--beta"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "0"], "--sigma2"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2=-1,1"], "--sigma2"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "-1,1"], "--sigma2"),
    (["sweep", "gd", "--eta", "0.1", "--spectrum", "1,-2"], "--spectrum"),
    (["sweep", "gd", "--eta", "0.1", "--spectrum", "-1e3,2"], "--spectrum"),
    (["sweep", "gd", "--eta", "0.1", "--spectrum", "1,x"], "--spectrum"),
    (["sweep", "gd", "--eta", "0.1"], "--spectrum"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--spectrum", "1,2"], "--spectrum"),
    (["sweep", "gd", "--eta", "0.1", "--spectrum", "1,2", "--target", "1"], "--target"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--target", "-1"], "--target"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--steps", "0"], "--steps"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--steps", "-5"], "--steps"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--steps", "2.5"], "--steps"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--tol", "0"], "--tol"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--tol", "1"], "--tol"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--tol", "nan"], "--tol"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--tol", "1e-20"], "--tol"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--chunk-size", "2"], "--chunk-size"),
    (["sweep", "gd", "--eta", "0.1:1:5000", "--sigma2", "log:1:2:5000", "--max-points", "1e6"], "grid"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--max-points", "-1"], "--max-points"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--max-points", "0"], "--max-points"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--max-points", "nan"], "--max-points"),
    # values outside float32's range (the rule in sim sweep --help)
    (["sweep", "gd", "--eta", "1e300", "--sigma2", "1"], "--eta"),
    (["sweep", "gd", "--eta", "1e-40", "--sigma2", "1"], "--eta"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1e39"], "--sigma2"),
    (["sweep", "gd", "--eta", "0.1", "--spectrum", "1,1e39"], "--spectrum"),
    (["sweep", "gd", "--eta", "0.1", "--spectrum", "1,2", "--target", "1,1e39"], "--target"),
    (["sweep", "momentum", "--eta", "0.1", "--beta", "1e-40", "--sigma2", "1"], "--beta"),
    (["sweep", "gd", "--eta", "1e20", "--sigma2", "1e20"], "--eta"),  # 2 eta sigma2 = 2e40 overflows float32
    (["sweep", "momentum", "--lr", "1e15", "--beta", "0.5", "--spectrum", "1,1e10"], "--lr"),  # its square does
]


@pytest.mark.parametrize(("argv", "param"), BAD, ids=[" ".join(a[1:]) for a, _ in BAD])
def test_bad_input_is_one_line_naming_the_parameter(argv, param, tmp_path, capsys, monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(sweep, "_compiled", no_compile)
    code = cli.main([*argv, "-o", str(tmp_path / "out.nc")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"sim sweep: error: {param}: "), err
    assert "learning_rate" not in err and "max_points" not in err  # internal names stay inside
    assert not (tmp_path / "out.nc").exists()


def _no_compile(monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(sweep, "_compiled", no_compile)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("output", ["/nonexistent-dir/x.nc", ".", "{tmp}/existing.nc/a.nc", "/proc/a.nc"])
def test_unwritable_output(output, tmp_path, capsys, monkeypatch):
    if output.startswith("/proc") and not os.path.isdir("/proc/self"):
        pytest.skip("needs Linux's /proc")
    _no_compile(monkeypatch)
    (tmp_path / "existing.nc").write_text("")
    assert cli.main([*BASE, "-o", output.replace("{tmp}", str(tmp_path))]) == 2
    err = _one_line(capsys)
    assert err.startswith("sim sweep: error: --output: "), err
    if "existing" in output:  # a file where a folder should be: said so, not "does not exist"
        assert err.endswith("existing.nc is a file, not a directory"), err
    if output.startswith("/proc"):  # os.access would let it through; creating a file does not
        assert "cannot create a file in /proc" in err, err


def test_huge_grid_is_refused_at_once_without_allocating(tmp_path, capsys, monkeypatch):
    # 1e9 points: the axis alone would be 8 GB; refused from the text, in well under a second, < 1 MB allocated
    _no_compile(monkeypatch)
    tracemalloc.start()
    start = time.perf_counter()
    code = cli.main(["sweep", "gd", "--eta", "0.1:1:1e9", "--sigma2", "1", "-o", str(tmp_path / "x.nc")])
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert code == 2 and seconds < 0.5 and peak < 2**20, (seconds, peak)
    err = _one_line(capsys)
    assert err == (
        "sim sweep: error: grid: 1,000,000,000 points exceed the budget of 67,108,864 (shape (1000000000, 1)); "
        "shrink an axis or raise --max-points"
    )
    # each axis fits, their product does not: no axis is built either
    assert cli.main(["sweep", "gd", "--eta", "0.1:1:1e5", "--sigma2", "1:2:1e5", "-o", str(tmp_path / "x.nc")]) == 2
    assert "10,000,000,000 points exceed" in _one_line(capsys)
    # --max-points is honoured and named
    argv = ["sweep", "gd", "--eta", "0.1:1:30", "--sigma2", "1:2:30", "--max-points", "899", "-o", "x.nc"]
    assert cli.main(argv) == 2
    assert _one_line(capsys).endswith(
        "900 points exceed the budget of 899 (shape (30, 30)); shrink an axis or raise --max-points"
    )


def test_values_outside_float32_name_the_rule(tmp_path, capsys, monkeypatch):
    _no_compile(monkeypatch)
    out = str(tmp_path / "x.nc")
    assert cli.main(["sweep", "gd", "--eta", "1e300", "--sigma2", "1", "-o", out]) == 2
    err = _one_line(capsys)
    assert err == (
        "sim sweep: error: --eta: 1e+300 is outside float32's range (nonzero magnitudes from 1.18e-38 to 3.4e+38); "
        "--x64 computes in float64"
    )
    assert cli.main(["sweep", "gd", "--lr", "1e20", "--sigma2", "1e20", "-o", out]) == 2
    assert _one_line(capsys).startswith(
        "sim sweep: error: --lr: 2*eta*sigma2 for the largest eta and sigma2 reaches 2e+40, above 1.15e+18"
    )
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "must be 0 or have a magnitude the dtype holds as a normal number (float32: 1.2e-38 to 3.4e38" in help_text
    assert "must be at most sqrt(max)/16 (float32: 1.15e18" in help_text


def test_accepted_extremes_give_finite_summaries(tmp_path, monkeypatch):
    # the largest product the rule lets through (2 eta sigma2 = 1e18 <= 1.15e18): rates stay finite, no warning
    monkeypatch.setenv("XLA_FLAGS", "")  # JAX runs already in this process: no device-setup warning either
    out = tmp_path / "big.nc"
    args = ["sweep", "momentum", "--eta", "5e17", "--beta", "0.01,1", "--sigma2", "1", "--steps", "20"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert cli.main([*args, "-o", str(out), "--no-progress"]) == 0
    ds = io.read(out)
    assert np.all(np.isfinite(ds.rate.values)) and ds.diverged.values.all()
    np.testing.assert_allclose(ds.rate.values.ravel(), [1e16, 1e18], rtol=1e-5)  # |1 - 2 eta beta sigma2| + O(1)


def test_negative_values_after_a_flag_are_values(tmp_path, capsys):
    # --target -1,1 is valid input: argparse used to take "-1,1" for an option ("expected one argument")
    out = tmp_path / "t.nc"
    argv = ["sweep", "gd", "--eta", "0.1", "--spectrum", "1,2", "--target", "-1,1", "--steps", "50"]
    assert cli.main([*argv, "-o", str(out), "--no-progress"]) == 0
    assert json.loads(io.read(out).attrs["target"]) == [-1.0, 1.0]
    capsys.readouterr()
    parser = cli.build_parser()
    for value in ("-1", "-.5", "-1e3", "-1,1", "-1:1:10", "-inf", "-NaN"):
        assert parser.parse_args(["sweep", "gd", "--eta", value, "-o", "x.nc"]).learning_rate == value
    assert parser.parse_args(["mc", "sweep", "--eta", "-1:1:3", "--sigma", "-1", "-o", "x"]).sigma == "-1"
    assert parser.parse_args(["features", "--train-interval", "-1,0.4"]).train_interval == "-1,0.4"
    with pytest.raises(SystemExit):  # a real unknown option is still an error
        parser.parse_args(["sweep", "gd", "--eta", "0.1", "-x", "-o", "x.nc"])
    assert "unrecognized arguments: -x" in capsys.readouterr().err


def test_errors_name_the_flag_in_every_subcommand(tmp_path, capsys):
    # the mapping is generic: a nested subcommand (mc sweep) too, and before anything is computed
    argv = ["mc", "sweep", "--lr", "-1:1:3", "--sigma", "0.5", "-o", str(tmp_path / "m.nc"), "--no-progress"]
    assert cli.main(argv) == 2
    assert _one_line(capsys).startswith("sim mc: error: --lr: ")
    assert cli.main(["figures", "--only", "nope", "--outdir", str(tmp_path)]) == 2
    assert _one_line(capsys).startswith("sim figures: error: --only: ")


def test_user_message_maps_internal_names_to_flags():
    parser = cli.build_parser()
    argv = ["features", "--lr", "0.1", "-o", "x.nc"]
    args = parser.parse_args(argv)
    names = cli.flag_names(parser, args, argv)
    assert names["learning_rate"] == "--lr" and names["batch_size"] == "--batch-size" and names["output"] == "--output"
    assert "preset" not in names  # positional: keeps its name
    err = InputError("batch_size", "must be <= n_train (64), not 'batch_size' 65; see learning_rate")
    assert cli.user_message(err, names) == "--batch-size: must be <= --n-train (64), not 'batch_size' 65; see --lr"
    assert cli.user_message(InputError("--spectrum", "bad"), names) == "--spectrum: bad"  # already a flag
    assert cli.user_message(InputError("grid", "two\nlines"), names) == "grid: two lines"
    # the long flag typed wins; a short or no flag gives the first long one
    argv = ["sweep", "gd", "--lr=0.1", "-o", "x.nc"]
    names = cli.flag_names(parser, parser.parse_args(argv), argv)
    assert (names["learning_rate"], names["output"], names["max_points"]) == ("--lr", "--output", "--max-points")
    argv = ["mc", "vector", "--sigma", "1", "--eta", "0.1", "--batch", "2", "-o", "x.nc"]  # an abbreviation
    names = cli.flag_names(parser, parser.parse_args(argv), argv)
    assert (names["learning_rate"], names["batch_size"], names["trajectories"]) == (
        "--eta",
        "--batch-size",
        "--trajectories",
    )


def test_cli_exits_2_without_traceback_in_a_real_process(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sim.cli", "sweep", "gd", "--eta", "-1", "--sigma2", "1", "-o", str(tmp_path / "x.nc")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "sim sweep: error: --eta: must be > 0, got -1"


def test_sweep_command_writes_a_readable_file(tmp_path, capsys):
    out = tmp_path / "mom.nc"
    assert cli.main([*BASE, "--tol", "1e-2", "-o", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "fastest:" in text and "theory rate" in text
    ds = io.read(out)
    assert ds.settle_step.shape == (4, 1)
    assert ds.attrs["command"].startswith("sim ") and ds.attrs["dtype"] == "float32"
    assert np.all(np.isfinite(ds.final_error.values))


def test_sweep_summary_reports_the_contraction_of_a_state_below_the_range(tmp_path, capsys):
    # rate |1 − 2ησ²| = 4e-4: the state leaves float32's range in the first block; it is measured on a rescaled rerun
    args = ["sweep", "gd", "--eta", "0.2499", "--sigma2", "2", "--steps", "100", "-o", str(tmp_path / "f.nc")]
    assert cli.main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out
    measured = float(re.search(r"measured contraction (\S+)", out).group(1))
    # per-step float32 rounding of the factor: at most 2 eps / rho ≈ 6e-4 relative
    assert measured == pytest.approx(abs(1 - 2 * float(np.float32(0.2499)) * 2), rel=1e-2)


def test_interrupted_sweep_command_writes_and_summarizes_the_finished_points(tmp_path, capsys, monkeypatch):
    calls = {"n": 0}
    real = grid.Grid.values_at

    def values_at(self, idx):  # a SIGINT while the 5th chunk's inputs are built (the 1st call sizes the outputs)
        calls["n"] += 1
        if calls["n"] == 6:
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, idx)

    monkeypatch.setattr(grid.Grid, "values_at", values_at)
    out = tmp_path / "part.nc"
    args = ["sweep", "gd", "--eta", "0.1:0.9:400", "--sigma2", "1", "--steps", "200", "--chunk-size", "8"]
    assert cli.main([*args, "-o", str(out), "--no-progress"]) == 130
    ds = io.read(out)
    done = ds.computed.values
    assert ds.attrs["complete"] == 0 and 0 < done.sum() < done.size
    assert (ds.settle_step.values[~done] == -1).all() and np.isnan(ds.final_error.values[~done]).all()
    # the shares are over the finished points only (every finished point here settles)
    assert f"of the {done.sum()} finished points: reached tol 0.001: 100.0%" in capsys.readouterr().out


def test_an_existing_output_needs_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "run.nc"
    assert cli.main([*BASE, "-o", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main([*BASE, "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{out} exists: add --overwrite to replace it")  # a .nc cannot be resumed: not offered
    assert cli.main([*BASE, "-o", str(out), "--no-progress", "--overwrite"]) == 0
    assert cli.main([*BASE, "-o", str(out), "--no-progress", "--resume"]) == 2  # only a store resumes
    assert "only a .zarr store" in capsys.readouterr().err


def test_sweep_to_a_store_resumes_and_exports_like_the_netcdf_run(tmp_path, capsys):
    store, nc, exported = tmp_path / "run.zarr", tmp_path / "run.nc", tmp_path / "exported.nc"
    assert cli.main([*BASE, "-o", str(nc), "--no-progress"]) == 0
    assert cli.main([*BASE, "-o", str(store), "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main([*BASE, "-o", str(store), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip().endswith("exists: add --overwrite to replace it or --resume to continue it")
    assert cli.main([*BASE, "-o", str(store), "--no-progress", "--resume"]) == 0  # nothing left to do
    changed = [*BASE[:-2], "--steps", "401"]
    capsys.readouterr()
    assert cli.main([*changed, "-o", str(store), "--no-progress", "--resume"]) == 2
    assert "steps is" in capsys.readouterr().err
    assert cli.main(["export", str(store), str(exported)]) == 0
    a, b = io.read(nc), io.read(exported)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert cli.main(["export", str(store), str(exported)]) == 2  # never overwritten silently


def test_sigterm_during_a_sweep_command_writes_the_finished_points_and_exits_143(tmp_path):
    out = tmp_path / "term.zarr"
    argv = [sys.executable, "-m", "sim.cli", "sweep", "gd", "--eta", "log:1e-7:1e-6:40", "--sigma2", "0.1:1:50"]
    argv += ["--steps", "16000000", "--chunk-size", "64", "-o", str(out), "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if int(io.read(out).computed.sum()) >= 100:
                    break
            except (OSError, KeyError, ValueError, AttributeError):  # the store is being created
                pass
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err and "--resume" in err
    ds = io.read(out)
    assert ds.attrs["complete"] == 0 and 0 < int(ds.computed.sum()) < ds.computed.size


def test_sweep_command_chunk_size_gives_the_same_results(tmp_path):
    # argparse hands --chunk-size over as a float ("1e4" is accepted); the engine must use it as a whole number
    for name, extra in (("default.nc", []), ("small.nc", ["--chunk-size", "8"])):
        assert cli.main([*BASE, "-o", str(tmp_path / name), "--no-progress", *extra]) == 0
    small = io.read(tmp_path / "small.nc")
    assert small.attrs["chunk_size"] == 8
    for name in small.data_vars:
        np.testing.assert_array_equal(small[name].values, io.read(tmp_path / "default.nc")[name].values)


def test_sweep_command_x64(tmp_path):
    out = tmp_path / "gd.nc"
    code = (
        "import sys, jax; from sim import cli; r = cli.main(sys.argv[1:]); "
        "assert jax.config.jax_enable_x64; sys.exit(r)"
    )
    args = ["sweep", "gd", "--eta", str(1 / 5.05), "--spectrum", "5,0.05", "--x64", "-o", str(out), "--no-progress"]
    subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True)
    ds = io.read(out)
    assert ds.attrs["dtype"] == "float64" and int(ds.settle_step.item()) == 346


def test_info_command(capsys):
    assert cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["platform"] == "cpu" and len(info["devices"]) >= 1 and "jax" in info["versions"]
    assert info["sweep_loop"] == native.loop_for(1)[1]


def test_help_states_the_axis_grammar(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    text = capsys.readouterr().out
    assert "log:START:STOP:NUM" in text and "--spectrum" in text
    stated = f"(default {sweep.DEFAULT_CHUNK}; for a .zarr store 1/64 of the grid, up to 2^20)"  # no engine import
    assert stated in " ".join(text.split())
    # the description is laid out as written: one grammar form per line, no line over 120 characters
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120
    for form in ("START:STOP:NUM ", "log:START:STOP:NUM ", "V1,V2,... ", "V "):
        assert any(line.startswith(f"  {form}") for line in lines), form
    assert "sorted ascending" in text


def test_list_axis_is_sorted(tmp_path):
    out = tmp_path / "s.nc"
    assert (
        cli.main(
            ["sweep", "gd", "--eta", "0.3,0.1,0.2", "--sigma2", "1", "--steps", "50", "-o", str(out), "--no-progress"]
        )
        == 0
    )
    ds = io.read(out)
    np.testing.assert_array_equal(ds.learning_rate.values, [0.1, 0.2, 0.3])
    assert json.loads(ds.attrs["axes"])["learning_rate"] == "0.3,0.1,0.2"  # the text as typed, for provenance


def test_figures_command_quick(tmp_path, capsys):
    assert cli.main(["figures", "--quick", "--only", "gd_rate_vs_lr", "--outdir", str(tmp_path)]) == 0
    assert (tmp_path / "gd_rate_vs_lr.png").stat().st_size > 10_000
    assert cli.main(["figures", "--list"]) == 0
    assert "momentum_steps_heatmap" in capsys.readouterr().out
    assert cli.main(["figures", "--only", "nope", "--outdir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("sim figures: error: --only:")


@pytest.mark.parametrize("outdir", ["{tmp}/file", "{tmp}/file/sub", "/proc/figures"])
def test_figures_unwritable_outdir_is_refused_before_rendering(outdir, tmp_path, capsys, monkeypatch):
    from sim.figures import registry

    if outdir.startswith("/proc") and not os.path.isdir("/proc/self"):
        pytest.skip("needs Linux's /proc")

    def no_render(*args, **kwargs):
        raise AssertionError("rendered before checking --outdir")

    monkeypatch.setattr(registry, "render", no_render)
    (tmp_path / "file").write_text("")
    assert cli.main(["figures", "--quick", "--outdir", outdir.replace("{tmp}", str(tmp_path))]) == 2
    err = _one_line(capsys)
    assert err.startswith("sim figures: error: --outdir: "), err
    assert err.endswith("file is a file, not a directory") or "cannot create a file in /proc" in err, err


def test_figures_options_reach_the_registry(tmp_path, capsys, monkeypatch):
    from sim.cli import figures as cli_figures
    from sim.figures import registry

    monkeypatch.chdir(tmp_path)  # the default outdir is relative: checked here, not in the repository
    calls = []
    monkeypatch.setattr(registry, "render", lambda names, **kw: calls.append((names, kw)) or [])
    assert cli.main(["figures", "--quick", "--only", "gd_rate_vs_lr", "--no-progress"]) == 0
    assert calls[-1] == (["gd_rate_vs_lr"], {"quick": True, "outdir": None, "progress": False})
    assert cli.main(["figures", "--outdir", str(tmp_path / "new")]) == 0
    assert calls[-1][1]["progress"] is True and calls[-1][1]["outdir"] == str(tmp_path / "new")
    # the defaults the CLI checks before importing the registry are the registry's
    assert Path(cli_figures.OUTDIR) == Path(registry.OUTDIR)
    assert Path(cli_figures.QUICK_OUTDIR) == Path(registry.QUICK_OUTDIR)
    with pytest.raises(SystemExit):
        cli.main(["figures", "--help"])
    text = capsys.readouterr().out
    assert "Regenerate the project's figures" in text and "--no-progress" in text and "examples:" in text


def test_package_declares_its_license():
    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    # the text form becomes the core metadata's License field, which pip show prints on every pip version
    assert project["license"] == {"text": "MIT"}
    text = (root / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 the sim developers" in text
