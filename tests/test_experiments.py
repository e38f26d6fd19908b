"""Tests for sim.experiments (and a smoke test of sim.figures_features): the published Part II table in kind at a
small size, Part I's shapes and elbows, the single-model experiment against the models of Parts I and II it
reproduces, netCDF-safe attrs, and bad input (raised before anything compiles).

Published (Sp25 HW1 Q5, REFERENCE §7): U(±0.03) gives gradient norms ≈ 1e-6 and a constant predictor (test MSE ≈
Var(y_test) ≈ 0.13, one singular value ≈ √n); U(±3) gives norms 5e4–1.8e5 and diverges; He trains to 0.0046.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sim import experiments, figures, networks, training
from sim.validate import InputError

N_TRAIN = 300
PART1_STEPS = 400


@pytest.fixture(scope="module")
def part2():
    return experiments.part2(models=["shallow", "small", "large", "he"], n_train=N_TRAIN, progress=False)


@pytest.fixture(scope="module")
def part1():
    return experiments.part1(widths=[6], depths=[1], steps=PART1_STEPS, progress=False)


def _finite(ds: xr.Dataset, skip=()) -> bool:
    return all(
        bool(np.all(np.isfinite(ds[v].values)))
        for v in ds.data_vars
        if v not in skip and np.issubdtype(ds[v].dtype, np.number)
    )


# --------------------------------------------------------------------------------------------------------------
# The published Part II table, in kind


def test_tiny_init_is_a_constant_predictor(part2):
    small = part2.sel(model="small")
    assert float(small.grad_norms.sel(stage="init").max()) < 1e-4
    pred = small.prediction.sel(stage="trained").values
    assert pred.std() < 0.05 * part2.target.values.std()  # flat
    assert float(small.final_test_mse) == pytest.approx(float(small.constant_mse), rel=0.1)
    assert 0.1 < float(small.constant_mse) < 0.16  # Var(y_test) ≈ 0.13
    s = small.singular_values.sel(stage="init").values
    assert s[0] == pytest.approx(np.sqrt(N_TRAIN), rel=0.02)  # the output bias's feature, 1 on every point
    assert s[1] < 0.05 * s[0]


def test_large_init_diverges_and_is_reported_without_nan(part2):
    large = part2.sel(model="large")
    assert bool(large.diverged) and int(large.diverged_step) >= 0
    assert float(large.grad_norms.sel(stage="init").min()) > 1e3
    assert _finite(part2, skip=("published_test_mse",))  # inf there marks the published NaN, by design
    s = large.singular_values.sel(stage="init").values
    assert s[0] > 1e3 and s[4] < 1e-5 * s[0]  # rank 4, huge (zero biases: positively homogeneous in x)


def test_he_init_trains_with_balanced_gradients(part2):
    he = part2.sel(model="he")
    g = he.grad_norms.sel(stage="init").values
    assert g.max() / g.min() < 10  # the published 0.085 … 0.42: within a factor ~5
    assert float(he.final_test_mse) < 0.3 * float(he.constant_mse)
    init, trained = he.singular_values.sel(stage="init").values, he.singular_values.sel(stage="trained").values
    assert init[4] < 1e-3 * init[0]  # rank 4 at init (zero biases)
    assert trained[4] > 1e-2 * trained[0]  # training breaks the homogeneity: a smoothly decaying spectrum
    assert not bool(he.diverged)


# --------------------------------------------------------------------------------------------------------------
# Part I


def test_part1_views(part1):
    m = part1.sel(model="1x6")
    assert int(m.num_params) == 3 * 6 + 1
    assert part1.elbows.shape == (1, part1.sizes["step"], 6)
    e0 = m.elbows.isel(step=0).values
    assert np.all(np.diff(e0) >= 0) and e0.min() >= 0 and e0.max() <= 1  # the elbow init: sorted U[0, 1]
    assert float(m.final_test_mse) < float(m.test_loss.isel(step=0))
    # ∂f/∂W⁽¹⁾_i = x ∂f/∂b_i (one hidden layer)
    x = part1.x.values
    np.testing.assert_allclose(m.feature_w.values, x * m.feature_b.values, atol=1e-6)
    assert _finite(part1, skip=("elbows",)) and not np.any(np.isnan(part1.elbows.values))


# --------------------------------------------------------------------------------------------------------------
# One model: the same computation as the first model of Parts I and II


def _assert_same_model(ds: xr.Dataset, ref: xr.Dataset):
    """Every variable of ``ds`` (one model) equals ``ref``'s (one model of several), bit for bit."""
    assert ds.sizes["model"] == 1
    ref = ref.isel(layer=slice(0, ds.sizes["layer"]))  # ``ref`` is padded to its deepest model's layers
    for name, var in ds.data_vars.items():
        got = var.isel(model=0) if "model" in var.dims else var
        np.testing.assert_array_equal(got.values, ref[name].values, err_msg=name)


def test_model_reproduces_part2_shallow(part2):
    ds = experiments.model(depth=1, width=20, init="pytorch", n_train=N_TRAIN, progress=False)
    assert list(ds.model.values) == ["1x20-pytorch"] and "elbows" not in ds
    _assert_same_model(ds, part2.sel(model="shallow"))
    np.testing.assert_array_equal(ds.x.values, part2.x.values)
    assert ds.attrs["experiment"] == "model" and ds.attrs["target"] == "sines"


