"""The sweep engine against theory, against a brute-force simulation, and against itself (chunks, devices)."""

import json
import math
import os
import signal
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


def _as_run(values, dtype):
    """The float64 values of a sweep's inputs as the kernel sees them (rounded to ``dtype``)."""
    return np.asarray(values, dtype=dtype).astype(np.float64)


# float64: the kernel and the reference do the same operations up to ~1 ulp per step over ≤ 600 steps (1e-9 is ~1e4
# times that). float32: ~6e-8 per step compounded over ≤ 600 steps of a growing state, plus the float32 rounding of
# 1 − β inside the step and of x(0) (≤ 1e-4 in all), within 1e-3.
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", 1e-3)])
def test_diverged_points_are_measured_up_to_their_last_state_within_the_bound(dtype, rtol):
    """A diverged point's contraction, max error and final error are those of its last state within the bound (not
    bound^(1/diverge_step), nor the start's 1), as an independent float64 simulation finds them."""
    bound, block, steps = 1e10, 16, 600
    # (method, axes, spectrum, velocity): GD with a sigma2 axis (lr 1e10: already step 1 leaves the bound for σ² ≥ 1)
    # and 2-mode momentum, from points that diverge in the first block to ones diverging after ~500 steps
    cases = [
        ("gd", {"learning_rate": [*np.linspace(0.3, 3.0, 28), 1e10], "sigma2": [0.5, 1.0, 2.0, 5.0]}, None, False),
        ("momentum", {"learning_rate": np.linspace(0.05, 8.0, 40), "beta": np.linspace(0.05, 1, 8)}, [5, 0.05], True),
    ]
    with jax.enable_x64(dtype == "float64"):
        runs = [
            sweep.sweep(m, _grid(**ax), steps=steps, tol=1e-3, spectrum=sp, dtype=dtype, block=block, progress=False)
            for m, ax, sp, _ in cases
        ]
    seen = {"first block": 0, "later": 0, "step 1 outside": 0}
    for (method, _, spectrum, velocity), ds in zip(cases, runs, strict=True):
        flat = ds.stack(point=ds.settle_step.dims)
        eta = _as_run(flat.learning_rate.values, dtype)
        beta = _as_run(flat.beta.values, dtype) if method == "momentum" else np.ones_like(eta)
        if spectrum is None:  # one mode per point: simulate each sigma2 separately
            errors, norms = (np.empty((steps + 1, eta.size)) for _ in range(2))
            sigma2 = _as_run(flat.sigma2.values, dtype)
            for s2 in np.unique(sigma2):
                on = sigma2 == s2
                errors[:, on], norms[:, on] = reference.momentum_states(eta[on], 1.0, [s2], steps, velocity=velocity)
        else:
            errors, norms = reference.momentum_states(eta, beta, _as_run(spectrum, dtype), steps, velocity=velocity)
        ref = reference.divergence(errors, norms, bound, block)
        # a norm within rounding (rtol) of the bound, up to the step where divergence is found, may fall on either
        # side of it: such points are left out
        last = np.where(ref["diverge_step"] > 0, ref["diverge_step"], steps)
        with np.errstate(divide="ignore", invalid="ignore"):
            close = np.abs(np.log(norms / bound)) < rtol
        near = (close & (np.arange(steps + 1)[:, None] <= last)).any(axis=0)
        use = ~near
        assert near.sum() <= 0.02 * near.size
        diverged = flat.diverged.values
        np.testing.assert_array_equal(diverged[use], ref["diverge_step"][use] > 0)
        np.testing.assert_array_equal(flat.diverge_step.values[use], ref["diverge_step"][use])
        d = diverged & use
        for name in ("contraction", "max_error", "final_error"):
            np.testing.assert_allclose(flat[name].values[d], ref[name][d], rtol=rtol, atol=0, err_msg=name)
        # not the former bound^(1/diverge_step), which only a point crossing the bound near a block end comes close to
        staircase = bound ** (1 / flat.diverge_step.values[d])
        assert np.mean(np.abs(flat.contraction.values[d] / staircase - 1) > 10 * rtol) > 0.9
        seen["first block"] += int((d & (ref["diverge_step"] == block)).sum())
        seen["later"] += int((d & (ref["diverge_step"] > block)).sum())
        seen["step 1 outside"] += int((d & (ref["inside"] == 0)).sum())
        # a point that left the bound in its first block had seen errors far above the start's 1
        assert np.all(flat.max_error.values[d & (ref["diverge_step"] == block) & (ref["inside"] > 0)] > 1e3)
    assert seen["first block"] >= 20 and seen["later"] >= 20 and seen["step 1 outside"] >= 3, seen


