"""The sweep engine against theory, against a brute-force simulation, and against itself (chunks, devices)."""

import json
import math
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from sim.core import io
from sim.core.grid import Grid, parse_axis
from sim.linear import theory
from sim.linear.sweep import engine as sweep
from sim.linear.sweep import native
from sim.linear.sweep import xla as kernel
from tests import reference
from tests.conftest import DEVICES


def _grid(**axes):
    return Grid(
        tuple(parse_axis(k, v if isinstance(v, str) else ",".join(repr(float(x)) for x in v)) for k, v in axes.items())
    )


def test_gd_steps_to_tolerance_is_exact():
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        eta = np.sort(rng.uniform(0.01, 0.99, 24))
        sigma2 = np.sort(rng.uniform(0.05, 1.0, 24))
        ds = sweep.sweep(
            "gd", _grid(learning_rate=eta, sigma2=sigma2), steps=5000, tol=1e-3, dtype="float64", progress=False
        )
    rho = np.abs(1 - 2 * eta[:, None] * sigma2[None, :])
    ratio = np.log(1e-3) / np.log(rho)
    clear = np.abs(ratio - np.round(ratio)) > 1e-9  # float64 rounding can only matter at exact integers
    expected = np.ceil(ratio)
    reachable = clear & (expected <= 5000)
    assert reachable.sum() > 400
    np.testing.assert_array_equal(ds.settle_step.values[reachable], expected[reachable])
    np.testing.assert_allclose(ds.rate.values, rho, rtol=1e-14, atol=1e-15)  # 1 - 2ησ² cancels near 0


def test_summaries_match_brute_force_simulation():
    """The early-stopping kernel gives the answers of a full simulation (float64, random points)."""
    rng = np.random.default_rng(1)
    spectrum = [5.0, 0.05]
    with jax.enable_x64(True):
        eta = np.sort(rng.uniform(0.01, 4.0, 6))
        beta = np.sort(rng.uniform(0.05, 1.0, 5))
        ds = sweep.sweep(
            "momentum",
            _grid(learning_rate=eta, beta=beta),
            steps=700,
            tol=1e-3,
            spectrum=spectrum,
            dtype="float64",
            chunk_size=9,
            progress=False,
        )
    for i, e in enumerate(eta):
        for j, b in enumerate(beta):
            errors = reference.momentum_errors(e, b, spectrum, 700)[:, 0]
            settle, emax, final = reference.settle_steps(errors[:, None], 1e-3)[0], errors.max(), errors[-1]
            point = ds.isel(learning_rate=i, beta=j)
            if point.diverged:
                assert not emax < 1e6  # overflowed to inf/NaN in NumPy
                continue
            assert int(point.settle_step) == settle
            np.testing.assert_allclose(float(point.max_error), emax, rtol=1e-12)
            # analytic continuation from an early stop vs step-by-step: rounding of ~T multiplications
            np.testing.assert_allclose(float(point.final_error), final, rtol=1e-9, atol=1e-300)
    assert (ds.simulated_steps < 700).any(), "some points should have stopped early"


def test_momentum_contraction_matches_spectral_radius():
    rng = np.random.default_rng(2)
    with jax.enable_x64(True):
        eta = np.sort(rng.uniform(0.05, 2.0, 12))
        beta = np.sort(rng.uniform(0.02, 0.5, 12))
        ds = sweep.sweep(
            "momentum",
            _grid(learning_rate=eta, beta=beta, sigma2="0.3"),
            steps=2000,
            tol=1e-150,
            dtype="float64",
            progress=False,
        )
    rate, measured = ds.rate.values.ravel(), ds.contraction.values.ravel()
    use = (rate > 0.9) & (rate < 0.995)
    assert use.sum() > 20
    # ‖u_T‖ = ‖Rᵀ u_0‖ is within a factor (T·K)^(±1) of ρ^T (K ≈ ‖R‖ ≤ 10), so the T-th root is off by ≤ 0.5 %
    np.testing.assert_allclose(measured[use], rate[use], rtol=5e-3)


def test_divergence_flags_agree_with_spectral_radius():
    rng = np.random.default_rng(3)
    eta = np.sort(rng.uniform(0.01, 8.0, 40))
    beta = np.sort(rng.uniform(0.01, 1.0, 40))
    ds = sweep.sweep(
        "momentum", _grid(learning_rate=eta, beta=beta), steps=1000, tol=1e-3, spectrum=[0.05, 5], progress=False
    )
    rate, diverged = ds.rate.values, ds.diverged.values
    # band: rho ≥ 1.05 grows by ≥ 1.05^1000 ≈ 1e21 ≫ bound 1e10; rho ≤ 0.999 has bounded transients ≪ 1e10
    assert np.all(diverged[rate >= 1.05]) and (rate >= 1.05).sum() > 100
    assert not np.any(diverged[rate <= 0.999]) and (rate <= 0.999).sum() > 100
    for name in ("final_error", "max_error", "contraction", "rate"):
        assert np.all(np.isfinite(ds[name].values)), name
    assert np.all(ds.diverge_step.values[diverged] > 0) and np.all(ds.diverge_step.values[~diverged] == -1)
    assert np.all(ds.settle_step.values[diverged] == -1)


