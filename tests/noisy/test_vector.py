"""Noisy-input SGD with m points in n dimensions (:mod:`sim.noisy.vector`): Monte Carlo against the exact mean and
second moment, the exact mean against ridge and least squares, the filter factors, the data loader and bad input.

Statistical tests use the engine's confidence intervals with a Bonferroni correction: a family of K comparisons is
tested at per-comparison level 1 − α/K with family-wise α = 1e-3. With a fixed seed each test is deterministic; a
correct implementation fails it for at most 0.1 % of seeds.
"""

import jax
import numpy as np
import pytest

from sim.core.validate import InputError
from sim.noisy import scalar as noisy
from sim.noisy import vector as nv
from sim.regression import designs as datasets
from sim.regression import ridge

ALPHA = 1e-3
SHAPE = (16, 4)  # m points in n dimensions; X's singular values 6, 2.78, 1.29, 0.6 (XᵀX/m from 2.25 to 0.0225)
SIGMA = 0.5  # ridge λ = mσ² = 4; A = XᵀX/m + σ²I has eigenvalues 2.5 … 0.2725, mean threshold 2/2.5 = 0.8
ETA = 0.1  # second-moment factor 0.947 < 1: bounded variance
STEPS = 600  # (1 − η a_min)^T = 6e-8: the mean is at its limit by T
RECORD = (0, 1, 5, 20, 100, STEPS)
DECAY = 50.0  # η_T = η/13
N = 8192
CASES = {"minibatch": (4, None), "decay": (4, DECAY), "full": (16, None)}  # (batch size, decay)
K = len(CASES) * (2 * SHAPE[1] + 1) * (len(RECORD) - 1)  # mean and variance per coordinate, E‖w − w_ridge‖²


# its module-scoped fixtures are costly: one xdist worker runs the whole module (pyproject: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("noisy.test_vector")


@pytest.fixture(scope="module")
def problem():
    return datasets.synthetic_problem(shape=SHAPE, seed=1)


@pytest.fixture(scope="module")
def runs(problem):
    x, y = problem
    kw = {"sigma": SIGMA, "learning_rate": ETA, "steps": STEPS, "trajectories": N, "record_steps": RECORD}
    kw |= {"chunk_size": 256, "sample_paths": 4, "block": 8, "confidence": 1 - ALPHA / K, "progress": False}
    return {name: nv.vector(x, y, batch_size=b, decay=tau, **kw) for name, (b, tau) in CASES.items()}


def _direct_mean(x, y, sigma, eta, steps, decay=None):
    """E w_{t+1} = E w_t − η_t (A E w_t − c), step by step in float64."""
    m, n = x.shape
    a, c = x.T @ x / m + sigma**2 * np.eye(n), x.T @ y / m
    w, out = np.zeros(n), [np.zeros(n)]
    for t in range(steps):
        w = w - eta / (1 + (t / decay if decay else 0)) * (a @ w - c)
        out.append(w)
    return np.array(out)


# --------------------------------------------------------------------------------------------------------------
# Monte Carlo against the exact moments


@pytest.mark.parametrize("case", CASES)
def test_monte_carlo_inside_confidence_intervals_of_exact_moments(runs, case):
    ds = runs[case].isel(step=slice(1, None))
    for mc, exact in (("w_mean", "exact_mean"), ("w_var", "exact_var"), ("sq_dist_mean", "exact_sq_dist")):
        lo, hi, e = ds[f"{mc}_ci_low"].values, ds[f"{mc}_ci_high"].values, ds[exact].values
        assert np.all((lo <= e) & (e <= hi)), (case, mc, lo, e, hi)
    assert (ds.w_count == N).all() and (ds.w_diverged_fraction == 0).all()
    assert ds.attrs["second_moment_factor"] < 1 and ds.attrs["confidence"] == 1 - ALPHA / K


