"""The compiled CPU loop (sim/linear/sweep/kernel.cc via sim.linear.sweep.native) against the XLA loop it replaces, and
its fallbacks."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sim.core.grid import Grid, parse_axis
from sim.linear import dynamics
from sim.linear.sweep import engine as sweep
from sim.linear.sweep import native
from sim.linear.sweep import xla as kernel

METHODS = [(dynamics.gd, 1), (dynamics.momentum, 2), (dynamics.heavy_ball, 2), (dynamics.nesterov, 2)]
COUNTS = ("settle_step", "diverged", "unstable", "diverge_step", "simulated_steps")


def test_compiled_loop_is_available_where_a_compiler_is():
    available, why = native.status()
    if native._compiler() is None:
        assert not available and "compiler" in why
    else:
        assert available, why


def _points(n, modes, n_hyper, rng):
    """Random points: converging, slow, oscillating and diverging ones."""
    lr = 10 ** rng.uniform(-3, 1, n)
    second = rng.uniform(0.02, 0.98, n)  # beta (momentum) or m (heavy_ball, nesterov)
    sigma2 = 10 ** rng.uniform(-2, 0.5, (n, modes))
    x0 = rng.normal(size=(n, modes))
    return (lr, second)[:n_hyper], sigma2, x0 / np.linalg.norm(x0, axis=1, keepdims=True)


# rtol: per-step rounding differences (the two compilers fuse different multiply-adds into FMAs) of ~1 ulp compounded
# over up to 1000 steps. final_rtol: a point that stopped early gets its final error by binary powering of its
# transition matrix, whose rounding grows with the exponent (up to ~1000 here) and with how far R is from normal;
# final errors within that rounding of the smallest normal number may be flushed to 0 by one loop only (atol).
@pytest.mark.parametrize("dtype,rtol,final_rtol", [("float32", 2e-4, 2e-3), ("float64", 1e-11, 1e-11)])
@pytest.mark.parametrize("modes", [1, 2, 4])
@pytest.mark.parametrize("make,n_hyper", METHODS, ids=[m.__name__ for m, _ in METHODS])
def test_compiled_loop_matches_xla_loop(make, n_hyper, modes, dtype, rtol, final_rtol):
    # 999 points: the last tile of 64 (float32) or 32 (float64) points is partial; 1000 steps: a partial last block
    rng = np.random.default_rng(modes)
    hyper, sigma2, x0 = _points(999, modes, n_hyper, rng)
    with jax.enable_x64(dtype == "float64"):
        args = (tuple(jnp.asarray(h, dtype) for h in hyper), jnp.asarray(sigma2, dtype), jnp.asarray(x0, dtype))
        runs = [
            jax.jit(
                lambda h, s, x, native=use: kernel.chunk_summary(
                    make, h, s, x, 1e-3, 1e10, steps=1000, block=16, native=native
                )
            )(*args)
            for use in (False, True)
        ]
    xla, compiled = ({k: np.asarray(v) for k, v in run.items()} for run in runs)
    settled = (xla["simulated_steps"] < 1000) & ~xla["diverged"]
    assert xla["diverged"].sum() > 20 and settled.sum() > 20 and (xla["simulated_steps"] == 1000).sum() > 20
    for name in COUNTS:
        # the two loops may contract different multiply-adds into FMAs; no count here sits on a rounding boundary
        np.testing.assert_array_equal(compiled[name], xla[name], err_msg=name)
    for name in ("max_error", "rate", "contraction"):
        np.testing.assert_allclose(compiled[name], xla[name], rtol=rtol, atol=0, err_msg=name)
    floor = 2 * np.finfo(dtype).tiny
    np.testing.assert_allclose(compiled["final_error"], xla["final_error"], rtol=final_rtol, atol=floor)


def _edge_points(dtype):
    """GD points (one mode, x(0) = -1) at the edges of the summaries: diverging in the first block, already at step
    1 (lr 1e10), in the last, partial block (rate 10^(10/995): the bound is crossed at step ~995 of 1000), or slowly;
    a state exactly 0 after one step (lr 0.5); states flushed to 0 in the first block (rates 1e-3 to 1e-2, rerun
    rescaled); final errors whose squares underflow (rates 0.93, and 0.5 in float64)."""
    rho = np.array([79.0, 9.0, 3.0, 1e10 - 1, 10 ** (10 / 995), 1.0231, 1.01, 1.0, 0.0, 1e-3, 3e-3, 1e-2, 0.93, 0.5])
    lr = np.concatenate([(1 + rho[:8]) / 2, (1 - rho[8:]) / 2])  # |1 - 2 lr| = rho on sigma2 = 1
    lr = np.concatenate([lr, lr * (1 + 1e-6)])  # and neighbours, in other lanes
    return (lr.astype(dtype),), np.ones((lr.size, 1), dtype), -np.ones((lr.size, 1), dtype)


def _edge_points_momentum(dtype):
    """2-mode EMA momentum points on spectrum [5, 0.05] across the stability boundary and into fast convergence
    (beta near 1, lr near 1/(2 sigma2 beta) for the fast mode)."""
    lr, beta = np.meshgrid(np.geomspace(0.05, 12, 23), [0.05, 0.3, 0.9, 0.999, 1.0], indexing="ij")
    x0 = np.full((lr.size, 2), -np.sqrt(0.5))
    return (lr.ravel().astype(dtype), beta.ravel().astype(dtype)), np.tile([5.0, 0.05], (lr.size, 1)).astype(dtype), x0


@pytest.mark.parametrize("dtype,rtol,final_rtol", [("float32", 2e-4, 2e-3), ("float64", 1e-11, 1e-11)])
@pytest.mark.parametrize("points", [_edge_points, _edge_points_momentum], ids=["gd", "momentum"])
def test_compiled_loop_matches_xla_loop_at_the_edges(points, dtype, rtol, final_rtol):
    """Every summary agrees on diverged points (measured up to their last state within the bound, in any block),
    states below the normal range (rerun rescaled), exact zeros and unstable points that did not diverge."""
    hyper, sigma2, x0 = points(dtype)
    make = dynamics.gd if len(hyper) == 1 else dynamics.momentum
    with jax.enable_x64(dtype == "float64"):
        args = (tuple(jnp.asarray(h) for h in hyper), jnp.asarray(sigma2), jnp.asarray(x0, dtype))
        runs = [
            jax.jit(
                lambda h, s, x, native=use: kernel.chunk_summary(
                    make, h, s, x, 1e-3, 1e10, steps=1000, block=16, native=native
                )
            )(*args)
            for use in (False, True)
        ]
    xla, compiled = ({k: np.asarray(v) for k, v in run.items()} for run in runs)
    assert set(xla) == set(compiled) == set(native.FIELDS)
    for name in COUNTS:
        np.testing.assert_array_equal(compiled[name], xla[name], err_msg=name)
    for name in ("max_error", "rate", "contraction"):
        np.testing.assert_allclose(compiled[name], xla[name], rtol=rtol, atol=0, err_msg=name)
    np.testing.assert_allclose(
        compiled["final_error"], xla["final_error"], rtol=final_rtol, atol=2 * np.finfo(dtype).tiny
    )
    for name in ("final_error", "max_error", "contraction"):
        assert np.all(np.isfinite(compiled[name])), name
    assert xla["diverged"].any() and (~xla["unstable"]).any()
    np.testing.assert_array_equal(xla["contraction"] == 0, xla["rate"] == 0)  # lr 0.5 on sigma2 = 1 only
    if make is dynamics.gd:  # the point set reaches what it is meant to
        assert (xla["diverge_step"] == 1000).any() and (xla["diverge_step"] == 16).any()
        assert (xla["unstable"] & ~xla["diverged"]).sum() >= 2  # rates 1 and 1.01 (1.01^1000 < 1e10)
        assert ((xla["rate"] > 0) & (xla["rate"] < 0.012) & (xla["simulated_steps"] == 16)).sum() >= 4


def _grid(**axes):
    return Grid(tuple(parse_axis(k, v) for k, v in axes.items()))


def test_sweep_records_its_loop_and_falls_back_to_xla(monkeypatch):
    g = _grid(learning_rate="0.01:4:37", beta="0.05:1:29")
    compiled = sweep.sweep("momentum", g, steps=300, tol=1e-3, spectrum=[5, 0.05], progress=False)
    assert compiled.attrs["loop"].startswith("compiled")
    monkeypatch.setattr(native, "loop_for", lambda modes: (False, "XLA while_loop (test)"))
    xla = sweep.sweep("momentum", g, steps=300, tol=1e-3, spectrum=[5, 0.05], progress=False)
    assert xla.attrs["loop"] == "XLA while_loop (test)"
    for name in COUNTS:
        np.testing.assert_array_equal(compiled[name].values, xla[name].values, err_msg=name)
    for name in ("max_error", "contraction"):
        np.testing.assert_allclose(compiled[name].values, xla[name].values, rtol=1e-4, err_msg=name)
    # final errors of early-stopped points come from binary powering: see test_compiled_loop_matches_xla_loop
    np.testing.assert_allclose(compiled.final_error.values, xla.final_error.values, rtol=2e-3, atol=1e-16)


def test_more_modes_than_compiled_use_the_xla_loop():
    spectrum = list(np.geomspace(0.05, 5, native.MAX_MODES + 1))
    ds = sweep.sweep("gd", _grid(learning_rate="0.01:0.3:9"), steps=200, tol=1e-3, spectrum=spectrum, progress=False)
    assert ds.attrs["loop"].startswith("XLA") and str(native.MAX_MODES) in ds.attrs["loop"]
    rho = np.abs(1 - 2 * ds.learning_rate.values[:, None] * np.array(spectrum)[None, :]).max(axis=1)
    np.testing.assert_allclose(ds.rate.values, rho, rtol=1e-6)


def test_disabled_or_failed_builds_say_why(monkeypatch, tmp_path):
    monkeypatch.setenv("SIM_NATIVE", "0")
    assert native.status.__wrapped__() == (False, "disabled by SIM_NATIVE=0")
    monkeypatch.delenv("SIM_NATIVE")
    monkeypatch.setenv("SIM_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", shutil.which("false"))  # a "compiler" that always fails
    available, why = native.status.__wrapped__()
    assert not available and "failed" in why
    assert not list(tmp_path.glob("*.so"))  # nothing half-built is left in the cache


def test_padding_is_not_run_and_does_not_change_the_real_points():
    hyper, sigma2, x0 = _points(300, 2, 2, np.random.default_rng(7))
    args = (tuple(jnp.asarray(h, "float32") for h in hyper), jnp.asarray(sigma2, "float32"), jnp.asarray(x0, "float32"))

    def run(count):
        out = jax.jit(
            lambda h, s, x, c: kernel.chunk_summary(
                dynamics.momentum, h, s, x, 1e-3, 1e10, steps=500, block=16, native=True, count=c
            )
        )(*args, count)
        return {k: np.asarray(v) for k, v in out.items()}

    full, part = run(300), run(123)
    for name in full:
        np.testing.assert_array_equal(part[name][:123], full[name][:123], err_msg=name)
    # not run: the loop leaves the padding's state at 0, so its max error is 0 (a run point's is at least 1)
    assert (part["max_error"][123:] == 0).all() and (full["max_error"][123:] >= 1 - 1e-6).all()