def test_seeds_worked_example():
    """Sp23 HW2 Q2(g): GD at eta* = 1/5.05 takes 346 steps; momentum beta = 0.1 has rate sqrt(0.9) on the interval."""
    gd = sweep.sweep("gd", _grid(learning_rate=[1 / 5.05]), steps=1000, tol=1e-3, spectrum=[5, 0.05], progress=False)
    assert int(gd.settle_step.item()) == 346
    mom = sweep.sweep(
        "momentum",
        _grid(learning_rate="0.2634:3.796:64", beta="0.1"),
        steps=1000,
        tol=1e-3,
        spectrum=[5, 0.05],
        progress=False,
    )
    np.testing.assert_allclose(mom.rate.values, math.sqrt(0.9), rtol=1e-6)  # float32
    steps = mom.settle_step.values
    predicted = float(theory.steps_to_tolerance(math.sqrt(0.9), 1e-3))
    assert predicted == 132
    assert np.all(steps >= 100) and steps.min() < steps.max()  # real counts vary inside the flat-rate interval


def _all_equal(a, b):
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


@pytest.mark.parametrize("problem", ["spectrum", "sigma2 axis"])
def test_results_do_not_depend_on_chunk_size(problem):
    if problem == "spectrum":
        g, kw = _grid(learning_rate="0.01:4:37", beta="0.05:1:29"), {"spectrum": [5, 0.05]}
    else:
        g, kw = _grid(learning_rate="0.01:4:37", beta="0.05:1:5", sigma2="log:0.1:10:6"), {}
    runs = [
        sweep.sweep("momentum", g, steps=300, tol=1e-3, chunk_size=c, progress=False, **kw) for c in (8, 13, 100, 4096)
    ]
    for other in runs[1:]:
        _all_equal(runs[0], other)


def test_one_loop_returns_its_inputs_exactly():
    # the kernel computes a block's results in one loop as the max over two copies of each: it must be the identity
    floats = jax.numpy.array([0.0, -0.0, 1.5, -2.0, np.inf, -np.inf, np.nan, 1e-30, -3e38], jax.numpy.float32)
    ints = jax.numpy.array([0, -1, 7, np.iinfo(np.int32).min, np.iinfo(np.int32).max, 3, 2, 1, -5], jax.numpy.int32)
    f, i = jax.jit(kernel._one_loop)(floats, ints)
    np.testing.assert_array_equal(np.asarray(f), np.asarray(floats))
    assert np.array_equal(np.signbit(np.asarray(f)), np.signbit(np.asarray(floats)))
    np.testing.assert_array_equal(np.asarray(i), np.asarray(ints))
    assert f.dtype == floats.dtype and i.dtype == ints.dtype