def test_exact_mean_closed_form_equals_the_recursion(problem):
    x, y = problem
    wide = x[:3]  # m = 3 < n = 4: a null space where the mean stays 0
    for data in ((x, y), (wide, y[:3])):
        for decay in (None, 7.0):
            direct = _direct_mean(*data, SIGMA, 0.3, 200, decay)
            t = np.arange(201)
            closed = nv.exact_mean(*data, sigma=SIGMA, learning_rate=0.3, t=t, decay=decay)
            recursion, _ = nv.exact_moments(
                *data, sigma=SIGMA, learning_rate=0.3, batch_size=2, record_steps=t, decay=decay
            )
            np.testing.assert_allclose(closed, direct, rtol=0, atol=1e-13)
            np.testing.assert_allclose(recursion, direct, rtol=0, atol=1e-13)


@pytest.mark.parametrize("x,y,sigma,eta", [(1.0, 1.0, 0.5, 0.3), (1.5, -1.0, 0.3, 0.2), (0.5, 2.0, 1.0, 1.2)])
def test_one_point_in_one_dimension_is_the_scalar_problem(x, y, sigma, eta):
    t = np.arange(40)
    kw = {"x": x, "y": y, "sigma": sigma, "learning_rate": eta}
    mean, second = nv.exact_moments([[x]], [y], sigma=sigma, learning_rate=eta, batch_size=1, record_steps=t)
    np.testing.assert_allclose(mean[:, 0], noisy.mean(t, **kw), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(second[:, 0, 0], noisy.second_moment(t, **kw), rtol=1e-12, atol=1e-15)
    factor = nv.second_moment_factor([[x]], sigma=sigma, learning_rate=eta, batch_size=1)
    np.testing.assert_allclose(factor, noisy.second_moment_factor(x, sigma, eta), rtol=1e-13)
    assert nv.mean_threshold([[x]], sigma=sigma) == pytest.approx(noisy.mean_threshold(x, sigma), rel=1e-13)


def test_second_moment_factor_is_the_growth_rate_of_the_second_moment(problem):
    x, y = problem
    for eta, batch in ((0.1, 4), (0.6, 4), (0.6, 16)):
        rho = nv.second_moment_factor(x, sigma=SIGMA, learning_rate=eta, batch_size=batch)
        _, second = nv.exact_moments(x, y, sigma=SIGMA, learning_rate=eta, batch_size=batch, record_steps=(800, 801))
        trace = np.trace(second, axis1=1, axis2=2)
        if rho < 1:
            assert abs(trace[1] / trace[0] - 1) < 1e-9  # settled (the mean's transient is 2e-10 by now)
        else:
            assert trace[1] / trace[0] == pytest.approx(rho, rel=1e-9)
    # stricter than the mean: η = 0.6 < 2/λ_max(A) = 0.8, yet E‖w_t‖² grows
    assert nv.second_moment_factor(x, sigma=SIGMA, learning_rate=0.6, batch_size=4) > 1
    assert 0.6 < nv.mean_threshold(x, sigma=SIGMA)
    # a bigger batch averages gradient noise away: a smaller factor at the same step, never below the factor of the
    # mean's outer product, max_i (1 − η a_i)² (E[M S Mᵀ] ⪰ E[M] S E[M]ᵀ for S ⪰ 0)
    factors = [nv.second_moment_factor(x, sigma=SIGMA, learning_rate=0.3, batch_size=b) for b in (1, 4, 16)]
    a = np.linalg.eigvalsh(x.T @ x / SHAPE[0] + SIGMA**2 * np.eye(SHAPE[1]))
    assert factors[0] > factors[1] > factors[2] > np.max((1 - 0.3 * a) ** 2)


# --------------------------------------------------------------------------------------------------------------
# Where the mean goes: ridge with λ = mσ², not least squares


def test_exact_mean_converges_to_ridge_not_least_squares(problem):
    x, y = problem
    m = x.shape[0]
    with jax.enable_x64(True):
        w_ridge = np.asarray(ridge.ridge_primal(x, y, lam=m * SIGMA**2))
        w_ls = np.asarray(ridge.lstsq_svd(x, y))
        limit = nv.exact_mean(x, y, sigma=SIGMA, learning_rate=0.5, t=[10**5])[0]
        np.testing.assert_allclose(limit, w_ridge, rtol=1e-12, atol=1e-14)
        assert np.linalg.norm(limit - w_ls) > 0.5 * np.linalg.norm(w_ls)
        # σ → 0 on tall X: least squares, within ridge's bound ‖ŵ_λ − ŵ₀‖ ≤ (λ/s_min²)‖ŵ₀‖ with λ = mσ²
        s_min = np.linalg.svd(x, compute_uv=False)[-1]
        for sigma in (0.0, 1e-3, 1e-2):
            eta = 0.9 * nv.mean_threshold(x, sigma=sigma)
            limit = nv.exact_mean(x, y, sigma=sigma, learning_rate=eta, t=[10**6])[0]
            gap = np.linalg.norm(limit - w_ls)
            assert gap <= m * sigma**2 / s_min**2 * np.linalg.norm(w_ls) + 1e-12, sigma
        # wide X, σ = 0: the min-norm interpolant
        wide, yw = x[:3], y[:3]
        limit = nv.exact_mean(wide, yw, sigma=0.0, learning_rate=0.5, t=[10**6])[0]
        np.testing.assert_allclose(limit, np.asarray(ridge.min_norm(wide, yw)), rtol=1e-10, atol=1e-12)


def test_solutions_and_distances_in_the_dataset(runs, problem):
    x, y = problem
    ds = runs["minibatch"]
    with jax.enable_x64(True):
        np.testing.assert_allclose(ds.w_ridge, ridge.ridge_primal(x, y, lam=SHAPE[0] * SIGMA**2), rtol=1e-12)
        np.testing.assert_allclose(ds.w_lstsq, ridge.lstsq_svd(x, y), rtol=1e-12)
    final = ds.isel(step=-1)
    gap = float(np.linalg.norm(ds.w_ridge - ds.w_lstsq))
    assert final.exact_mean_dist_ridge < 1e-6 * gap and final.exact_mean_dist_lstsq == pytest.approx(gap, rel=1e-6)
    # the Monte Carlo mean is within its CI of ridge: its distance is below the CI half-widths' norm
    half = (final.w_mean_ci_high - final.w_mean).values
    assert final.mean_dist_ridge <= np.linalg.norm(half) and final.mean_dist_lstsq > 0.9 * gap
    np.testing.assert_allclose(ds.path_dist_ridge, np.linalg.norm(ds.w_paths - ds.w_ridge, axis=-1))


def test_decaying_step_ends_close_to_ridge(runs):
    """With η_t = η/(1 + t/τ) single runs end within a radius set by E = E‖w_T − w_ridge‖², which the exact second
    moment gives for the schedule (it shrinks roughly like η_T: here η_T/η = 1/13 and E is 10× the constant step's).

    Tolerances, from Markov's inequality P(‖w_T − w_ridge‖² > E/δ) ≤ δ:
    - all runs: at most 4 % lie beyond √(25 E), so the histogram 95 % quantile of N = 8192 runs exceeds it (by more
      than its one-bin resolution, < 1 %) only if ≥ 410 runs (expected ≤ 328, sd 18) do: probability < 1e-5;
    - each of the 4 kept runs lies within √(4E/α) except with probability α/4 (family-wise α)."""
    decay, constant = runs["decay"].isel(step=-1), runs["minibatch"].isel(step=-1)
    gap = float(np.linalg.norm(runs["decay"].w_ridge - runs["decay"].w_lstsq))
    spread = float(decay.exact_sq_dist)
    assert spread < 0.2 * float(constant.exact_sq_dist)
    assert np.sqrt(25 * spread) < 0.15 * gap  # 95 % of runs end far closer to ridge than ridge is to least squares
    assert float(decay.sq_dist_quantile.sel(quantile=0.95)) <= 25 * spread * 1.01
    assert np.all(decay.path_dist_ridge**2 <= 4 * spread / ALPHA)
    # the bias part: the decaying step's mean has nearly reached ridge too (Σ η_t = 13, slowest a_i = 0.27)
    assert float(decay.exact_mean_dist_ridge) ** 2 < 0.02 * spread


def test_recovered_filter_factors_are_the_ridge_factors(runs, problem):
    x, y = problem
    ds = runs["minibatch"]
    s = np.linalg.svd(x, compute_uv=False)
    lam = SHAPE[0] * SIGMA**2
    np.testing.assert_allclose(ds.singular_value, s, rtol=1e-12)
    np.testing.assert_allclose(ds.ridge_factor, s**2 / (s**2 + lam), rtol=1e-12)
    np.testing.assert_allclose(ds.exact_factor, ds.ridge_factor, atol=1e-6)  # the transient is 6e-8 by T
    with jax.enable_x64(True):
        _, recovered = ridge.recover_filter_factors(x, y, ds.w_mean.values[-1])
    np.testing.assert_allclose(ds.factor, recovered, rtol=1e-10)
    # the factors' CIs are the modes' CIs scaled by s_i / u_iᵀy; each run has 4 modes, K families at 1 − α/K each,
    # so the per-mode level 1 − α/K is conservative for these 4 comparisons
    lo, hi = ds.factor_ci_low.values, ds.factor_ci_high.values
    assert np.all((lo <= ds.ridge_factor.values) & (ds.ridge_factor.values <= hi)), (lo, ds.ridge_factor.values, hi)
    assert np.all((lo <= ds.factor.values) & (ds.factor.values <= hi))
    assert np.all(hi < 0.99)  # none reaches least squares' factor 1


@pytest.mark.slow  # 25 s; the engine's chunk independence is tested in tests/noisy/test_engine.py by default
def test_results_do_not_depend_on_chunk_size(problem):
    x, y = problem
    kw = {"sigma": SIGMA, "learning_rate": ETA, "steps": STEPS, "trajectories": 600, "record_steps": RECORD}
    kw |= {"batch_size": 4, "decay": DECAY, "sample_paths": 3, "block": 8, "progress": False}
    a, b = (nv.vector(x, y, chunk_size=c, **kw) for c in (8, 256))
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


# --------------------------------------------------------------------------------------------------------------
# Data: synthetic problems and the loader


def test_synthetic_problem_has_the_chosen_spectrum_and_is_seeded():
    x, y = datasets.synthetic_problem(shape=(20, 5), singular_values=[5, 4, 3, 2, 1], seed=3)
    assert x.shape == (20, 5) and y.shape == (20,) and x.dtype == np.float64
    np.testing.assert_allclose(np.linalg.svd(x, compute_uv=False), [5, 4, 3, 2, 1], rtol=1e-5)
    again = datasets.synthetic_problem(shape=(20, 5), singular_values=[5, 4, 3, 2, 1], seed=3)
    np.testing.assert_array_equal(x, again[0])
    assert not np.array_equal(x, datasets.synthetic_problem(shape=(20, 5), singular_values=[5, 4, 3, 2, 1], seed=4)[0])
    x, _ = datasets.synthetic_problem()
    np.testing.assert_allclose(np.linalg.svd(x, compute_uv=False), 8 * np.geomspace(1.5, 0.15, 8), rtol=1e-5)


def test_load_data_round_trips_csv_and_npz(tmp_path, problem):
    x, y = problem
    path = tmp_path / "data.csv"
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header="x1,x2,x3,x4,y")
    back = datasets.load_data(path)
    np.testing.assert_array_equal(back[0], x)
    np.testing.assert_array_equal(back[1], y)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    back = datasets.load_data(tmp_path / "data.npz")
    np.testing.assert_array_equal(back[0], x)
    np.testing.assert_array_equal(back[1], y)
    (tmp_path / "one.csv").write_text("# a single point in one dimension\n2.0, 3.0\n")
    one_x, one_y = datasets.load_data(tmp_path / "one.csv")
    assert one_x.shape == (1, 1) and one_y.tolist() == [3.0]


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("missing.csv", None, "does not exist"),
        ("data.txt", "1,2\n", "must end in"),
        ("empty.csv", "# header only\n", "no data rows"),
        ("column.csv", "1\n2\n", "at least 2 columns"),
        ("header.csv", "x,y\n1,2\n", "start any header line with #"),
        ("ragged.csv", "1,2,3\n1,2\n", "comma-separated"),
        ("nan.csv", "1,nan\n", "NaN or inf"),
        ("bad.npz", "not a zip", "not a readable .npz"),
    ],
)
def test_load_data_errors_name_the_path(tmp_path, name, content, match):
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(InputError, match=match) as err:
        datasets.load_data(tmp_path / name)
    assert err.value.param == "path"


