"""The course's 1-D regression data sets, seeded: a piecewise-linear target with kinks at k/10 and a sum of sines.

Contract: target functions map an array of x to f(x) in float64 NumPy (they are data, computed once, not traced);
:func:`elbow_data` and :func:`sines_data` return a frozen :class:`Dataset` of NumPy arrays in the requested dtype,
the same arrays for the same ``seed`` on every machine (``numpy.random.default_rng``). Training targets carry
Gaussian noise of standard deviation ``noise``; test targets are noiseless.

References: EECS 182 Sp25 HW0 Q5 / HW1 Q5 Part I (elbow notebook: n = 200 sorted x ~ U[0, 1], σ = 0.1) and
HW1 Q5 Part II (sum of sines: 1500 training points on [−1, 1], σ = 0.1, 500 noiseless test points).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from sim.core.validate import InputError, check_int, check_positive_finite
from sim.networks.mlp import check_bounds


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Dataset:
    """Training and test samples of a scalar function.

    Attributes:
      x_train: array of shape [n_train].
      y_train: noisy targets, array of shape [n_train].
      x_test: array of shape [n_test], sorted.
      y_test: noiseless targets, array of shape [n_test].
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def piecewise_linear(x) -> np.ndarray:
    """The elbow notebook's target: linear between knots at x = k/10 with values sin(12345·k).

    With T = 10x the course writes f(x) = (T − ⌊T⌋)·sin(12345·⌈T⌉) − (T − ⌈T⌉)·sin(12345·⌊T⌋). Off the knots that
    is the linear interpolation between the knot values sin(12345·⌊T⌋) and sin(12345·⌈T⌉), which is what is computed
    here; on a knot the literal formula gives 0 (both brackets vanish), this function gives the continuous value
    sin(12345·k). The knot values are computed in float64 (12345·k is far outside float32's accurate sin range).

    Args:
      x: array-like of any shape.

    Returns:
      f(x), float64 array of the same shape.
    """
    t = 10.0 * np.asarray(x, dtype=np.float64)
    k = np.floor(t)
    frac = t - k
    return (1.0 - frac) * np.sin(12345.0 * k) + frac * np.sin(12345.0 * (k + 1.0))


def sines_coefficients(*, seed: int = 0, count: int = 5) -> np.ndarray:
    """F_k for the sum of sines: ``np.random.seed(seed); np.random.rand(count) * 2 - 1`` (legacy RandomState).

    With the defaults, F = [0.0976, 0.4304, 0.2055, 0.0898, −0.1527] (4 decimals), as in Sp25 HW1 Q5 Part II.
    """
    return np.random.RandomState(seed).rand(count) * 2.0 - 1.0


def sum_of_sines(x, coefficients=None) -> np.ndarray:
    """f(x) = Σ_k F_k sin(kπx), k = 0, 1, …; F defaults to :func:`sines_coefficients` (F₀ multiplies sin 0 = 0).

    Args:
      x: array-like of any shape.
      coefficients: F_k, array of shape [K].

    Returns:
      f(x), float64 array of the same shape.
    """
    f = sines_coefficients() if coefficients is None else np.asarray(coefficients, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    k = np.arange(f.size, dtype=np.float64)
    return np.sin(np.pi * x[..., None] * k) @ f


def elbow_data(
    *,
    n_train: int = 200,
    n_test: int = 1000,
    noise: float = 0.1,
    interval: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    dtype="float32",
) -> Dataset:
    """The elbow notebook's data: sorted x ~ U[interval], y = :func:`piecewise_linear` (x) + noise·N(0, 1).

    Args:
      n_train: number of training points (course: 200).
      n_test: number of test points, an evenly spaced grid over ``interval`` (for plots and test error).
      noise: standard deviation of the training noise, >= 0 (course: 0.1).
      interval: ``(low, high)`` of the inputs.
      seed: seed of ``numpy.random.default_rng``.
      dtype: float32 or float64 (of the returned arrays; the data are drawn in float64).

    Returns:
      A :class:`Dataset`.
    """
    n_train, n_test, noise, (lo, hi), seed, dt = _check_common(
        n_train, n_test, noise, interval, seed, dtype, interval_name="interval"
    )
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(lo, hi, n_train))
    y = piecewise_linear(x) + noise * rng.standard_normal(n_train)
    x_test = np.linspace(lo, hi, n_test)
    return _dataset(x, y, x_test, piecewise_linear(x_test), dt)


def sines_data(
    *,
    n_train: int = 1500,
    n_test: int = 500,
    noise: float = 0.1,
    train_interval: tuple[float, float] = (-1.0, 1.0),
    test_interval: tuple[float, float] = (-1.0, 1.0),
    coefficients=None,
    seed: int = 0,
    dtype="float32",
) -> Dataset:
    """Sum-of-sines data: x ~ U[train_interval] (in draw order), y = :func:`sum_of_sines` (x) + noise·N(0, 1).

    Test points are drawn U[test_interval], sorted and noiseless. Training on part of the test interval (e.g.
    ``train_interval=(-1, 0.4)``) is the mismatched-data experiment of Sp25 HW1 Q5.

    Args:
      n_train: number of training points (course: 1500).
      n_test: number of test points (course: 500).
      noise: standard deviation of the training noise, >= 0 (course: 0.1).
      train_interval: ``(low, high)`` of the training inputs.
      test_interval: ``(low, high)`` of the test inputs.
      coefficients: F_k; default :func:`sines_coefficients`.
      seed: seed of ``numpy.random.default_rng``.
      dtype: float32 or float64.

    Returns:
      A :class:`Dataset`.
    """
    n_train, n_test, noise, (lo, hi), seed, dt = _check_common(
        n_train, n_test, noise, train_interval, seed, dtype, interval_name="train_interval"
    )
    tlo, thi = check_bounds("test_interval", test_interval)
    if coefficients is not None:
        coefficients = np.asarray(coefficients, dtype=np.float64)
        if coefficients.ndim != 1 or coefficients.size == 0 or not np.all(np.isfinite(coefficients)):
            raise InputError("coefficients", "must be a non-empty 1-D array of finite numbers")
    rng = np.random.default_rng(seed)
    x = rng.uniform(lo, hi, n_train)
    y = sum_of_sines(x, coefficients) + noise * rng.standard_normal(n_train)
    x_test = np.sort(rng.uniform(tlo, thi, n_test))
    return _dataset(x, y, x_test, sum_of_sines(x_test, coefficients), dt)


def _check_common(n_train, n_test, noise, interval, seed, dtype, *, interval_name: str):
    n_train = check_int("n_train", n_train, minimum=1)
    n_test = check_int("n_test", n_test, minimum=1)
    noise = float(check_positive_finite("noise", noise, allow_zero=True))
    bounds = check_bounds(interval_name, interval)
    seed = check_int("seed", seed, minimum=0)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in ("float32", "float64"):
        raise InputError("dtype", f"must be float32 or float64, got {dtype!r}")
    return n_train, n_test, noise, bounds, seed, dt


def _dataset(x, y, x_test, y_test, dt) -> Dataset:
    return Dataset(*(np.asarray(a, dtype=dt) for a in (x, y, x_test, y_test)))