def test_model_reproduces_part1_elbow_net(part1):
    kw = {"optimizer": "sgd", "learning_rate": 0.02, "batch_size": 40, "steps": PART1_STEPS, "n_test": 1000}
    ds = experiments.model(depth=1, width=6, init="elbows", target="kinks", **kw, progress=False)
    _assert_same_model(ds, part1.sel(model="1x6"))  # elbows, elbow_defined, feature_w and feature_b included
    np.testing.assert_allclose(ds.attrs["kinks"], experiments.KINKS)


def test_model_grid_covers_the_training_interval():
    kw = {"train_interval": (-2.0, 0.0), "n_train": 50, "steps": 5, "grid_points": 50, "progress": False}
    ds = experiments.model(depth=1, width=3, init="he_uniform", **kw)
    assert ds.x.values[0] < -2.0 and ds.x.values[-1] > 1.0  # the union of [-2, 0] and the test interval [-1, 1]
    assert ds.x_train.values.min() >= -2.0 and ds.x_train.values.max() <= 0.0
    assert ds.attrs["train_interval"] == [-2.0, 0.0] and ds.attrs["n_train"] == 50


def test_result_attrs_are_netcdf_safe(tmp_path):
    config = {
        "none": None,
        "flag": True,
        "flags": [True, False],
        "ints": [np.int64(1), 2],
        "floats": (0.5, 1.0),
        "names": ["a", "b"],
        "nested": {"a": [1, 2], "b": np.float32(0.5)},
        "empty": [],
        "np_bool": np.bool_(False),
    }
    attrs = experiments.result_attrs(config)
    path = tmp_path / "attrs.nc"
    xr.Dataset({"v": ("x", [1.0])}, attrs=attrs).to_netcdf(path, engine="netcdf4")
    with xr.open_dataset(path, engine="netcdf4") as back:
        a = back.attrs
    assert a["none"] == "none" and a["flag"] == 1 and a["np_bool"] == 0
    assert list(a["flags"]) == [1, 0] and list(a["ints"]) == [1, 2] and list(a["floats"]) == [0.5, 1.0]
    assert a["names"] == '["a", "b"]' and a["nested"] == '{"a": [1, 2], "b": 0.5}'
    assert "git_revision" in a


# --------------------------------------------------------------------------------------------------------------
# Figures (from the fixtures' datasets; rendering the registered quick configs is the slow test below)


def test_figures_draw_from_experiment_datasets(part1, part2, tmp_path):
    from sim.plotting import fixed_style, save

    with fixed_style():
        for name, ds in (("features_part1", part1), ("features_part2", part2)):
            spec = figures.FIGURES[name]
            path = save(spec.plot(ds), tmp_path / spec.filename)  # drawing parses every mathtext label
            assert path.stat().st_size > 20_000, name


# --------------------------------------------------------------------------------------------------------------
# Bad input


MODEL = {"depth": 2, "width": 5, "init": "he_uniform", "progress": False}


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda: experiments.part2(models=["nope"], progress=False), "models"),
        (lambda: experiments.part1(widths=[0], progress=False), "widths"),
        (lambda: experiments.part1(steps=0, progress=False), "steps"),
        (lambda: experiments.part2(models=["small"], n_train=64, batch_size=65, progress=False), "batch_size"),
        (lambda: experiments.part2(models=["small"], n_train=64, steps=0, progress=False), "steps"),
        (lambda: experiments.model(**MODEL | {"target": "cubic"}), "target"),
        (lambda: experiments.model(**MODEL | {"train_interval": (1.0, -1.0)}), "train_interval"),
        (lambda: experiments.model(**MODEL | {"train_interval": (0.0,)}), "train_interval"),
        (lambda: experiments.model(**MODEL | {"depth": 0}), "depth"),
        (lambda: experiments.model(**MODEL | {"width": 2.5}), "width"),
        (lambda: experiments.model(**MODEL | {"init": "xavier"}), "init"),
        (lambda: experiments.model(**MODEL | {"init": "uniform"}), "scale"),
        (lambda: experiments.model(**MODEL | {"scale": 1.0}), "scale"),
        (lambda: experiments.model(**MODEL | {"optimizer": "rmsprop"}), "optimizer"),
        (lambda: experiments.model(**MODEL | {"learning_rate": 0.0}), "learning_rate"),
        (lambda: experiments.model(**MODEL | {"momentum": 1.0}), "momentum"),
        (lambda: experiments.model(**MODEL | {"n_train": 20}), "batch_size"),
        (lambda: experiments.model(**MODEL | {"n_train": 0}), "n_train"),
        (lambda: experiments.model(**MODEL | {"checkpoint_every": 0}), "checkpoint_every"),
        (lambda: experiments.model(**MODEL | {"num_sv": 0}), "num_sv"),
        (lambda: experiments.model(**MODEL | {"data_seed": -1}), "data_seed"),
        (lambda: experiments.model(**MODEL | {"seed": -1}), "seed"),
    ],
)
def test_bad_inputs_raise_input_error_naming_the_parameter(call, param, monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(networks, "_init", no_compile)
    monkeypatch.setattr(training, "_compiled", no_compile)
    with pytest.raises(InputError) as err:
        call()
    assert err.value.param == param