# GD on sigma2 = 1 with steps T = 1000, tol 1e-3: rates |1 − 2η| from 0.93 (final error 0.93^1000 ≈ 3e-32, whose
# square underflows float32) down to 1e-3 (the state underflows float32 within the first block), 0 (the state is
# exactly 0 after one step), and 0.63, 0.6 and 0.5 (final errors 1e-201, 1e-222 and 9e-302, whose squares underflow
# float64; 0 in float32).
UNDERFLOW_LR = [0.03, 0.035, 0.04, 0.045, 0.185, 0.2, 0.25, 0.45, 0.49, 0.495, 0.499, 0.4995, 0.5, 0.5005, 0.501, 0.51]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "xla"])
def test_errors_and_contraction_below_the_range_of_their_squares(monkeypatch, compiled, dtype):
    if not compiled:
        monkeypatch.setattr(native, "loop_for", lambda modes: (False, "XLA while_loop (test)"))
    with jax.enable_x64(dtype == "float64"):
        ds = sweep.sweep(
            "gd", _grid(learning_rate=UNDERFLOW_LR, sigma2=[1.0]), steps=1000, tol=1e-3, dtype=dtype, progress=False
        )
    eta = _as_run(ds.learning_rate.values, dtype)
    rho = np.abs(1 - 2 * eta)  # float64 from the float32 η: the factor of the float32 run up to its own rounding
    final = rho**1000
    tiny, eps = np.finfo(dtype).tiny, np.finfo(dtype).eps
    measured, contraction = ds.final_error.values[:, 0], ds.contraction.values[:, 0]
    # final errors of settled points come from binary powering of R (relative rounding up to ~1e-3 at exponents near
    # 1000 in float32, see sim.linear.sweep.xla); those below the smallest normal number are flushed to 0
    representable = final > 2 * tiny
    assert (representable & (final < 1e-30 if dtype == "float32" else final < 1e-200)).sum() >= 2
    np.testing.assert_allclose(measured[representable], final[representable], rtol=2e-3 if dtype == "float32" else 1e-9)
    assert np.all(measured[final < tiny / 2] == 0)
    # contraction (|w_t| / |w_0|)^(1/t) = ρ: each step w − η 2w rounds by ≤ 1 ulp of its inputs, a relative error
    # ≤ eps (1 + 2η) / ρ of the new w, so the geometric mean of t steps is within that of ρ
    np.testing.assert_array_less(np.abs(contraction - rho), 4 * eps * (1 + 2 * eta) + 1e-300)
    assert np.all(contraction[rho > 0] > 0) and np.all(contraction[rho == 0] == 0)


