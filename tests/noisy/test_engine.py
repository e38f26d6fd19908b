"""The Monte Carlo engine: against itself (chunks, devices, interruption), against a direct NumPy reduction of every
path, on non-finite and divergent values, and on bad trajectories. The scalar noisy-input problem of
:mod:`sim.noisy.scalar` drives most of these tests; its agreement with the exact moments is in tests/test_noisy_sgd.py.

Statistical tests use confidence intervals from the engine with a Bonferroni correction: each family of K
comparisons is tested at per-comparison level 1 − α/K with family-wise α = 1e-3 (valid under any dependence
between the comparisons, e.g. between recorded steps of the same runs). With a fixed seed each test is
deterministic; a correct implementation fails it for at most 0.1 % of seeds.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sim.core import io
from sim.core.validate import InputError
from sim.noisy import engine as mc
from sim.noisy import scalar as noisy_sgd
from sim.noisy import streaming
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
    traj = jax.jit(noisy_sgd._scalar_trajectory(STEPS, RECORD, mc.DEFAULT_BLOCK))
    for i in (0, 17, 39):
        key = jax.random.fold_in(jax.random.key(7, dtype=mc.DEFAULT_PRNG), i)
        np.testing.assert_array_equal(ds.w_paths.values[i], np.asarray(traj(key, params)["w"]))
    assert ds.attrs["prng"] == mc.DEFAULT_PRNG == "philox4x32"
    assert "global trajectory index" in ds.attrs["key_derivation"]


def _walk(key, scale):  # a sum of 5 normals drawn in blocks of 2: w_t = Σ_{k<t} scale z_k, recorded at 1, 3 and 5
    return {"w": mc.simulate(lambda w, z: w + scale * z, jnp.zeros(()), key, steps=5, record_steps=(1, 3, 5), block=2)}


@pytest.mark.parametrize(  # threefry2x32 (not the default) takes 15 s: slow
    "prng", [p if p == mc.DEFAULT_PRNG else pytest.param(p, marks=pytest.mark.slow) for p in mc.PRNGS]
)
def test_draws_depend_only_on_seed_and_trajectory_index(prng):
    """Trajectory i's draws are those of ``fold_in(key(seed), i)`` alone, on any device, in any chunk."""
    n = 3000
    kw = {"trajectories": n, "record_steps": (1, 3, 5), "args": (1.0,), "sample_paths": n, "prng": prng}
    runs = [mc.monte_carlo(_walk, chunk_size=c, progress=False, **kw) for c in (8, 1000, 4096)]
    assert [r.attrs["chunk_size"] for r in runs] == [8, 1000, 1504]  # 375, 3 and 2 calls (on 8, 3 and 2 devices)
    paths = runs[0].w_paths.values
    for other in runs[1:]:
        np.testing.assert_array_equal(other.w_paths.values, paths)
    one = jax.jit(_walk)
    for i, device in zip((0, 5, 1023, 1024, 2999), jax.devices()[3:], strict=False):  # alone, on another device
        key = jax.device_put(jax.random.fold_in(jax.random.key(0, dtype=prng), i), device)
        alone = one(key, jax.device_put(jnp.float32(1.0), device))["w"]
        assert alone.devices() == {device}
        np.testing.assert_array_equal(paths[i], np.asarray(alone))
    assert len(np.unique(paths[:, -1])) == n  # distinct trajectories draw distinct numbers
    other_seed = mc.monte_carlo(_walk, seed=1, chunk_size=4096, progress=False, **kw)
    assert not np.any(other_seed.w_paths.values[:, -1] == paths[:, -1])


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


def test_one_recorded_step_does_not_depend_on_chunk_size():
    # one recorded element: each super-block's sums run along a contiguous axis (NumPy's pairwise summation), and
    # calls of 1000, 560 and 1256 trajectories cut super-blocks (1024) that the merge joins
    kw = {"trajectories": 5000, "record_steps": (5,), "args": (1.0,), "sample_paths": 2, "progress": False}
    walk5 = lambda key, scale: {"w": _walk(key, scale)["w"][-1:]}  # noqa: E731
    runs = [mc.monte_carlo(walk5, chunk_size=c, **kw) for c in (1000, 600, 4096)]
    assert [r.attrs["chunk_size"] for r in runs] == [1000, 560, 1256]
    for other in runs[1:]:
        _all_equal(runs[0], other)
    assert int(runs[0].w_count[0]) == 5000 and abs(float(runs[0].w_var[0]) - 5.0) < 0.5  # Var of a sum of 5 normals


