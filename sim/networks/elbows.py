"""Elbows of a ReLU network's first-layer units: where they are, how one SGD step moves them, and their history.

Contract: for the first hidden layer, unit i computes relu(W⁽¹⁾_i x + b_i) and bends at e_i = −b_i / W⁽¹⁾_i. A unit
with W⁽¹⁾_i = 0 is constant in x and has no elbow: it is reported with ``defined = False`` and position +inf, so
position arrays never hold NaN. :func:`elbow_update` is the closed-form position after one SGD step (one hidden
layer), :func:`track_elbows` stacks positions over a list of parameter checkpoints.

One SGD step on ℓ = ½(f̂(x) − y)², f̂(x) = W⁽²⁾ relu(W⁽¹⁾x + b) (+ output bias), rate λ, relu′(0) = 0: with the
residual r = f̂(x) − y, an active unit (W⁽¹⁾_i x + b_i > 0) gets gradients ∂ℓ/∂b_i = r W⁽²⁾_i and
∂ℓ/∂W⁽¹⁾_i = r W⁽²⁾_i x, so

    e′_i = −(b_i − λ r W⁽²⁾_i) / (W⁽¹⁾_i − λ x r W⁽²⁾_i),

and an inactive unit keeps its elbow. The output bias moves but does not enter any elbow. For a minibatch the loss
is the mean of the per-sample losses and the two gradients are means over the samples where the unit is active.

References: EECS 182 Sp25 HW0 Q5 (ReLU elbow update under SGD; its single-ReLU example lr 0.1, x = 1, y = 1,
w = −2, b = 4 moves the elbow from 2 to 1.857).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from sim.core.validate import InputError, check_positive_finite
from sim.networks.mlp import Params, apply_mlp, check_params


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Elbows:
    """First-layer elbow positions.

    Attributes:
      position: e_i = −b_i / W⁽¹⁾_i, +inf where undefined; array of shape [width] (or [T, width] from
        :func:`track_elbows`).
      defined: W⁽¹⁾_i ≠ 0, boolean array of the same shape.
    """

    position: jax.Array
    defined: jax.Array


def elbow_positions(params: Params) -> Elbows:
    """Elbow positions of the first hidden layer's units (any depth).

    Args:
      params: ``Params`` of :mod:`sim.networks.mlp`.

    Returns:
      :class:`Elbows` of shape [width].
    """
    params = check_params(params)
    return _elbows(params[0]["w"][0], params[0]["b"])


def elbow_update(params: Params, x, y, *, learning_rate: float) -> Elbows:
    """Elbow positions after one SGD step on ½(f̂(x) − y)² (averaged over a minibatch), by the closed form.

    Args:
      params: ``Params`` with one hidden layer.
      x: a scalar input, or an array of shape [m] (a minibatch).
      y: target(s) of the same shape as ``x``.
      learning_rate: λ > 0.

    Returns:
      :class:`Elbows` of shape [width] after the step.
    """
    params = check_params(params)
    if len(params) != 2:
        raise InputError("params", f"the closed form is for one hidden layer, got {len(params) - 1}")
    learning_rate = float(check_positive_finite("learning_rate", learning_rate))
    x_arr, y_arr = np.asarray(x), np.asarray(y)
    if x_arr.ndim > 1 or x_arr.size == 0 or not np.all(np.isfinite(x_arr)):
        raise InputError("x", f"must be a finite scalar or 1-D array, got shape {x_arr.shape}")
    if y_arr.shape != x_arr.shape or not np.all(np.isfinite(y_arr)):
        raise InputError("y", f"must be finite with the shape of x {x_arr.shape}, got {y_arr.shape}")
    dtype = params[0]["w"].dtype
    return _update(params, jnp.atleast_1d(x_arr).astype(dtype), jnp.atleast_1d(y_arr).astype(dtype), learning_rate)


def track_elbows(checkpoints) -> Elbows:
    """Elbow positions over training.

    Args:
      checkpoints: a list of ``Params`` (T checkpoints), or one ``Params`` whose leaves carry a leading axis T.

    Returns:
      :class:`Elbows` of shape [T, width].
    """
    if isinstance(checkpoints, (list, tuple)) and checkpoints and isinstance(checkpoints[0], (list, tuple)):
        for i, ckpt in enumerate(checkpoints):
            check_params(ckpt, name=f"checkpoints[{i}]")
        w = jnp.stack([c[0]["w"][0] for c in checkpoints])
        b = jnp.stack([c[0]["b"] for c in checkpoints])
    else:
        if not isinstance(checkpoints, (list, tuple)) or not checkpoints:
            raise InputError("checkpoints", "must be a non-empty list of Params or a stacked Params")
        first = checkpoints[0]
        if not isinstance(first, dict) or np.ndim(first.get("w")) != 3 or np.shape(first["w"])[1] != 1:
            raise InputError("checkpoints", "a stacked Params needs a first-layer w of shape [T, 1, width]")
        w, b = jnp.asarray(first["w"])[:, 0], jnp.asarray(first["b"])
    return _elbows(w, b)


def _elbows(w, b) -> Elbows:
    defined = w != 0
    position = jnp.where(defined, -b / jnp.where(defined, w, 1), jnp.inf)
    return Elbows(position, defined)


@jax.jit
def _update(params, x, y, learning_rate):
    hidden, out = params
    w1, b1, w2 = hidden["w"][0], hidden["b"], out["w"][:, 0]
    residual = apply_mlp(params, x) - y  # [m]
    active = (x[:, None] * w1 + b1) > 0  # [m, width]
    signal = jnp.where(active, residual[:, None] * w2, 0)  # r W⁽²⁾_i 1[active], [m, width]
    grad_b = jnp.mean(signal, axis=0)
    grad_w = jnp.mean(signal * x[:, None], axis=0)
    return _elbows(w1 - learning_rate * grad_w, b1 - learning_rate * grad_b)
