"""The ``sim mc`` command: every kind runs at a tiny size and writes a file whose numbers agree with the printed
lines and with the closed forms; bad input is one line naming the parameter, exit status 2, nothing compiled."""

from __future__ import annotations

import re

import numpy as np
import pytest

from sim import cli
from sim.core import io
from sim.noisy import engine as montecarlo
from sim.noisy import scalar as noisy
from sim.regression import designs as datasets

TINY = ["--steps", "40", "--trajectories", "512", "--no-progress"]


def _numbers(line: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+\.?\d*(?:e[-+]?\d+)?", line)]


def test_scalar_writes_estimates_beside_the_exact_moments(tmp_path, capsys):
    out = tmp_path / "run.nc"
    argv = ["mc", "scalar", "--x", "1", "--y", "1", "--sigma", "0.5", "--eta", "0.5", *TINY, "-o", str(out)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    ds = io.read(out)
    last = ds.isel(step=-1)
    assert int(last.step) == 40 and ds.attrs["command"].startswith("sim mc scalar")
    # the exact mean and variance in the file are the closed forms of sim.noisy.scalar
    kw = {"x": 1.0, "y": 1.0, "sigma": 0.5, "learning_rate": 0.5}
    assert float(last.exact_mean) == pytest.approx(float(noisy.mean(40.0, **kw)), rel=1e-12)
    assert float(last.exact_var) == pytest.approx(float(noisy.variance(40.0, **kw)), rel=1e-12)
    # the printed thresholds are 2/(x² + σ²) and 2(x² + σ²)/(x⁴ + 6x²σ² + 3σ⁴)
    thresholds = _numbers(next(line for line in text.splitlines() if "thresholds" in line))
    assert thresholds[0] == pytest.approx(2 / 1.25, rel=1e-5)
    assert thresholds[1] == pytest.approx(2 * 1.25 / (1 + 6 * 0.25 + 3 * 0.0625), rel=1e-5)
    # 512 runs at a stable point: the 95% half-width is 1.96 standard errors, so 2 of them is a 3.9-sigma band
    half = float(last.w_mean_ci_high - last.w_mean_ci_low) / 2
    assert abs(float(last.w_mean) - float(last.exact_mean)) < 2 * half
    assert f"wrote {out}" in text


def test_sweep_flags_agree_with_the_thresholds(tmp_path, capsys):
    out = tmp_path / "sweep.nc"
    argv = ["mc", "sweep", "--eta", "0.2:2.4:12", "--sigma", "0,0.5,1", *TINY, "-o", str(out)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    ds = io.read(out)
    assert (ds.sizes["learning_rate"], ds.sizes["sigma"]) == (12, 3)
    eta, sigma = np.meshgrid(ds.learning_rate.values, ds.sigma.values, indexing="ij")
    np.testing.assert_array_equal(ds.theory_mean_converges.values, eta < noisy.mean_threshold(1.0, sigma))
    np.testing.assert_array_equal(ds.theory_variance_bounded.values, eta < noisy.variance_threshold(1.0, sigma))
    printed = _numbers(next(line for line in text.splitlines() if line.strip().startswith("mean_converges")))
    assert printed[0] == pytest.approx(100 * ds.mean_converges.values.mean(), abs=0.06)


def test_vector_converges_to_ridge_not_least_squares(tmp_path, capsys):
    out = tmp_path / "vec.nc"
    argv = ["mc", "vector", "--points", "16", "--dim", "3", "--sigma", "0.5", "--eta", "0.1", "--batch-size", "4"]
    argv += ["--steps", "600", "--trajectories", "256", "--no-progress", "-o", str(out)]
    assert cli.main(argv) == 0
    capsys.readouterr()
    ds = io.read(out)
    last = ds.isel(step=-1)
    x, y = datasets.synthetic_problem(shape=(16, 3), seed=0)
    s = np.linalg.svd(x, compute_uv=False)
    np.testing.assert_allclose(ds.ridge_factor, s**2 / (s**2 + 16 * 0.25), rtol=1e-6)
    assert float(last.exact_mean_dist_ridge) < 1e-6 < 0.1 < float(last.mean_dist_lstsq)


def test_vector_reads_a_data_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = np.column_stack([rng.normal(size=(12, 2)), rng.normal(size=12)])
    path = tmp_path / "points.csv"
    np.savetxt(path, data, delimiter=",", header="x1,x2,y")
    out = tmp_path / "vec.nc"
    argv = ["mc", "vector", "--data", str(path), "--sigma", "0.3", "--eta", "0.05", *TINY, "-o", str(out)]
    assert cli.main(argv) == 0
    assert "m = 12 points, n = 2 dims" in capsys.readouterr().out
    assert io.read(out).sizes["step"] >= 2


@pytest.mark.parametrize(
    ("eta", "expect", "absent"),
    [
        ("0.5", "limits: mean 0.8, variance", "diverges"),
        ("1.2", "the variance grows without bound", "variance inf"),  # between the thresholds 0.93 and 1.6
        ("1.7", "the mean diverges", "mean 0.8"),  # past the mean threshold 1.6: no limit to print
    ],
)
def test_scalar_prints_a_limit_only_where_there_is_one(eta, expect, absent, tmp_path, capsys):
    argv = ["mc", "scalar", "--sigma", "0.5", "--eta", eta, "--steps", "20", "--trajectories", "64", "--no-progress"]
    assert cli.main([*argv, "-o", str(tmp_path / "run.nc")]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "limits:" in line)
    assert expect in line and absent not in line, line


def test_sweep_point_past_the_bound_is_not_called_bounded(tmp_path, capsys):
    # q = 2.7e8 at eta = 3000: the per-run sum of A^2 (about q T = 1e11) is past the 1e10 divergence bound
    out = tmp_path / "s.nc"
    argv = ["mc", "sweep", "--eta", "10,300,3000", "--sigma", "1.5", "--steps", "400", "--trajectories", "64"]
    assert cli.main([*argv, "--no-progress", "-o", str(out)]) == 0
    capsys.readouterr()
    ds = io.read(out)
    assert not ds.variance_bounded.values.any() and not ds.mean_converges.values.any()
    np.testing.assert_allclose(ds.second_moment_factor, ds.exact_second_moment_factor, rtol=0.05)


def test_scalar_with_a_huge_target_and_a_huge_chunk_size(tmp_path, capsys):
    out = tmp_path / "run.nc"
    argv = ["mc", "scalar", "--y", "1e30", "--sigma", "0.5", "--eta", "0.5", "--steps", "40", "--trajectories", "50"]
    assert cli.main([*argv, "--chunk-size", "1e9", "--no-progress", "-o", str(out)]) == 0
    assert "over n = 50 of 50 runs (0 diverged)" in capsys.readouterr().out
    last = io.read(out).isel(step=-1)
    assert int(last.w_count) == 50 and float(last.w_mean) == pytest.approx(0.8e30, rel=0.1)


def _estimate_lines(text: str) -> tuple[str, str]:
    lines = text.splitlines()
    return next(line for line in lines if "MC mean" in line), next(line for line in lines if "MC var" in line)


@pytest.mark.parametrize(
    ("steps", "regime"),
    [("90", "few"), ("125", "one"), ("200", "none")],  # 512 runs at eta = 3: 12, 1 and 0 are left by these steps
)
def test_scalar_with_few_survivors_prints_n_and_no_interval(steps, regime, tmp_path, capsys):
    # issue 13: at eta = 3 (past the mean threshold 1.6) 99,999 of 100,000 runs diverged and it printed a confident
    # "MC var 0 [0, 0]" from the one survivor
    out = tmp_path / "run.nc"
    argv = ["mc", "scalar", "--sigma", "0.5", "--eta", "3", "--steps", steps, "--trajectories", "512"]
    assert cli.main([*argv, "--no-progress", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    ds = io.read(out)
    n = int(ds.w_count.values[-1])
    assert {"few": 1 < n < 30, "one": n == 1, "none": n == 0}[regime], n
    assert f"over n = {n} of 512 runs ({512 - n} diverged)" in text
    mean_line, var_line = _estimate_lines(text)
    assert "[" not in mean_line and "[" not in var_line  # no interval printed
    if n == 0:
        assert "none" in mean_line and "every run diverged" in mean_line and "none" in var_line
    else:
        assert f"(no interval: n = {n} < {ds.attrs['ci_min_count']} runs)" in mean_line
        assert _numbers(mean_line.split("exact")[0])[0] == pytest.approx(float(ds.w_mean.values[-1]), rel=1e-5)
    if n == 1:
        assert "MC var  none" in var_line and "needs n >= 2" in var_line
    if regime == "few":
        assert f"(no interval: n = {n} < 30 runs)" in var_line


def _fourth_moment_by_quadrature(x, sigma, eta):
    nodes, weights = np.polynomial.hermite_e.hermegauss(20)  # exact for polynomials of degree < 40
    return float(np.sum(weights * (1 - eta * (x + sigma * nodes) ** 2) ** 4) / np.sqrt(2 * np.pi))


@pytest.mark.parametrize("eta", ["0.5", "0.62", "0.68", "0.8"])  # x = 1, sigma = 0.5: r = 1 at eta = 0.648
def test_variance_interval_flag_in_file_and_output_exactly_where_the_fourth_moment_is_unbounded(eta, tmp_path, capsys):
    r = _fourth_moment_by_quadrature(1.0, 0.5, float(eta))
    out = tmp_path / "run.nc"
    argv = ["mc", "scalar", "--sigma", "0.5", "--eta", eta, "--steps", "40", "--trajectories", "256"]
    assert cli.main([*argv, "--no-progress", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    ds = io.read(out)
    assert int(ds.w_count.values[-1]) == 256  # enough runs: only the fourth moment decides
    assert ds.attrs["variance_ci_valid"] == int(r < 1)
    assert ("fourth moment unbounded" in ds.attrs["variance_ci_note"]) == (r >= 1)
    assert ("NOT VALID" in ds.w_var_ci_low.attrs["description"]) == (r >= 1)
    mean_line, var_line = _estimate_lines(text)
    assert "[" in mean_line  # the mean's interval stays
    assert ("[" in var_line) == (r < 1)
    assert ("fourth moment unbounded" in var_line) == (r >= 1)
    if r >= 1:
        assert _numbers(var_line.split("E(1 - eta x~^2)^4 =")[1])[0] == pytest.approx(r, rel=1e-3)
    fourth = _numbers(next(line for line in text.splitlines() if "fourth moment bounded" in line))
    assert fourth[-1] == pytest.approx(0.648130, rel=1e-5)  # the root of r(eta) = 1 for x = 1, sigma = 1/2 (sympy)


def test_vector_with_a_mode_y_misses_prints_no_inf(tmp_path, capsys):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.diag([3.0, 2.0, 1.0]), y=np.array([1.0, 1.0, 0.0]))
    out = tmp_path / "vec.nc"
    argv = ["mc", "vector", "--data", str(path), "--sigma", "0.5", "--eta", "0.2", *TINY, "-o", str(out)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "inf" not in text and "nan" not in text and "1: n/a (u^T y = 0)/" in text
    ds = io.read(out)
    assert not ds.factor_defined.values[2] and np.all(np.isfinite(ds.factor.values))


BAD = [  # (arguments, parameter named in the error)
    (["mc", "scalar", "--sigma", "0.5", "--eta", "-1"], "--eta"),
    (["mc", "scalar", "--sigma", "0.5", "--eta", "nan"], "--eta"),
    (["mc", "scalar", "--sigma", "-0.5", "--eta", "0.1"], "--sigma"),
    (["mc", "scalar", "--sigma", "1e200", "--eta", "0.1"], "--sigma"),
    (["mc", "scalar", "--x", "1e12", "--sigma", "0.5", "--eta", "0.1"], "--x"),
    (["mc", "scalar", "--sigma", "0.5", "--eta", "0.1", "--steps", "0"], "--steps"),
    (["mc", "scalar", "--sigma", "0.5", "--eta", "0.1", "--trajectories", "0"], "--trajectories"),
    (["mc", "scalar", "--sigma", "0.5", "--eta", "0.1", "--paths", "-1"], "--paths"),
    (["mc", "sweep", "--eta", "0:1:5", "--sigma", "0.5"], "--eta"),
    (["mc", "sweep", "--eta", "0.1:1:5", "--sigma", ""], "--sigma"),
    (["mc", "sweep", "--eta", "0.1,0.3,0.1", "--sigma", "0.5"], "--eta"),
    (["mc", "vector", "--sigma", "0.5", "--eta", "0.1", "--points", "0"], "--points"),
    (["mc", "vector", "--sigma", "0.5", "--eta", "0.1", "--batch-size", "1000"], "--batch-size"),
    (["mc", "vector", "--sigma", "0.5", "--eta", "0.1", "--decay", "0"], "--decay"),
    (["mc", "vector", "--sigma", "0.5", "--eta", "100"], "--eta"),
    (["mc", "vector", "--sigma", "0.5", "--eta", "0.1", "--data", "/nonexistent/file.csv"], "path"),
    (["mc", "sweep", "--eta", "0.1:1:100000", "--sigma", "0:1:100000"], "grid"),  # sized from the text
    (["mc", "sweep", "--eta", "0.1:1:5", "--sigma", "0.5", "--resume"], "--resume"),  # a .nc cannot be resumed
]


@pytest.mark.parametrize(("argv", "param"), BAD, ids=[" ".join(a[1:]) for a, _ in BAD])
def test_bad_input_is_one_line_naming_the_parameter(argv, param, tmp_path, capsys, monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(montecarlo, "_runner", no_compile)
    out = tmp_path / "out.nc"
    code = cli.main([*argv, "--no-progress", "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"sim mc: error: {param}: "), err
    assert not out.exists()


def test_unwritable_output_is_refused_first(tmp_path, capsys):
    code = cli.main(["mc", "scalar", "--sigma", "0.5", "--eta", "0.1", "-o", str(tmp_path / "no" / "run.nc")])
    assert code == 2
    assert capsys.readouterr().err.startswith("sim mc: error: --output: ")


def test_mc_output_that_exists_is_refused_without_overwrite(tmp_path, capsys, monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before validating")

    out = tmp_path / "run.nc"
    out.write_text("an earlier result")
    monkeypatch.setattr(montecarlo, "_runner", no_compile)
    for kind in (["scalar", "--sigma", "0.5", "--eta", "0.1"], ["sweep", "--eta", "0.1,0.2", "--sigma", "0.5"]):
        assert cli.main(["mc", *kind, "--no-progress", "-o", str(out)]) == 2
        assert (
            capsys.readouterr().err.strip() == f"sim mc: error: --output: {out} exists: add --overwrite to replace it"
        )
    assert out.read_text() == "an earlier result"
    monkeypatch.undo()
    argv = ["mc", "scalar", "--sigma", "0.5", "--eta", "0.1", *TINY, "-o", str(out), "--overwrite"]
    assert cli.main(argv) == 0
    assert io.read(out).attrs["command"].endswith("--overwrite")


def test_scalar_refuses_a_store(tmp_path, capsys):
    argv = ["mc", "scalar", "--sigma", "0.5", "--eta", "0.1", "-o", str(tmp_path / "run.zarr")]
    assert cli.main(argv) == 2
    assert "writes a .nc file, not a .zarr store" in capsys.readouterr().err


def test_sweep_streams_to_a_store_that_resumes_and_equals_the_nc(tmp_path, capsys):
    axes = ["--eta", "0.2:2.4:6", "--sigma", "0,0.5,1", *TINY, "--chunk-size", "128"]
    assert cli.main(["mc", "sweep", *axes, "-o", str(tmp_path / "run.nc")]) == 0
    store = tmp_path / "run.zarr"
    assert cli.main(["mc", "sweep", *axes, "-o", str(store)]) == 0
    capsys.readouterr()
    reference = io.read(tmp_path / "run.nc")
    streamed = io.read(store)
    assert bool(streamed.computed.all())
    for name in ("w_mean", "w_var", "mean_factor", "w_quantile", "mean_converges"):
        np.testing.assert_array_equal(streamed[name].values, reference[name].values)  # bitwise: same draws
    # run again into the finished store: --resume computes nothing and keeps the numbers; without it, refused
    assert cli.main(["mc", "sweep", *axes, "-o", str(store)]) == 2
    assert "add --overwrite to replace it or --resume to continue it" in capsys.readouterr().err
    assert cli.main(["mc", "sweep", *axes, "-o", str(store), "--resume"]) == 0
    np.testing.assert_array_equal(io.read(store).w_mean.values, reference.w_mean.values)
    # a store written by another command is refused, naming what differs
    other = ["--eta", "0.2:2.4:6", "--sigma", "0,0.5,1", "--steps", "41", "--trajectories", "512", "--no-progress"]
    assert cli.main(["mc", "sweep", *other, "-o", str(store), "--resume"]) == 2
    assert "was written by a different command" in capsys.readouterr().err


def test_sweep_over_two_processes_equals_one(tmp_path, capsys):
    """Two local processes joined by jax.distributed share the blocks of one store (2 blocks of 256 points here);
    the result is bitwise the one-process run's."""
    import os
    import sys
    from pathlib import Path

    from tests.linear.test_sweep_store import run_two_processes

    axes = ["--eta", "0.2:2.4:40", "--sigma", "0:1:8", *TINY]
    assert cli.main(["mc", "sweep", *axes, "-o", str(tmp_path / "one.nc")]) == 0
    capsys.readouterr()
    store = tmp_path / "two.zarr"
    code = "import sys\nfrom sim import cli\nsys.exit(cli.main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    def argv(address, rank):
        cluster = ["--coordinator", address, "--num-processes", "2", "--process-id", str(rank)]
        return [sys.executable, "-c", code, "mc", "sweep", *axes, "-o", str(store), *cluster]

    outputs = run_two_processes(argv, env)
    printed = [[line for line in out.splitlines() if not line.startswith("[Gloo]")] for out in outputs]
    assert f"wrote {store}" in printed[0] and printed[1] == []  # process 0 reports, once
    one, two = io.read(tmp_path / "one.nc"), io.read(store)
    assert bool(two.computed.all()) and two.attrs["complete"] == 1
    for name in ("w_mean", "w_var", "mean_factor", "lyapunov", "w_quantile", "variance_bounded"):
        np.testing.assert_array_equal(two[name].values, one[name].values, err_msg=name)
