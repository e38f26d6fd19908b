"""The Monte Carlo engine: against itself (chunks, devices, interruption), against a direct NumPy reduction of every
path, on non-finite and divergent values, and on bad trajectories. The scalar noisy-input problem of
:mod:`sim.noisy.scalar` drives most of these tests; its agreement with the exact moments is in tests/test_noisy_sgd.py.

Statistical tests use confidence intervals from the engine with a Bonferroni correction: each family of K
comparisons is tested at per-comparison level 1 − α/K with family-wise α = 1e-3 (valid under any dependence
between the comparisons, e.g. between recorded steps of the same runs). With a fixed seed each test is
deterministic; a correct implementation fails it for at most 0.1 % of seeds.
"""

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sim.core import io
from sim.core.validate import InputError
from sim.noisy import engine as mc
from sim.noisy import scalar as noisy_sgd
from tests.conftest import DEVICES

ROOT = Path(__file__).resolve().parents[2]
ALPHA = 1e-3
STEPS = 60
RECORD = (0, 1, 2, 5, 10, 20, 60)
CHUNK = 256  # trajectories per device per call (8 devices: 2048 per call)


def _run(x, y, sigma, eta, trajectories=20000, **kw):
    kw = {"steps": STEPS, "record_steps": RECORD, "chunk_size": CHUNK, "progress": False, **kw}
    return noisy_sgd.scalar(x=x, y=y, sigma=sigma, learning_rate=eta, trajectories=trajectories, **kw)


def _all_equal(a, b):
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


# --------------------------------------------------------------------------------------------------------------
# Divergent and non-finite values


def test_divergent_runs_are_flagged_and_excluded():
    # η far past the single-run (Lyapunov) threshold 1.98 (λ ≈ 0.9 per step): almost every run leaves the bound
    ds = _run(1.0, 1.0, 0.5, 3.0, trajectories=4000, sample_paths=5, divergence_bound=1e6)
    frac = ds.w_diverged_fraction.values
    assert frac[0] == 0 and np.all(np.diff(frac) >= 0) and frac[-1] > 0.9
    np.testing.assert_array_equal(ds.w_count.values, np.round((1 - frac) * 4000))
    for name in ds.data_vars:
        assert not np.isnan(ds[name].values).any(), name
    survivors = ds.w_count.values > 1
    bound = ds.attrs["divergence_bound"]
    for name, limit in (("w_mean", bound), ("w_quantile", bound), ("w_var", bound**2)):
        assert np.all(np.abs(ds[name].values[..., survivors]) <= limit), name
    assert ds.w_path_diverged.values[:, -1].any()
    assert "excluded" in ds.attrs["divergence"]


def test_engine_flags_non_finite_values_and_never_outputs_nan():
    def trajectory(key, scale):
        w = jax.random.normal(key, (3,)) * scale
        w = jnp.where(w > 1.0, jnp.inf, jnp.where(w < -1.5, jnp.nan, w))  # a user kernel that overflows
        return {"w": jnp.cumsum(w)}

    ds = mc.monte_carlo(
        trajectory, trajectories=500, record_steps=(1, 2, 3), args=(1.0,), chunk_size=8, sample_paths=50, progress=False
    )
    for name in ds.data_vars:
        assert np.all(np.isfinite(ds[name].values)), name
    frac = ds.w_diverged_fraction.values
    assert 0 < frac[0] < frac[1] < frac[2] < 1
    np.testing.assert_array_equal(ds.w_count.values + np.round(frac * 500), 500)


# --------------------------------------------------------------------------------------------------------------
# The streaming reduction against a direct computation on every path