def test_unstable_is_the_spectral_radius_from_theory():
    """``unstable`` (theory: rate ≥ 1) against numpy's eigenvalues in float64, on grids across GD's η = 1/σ² and EMA
    momentum's stability boundary η = (2 − β)/(βσ²), exact boundary points included; ``diverged`` is measured."""
    steps = 500
    gd_lr = sorted({*np.geomspace(0.05, 8, 57).round(6), 0.25, 0.5, 1.0, 2.0})  # 1/σ² for σ² = 4, 2, 1, 0.5
    gd = sweep.sweep(
        "gd", _grid(learning_rate=gd_lr, sigma2=[0.5, 1.0, 2.0, 4.0]), steps=steps, tol=1e-3, progress=False
    )
    # boundary: η = 19, 7, 3, 5/3, 1 for β = 0.1, 0.25, 0.5, 0.75, 1 on σ² = 1 (7, 3 and 1 exactly in binary)
    mom_lr = sorted({*np.geomspace(0.1, 40, 80).round(6), 1.0, 3.0, 7.0})
    mom = sweep.sweep(
        "momentum",
        _grid(learning_rate=mom_lr, beta=[0.1, 0.25, 0.5, 0.75, 1.0], sigma2=[1.0]),
        steps=steps,
        tol=1e-3,
        progress=False,
    )
    for ds, beta in ((gd, None), (mom, "beta")):
        flat = ds.stack(point=ds.settle_step.dims)
        eta = _as_run(flat.learning_rate.values, "float32")
        b = np.ones_like(eta) if beta is None else _as_run(flat[beta].values, "float32")
        sigma2 = _as_run(flat.sigma2.values, "float32")
        rho = reference.momentum_spectral_radius(eta, b, sigma2)
        # exactly on the boundary ηβσ² = 2 − β (binary values: exact in float64), ρ = 1 (an eigenvalue is −1)
        on_boundary = eta * b * sigma2 == 2 - b
        np.testing.assert_allclose(rho[on_boundary], 1, rtol=1e-12)
        expected = on_boundary | (rho >= 1)
        # float32's rounding of the transition matrix's entries (≤ a few 1e-7 relative, times entries ≤ 40) moves
        # ρ by < 1e-5: points that close to 1 but not on it are left out
        use = on_boundary | (np.abs(rho - 1) > 1e-5)
        assert (~use).sum() <= 2 and on_boundary.sum() >= 3
        unstable = flat.unstable.values
        assert unstable.dtype == bool
        np.testing.assert_array_equal(unstable[use], expected[use])
        assert (rho < 1).sum() > 50 and (rho > 1).sum() > 50
        # measured divergence is another thing: slow growth (ρ^500 < 1e8, inside the bound 1e10) and ρ = 1 are
        # unstable, not diverged
        with np.errstate(over="ignore"):
            slow = use & expected & (rho**steps < 1e8)
        assert slow.sum() >= 3 and not flat.diverged.values[slow].any() and unstable[slow].all()


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
    raise ``error`` (or send this process the signal ``error``), as a failure or a Ctrl-C would arrive while other
    chunks have finished."""
    calls = {"n": 0}
    real = Grid.values_at

    def values_at(self, idx):
        calls["n"] += 1
        if calls["n"] == number:
            if isinstance(error, int):  # a signal, as Ctrl-C (SIGINT) or a scheduler's SIGTERM delivers it
                os.kill(os.getpid(), error)
            else:
                raise error
        return real(self, idx)

    monkeypatch.setattr(Grid, "values_at", values_at)


def test_interrupted_sweep_keeps_finished_points(monkeypatch):
    g = _grid(learning_rate="0.01:1:400", beta="0.1:1:10")
    full = sweep.sweep("momentum", g, steps=100, tol=1e-3, spectrum=[1.0], chunk_size=8, progress=False)
    assert full.attrs["complete"] == 1 and bool(full.computed.values.all())
    _interrupt_on_call(monkeypatch, 6, signal.SIGINT)
    part = sweep.sweep("momentum", g, steps=100, tol=1e-3, spectrum=[1.0], chunk_size=8, progress=False)
    assert part.attrs["complete"] == 0 and part.attrs["stopped_by_signal"] == signal.SIGINT
    done = part.computed.values
    assert 0 < done.sum() < done.size
    assert (part.settle_step.values[~done] == -1).all() and np.isnan(part.final_error.values[~done]).all()
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