@pytest.mark.parametrize(
    "arrays,match",
    [
        ({"x": np.ones((3, 2))}, "missing array"),
        ({"x": np.ones(3), "y": np.ones(3)}, "shape"),
        ({"x": np.ones((3, 2)), "y": np.ones(2)}, "shape"),
        ({"x": np.array([["a", "b"]]), "y": np.ones(1)}, "real numbers"),
        ({"x": np.ones((3, 2)) + 1j, "y": np.ones(3)}, "array x must hold real numbers"),
        ({"x": np.ones((3, 2)), "y": np.ones(3, complex)}, "array y must hold real numbers"),
    ],
)
def test_load_data_npz_errors(tmp_path, arrays, match):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(InputError, match=match) as err:
        datasets.load_data(tmp_path / "d.npz")
    assert err.value.param == "path"
    assert str(err.value).count("d.npz") == 1 and "not a readable" not in str(err.value)  # not wrapped twice


# --------------------------------------------------------------------------------------------------------------
# Bad input


X_GOOD, Y_GOOD = np.eye(4, 2), np.ones(4)
GOOD = {"sigma": 0.5, "learning_rate": 0.1, "steps": 10, "trajectories": 10, "progress": False}


@pytest.mark.parametrize(
    "x,y,override,param",
    [
        (np.ones(4), Y_GOOD, {}, "x"),
        (np.ones((2, 2, 2)), Y_GOOD, {}, "x"),
        (np.full((4, 2), np.nan), Y_GOOD, {}, "x"),
        ("abc", Y_GOOD, {}, "x"),
        (X_GOOD, np.ones(3), {}, "y"),
        (X_GOOD, np.ones((4, 1)), {}, "y"),
        (X_GOOD, [1, 2, 3, np.inf], {}, "y"),
        (X_GOOD, Y_GOOD, {"sigma": -0.1}, "sigma"),
        (X_GOOD, Y_GOOD, {"sigma": [0.1, 0.2]}, "sigma"),
        (np.zeros((4, 2)), Y_GOOD, {"sigma": 0.0}, "sigma"),
        (X_GOOD, Y_GOOD, {"learning_rate": 0.0}, "learning_rate"),
        (X_GOOD, Y_GOOD, {"learning_rate": float("nan")}, "learning_rate"),
        (X_GOOD, Y_GOOD, {"learning_rate": 4.5}, "learning_rate"),  # past 2/λ_max(A) = 2/(1/4 + 1/4) = 4
        (X_GOOD, Y_GOOD, {"batch_size": 0}, "batch_size"),
        (X_GOOD, Y_GOOD, {"batch_size": 5}, "batch_size"),
        (X_GOOD, Y_GOOD, {"batch_size": 1.5}, "batch_size"),
        (X_GOOD, Y_GOOD, {"decay": 0.0}, "decay"),
        (X_GOOD, Y_GOOD, {"decay": -3.0}, "decay"),
        (X_GOOD, Y_GOOD, {"decay": float("inf")}, "decay"),
        (X_GOOD, Y_GOOD, {"steps": 0}, "steps"),
        (X_GOOD, Y_GOOD, {"record_steps": (0, 11)}, "record_steps"),
        (X_GOOD, Y_GOOD, {"trajectories": 0}, "trajectories"),
        (X_GOOD, Y_GOOD, {"chunk_size": 4}, "chunk_size"),
        (X_GOOD, Y_GOOD, {"block": 0}, "block"),
        (X_GOOD, Y_GOOD, {"dtype": "float16"}, "dtype"),
        (X_GOOD, Y_GOOD, {"seed": -1}, "seed"),
        (X_GOOD, Y_GOOD, {"sample_paths": 11}, "sample_paths"),
    ],
)
def test_bad_vector_input_names_the_parameter(x, y, override, param):
    with pytest.raises(InputError) as err:
        nv.vector(x, y, **{**GOOD, **override})
    assert err.value.param == param


