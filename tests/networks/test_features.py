"""Jacobian features: three implementations agree, chunking changes nothing, and the spectra match theory.

Float64 tests run inside ``jax.enable_x64(True)``; there the three methods are the same arithmetic up to summation
order, so they must agree to 1e-12 (relative to the largest entry of Φ, which is O(1) here).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sim.core.validate import InputError
from sim.networks import data as targets
from sim.networks import features
from sim.networks import mlp as networks

ROOT = Path(__file__).resolve().parents[2]
EXACT = 1e-12  # float64 agreement of two exact Jacobians (roundoff of O(width) sums is ~1e-15)


def _x(n, seed=0, lo=-1.0, hi=1.0):
    return np.random.default_rng(seed).uniform(lo, hi, n)


def _max_rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("init", ["pytorch", "elbows"])
def test_jacfwd_reverse_analytic_agree(init):
    with jax.enable_x64(True):
        params = networks.init_mlp(jax.random.key(1), depth=1, width=13, init=init, dtype="float64")
        x = _x(64, lo=-0.5, hi=1.5)  # wide enough that every unit is inactive somewhere
        phi = {m: features.feature_matrix(params, x, method=m) for m in ("jacfwd", "reverse", "analytic", "auto")}
        assert phi["jacfwd"].shape == (64, networks.num_params(params)) and phi["jacfwd"].dtype == jnp.float64
        h = x[:, None] * np.asarray(params[0]["w"][0]) + np.asarray(params[0]["b"])
        assert (h <= 0).any() and (h > 0).any()
        for m in ("reverse", "analytic", "auto"):
            assert _max_rel(phi[m], phi["jacfwd"]) < EXACT, m


def test_methods_agree_deeper_and_at_a_kink():
    with jax.enable_x64(True):
        params = networks.init_mlp(jax.random.key(2), depth=3, width=7, init="he_normal", dtype="float64")
        x = _x(40, seed=3)
        a = features.feature_matrix(params, x, method="jacfwd")
        b = features.feature_matrix(params, x, method="reverse")
        assert _max_rel(b, a) < EXACT
        # x = 0.5 sits exactly on unit 0's kink (h = 2·0.5 − 1 = 0): relu'(0) = 0 in every method
        kinked = [
            {"w": jnp.array([[2.0, 1.0]]), "b": jnp.array([-1.0, 0.5])},
            {"w": jnp.array([[3.0], [-1.0]]), "b": jnp.zeros(1)},
        ]
        rows = {
            m: np.asarray(features.feature_matrix(kinked, [0.5], method=m))[0]
            for m in ("jacfwd", "reverse", "analytic")
        }
        # ravel order: hidden b (2), hidden w (2), output b (1), output w (2)
        expected = np.array([0.0, -1.0, 0.0, -0.5, 1.0, 0.0, 1.0])
        for m, row in rows.items():
            np.testing.assert_array_equal(row, expected, err_msg=m)


def test_chunked_equals_unchunked_and_compiles_once():
    with jax.enable_x64(True):
        params = networks.init_mlp(jax.random.key(4), depth=2, width=6, dtype="float64")
        x = _x(101, seed=5)
        whole = features.feature_matrix(params, x, method="reverse", devices=jax.devices()[:1], chunk_size=1000)
        # 5 samples per device on the 8 simulated devices: 3 calls of 40 samples, the last one padded
        for method in ("reverse", "jacfwd"):
            chunked = features.feature_matrix(params, x, method=method, chunk_size=5)
            assert chunked.shape == whole.shape
            assert _max_rel(chunked, whole) < EXACT, method
        fn, _ = features._sharded("reverse", jax.nn.relu, tuple(jax.local_devices()))
        compiled = fn._cache_size()
        other = features.feature_matrix(params, _x(117, seed=6), chunk_size=5)  # another n, same call shape
        assert fn._cache_size() == compiled and other.shape == (117, whole.shape[1])


def test_principal_features_project_onto_training_v():
    with jax.enable_x64(True):
        params = networks.init_mlp(jax.random.key(6), depth=1, width=10, init="elbows", dtype="float64")
        x = _x(80, lo=0.0)
        phi = features.feature_matrix(params, x)
        svd = features.feature_svd(phi)
        # on the training points the projection is U S (to roundoff of one matrix product)
        psi = features.principal_features(phi, svd)
        assert _max_rel(psi, svd.u * svd.s) < 1e-12
        # on a grid: the grid's features times the training V (no refit), first k columns
        grid = np.linspace(0, 1, 33)
        psi_grid = features.principal_features(features.feature_matrix(params, grid), svd, k=3)
        assert psi_grid.shape == (33, 3)
        np.testing.assert_allclose(psi_grid, features.feature_matrix(params, grid) @ svd.v[:, :3], rtol=1e-12)
        # the NTK's eigenvalues are S²
        eig = np.sort(np.linalg.eigvalsh(np.asarray(features.empirical_ntk(phi))))[::-1][: svd.s.size]
        np.testing.assert_allclose(eig, np.asarray(svd.s) ** 2, rtol=1e-9, atol=1e-9 * float(svd.s[0]) ** 2)


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_zero_bias_relu_features_have_rank_at_most_4(depth):
    """A zero-bias ReLU net is positively homogeneous in x: every feature is in span{1±, x·1±}.

    Threshold: in float64 the spurious singular values are roundoff, ~1e-16 relative to s₁ (measured ≤ 4e-16); the
    four genuine ones are ≥ 1e-2 · s₁ for these draws. A relative cut at 1e-10 separates the two by 6 decades.
    """
    with jax.enable_x64(True):
        params = networks.init_mlp(
            jax.random.key(depth), depth=depth, width=12, init="he_uniform", zero_bias=True, dtype="float64"
        )
        x = _x(200, seed=depth)
        phi = np.asarray(features.feature_matrix(params, x))
        s = features.feature_svd(phi).s
        assert features.numerical_rank(s, rtol=1e-10) <= 4
        pos, neg = (x > 0).astype(float), (x < 0).astype(float)
        basis = np.stack([pos, neg, x * pos, x * neg], axis=1)
        coef, *_ = np.linalg.lstsq(basis, phi, rcond=None)
        assert np.linalg.norm(phi - basis @ coef) < 1e-12 * np.linalg.norm(phi)


def test_tiny_init_deep_net_has_one_singular_value_sqrt_n():
    """U(±0.03) 4 × 20, zero bias: f is nearly constant, so Φ ≈ [1 | tiny] and σ₁ ≈ √n.

    The next-largest columns are ∂f/∂b⁽⁴⁾_i = W⁽⁵⁾_i·1[h_i > 0] with W⁽⁵⁾_i ~ U(±0.03); they shift σ₁² by a
    relative O(Σ_i W⁽⁵⁾_i²) ≈ 20 · 0.03²/3 = 0.6 %, so σ₁/√n by at most ~0.3 % (measured 0.13 %): tolerance 1 % on
    σ₁/√n, and σ₂ < 0.1 σ₁ (Sp25 HW1 Q5 reports one value ≈ √1500 ≈ 38.7, the rest ≈ 0).
    """
    x = targets.sines_data().x_train[:400]  # the course's data, fewer points: σ₁ ≈ √n for any n, SVD 15× cheaper
    params = networks.init_mlp(jax.random.key(0), depth=4, width=20, init="uniform", scale=0.03, zero_bias=True)
    s = np.linalg.svd(np.asarray(features.feature_matrix(params, x)), compute_uv=False)
    n = x.size
    assert abs(s[0] / np.sqrt(n) - 1) < 0.01
    assert s[1] < 0.1 * s[0]


def test_spectral_helpers():
    rng = np.random.default_rng(7)
    phi = rng.standard_normal((30, 8))
    svd = features.feature_svd(phi)
    assert float(features.feature_drift(phi, phi)) == 0.0
    np.testing.assert_allclose(features.feature_drift(2 * phi, phi), 1.0, rtol=1e-6)
    np.testing.assert_allclose(features.subspace_alignment(svd.v, svd.v, k=3), 1.0, rtol=1e-5)
    np.testing.assert_allclose(features.principal_angles(svd.v, svd.v, k=3), 0.0, atol=2e-3)  # arccos(1 − ε)
    # two orthogonal coordinate subspaces
    e = np.eye(8)
    assert float(features.subspace_alignment(e[:, :2], e[:, 2:4], k=2)) == 0.0
    np.testing.assert_allclose(features.principal_angles(e[:, :2], e[:, 2:4], k=2), np.pi / 2, rtol=1e-6)
    np.testing.assert_allclose(features.effective_rank(np.array([2.0, 2.0, 2.0, 0.0])), 3.0, rtol=1e-6)
    np.testing.assert_allclose(features.effective_rank(np.array([2.0, 1.0]), definition="stable"), 1.25, rtol=1e-6)
    assert features.numerical_rank(np.array([1.0, 1e-3, 1e-9]), rtol=1e-6) == 2


def _one_layer(dtype="float32"):
    return networks.init_mlp(jax.random.key(0), depth=1, width=4, dtype=dtype)


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda: features.feature_matrix(_one_layer(), np.zeros((3, 2))), "x"),
        (lambda: features.feature_matrix(_one_layer(), np.array([0.0, np.nan])), "x"),
        (lambda: features.feature_matrix(_one_layer(), np.zeros(0)), "x"),
        (
            lambda: features.feature_matrix(
                networks.init_mlp(jax.random.key(0), depth=2, width=3), [0.1], method="analytic"
            ),
            "method",
        ),
        (lambda: features.feature_matrix(_one_layer(), [0.1], method="forward"), "method"),
        (lambda: features.feature_matrix(_one_layer(), [0.1], method="analytic", activation=jax.nn.tanh), "activation"),
        (lambda: features.feature_matrix(_one_layer(), [0.1], chunk_size=0), "chunk_size"),
        (lambda: features.feature_matrix([{"w": jnp.ones((2, 3)), "b": jnp.ones(3)}], [0.1]), "params"),
        (lambda: features.principal_features(np.ones((3, 5)), features.feature_svd(np.ones((4, 6)))), "phi_grid"),
        (lambda: features.effective_rank(np.ones(3), definition="renyi"), "definition"),
        (lambda: features.numerical_rank(np.ones(3), rtol=0.0), "rtol"),
        (lambda: features.subspace_alignment(np.ones((4, 2)), np.ones((4, 2)), k=3), "k"),
    ],
)
def test_bad_inputs(call, param):
    with pytest.raises(InputError) as err:
        call()
    assert err.value.param == param


def test_benchmark_quick(tmp_path):
    out = tmp_path / "jac.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "jacobian_features.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,  # this checkout's sim, not an installed copy
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["dtype"] == "float32" and "jax" in json.dumps(result["provenance"])
    methods = {m["method"] for m in result["measurements"]}
    assert {"jacfwd", "reverse", "analytic", "auto"} <= methods
    assert all(m["max_abs_diff_vs_analytic"] < 1e-4 for m in result["measurements"] if "max_abs_diff_vs_analytic" in m)
