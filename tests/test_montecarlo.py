"""The Monte Carlo engine and the noisy-input problem on it: against the exact moments, against itself (chunks,
devices, interruption), against a direct NumPy reduction of every path, and on bad input.

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
from conftest import DEVICES

from sim import montecarlo as mc
from sim import noisy
from sim.grid import Grid, parse_axis
from sim.validate import InputError

ROOT = Path(__file__).resolve().parent.parent
ALPHA = 1e-3
STEPS = 60
RECORD = (0, 1, 2, 5, 10, 20, 60)
CHUNK = 256  # trajectories per device per call (8 devices: 2048 per call)
# stable points (x, y, σ, η), all with E[(1 − η x̃²)⁴] < 1 so that w has a bounded fourth moment and the variance's
# confidence interval (which needs it) is valid
STABLE = [(1.0, 1.0, 0.5, 0.3), (1.5, -1.0, 0.3, 0.2), (0.5, 2.0, 1.0, 0.25)]


def _run(x, y, sigma, eta, trajectories=20000, **kw):
    kw = {"steps": STEPS, "record_steps": RECORD, "chunk_size": CHUNK, "progress": False, **kw}
    return mc.scalar(x=x, y=y, sigma=sigma, learning_rate=eta, trajectories=trajectories, **kw)


def _fourth_moment_factor(x, sigma, eta):
    nodes, weights = np.polynomial.hermite_e.hermegauss(20)  # exact for polynomials of degree < 40
    a = 1 - eta * (x + sigma * nodes) ** 2
    return float(np.sum(weights * a**4) / np.sqrt(2 * np.pi))


def _all_equal(a, b):
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


# --------------------------------------------------------------------------------------------------------------
# Against the exact moments


def test_mean_and_variance_inside_confidence_intervals_of_exact_recursion():
    k = len(STABLE) * (len(RECORD) - 1) * 2
    level = 1 - ALPHA / k
    for x, y, s, eta in STABLE:
        assert _fourth_moment_factor(x, s, eta) < 1
        ds = _run(x, y, s, eta, confidence=level).isel(step=slice(1, None))
        for stat in ("mean", "var"):
            exact = ds[f"exact_{stat}"].values
            lo, hi = ds[f"w_{stat}_ci_low"].values, ds[f"w_{stat}_ci_high"].values
            assert np.all((lo <= exact) & (exact <= hi)), (x, y, s, eta, stat, lo, exact, hi)
        assert (ds.w_count == 20000).all() and (ds.w_diverged_fraction == 0).all()
        assert ds.attrs["confidence"] == level


def test_float64_run_matches_exact_moments():
    with jax.enable_x64(True):
        ds = _run(1.0, 1.0, 0.5, 0.3, trajectories=4000, dtype="float64", confidence=1 - ALPHA / 6)
    assert ds.attrs["dtype"] == "float64"
    d = ds.isel(step=slice(1, None))
    assert np.all((d.w_mean_ci_low <= d.exact_mean) & (d.exact_mean <= d.w_mean_ci_high))


def _moments_trajectory(key, params):
    """A user trajectory on the generic engine: w and w² (so E w² gets its own confidence interval)."""
    x, y, sigma, eta = (params[i] for i in range(4))

    def step(w, z):
        xt = x + sigma * z
        return w - eta * xt * (xt * w - y)

    w = mc.simulate(step, jnp.zeros((), params.dtype), key, steps=STEPS, record_steps=RECORD)
    return {"w": w, "w2": w * w}


def test_second_moment_recursion_against_monte_carlo():
    k = len(STABLE) * (len(RECORD) - 1)
    for x, y, s, eta in STABLE:
        ds = mc.monte_carlo(
            _moments_trajectory,
            trajectories=20000,
            record_steps=RECORD,
            args=(np.float32([x, y, s, eta]),),
            chunk_size=CHUNK,
            confidence=1 - ALPHA / k,
            quantiles=(),
            progress=False,
        ).isel(step=slice(1, None))
        exact = noisy.second_moment(ds.step.values, x=x, y=y, sigma=s, learning_rate=eta)
        assert np.all((ds.w2_mean_ci_low.values <= exact) & (exact <= ds.w2_mean_ci_high.values))
        # the same runs through scalar(): identical w (same keys, same draws)
        np.testing.assert_allclose(ds.w_mean, _run(x, y, s, eta).w_mean.values[1:], rtol=1e-6)


def test_between_the_thresholds_average_settles_while_variance_grows():
    """σ = 0.5, x = 1: variance threshold 0.930, mean threshold 1.6; η = 1.2 lies between them."""
    x, y, s, eta = 1.0, 1.0, 0.5, 1.2
    steps = 200
    ds = mc.scalar(
        x=x,
        y=y,
        sigma=s,
        learning_rate=eta,
        steps=steps,
        trajectories=20000,
        record_steps=(0, 1, 2, 3, 100, 200),
        chunk_size=CHUNK,
        confidence=1 - ALPHA / 6,
        progress=False,
    )
    assert ds.attrs["variance_threshold"] < eta < ds.attrs["mean_threshold"]
    assert ds.attrs["second_moment_factor"] > 1 and ds.attrs["lyapunov_exponent"] < 0
    exact_var = ds.exact_var.values
    assert exact_var[-1] > 1e30 * exact_var[2]  # Var w_t = O(q^t), q = 1.50
    # the first steps are still within reach of N runs: MC and exact agree
    for stat in ("mean", "var"):
        e, lo, hi = (ds[f"{k}"].values[1:4] for k in (f"exact_{stat}", f"w_{stat}_ci_low", f"w_{stat}_ci_high"))
        assert np.all((lo <= e) & (e <= hi))
    # typical runs settle: the 5–95 % band and the median are the same at T/2 and T (a stationary law)
    q = ds.w_quantile.sel(quantile=[0.05, 0.5, 0.95]).values
    np.testing.assert_allclose(q[:, -1], q[:, -2], atol=0.1)
    assert abs(float(ds.w_quantile.sel(quantile=0.5).values[-1]) - ds.attrs["mean_limit"]) < 0.3
    # but the sample variance of those runs misses E w_T² by tens of orders of magnitude: rare runs carry it
    assert ds.w_var.values[-1] < 1e-20 * exact_var[-1]


def test_divergent_runs_are_flagged_and_excluded():
    # η far past the single-run (Lyapunov) threshold 1.98 (λ ≈ 0.9 per step): almost every run leaves the bound
    ds = _run(1.0, 1.0, 0.5, 3.0, trajectories=4000, sample_paths=5, bound=1e6)
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
    traj = mc._scalar_trajectory(STEPS, RECORD, mc.DEFAULT_BLOCK)
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
    ours = mc.scalar(**args)
    out = tmp_path / "one.nc"
    code = (
        "import jax, sim.montecarlo as mc; assert jax.device_count() == 1;"
        f"mc.write(mc.scalar(**{args!r}), {str(out)!r})"
    )
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
    back = mc.read(out)
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
    mc.write(ds, tmp_path / "mc.nc")
    back = mc.read(tmp_path / "mc.nc")
    _all_equal(ds, back)
    assert back.attrs == ds.attrs and back.w_path_diverged.dtype == bool
    for key in ("prng", "seed", "device_count", "version_jax", "git_revision", "variance_threshold"):
        assert key in back.attrs


# --------------------------------------------------------------------------------------------------------------
# The (η, σ) sweep


@pytest.fixture(scope="module")
def sweep():
    # σ chosen so that no threshold lies within 0.15 grid steps of a grid η (a point AT a threshold is a coin flip)
    grid = Grid((parse_axis("learning_rate", "0.05:2.45:49"), parse_axis("sigma", "0.2,0.6,1.2")))
    return mc.scalar_sweep(
        grid,
        steps=100,
        trajectories=512,
        chunk_size=32,
        point_chunk=64,
        progress=False,
        confidence=1 - ALPHA / (2 * 49 * 3),
    )


def test_sweep_flips_where_theory_says(sweep):
    eta = sweep.learning_rate.values
    step = eta[1] - eta[0]
    for name, exact, flag, theory, threshold in (
        ("mean_factor", "exact_mean_factor", "mean_converges", "theory_mean_converges", noisy.mean_threshold),
        (
            "second_moment_factor",
            "exact_second_moment_factor",
            "variance_bounded",
            "theory_variance_bounded",
            noisy.variance_threshold,
        ),
    ):
        e, lo, hi = sweep[exact].values, sweep[f"{name}_ci_low"].values, sweep[f"{name}_ci_high"].values
        assert np.all((lo <= e) & (e <= hi)), name  # the MC factor's CI covers the exact factor at every point
        edge = -1.0 if name == "mean_factor" else 1.0
        resolved = (edge < lo) | (edge > hi)  # points whose CI excludes the threshold value: MC decides them
        assert resolved.mean() > 0.97
        np.testing.assert_array_equal(sweep[flag].values[resolved], sweep[theory].values[resolved], err_msg=name)
        for j, s in enumerate(sweep.sigma.values):
            first_off = eta[np.argmin(sweep[flag].values[:, j])]
            assert abs(first_off - threshold(1.0, s)) < step, (name, s)  # the flip is at the theoretical threshold
    for j, s in enumerate(sweep.sigma.values):
        lam = noisy.lyapunov_threshold(1.0, s)
        settle = sweep.runs_settle.values[:, j]
        assert np.all(settle[eta < lam - 2 * step]) and not np.any(settle[eta > lam + 2 * step])


def test_sweep_shows_the_heavy_tail_between_the_thresholds(sweep):
    s = sweep.isel(sigma=1)  # σ = 0.6: variance threshold 0.77, mean threshold 1.47, runs settle below 1.9
    eta = s.learning_rate.values
    between = (eta > noisy.variance_threshold(1.0, 0.6)) & (eta < noisy.mean_threshold(1.0, 0.6))
    # the sample second moment of 512 runs grows far slower than log q (rare runs carry E w²), yet no run diverges
    assert np.all(s.w_second_moment_growth.values[between] < 0.5 * np.log(s.exact_second_moment_factor.values[between]))
    assert np.all(s.diverged_fraction.values[between] == 0)
    assert not np.isnan(np.concatenate([sweep[k].values.ravel().astype(float) for k in sweep.data_vars])).any()


def test_sweep_does_not_depend_on_point_chunking(sweep):
    grid = Grid((parse_axis("learning_rate", "0.05:2.45:49"), parse_axis("sigma", "0.6")))
    other = mc.scalar_sweep(
        grid,
        steps=100,
        trajectories=512,
        chunk_size=32,
        point_chunk=64,
        progress=False,
        confidence=sweep.attrs["confidence"],
    )
    for name in other.data_vars:
        np.testing.assert_array_equal(other[name].values[..., 0], sweep[name].values[..., 1], err_msg=name)


# --------------------------------------------------------------------------------------------------------------
# Bad input


def _grid(**axes):
    return Grid(tuple(parse_axis(k, v) for k, v in axes.items()))


GOOD = {"x": 1.0, "y": 1.0, "sigma": 0.5, "learning_rate": 0.3, "steps": 10, "trajectories": 10, "progress": False}


@pytest.mark.parametrize(
    "override,param",
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"sigma": -0.1}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"x": 0.0, "sigma": 0.0}, "sigma"),
        ({"x": float("inf")}, "x"),
        ({"y": "one"}, "y"),
        ({"x": [1.0, 2.0]}, "x"),
        ({"steps": 0}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"trajectories": 0}, "trajectories"),
        ({"trajectories": 2**33}, "trajectories"),
        ({"record_steps": (0, 11)}, "record_steps"),
        ({"record_steps": (5, 2)}, "record_steps"),
        ({"record_steps": (-1, 2)}, "record_steps"),
        ({"record_steps": ()}, "record_steps"),
        ({"chunk_size": 4}, "chunk_size"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"quantiles": (0.5, 1.5)}, "quantiles"),
        ({"sample_paths": 11}, "sample_paths"),
        ({"bound": 0.0}, "bound"),
        ({"confidence": 1.0}, "confidence"),
        ({"block": 0}, "block"),
        ({"bins": 4}, "bins"),
        ({"dtype": "float16"}, "dtype"),
        ({"prng": "rbg"}, "prng"),
        ({"prng": "unsafe_rbg"}, "prng"),
        ({"prng": "philox4x32"}, "prng"),  # fails to compile on several devices (8 here) in jax 0.10.2
    ],
)
def test_bad_scalar_input_names_the_parameter(override, param):
    with pytest.raises(InputError) as err:
        mc.scalar(**{**GOOD, **override})
    assert err.value.param == param


@pytest.mark.parametrize(
    "axes,kw,param",
    [
        ({"learning_rate": "0.1:1:3"}, {}, "sigma"),
        ({"sigma": "0.1:1:3"}, {}, "learning_rate"),
        ({"learning_rate": "0.1:1:3", "sigma": "0.5", "beta": "0.5"}, {}, "beta"),
        ({"learning_rate": "-0.1,0.5", "sigma": "0.5"}, {}, "learning_rate"),
        ({"learning_rate": "0.1,0.5", "sigma": "-0.5,0.5"}, {}, "sigma"),
        ({"learning_rate": "0.1,0.5", "sigma": "0.5", "x": "1,2"}, {"x": 1.0}, "x"),
        ({"learning_rate": "0.1,0.5", "sigma": "0,0.5", "x": "0,1"}, {}, "sigma"),
        ({"learning_rate": "0.1,0.5", "sigma": "0.5"}, {"steps": 1}, "steps"),
        ({"learning_rate": "0.1,0.5", "sigma": "0.5"}, {"point_chunk": 0}, "point_chunk"),
        ({"learning_rate": "0.1:1:30", "sigma": "0.1:1:30"}, {"max_points": 100}, "grid"),
    ],
)
def test_bad_sweep_input_names_the_parameter(axes, kw, param):
    with pytest.raises(InputError) as err:
        mc.scalar_sweep(_grid(**axes), **{"steps": 10, "trajectories": 8, "progress": False, **kw})
    assert err.value.param == param


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
# Figures and benchmark at smoke size


@pytest.mark.parametrize("name", ["mc_scalar_paths", "mc_boundaries"])
def test_figures_render_at_quick_size(name, tmp_path):
    from sim import figures_mc
    from sim.plotting import fixed_style, save

    config = getattr(figures_mc, f"{name.upper()}_QUICK")
    assert set(config) <= set(getattr(figures_mc, f"{name.upper()}_FULL"))
    ds = getattr(figures_mc, f"compute_{name}")(**config, progress=False)
    for var in ds.data_vars:
        assert not np.isnan(np.asarray(ds[var].values, dtype=float)).any(), var
    with fixed_style():
        path = save(getattr(figures_mc, f"plot_{name}")(ds), tmp_path / f"{name}.png")
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 20_000
    if name == "mc_boundaries":  # the drawn curves are the closed forms
        np.testing.assert_allclose(ds.variance_threshold, noisy.variance_threshold(1.0, ds.sigma_curve.values))
        np.testing.assert_allclose(ds.mean_threshold, noisy.mean_threshold(1.0, ds.sigma_curve.values))


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