def test_learning_rate_at_the_mean_threshold_is_refused():
    x, y = datasets.synthetic_problem(shape=(8, 3), seed=0)
    threshold = nv.mean_threshold(x, sigma=0.3)
    a = x.T @ x / 8 + 0.09 * np.eye(3)
    assert threshold == pytest.approx(2 / np.linalg.eigvalsh(a).max(), rel=1e-12)
    for eta in (threshold, 1.01 * threshold):
        with pytest.raises(InputError, match="mean to converge") as err:
            nv.vector(x, y, sigma=0.3, learning_rate=eta, steps=10, trajectories=10, progress=False)
        assert err.value.param == "learning_rate"


def test_bad_synthetic_problem_input():
    for kw, param in (({"shape": (4,)}, "shape"), ({"shape": (0, 3)}, "shape"), ({"seed": -1}, "seed")):
        with pytest.raises(InputError) as err:
            datasets.synthetic_problem(**kw)
        assert err.value.param == param
    with pytest.raises(InputError) as err:
        datasets.synthetic_problem(shape=(5, 3), singular_values=[1, 2])
    assert err.value.param == "singular_values"


def test_modes_where_y_has_no_component_have_no_factor_and_no_nan():
    # u_3ᵀy = 0: the third mode's factor f = s (vᵀw)/(uᵀy) is undefined; it is masked, never inf or NaN
    x, y = np.diag([3.0, 2.0, 1.0]), np.array([1.0, 1.0, 0.0])
    ds = nv.vector(x, y, sigma=0.5, learning_rate=0.2, steps=200, trajectories=256, progress=False)
    np.testing.assert_array_equal(ds.factor_defined.values, [True, True, False])
    for name in ds.data_vars:
        if np.issubdtype(ds[name].dtype, np.number):
            assert np.all(np.isfinite(ds[name].values)), name
    for name in ("factor", "exact_factor", "factor_ci_low", "factor_ci_high"):
        assert ds[name].values[2] == 0, name
    np.testing.assert_allclose(ds.exact_factor.values[:2], ds.ridge_factor.values[:2], rtol=1e-6)


def test_large_target_is_not_called_diverged(problem):
    # the divergence bound is relative to max(‖w_ridge‖, ‖w_lstsq‖): y = 1e12 scales w, not the verdict
    x, y = problem
    kw = {"sigma": SIGMA, "learning_rate": ETA, "steps": 200, "trajectories": 512, "record_steps": (0, 50, 200)}
    small = nv.vector(x, y, progress=False, **kw)
    big = nv.vector(x, y * 1e12, progress=False, **kw)
    for name in ("w", "modes", "sq_dist"):
        assert np.all(big[f"{name}_diverged_fraction"].values == 0), name
        assert np.all(big[f"{name}_count"].values == 512), name
    np.testing.assert_allclose(big.w_mean.values, small.w_mean.values * 1e12, rtol=1e-4, atol=1e12 * 1e-6)
    np.testing.assert_allclose(big.factor.values, small.factor.values, rtol=1e-3)
    assert big.attrs["divergence_scale"] == pytest.approx(small.attrs["divergence_scale"] * 1e12)