def test_partials_merged_in_any_order_give_the_same_bits():
    """The reduction alone: a cut of 10,000 rows into uneven chunks, added in shuffled order, against one chunk."""
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((10_000, 4)).astype(np.float32) * np.float32(3)
    rows[rng.random(rows.shape) < 1e-3] = np.inf  # some diverge
    shapes = {"w": (4,)}  # 4 recorded steps of a scalar
    spec = {"quantiles": np.array([0.1, 0.5]), "sample_paths": 5}

    def reduced(cuts, order):
        acc = streaming.Accumulator(shapes, spec, ("w",), 64, 1.0, {"w": 1e6})
        parts = [acc.reduce({"w": rows[a:b]}, a) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        for k in order:
            acc.add(parts[k])
        acc.finish()
        return acc.dataset({"w": ()}, 1.96, np.arange(4), {})

    whole = reduced([0, 10_000], [0])
    cuts = [0, 3, 1024, 1030, 2048, 5000, 5001, 9999, 10_000]
    shuffled = reduced(cuts, rng.permutation(len(cuts) - 1))
    _all_equal(whole, shuffled)
    assert whole.attrs == {} and int(whole.w_count[-1]) < 10_000  # the diverged rows are excluded


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
        "sample_paths": 3000,  # every trajectory's draws, too
        "chunk_size": 96,
        "progress": False,
    }
    ours = noisy_sgd.scalar(**args)
    out = tmp_path / "one.nc"
    code = (
        "import jax, sim.core.io as io, sim.noisy.scalar as ns; assert jax.device_count() == 1;"
        f"io.write(ns.scalar(**{args!r}), {str(out)!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=_one_device_env(), cwd=ROOT)
    back = io.read(out)
    _all_equal(ours, back)
    assert back.attrs["device_count"] == 1 and ours.attrs["device_count"] == DEVICES


def _one_device_env():
    return {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def test_sigint_keeps_the_finished_trajectories(monkeypatch):
    """The first SIGINT stops launching; the calls in flight finish; the estimates are those of the prefix run."""
    real, added = streaming.Accumulator.add, []

    def add(self, partial):
        real(self, partial)
        added.append(partial.stop)
        if len(added) == 3:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)  # the main thread takes the signal: no call is launched after this one is added

    monkeypatch.setattr(streaming.Accumulator, "add", add)
    part = _run(1.0, 1.0, 0.5, 0.3, trajectories=100_000, chunk_size=64, sample_paths=5)
    monkeypatch.undo()
    done = part.attrs["trajectories_done"]
    assert part.attrs["complete"] == 0 and part.attrs["stopped_by_signal"] == signal.SIGINT
    assert 3 * 64 <= done < 100_000 and done % 64 == 0 and done == max(added)
    assert int(part.w_count[0]) == done
    full = _run(1.0, 1.0, 0.5, 0.3, trajectories=done, chunk_size=64, sample_paths=5)
    assert full.attrs["complete"] == 1 and full.attrs["stopped_by_signal"] == 0
    _all_equal(part, full)  # exactly the estimates of the first `done` trajectories


SIGTERM_SCRIPT = """
import sys, time
import sim.core.io as io, sim.noisy.scalar as ns
from sim.noisy import streaming
real = streaming.Accumulator.add
def add(self, partial):  # slowed down: the run takes minutes, so the signal comes while it runs
    real(self, partial)
    if partial.start == 0:
        print("started", flush=True)
    time.sleep(0.05)
streaming.Accumulator.add = add
ds = ns.scalar(**ARGS)
io.write(ds, OUT)
sys.exit(128 + ds.attrs["stopped_by_signal"] if not ds.attrs["complete"] else 0)
"""


def test_sigterm_in_a_subprocess_keeps_the_finished_trajectories(tmp_path):
    args = {"x": 1.0, "y": 1.0, "sigma": 0.5, "learning_rate": 0.3, "steps": 20, "record_steps": (0, 10, 20)}
    args |= {"trajectories": 10**6, "chunk_size": 128, "sample_paths": 2, "progress": False}
    out = tmp_path / "stopped.nc"
    code = SIGTERM_SCRIPT.replace("ARGS", repr(args)).replace("OUT", repr(str(out)))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=_one_device_env())
    try:
        assert proc.stdout.readline().strip() == "started"
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM
    part = io.read(out)
    done = part.attrs["trajectories_done"]
    assert part.attrs["complete"] == 0 and part.attrs["stopped_by_signal"] == signal.SIGTERM
    assert 128 <= done < 10**6 and done % 128 == 0
    full = noisy_sgd.scalar(**{**args, "trajectories": done})  # here on 8 devices
    _all_equal(part, full)


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
    cli = result["cli"]  # the real command, in a subprocess, on the same problem as NumPy's
    assert cli["prng"] == mc.DEFAULT_PRNG and cli["records"] == result["numpy_cli_records"]["records"]
    assert cli["end_to_end"]["per_s"] > 0 and "x_numpy_end_to_end" in result["targets"]
    assert abs(cli["mc_mean_at_T"] - cli["exact_mean_at_T"]) < 0.05  # real runs: N = 16384, standard error 0.0014
    for entry in result["prng_comparison_one_device"]:
        if entry["impl"] in mc.PRNGS:
            assert entry["sim.noisy.engine.normal"]["batch_invariant"], entry["impl"]


def test_huge_chunk_size_with_few_trajectories_runs_only_what_is_asked():
    # the call is sized to N (rounded up to 8): 1e9 would not fit in memory
    def trajectory(key, scale):
        return {"w": jnp.cumsum(jax.random.normal(key, (3,)) * scale)}

    kw = {"trajectories": 7, "record_steps": (1, 2, 3), "args": (1.0,), "sample_paths": 7, "progress": False}
    huge = mc.monte_carlo(trajectory, chunk_size=10**9, **kw)
    default = mc.monte_carlo(trajectory, **kw)
    _all_equal(huge, default)
    assert huge.attrs["chunk_size"] == default.attrs["chunk_size"] == 8
    assert int(huge.w_count.values[-1]) == 7


def test_calls_are_sized_evenly_and_spread_over_the_devices():
    assert mc.chunking(2**20, 16384, 2) == (64, 16384)
    assert mc.chunking(10**6, 16384, 2) == (62, 16136)  # 62 even calls, not 61 full ones and a nearly empty one
    assert mc.chunking(3000, 4096, 8) == (2, 1504)  # one per device while each gets a super-block (1024) or more
    assert mc.chunking(500, 4096, 8) == (1, 504)  # fewer: one device (each device compiles the kernel)
    assert mc.chunking(2500, 12, 8) == (313, 8)  # multiples of 8


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
