"""Tests for sim.networks.course (and smoke tests of sim.figures.networks, its memoization included): the published
Part II table in kind at a small size, Part I's shapes and elbows, the single-model experiment against the models of
Parts I and II it reproduces, netCDF-safe attrs, and bad input (raised before anything compiles).

Published (EECS 182 Sp25 HW1 Q5): U(±0.03) gives gradient norms ≈ 1e-6 and a constant predictor (test MSE ≈
Var(y_test) ≈ 0.13, one singular value ≈ √n); U(±3) gives norms 5e4–1.8e5 and diverges; He trains to 0.0046.
"""

from __future__ import annotations

import os
import signal
from collections import OrderedDict

import jax
import numpy as np
import pytest
import xarray as xr

from sim.core.validate import InputError
from sim.figures import networks as figures_features
from sim.figures import registry as figures
from sim.networks import course as experiments
from sim.networks import mlp as networks
from sim.networks import training

N_TRAIN = 300
PART1_STEPS = 400


# its module-scoped fixtures are costly: one xdist worker runs the whole module (pyproject: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("networks.test_course")


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
    assert bool(large.diverged) and int(large.diverge_step) >= 0
    assert float(large.grad_norms.sel(stage="init").min()) > 1e3
    assert _finite(part2, skip=("published_test_mse",))  # NaN there is the published NaN, by design
    assert np.isnan(float(large.published_test_mse))  # the value the course printed, not inf
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


def test_figures_draw_from_experiment_datasets(part1, part2, part2_seeds, tmp_path):
    from sim.figures.base import fixed_style, save

    names = {"features_part1": part1, "features_part1_principal": part1}
    names |= {"features_part2": part2, "features_part2_principal": part2}
    names["features_part2_seeds"] = part2_seeds
    with fixed_style():
        for name, ds in names.items():
            before = ds.copy(deep=True)
            spec = figures.FIGURES[name]
            path = save(spec.plot(ds), tmp_path / spec.filename)  # drawing parses every mathtext label
            assert path.stat().st_size > 20_000, name
            xr.testing.assert_identical(ds, before)  # memoized datasets are shared: plotting must not mutate them
            assert ds.attrs == before.attrs, name


def test_principal_figures_have_one_row_per_model(part1, part2):
    for ds, plot in ((part1, figures_features.plot_part1_principal), (part2, figures_features.plot_part2_principal)):
        rows = plot(ds).subfigs[1:]  # the first holds the legend
        titles = {m: sub.get_suptitle() for m, sub in zip(ds.model.values, rows, strict=True)}
        for m, title in titles.items():
            assert title.startswith(f"{m}: ") and f"P = {int(ds.num_params.sel(model=m))}" in title
            assert ("DIVERGED at step" in title) == bool(ds.diverged.sel(model=m))
        for sub in rows:
            *feature_axes, ax_sv = sub.axes
            for ax in feature_axes:  # ψ_1..ψ_4 on the grid (besides the kinks' vertical lines)
                assert sum(len(line.get_xdata()) == ds.sizes["x"] for line in ax.lines) == figures_features.PF_SHOWN
            assert len(ax_sv.lines) == 2 and ax_sv.get_yscale() == "log"  # init and trained spectra
    assert bool(part2.diverged.sel(model="large"))


def test_part_computations_are_memoized_by_configuration(monkeypatch):
    calls = []

    def part1(*, progress=True, **config):
        calls.append(("part1", config))
        return xr.Dataset(attrs={"call": len(calls)})

    def part2(*, progress=True, **config):
        calls.append(("part2", config))
        return xr.Dataset(attrs={"call": len(calls)})

    monkeypatch.setattr(experiments, "part1", part1)
    monkeypatch.setattr(experiments, "part2", part2)
    monkeypatch.setattr(figures_features, "_CACHE", OrderedDict())
    # the registered pairs share their configuration, hence one computation
    for quick in (False, True):
        for part in ("features_part1", "features_part2"):
            first = figures.FIGURES[part].compute(quick, progress=False)
            assert figures.FIGURES[part + "_principal"].compute(quick, progress=True) is first
    assert len(calls) == 4
    # the key is the canonical JSON of the configuration (key order and progress do not matter), per experiment
    config = {"models": ["he"], "steps": 5}
    ds = figures_features.compute_part2_features(**config, progress=False)
    assert figures_features.compute_part2_features(steps=5, models=["he"]) is ds
    assert figures_features.compute_part2_features(**config | {"steps": 6}, progress=False) is not ds
    assert figures_features.compute_part1_features(**config, progress=False) is not ds
    assert [c[0] for c in calls[4:]] == ["part2", "part2", "part1"]
    # only the last CACHE_SIZE datasets are kept (least recently used goes first)
    assert len(figures_features._CACHE) == figures_features.CACHE_SIZE
    assert figures_features.compute_part2_features(**config, progress=False) is not ds
    assert len(calls) == 8


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


