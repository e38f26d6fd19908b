"""Scalar-in, scalar-out ReLU multilayer perceptrons as plain pytrees, with the initializations the course uses.

Contract: ``Params`` is a list with one dict per layer, ``{"w": array [fan_in, fan_out], "b": array [fan_out]}``;
the first layer has fan_in 1, the last fan_out 1, hidden layers apply ReLU and the last layer is linear.
:func:`init_mlp` builds one (``depth`` hidden layers of ``width`` units), :func:`apply_mlp` evaluates it on a scalar
or a 1-D batch of inputs. Flat parameter vectors use :func:`jax.flatten_util.ravel_pytree` order (layer by layer,
and inside a layer ``b`` before ``w``, since dict keys flatten sorted); :func:`parameter_slices` names the ranges.

Initializations (``INITS``), written as PyTorch does them so results compare with the course's runs:

- ``uniform``: every weight U(−scale, scale); biases too unless ``zero_bias`` (the U(±0.03) / U(±3) runs of
  EECS 182 Sp25 HW1 Q5 Part II).
- ``he_uniform``: ``torch.nn.init.kaiming_uniform_`` (a = 0, fan_in, gain √2), weights U(±√(6 / fan_in)) in every
  layer including the output layer; biases keep ``nn.Linear``'s default U(±1/√fan_in) unless ``zero_bias``.
- ``he_normal``: ``kaiming_normal_``, weights N(0, 2 / fan_in); biases as for ``he_uniform``.
- ``pytorch``: ``nn.Linear``'s default, weights and biases U(±1/√fan_in) (kaiming_uniform_ with a = √5).
- ``elbows``: the course's elbow placement (Sp25 HW0 Q5 notebook): first-layer weights U(−scale, scale) (scale
  defaults to 1), elbows e sorted U[elbow_interval] (default [0, 1]) and first-layer biases b = −e·w, so unit i has
  its kink at e_i. HW0 Q5 writes the output layer without a bias, but the notebook's parameter counts (31 / 61 / 121
  for widths 10 / 20 / 40) include one output bias, so the output layer (and any further hidden layer) is an
  ``nn.Linear`` default layer; ``zero_bias`` zeroes those biases only, never the elbow-placing first-layer ones.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from sim.core.validate import InputError, check_in_interval, check_int, check_positive_finite
from sim.networks import INITS

Params = list[dict[str, jax.Array]]
DTYPES = ("float32", "float64")


def check_dtype(dtype) -> jnp.dtype:
    """The floating dtype named by ``dtype`` (float32 or float64; float64 needs ``jax.enable_x64``)."""
    try:
        dt = jnp.dtype(dtype)
    except TypeError as err:
        raise InputError("dtype", f"must be one of {DTYPES}, got {dtype!r}") from err
    if dt.name not in DTYPES:
        raise InputError("dtype", f"must be one of {DTYPES}, got {dt.name}")
    if dt == jnp.float64 and not jax.config.jax_enable_x64:
        raise InputError("dtype", "float64 needs 64-bit mode (wrap the call in `with jax.enable_x64(True):`)")
    return dt


def init_mlp(
    key: jax.Array,
    *,
    depth: int,
    width: int,
    init: str = "pytorch",
    scale: float | None = None,
    zero_bias: bool = False,
    dtype="float32",
    elbow_interval: tuple[float, float] = (0.0, 1.0),
) -> Params:
    """Random parameters of a 1 → width → … → width → 1 ReLU network.

    Args:
      key: a ``jax.random.key``.
      depth: number of hidden layers, >= 1.
      width: units per hidden layer, >= 1.
      init: one of ``INITS`` (see the module docstring for the distributions).
      scale: the half-width of the uniform draws for ``"uniform"`` (required, > 0) and of the first-layer weights
        for ``"elbows"`` (default 1); must be None for the other schemes.
      zero_bias: set the biases to zero (for ``"elbows"``: the output and later hidden layers' biases only).
      dtype: float32 or float64.
      elbow_interval: ``(low, high)`` of the uniform elbow positions for ``"elbows"``.

    Returns:
      ``Params``: a list of ``depth + 1`` dicts ``{"w": [fan_in, fan_out], "b": [fan_out]}``.

    References:
      He et al. 2015, "Delving deep into rectifiers" (kaiming init); EECS 182 Sp25 HW0 Q5 (elbows) and
      Sp25 HW1 Q5 (initialization scales and the features they produce).
    """
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    if init not in INITS:
        raise InputError("init", f"must be one of {INITS}, got {init!r}")
    if init == "uniform":
        if scale is None:
            raise InputError("scale", "init='uniform' needs scale > 0 (weights are U(-scale, scale))")
        scale = float(check_positive_finite("scale", scale))
    elif init == "elbows":
        scale = 1.0 if scale is None else float(check_positive_finite("scale", scale))
    elif scale is not None:
        raise InputError("scale", f"is only used by init='uniform' or 'elbows', not {init!r}")
    lo, hi = check_bounds("elbow_interval", elbow_interval)
    dt = check_dtype(dtype)
    return _init(key, depth, width, init, scale, bool(zero_bias), dt.name, lo, hi)


@functools.partial(jax.jit, static_argnums=tuple(range(1, 9)))
def _init(key, depth, width, init, scale, zero_bias, dtype, lo, hi) -> Params:
    """The draws of :func:`init_mlp` (validated arguments), as one compiled call per configuration.

    All uniform numbers come from one draw and all normal ones from another (each random call compiles its own
    threefry hash, and per-layer calls made a tiny network's first init take seconds to compile).
    """
    dt = jnp.dtype(dtype)
    sizes = [1] + [width] * depth + [1]
    shapes = [((fan_in, fan_out), (fan_out,)) for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True)]
    n_weights = sum(math.prod(w) for w, _ in shapes)
    n_biases = sum(b[0] for _, b in shapes)
    k_uniform, k_normal = jax.random.split(key)
    uniform = iter(_chunks(jax.random.uniform(k_uniform, (n_weights + n_biases,), dt, -1.0, 1.0), shapes))
    n_normal = n_weights if init == "he_normal" else 0
    normal = _chunks(jax.random.normal(k_normal, (n_normal,), dt), [(w if n_normal else (0,),) for w, _ in shapes])
    normal = iter(normal)
    params = []
    for layer, (w_shape, _) in enumerate(shapes):
        u_w, u_b = next(uniform)
        (n_w,) = next(normal)
        default = 1.0 / math.sqrt(w_shape[0])  # nn.Linear's bound, for weights and biases alike
        if init == "uniform":
            w, b = scale * u_w, scale * u_b
        elif init == "he_uniform":
            w, b = math.sqrt(6.0 / w_shape[0]) * u_w, default * u_b
        elif init == "he_normal":
            w, b = math.sqrt(2.0 / w_shape[0]) * n_w, default * u_b
        elif init == "elbows" and layer == 0:
            w = scale * u_w
            elbows = jnp.sort(lo + (hi - lo) * 0.5 * (u_b + 1.0))
            params.append({"w": w, "b": -elbows * w[0]})
            continue
        else:  # "pytorch", and the layers after the first for "elbows"
            w, b = default * u_w, default * u_b
        params.append({"w": w, "b": jnp.zeros_like(b) if zero_bias else b})
    return params


def _chunks(flat, shapes):
    """Consecutive pieces of ``flat`` reshaped to each tuple of shapes in turn."""
    start = 0
    for group in shapes:
        pieces = []
        for shape in group:
            size = math.prod(shape)
            pieces.append(flat[start : start + size].reshape(shape))
            start += size
        yield pieces


def apply_mlp(params: Params, x: jax.typing.ArrayLike, *, activation: Callable = jax.nn.relu) -> jax.Array:
    """The network's output f(x).

    Args:
      params: ``Params`` from :func:`init_mlp` (or any list of layers with the same structure).
      x: a scalar or an array of shape [n].
      activation: the hidden layers' nonlinearity (``jax.nn.relu``, whose derivative at 0 is 0).

    Returns:
      f(x): a scalar, or an array of shape [n], in the parameters' dtype.
    """
    x = jnp.asarray(x)
    if x.ndim > 1:
        raise InputError("x", f"must be a scalar or 1-D, got shape {x.shape}")
    h = x[..., None].astype(params[0]["w"].dtype)
    for layer in params[:-1]:
        h = activation(h @ layer["w"] + layer["b"])
    return (h @ params[-1]["w"] + params[-1]["b"])[..., 0]


def num_params(params: Params) -> int:
    """The number P of scalar parameters (the columns of the feature matrix)."""
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))


def depth_of(params: Params) -> int:
    """The number of hidden layers."""
    return len(params) - 1


def layer_names(params: Params) -> list[str]:
    """Names of the layers, in order: ``hidden_1``, …, ``hidden_{depth}``, ``output``."""
    return [f"hidden_{i + 1}" for i in range(len(params) - 1)] + ["output"]


def parameter_slices(params: Params) -> dict[str, slice]:
    """Where each weight and bias sits in the flat parameter vector (and among the feature matrix's columns).

    Returns:
      ``{"hidden_1.b": slice, "hidden_1.w": slice, …, "output.w": slice}`` in ``ravel_pytree`` order; a weight's
      entries are in row-major [fan_in, fan_out] order.
    """
    names = layer_names(params)
    out, start = {}, 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        layer, key = path[0].idx, path[1].key
        out[f"{names[layer]}.{key}"] = slice(start, start + int(np.size(leaf)))
        start += int(np.size(leaf))
    return out


def flatten(params: Params) -> tuple[jax.Array, Callable[[jax.Array], Params]]:
    """``(flat, unflatten)``: the parameters as one vector of length P and the function that rebuilds them."""
    return ravel_pytree(params)


def check_params(params, *, name: str = "params") -> Params:
    """Require the ``Params`` structure: 1 → … → 1 layers with matching shapes, at least one hidden layer."""
    if not isinstance(params, Sequence) or len(params) < 2:
        raise InputError(name, "must be a list of at least two layers ({'w': [fan_in, fan_out], 'b': [fan_out]})")
    fan_in = 1
    for i, layer in enumerate(params):
        if not isinstance(layer, dict) or set(layer) != {"w", "b"}:
            raise InputError(name, f"layer {i} must be a dict with keys 'w' and 'b'")
        w_shape, b_shape = np.shape(layer["w"]), np.shape(layer["b"])
        if len(w_shape) != 2 or w_shape[0] != fan_in or b_shape != (w_shape[1],):
            raise InputError(name, f"layer {i} has w {w_shape} and b {b_shape}; expected w ({fan_in}, k), b (k,)")
        fan_in = w_shape[1]
    if fan_in != 1:
        raise InputError(name, f"the last layer must have one output, got {fan_in}")
    return list(params)


def check_x(x, *, name: str = "x") -> np.ndarray:
    """Require a non-empty, finite 1-D array of inputs (returned as NumPy)."""
    arr = np.asarray(x)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(name, f"must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
        raise InputError(name, "must be finite numbers")
    return arr


def check_bounds(name: str, interval) -> tuple[float, float]:
    """Require a pair ``(low, high)`` of finite numbers with low < high."""
    try:
        lo, hi = (float(v) for v in interval)
    except (TypeError, ValueError) as err:
        raise InputError(name, f"must be a pair (low, high), got {interval!r}") from err
    check_in_interval(name, [lo, hi], -np.inf, np.inf, closed_high=False)
    if not lo < hi:
        raise InputError(name, f"must have low < high, got ({lo:g}, {hi:g})")
    return lo, hi