def test_streaming_estimates_equal_direct_reduction_of_all_paths():
    n = 3000  # not a multiple of the super-block (1024) nor of the 2048 trajectories per call: padding is dropped
    ds = _run(1.0, 1.0, 0.5, 0.6, trajectories=n, sample_paths=n, bins=16384, quantiles=(0, 0.05, 0.5, 0.95, 1))
    paths = ds.w_paths.values
    assert paths.shape == (n, len(RECORD))
    np.testing.assert_allclose(ds.w_mean.values, paths.mean(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ds.w_var.values[1:], paths.var(axis=0, ddof=1)[1:], rtol=1e-10)
    # histogram quantiles: within one bin (in asinh(w / scale)) of the exact sample quantiles
    scale = ds.attrs["quantile_scale"]
    width = 2 * np.arcsinh(ds.attrs["divergence_bound"] / scale) / ds.attrs["bins"]
    exact = np.quantile(paths[:, 1:], ds["quantile"].values, axis=0, method="inverted_cdf")
    ours = ds.w_quantile.values[:, 1:]
    assert np.all(np.abs(np.arcsinh(ours / scale) - np.arcsinh(exact / scale)) <= width)
    # the 95 % interval of the mean is mean ± 1.96 s/√n
    np.testing.assert_allclose(ds.w_mean_ci_high - ds.w_mean, 1.959964 * np.sqrt(ds.w_var / n), rtol=1e-6)


def test_keys_are_derived_from_the_global_trajectory_index():
    ds = _run(1.0, 1.0, 0.5, 0.3, trajectories=40, sample_paths=40, seed=7)
    params = jnp.float32([1.0, 1.0, 0.5, 0.3, mc.DEFAULT_BOUND])
    traj = noisy_sgd._scalar_trajectory(STEPS, RECORD, mc.DEFAULT_BLOCK)
    for i in (0, 17, 39):
        key = jax.random.fold_in(jax.random.key(7, dtype=mc.DEFAULT_PRNG), i)
        np.testing.assert_array_equal(ds.w_paths.values[i], np.asarray(jax.jit(traj)(key, params)["w"]))
    assert ds.attrs["prng"] == "threefry2x32" and "global trajectory index" in ds.attrs["key_derivation"]


def test_vector_trajectories_are_estimated_elementwise():
    scales = jnp.float32([0.5, 1.0, 2.0])

    def walk(key, scales):  # w_t = Σ_{k<t} c ⊙ z_k: mean 0, variance t c² per coordinate
        return {
            "w": mc.simulate(
                lambda w, z: w + scales * z,
                jnp.zeros(3),
                key,
                steps=40,
                record_steps=(0, 10, 40),
                noise_shape=(3,),
                block=8,
            )
        }

    ds = mc.monte_carlo(
        walk,
        trajectories=8000,
        record_steps=(0, 10, 40),
        args=(scales,),
        chunk_size=CHUNK,
        dims={"w": ("coordinate",)},
        confidence=1 - ALPHA / 12,
        progress=False,
    )
    assert ds.w_mean.dims == ("step", "coordinate")
    exact_var = np.array([0, 10, 40])[:, None] * np.asarray(scales)[None, :] ** 2
    assert np.all((ds.w_mean_ci_low.values[1:] <= 0) & (0 <= ds.w_mean_ci_high.values[1:]))
    assert np.all((ds.w_var_ci_low.values[1:] <= exact_var[1:]) & (exact_var[1:] <= ds.w_var_ci_high.values[1:]))


# --------------------------------------------------------------------------------------------------------------
# Results do not depend on how the work is cut


def test_results_do_not_depend_on_chunk_size():
    runs = [_run(1.0, 1.0, 0.5, 1.2, trajectories=2500, sample_paths=3, chunk_size=c) for c in (8, 40, CHUNK)]
    for other in runs[1:]:
        _all_equal(runs[0], other)


def test_results_do_not_depend_on_device_count(tmp_path):
    assert jax.device_count() == DEVICES
    args = {
        "x": 1.0,
        "y": 1.0,
        "sigma": 0.5,
        "learning_rate": 1.2,
        "steps": 50,
        "trajectories": 3000,
        "record_steps": (0, 10, 50),
        "sample_paths": 3,
        "chunk_size": 96,
        "progress": False,
    }
    ours = noisy_sgd.scalar(**args)
    out = tmp_path / "one.nc"
    code = (
        "import jax, sim.core.io as io, sim.noisy.scalar as ns; assert jax.device_count() == 1;"
        f"io.write(ns.scalar(**{args!r}), {str(out)!r})"
    )
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
    back = io.read(out)
    _all_equal(ours, back)
    assert back.attrs["device_count"] == 1 and ours.attrs["device_count"] == DEVICES


def test_interrupted_run_keeps_finished_trajectories(monkeypatch):
    calls = {"n": 0}
    real = mc.tqdm.update

    def update(self, n=1):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, n)

    monkeypatch.setattr(mc.tqdm, "update", update)
    part = _run(1.0, 1.0, 0.5, 0.3, trajectories=10000, chunk_size=8)
    monkeypatch.undo()
    done = part.attrs["trajectories_done"]
    assert part.attrs["complete"] == 0 and 0 < done < 10000
    full = _run(1.0, 1.0, 0.5, 0.3, trajectories=done, chunk_size=8)
    assert full.attrs["complete"] == 1
    _all_equal(part, full)  # exactly the estimates of the first `done` trajectories


