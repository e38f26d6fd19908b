"""Course data sets: published coefficients, kink locations, sortedness, seeding and input checks."""

import numpy as np
import pytest

from sim.core.validate import InputError
from sim.networks import data as targets


def test_sines_coefficients_match_the_course():
    # Sp25 HW1 Q5 Part II: np.random.seed(0); np.random.rand(5) * 2 - 1, printed to 4 decimals
    np.testing.assert_allclose(targets.sines_coefficients(), [0.0976, 0.4304, 0.2055, 0.0898, -0.1527], atol=5e-5)
    np.testing.assert_allclose(targets.sum_of_sines(0.5), 0.4304 * 1 + 0.2055 * 0 + 0.0898 * -1, atol=2e-4)


def test_piecewise_target_is_linear_between_knots_at_tenths():
    x = np.linspace(0, 1, 1001)  # knots at every 100th point
    f = targets.piecewise_linear(x)
    np.testing.assert_allclose(f[::100], np.sin(12345.0 * np.arange(11)), atol=1e-12)  # continuous at the knots
    second = np.abs(np.diff(f, 2))  # nonzero only where a 3-point stencil straddles a knot
    kinks = np.flatnonzero(second > 1e-9) + 1
    np.testing.assert_array_equal(kinks, np.arange(100, 1000, 100))
    # off the knots it is the course's formula (T − ⌊T⌋) sin(12345⌈T⌉) − (T − ⌈T⌉) sin(12345⌊T⌋)
    xs = np.random.default_rng(0).uniform(0, 1, 50)
    t = 10 * xs
    course = (t - np.floor(t)) * np.sin(12345 * np.ceil(t)) - (t - np.ceil(t)) * np.sin(12345 * np.floor(t))
    np.testing.assert_allclose(targets.piecewise_linear(xs), course, atol=1e-12)


def test_elbow_data_is_sorted_seeded_and_noisy():
    d = targets.elbow_data()
    assert d.x_train.shape == d.y_train.shape == (200,) and d.x_train.dtype == np.float32
    assert np.all(np.diff(d.x_train) >= 0) and d.x_train.min() >= 0 and d.x_train.max() <= 1
    residual = d.y_train - targets.piecewise_linear(d.x_train)
    assert 0.08 < residual.std() < 0.12  # σ = 0.1 on 200 draws
    np.testing.assert_allclose(d.y_test, targets.piecewise_linear(np.linspace(0, 1, 1000)), atol=1e-6)  # noiseless grid
    again = targets.elbow_data()
    np.testing.assert_array_equal(again.y_train, d.y_train)
    assert not np.array_equal(targets.elbow_data(seed=1).x_train, d.x_train)


def test_sines_data_shapes_intervals_and_seed():
    d = targets.sines_data()
    assert d.x_train.shape == (1500,) and d.x_test.shape == (500,)
    assert np.all(np.diff(d.x_test) >= 0) and d.x_test.min() >= -1 and d.x_test.max() <= 1
    np.testing.assert_allclose(d.y_test, targets.sum_of_sines(d.x_test), atol=1e-6)  # noiseless
    assert 0.09 < np.std(d.y_train - targets.sum_of_sines(d.x_train)) < 0.11
    mismatched = targets.sines_data(train_interval=(-1.0, 0.4), dtype="float64")
    assert mismatched.x_train.max() <= 0.4 and mismatched.x_test.max() > 0.4 and mismatched.x_train.dtype == np.float64
    np.testing.assert_array_equal(targets.sines_data(seed=3).y_train, targets.sines_data(seed=3).y_train)


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda: targets.elbow_data(n_train=0), "n_train"),
        (lambda: targets.elbow_data(noise=-0.1), "noise"),
        (lambda: targets.elbow_data(interval=(1.0, 0.0)), "interval"),
        (lambda: targets.sines_data(train_interval=(0.0, np.inf)), "train_interval"),
        (lambda: targets.sines_data(test_interval=(0.0,)), "test_interval"),
        (lambda: targets.sines_data(dtype="int8"), "dtype"),
        (lambda: targets.sines_data(seed=-1), "seed"),
        (lambda: targets.sines_data(coefficients=[[1.0]]), "coefficients"),
    ],
)
def test_bad_inputs(call, param):
    with pytest.raises(InputError) as err:
        call()
    assert err.value.param == param
