"""The sim command: bad input gets a one-line error naming the parameter (exit 2, before any compilation);
every command runs at a tiny size."""

import json
import subprocess
import sys

import numpy as np
import pytest

from sim import cli
from sim.core import grid, io
from sim.linear.sweep import engine as sweep
from sim.linear.sweep import native

BASE = ["sweep", "momentum", "--eta", "0.1:1:4", "--beta", "0.5", "--spectrum", "0.05,5", "--steps", "400"]

BAD = [  # (arguments, parameter named in the error)
    (["sweep", "gd", "--eta", "-0.1", "--sigma2", "1"], "learning_rate"),
    (["sweep", "gd", "--eta", "0", "--sigma2", "1"], "learning_rate"),
    (["sweep", "gd", "--eta", "0:1:5", "--sigma2", "1"], "learning_rate"),
    (["sweep", "gd", "--eta", "nan", "--sigma2", "1"], "learning_rate"),
    (["sweep", "gd", "--eta", "0.1,0.1", "--sigma2", "1"], "learning_rate"),
    (["sweep", "gd", "--eta", "0.1,0.3,0.2", "--sigma2", "1"], "learning_rate"),
    (["sweep", "gd", "--eta", "", "--sigma2", "1"], "learning_rate"),
    (["sweep", "gd", "--eta", "1:2:0", "--sigma2", "1"], "learning_rate"),
    (["sweep", "gd", "--eta", "log:0:1:5", "--sigma2", "1"], "learning_rate"),
    (["sweep", "gd", "--eta", "a:b:c", "--sigma2", "1"], "learning_rate"),
    (["sweep", "gd", "--sigma2", "1"], "learning_rate"),
    (["sweep", "momentum", "--eta", "0.1", "--beta", "0", "--sigma2", "1"], "beta"),
    (["sweep", "momentum", "--eta", "0.1", "--beta", "1.5", "--sigma2", "1"], "beta"),
    (["sweep", "momentum", "--eta", "0.1", "--beta=-0.5:0.5:3", "--sigma2", "1"], "beta"),
    (["sweep", "momentum", "--eta", "0.1", "--sigma2", "1"], "beta"),
    (["sweep", "heavy-ball", "--eta", "0.1", "--momentum", "1", "--sigma2", "1"], "momentum"),
    (["sweep", "gd", "--eta", "0.1", "--beta", "0.5", "--sigma2", "1"], "beta"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "0"], "sigma2"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2=-1,1"], "sigma2"),
    (["sweep", "gd", "--eta", "0.1", "--spectrum", "1,-2"], "spectrum"),
    (["sweep", "gd", "--eta", "0.1", "--spectrum", "1,x"], "spectrum"),
    (["sweep", "gd", "--eta", "0.1"], "spectrum"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--spectrum", "1,2"], "spectrum"),
    (["sweep", "gd", "--eta", "0.1", "--spectrum", "1,2", "--target", "1"], "target"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--steps", "0"], "steps"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--steps", "2.5"], "steps"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--tol", "0"], "tol"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--tol", "1"], "tol"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--tol", "nan"], "tol"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--tol", "1e-20"], "tol"),
    (["sweep", "gd", "--eta", "0.1", "--sigma2", "1", "--chunk-size", "2"], "chunk_size"),
    (["sweep", "gd", "--eta", "0.1:1:5000", "--sigma2", "log:1:2:5000", "--max-points", "1e6"], "grid"),
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
    assert err.startswith(f"sim sweep: error: {param}:"), err
    assert not (tmp_path / "out.nc").exists()


@pytest.mark.parametrize("output", ["/nonexistent-dir/x.nc", "."])
def test_unwritable_output(output, capsys):
    assert cli.main([*BASE, "-o", output]) == 2
    assert capsys.readouterr().err.startswith("sim sweep: error: output:")


def test_cli_exits_2_without_traceback_in_a_real_process(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sim.cli", "sweep", "gd", "--eta", "-1", "--sigma2", "1", "-o", str(tmp_path / "x.nc")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "sim sweep: error: learning_rate: must be > 0, got -1"


def test_sweep_command_writes_a_readable_file(tmp_path, capsys):
    out = tmp_path / "mom.nc"
    assert cli.main([*BASE, "--tol", "1e-2", "-o", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "fastest:" in text and "theory rate" in text
    ds = io.read(out)
    assert ds.settle_step.shape == (4, 1)
    assert ds.attrs["command"].startswith("sim ") and ds.attrs["dtype"] == "float32"
    assert np.all(np.isfinite(ds.final_error.values))


def test_sweep_summary_says_when_the_state_underflowed(tmp_path, capsys):
    # rate |1 − 2ησ²| = 4e-4: the error leaves float32's range (flushed to 0) within the first block of 16 steps
    args = ["sweep", "gd", "--eta", "0.2499", "--sigma2", "2", "--steps", "100", "-o", str(tmp_path / "f.nc")]
    assert cli.main([*args, "--no-progress"]) == 0
    assert "measured contraction 0 (the state fell below float32's range)" in capsys.readouterr().out


def test_interrupted_sweep_command_writes_and_summarizes_the_finished_points(tmp_path, capsys, monkeypatch):
    calls = {"n": 0}
    real = grid.Grid.values_at

    def values_at(self, idx):  # a Ctrl-C while the 5th chunk's inputs are built (the 1st call sizes the outputs)
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real(self, idx)

    monkeypatch.setattr(grid.Grid, "values_at", values_at)
    out = tmp_path / "part.nc"
    args = ["sweep", "gd", "--eta", "0.1:0.9:40", "--sigma2", "1", "--steps", "200", "--chunk-size", "8"]
    assert cli.main([*args, "-o", str(out), "--no-progress"]) == 130
    ds = io.read(out)
    done = ds.computed.values
    assert ds.attrs["complete"] == 0 and 0 < done.sum() < done.size
    # the shares are over the finished points only (every finished point here settles; unfinished ones hold zeros)
    assert f"of the {done.sum()} finished points: reached tol 0.001: 100.0%" in capsys.readouterr().out


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


def test_help_states_the_axis_grammar(capsys):
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    text = capsys.readouterr().out
    assert "log:START:STOP:NUM" in text and "--spectrum" in text
    assert f"(default {sweep.DEFAULT_CHUNK})" in " ".join(text.split())  # stated without importing the engine


def test_figures_command_quick(tmp_path, capsys):
    assert cli.main(["figures", "--quick", "--only", "gd_rate_vs_lr", "--outdir", str(tmp_path)]) == 0
    assert (tmp_path / "gd_rate_vs_lr.png").stat().st_size > 10_000
    assert cli.main(["figures", "--list"]) == 0
    assert "momentum_steps_heatmap" in capsys.readouterr().out
    assert cli.main(["figures", "--only", "nope", "--outdir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("sim figures: error: only:")