def test_results_file_round_trips(tmp_path):
    ds = _run(1.0, 1.0, 0.5, 2.5, trajectories=500, sample_paths=4)
    io.write(ds, tmp_path / "mc.nc")
    back = io.read(tmp_path / "mc.nc")
    _all_equal(ds, back)
    assert back.attrs == ds.attrs and back.w_path_diverged.dtype == bool
    for key in ("prng", "seed", "device_count", "version_jax", "git_revision", "variance_threshold"):
        assert key in back.attrs


def test_bad_trajectory_is_reported_before_compiling():
    with pytest.raises(InputError, match="leading axis") as err:
        mc.monte_carlo(lambda k: {"w": jnp.zeros((3,))}, trajectories=4, record_steps=(0, 1), progress=False)
    assert err.value.param == "trajectory"
    with pytest.raises(InputError) as err:
        mc.monte_carlo(lambda k: jnp.zeros((2,)), trajectories=4, record_steps=(0, 1), progress=False)
    assert err.value.param == "trajectory"
    with pytest.raises(InputError) as err:
        mc.monte_carlo(
            lambda k: {"w": jnp.zeros((2,))}, trajectories=4, record_steps=(0, 1), quantile_of=("v",), progress=False
        )
    assert err.value.param == "quantile_of"


# --------------------------------------------------------------------------------------------------------------
# Benchmark at smoke size


@pytest.mark.slow
def test_benchmark_quick(tmp_path):
    out = tmp_path / "mc.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "mc_throughput.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    result = json.loads(out.read_text())
    assert result["dtype"] == "float32" and result["prng"] == mc.DEFAULT_PRNG and "version_jax" in result["provenance"]
    assert result["sim"]["end_to_end"]["per_s"] > 0 and result["numpy"]["per_s"] > 0


def test_huge_chunk_size_with_few_trajectories_runs_only_what_is_asked():
    # the per-device chunk is clamped to ceil(N / devices): 1e9 would not fit in memory
    def trajectory(key, scale):
        return {"w": jnp.cumsum(jax.random.normal(key, (3,)) * scale)}

    kw = {"trajectories": 7, "record_steps": (1, 2, 3), "args": (1.0,), "sample_paths": 7, "progress": False}
    huge = mc.monte_carlo(trajectory, chunk_size=10**9, **kw)
    default = mc.monte_carlo(trajectory, **kw)
    _all_equal(huge, default)
    assert huge.attrs["chunk_size"] == default.attrs["chunk_size"] == -(-7 // jax.device_count())
    assert int(huge.w_count.values[-1]) == 7


def test_per_output_bounds_exempt_running_sums_and_are_recorded():
    def trajectory(key, scale):
        z = jax.random.normal(key, (3,)) * scale
        return {"w": jnp.cumsum(z), "big": jnp.cumsum(z * z) + 1e12}

    kw = {"trajectories": 64, "record_steps": (1, 2, 3), "args": (1.0,), "chunk_size": 8, "progress": False}
    ds = mc.monte_carlo(trajectory, divergence_bound=1e6, bounds={"big": np.inf}, quantile_of=("w",), **kw)
    assert np.all(ds.big_count.values == 64) and np.all(ds.big_diverged_fraction.values == 0)
    assert ds.big_mean.values[-1] > 1e11  # beyond the bound of w, kept
    assert "big: inf" in ds.attrs["divergence_bounds"] and "w: 1e+06" in ds.attrs["divergence_bounds"]
    with pytest.raises(InputError, match="finite") as err:  # a histogram needs a finite range
        mc.monte_carlo(trajectory, bounds={"big": np.inf}, **kw)
    assert err.value.param == "bounds"
    with pytest.raises(InputError, match="not an output"):
        mc.monte_carlo(trajectory, bounds={"nope": 1.0}, **kw)