def test_results_do_not_depend_on_device_count(tmp_path):
    assert jax.device_count() == DEVICES
    args = dict(steps=300, tol=1e-3, spectrum=[5, 0.05], chunk_size=32)
    ours = sweep.sweep("momentum", _grid(learning_rate="0.01:4:37", beta="0.05:1:29"), progress=False, **args)
    out = tmp_path / "one.nc"
    code = (
        "import sim.linear.sweep.engine as s, sim.core.io as io; from sim.core.grid import Grid, parse_axis;"
        "import jax;"
        "assert jax.device_count() == 1;"
        "g = Grid((parse_axis('learning_rate', '0.01:4:37'), parse_axis('beta', '0.05:1:29')));"
        f"io.write(s.sweep('momentum', g, progress=False, **{args!r}), {str(out)!r})"
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    _all_equal(ours, io.read(out))


def test_results_file_round_trips(tmp_path):
    ds = sweep.sweep("gd", _grid(learning_rate="0.1:0.9:5", sigma2="log:0.1:1:3"), steps=50, tol=1e-2, progress=False)
    io.write(ds, tmp_path / "r.nc")
    back = io.read(tmp_path / "r.nc")
    _all_equal(ds, back)
    assert back.diverged.dtype == bool
    assert back.attrs == ds.attrs
    assert json.loads(back.attrs["axes"]) == {"learning_rate": "0.1:0.9:5", "sigma2": "log:0.1:1:3"}
    for key in ("dtype", "device_count", "version_jax", "git_revision", "platform"):
        assert key in back.attrs


@pytest.mark.parametrize("shape", [(2048, 2048), (37, 29, 1), (7, 5, 3), (1,), (13,), (3, 1, 4, 5), (1, 1)])
def test_values_of_a_range_of_points_equal_those_of_their_indices(shape):
    g = Grid(tuple(parse_axis(name, f"1:{n}:{n}" if n > 1 else "0.5") for name, n in zip("abcd", shape, strict=False)))
    rng = np.random.default_rng(len(shape))
    for _ in range(40):  # random runs: inside one value of an axis, across several, wrapping around the last axis
        start = int(rng.integers(0, g.size))
        stop = int(rng.integers(start + 1, min(g.size, start + 20000) + 1))
        fast, ref = g.values_at(range(start, stop)), g.values_at(np.arange(start, stop))
        for name in g.names:
            np.testing.assert_array_equal(fast[name], ref[name], err_msg=f"{name} {start}:{stop}")
    with pytest.raises(ValueError, match="range"):
        g.values_at(range(0, g.size + 1))


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "xla"])
def test_contraction_of_a_state_whose_squares_underflow(monkeypatch, compiled):
    """Points that settle with ‖u‖ ≈ 1e-20 (squares below float32's normal range) still get their contraction."""
    if not compiled:
        monkeypatch.setattr(native, "loop_for", lambda modes: (False, "XLA while_loop (test)"))
    g = _grid(learning_rate="0.25", beta="0.5,1", sigma2="1")
    ds = sweep.sweep("momentum", g, steps=400, tol=1.1e-19, progress=False)  # tol at float32's smallest allowed
    assert (ds.settle_step.values > 0).all() and (ds.simulated_steps.values < 400).all()
    # (‖u_t‖ / ‖u_0‖)^(1/t) = ρ C^(1/t) with C the transient constant: within 2 % of ρ after the 80-128 steps here
    np.testing.assert_allclose(ds.contraction.values, ds.rate.values, rtol=0.02)


def _interrupt_on_call(monkeypatch, number, error):
    """Make the ``number``-th call of ``Grid.values_at`` (each chunk's inputs, built on its device's host thread)
    raise ``error``, as a Ctrl-C or a failure would arrive while other chunks have finished."""
    calls = {"n": 0}
    real = Grid.values_at

    def values_at(self, idx):
        calls["n"] += 1
        if calls["n"] == number:
            raise error
        return real(self, idx)

    monkeypatch.setattr(Grid, "values_at", values_at)


def test_interrupted_sweep_keeps_finished_points(monkeypatch):
    g = _grid(learning_rate="0.01:1:40", beta="0.1:1:10")
    full = sweep.sweep("momentum", g, steps=100, tol=1e-3, spectrum=[1.0], chunk_size=8, progress=False)
    assert full.attrs["complete"] == 1 and "computed" not in full
    _interrupt_on_call(monkeypatch, 6, KeyboardInterrupt())
    part = sweep.sweep("momentum", g, steps=100, tol=1e-3, spectrum=[1.0], chunk_size=8, progress=False)
    assert part.attrs["complete"] == 0
    done = part.computed.values
    assert 0 < done.sum() < done.size
    for name in full.data_vars:
        np.testing.assert_array_equal(part[name].values[done], full[name].values[done])


def test_a_failing_chunk_raises_in_the_caller(monkeypatch):
    g = _grid(learning_rate="0.01:1:40", beta="0.1:1:10")
    _interrupt_on_call(monkeypatch, 4, RuntimeError("chunk failed"))
    with pytest.raises(RuntimeError, match="chunk failed"):
        sweep.sweep("momentum", g, steps=100, tol=1e-3, spectrum=[1.0], chunk_size=8, progress=False)


@pytest.mark.parametrize(
    "method,axes",
    [
        ("heavy_ball", {"learning_rate": "0.01:0.5:5", "momentum": "0:0.9:4"}),
        ("nesterov", {"learning_rate": "0.01:0.5:5", "momentum": "0:0.9:4"}),
    ],
)
def test_heavy_ball_and_nesterov_sweep(method, axes):
    ds = sweep.sweep(method, _grid(**axes, sigma2="1"), steps=400, tol=1e-3, progress=False)
    # theory: the rate is the spectral radius of the method's own transition matrix
    assert np.all(np.isfinite(ds.rate.values))
    conv = ds.rate.values < 0.95
    assert np.all(ds.settle_step.values[conv] > 0)