def test_interrupted_part2_keeps_the_models_that_finished(monkeypatch):
    """A SIGINT while the second of three models trains (one device): the models in flight finish, the third never
    starts, and the finished ones equal an uninterrupted run's."""
    real = experiments._run_model
    calls = {"n": 0}

    def run_model(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    kw = {"models": ["small", "he", "large"], "n_train": 64, "steps": 5, "batch_size": 16, "progress": False}
    monkeypatch.setattr(experiments, "_run_model", run_model)
    monkeypatch.setattr(experiments.jax, "local_devices", lambda: jax.devices()[:1])
    part = experiments.part2(**kw)
    assert part.attrs["complete"] == 0 and list(part.model.values) == ["small", "he"]
    assert float(part.published_test_mse.sel(model="small")) == experiments.PUBLISHED_TEST_MSE["small"]
    calls["n"] = -10  # no more interrupts: the finished models equal an uninterrupted run's
    full = experiments.part2(**kw)
    assert full.attrs["complete"] == 1 and list(full.model.values) == ["small", "he", "large"]
    for name in ("singular_values", "final_test_mse", "grad_norms"):
        for m in ("small", "he"):
            np.testing.assert_array_equal(part[name].sel(model=m), full[name].sel(model=m))


# --------------------------------------------------------------------------------------------------------------
# Part II over seeds (issue: one seed against one published seed is not a comparison)

SEEDS_KW = {"n_train": 64, "n_test": 50, "steps": 20, "batch_size": 16, "progress": False}


@pytest.fixture(scope="module")
def part2_seeds():
    return experiments.part2_seeds(seeds=3, first_seed=1, **SEEDS_KW)


def test_part2_seeds_are_the_part2_runs_of_those_seeds(part2_seeds):
    """Seed s of part2_seeds is part2(seed=s): same initial parameters, same minibatches, same numbers."""
    assert list(part2_seeds.seed.values) == [1, 2, 3] and part2_seeds.attrs["complete"] == 1
    one = experiments.part2(models=["small", "he"], seed=2, **SEEDS_KW)
    for m in ("small", "he"):
        np.testing.assert_array_equal(
            part2_seeds.grad_norms.sel(seed=2, model=m).values, one.grad_norms.sel(model=m, stage="init").values
        )
        assert float(part2_seeds.final_test_mse.sel(seed=2, model=m)) == float(one.final_test_mse.sel(model=m))
    shallow = part2_seeds.grad_norms.sel(model="shallow").values
    assert np.all(shallow[:, :2] > 0) and np.all(shallow[:, 2:] == 0)  # 2 layers; the rest is padding


def test_part2_seeds_compares_every_published_number(part2_seeds):
    q = list(part2_seeds.quantity.values)
    assert q[:5] == [f"small grad norm layer {k}" for k in range(1, 6)]
    assert "he grad norm layer 5" in q and "large grad norm largest layer" in q
    assert "he_mismatched OOD test MSE" in q and "large test MSE" not in q  # published NaN: diverged_fraction instead
    he = part2_seeds.grad_norms.sel(model="he").values[:, 2]  # layer 3 over the 3 seeds
    r = part2_seeds.sel(quantity="he grad norm layer 3")
    assert float(r.published) == 0.34 and float(r.seed_median) == np.median(he)
    assert (float(r.seed_min), float(r.seed_max)) == (he.min(), he.max())
    assert float(r.percentile) == pytest.approx(100 * np.mean(he < 0.34))
    large = part2_seeds.grad_norms.sel(model="large").values[:, :5]
    assert float(part2_seeds.sel(quantity="large grad norm smallest layer").seed_median) == np.median(large.min(axis=1))


def test_published_comparison_percentiles_and_diverged_runs_by_hand():
    """Percentile = share of seeds below the published value, ties half; a diverged run's test MSE is left out."""
    models, seeds = list(experiments.PART2_MODELS), 4
    mse = np.full((seeds, len(models)), 0.2)
    he = models.index("he")
    mse[:, he] = [0.001, 0.0046, 0.01, 1e6]  # the last one diverged: its frozen value is no test error
    diverged = np.zeros((seeds, len(models)), bool)
    diverged[3, he] = True
    ds = xr.Dataset(
        {
            "grad_norms": (("seed", "model", "layer"), np.ones((seeds, len(models), 5))),
            "final_test_mse": (("seed", "model"), mse),
            "diverged": (("seed", "model"), diverged),
        },
        coords={"model": models},
    )
    r = experiments.published_comparison(ds).sel(quantity="he test MSE")
    assert int(r.seeds_used) == 3 and float(r.seed_max) == 0.01
    assert float(r.percentile) == pytest.approx(100 * (1 + 0.5) / 3)  # 0.001 below, 0.0046 tied, 0.01 above
    ones = experiments.published_comparison(ds).sel(quantity="he grad norm layer 1")
    assert float(ones.percentile) == 0.0  # every seed's norm (1) lies above the published 0.085


def test_part2_seeds_rejects_one_seed():
    with pytest.raises(InputError) as err:
        experiments.part2_seeds(seeds=1, **SEEDS_KW)
    assert err.value.param == "seeds"
