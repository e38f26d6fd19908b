"""Per-layer gradient norms of a deep ReLU net at init against the weight scale, with their mean-field prediction.

Contract: :func:`init_scale_sweep` returns an ``xarray.Dataset`` over (scale, seed, layer) of measured gradient norms
and signal second moments at init, beside the closed forms :func:`mean_field_gain`, :func:`relu_correlation` and
:func:`predicted_grad_norms` (float64 NumPy), with the configuration and provenance in netCDF-safe ``attrs``
(``sim.networks.course.result_attrs``). Bad input raises :class:`sim.core.validate.InputError` naming the parameter.

Mean-field theory of the init-scale sweep (derived in :func:`predicted_grad_norms`): with all weights U(±a)
(E w² = a²/3), zero biases and ReLU (E relu(h)² = ½ E h² for symmetric h), each layer of fan-in N multiplies the
pre-activation second moment by g = N·(a²/3)·½ = N a²/6, and the backward signal by the same g. Every layer's
per-sample Jacobian then has ‖∂f(x)/∂W_l‖_F² ≈ g^D x² (D hidden layers, equal widths), and the loss gradient is
≈ 2·g^{D/2}·|residual-weighted x|: it scales as a^D while the output is small (residual ≈ −y) and as a^{2D+1} once the
output f ∝ a^{D+1} dominates the residual. g = 1 at a = √(6/N), He's scale for the layers of fan-in N
(the sweep draws every layer U(±a), so there the first layer, of fan-in 1, has gain 1/N, not He's 1). With zero
biases both powers are exact (f is positively homogeneous of degree D + 1 in the weights), only the prefactors are
mean-field estimates.

References: EECS 182 Sp25 HW1 Q5 Part II (U(±0.03), U(±3) and He inits of a 4 × 20 net); Cho & Saul 2009 (the
arc-cosine kernel behind :func:`relu_correlation`); He et al. 2015 (g = 1).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from sim.core.validate import check_int, check_positive_finite
from sim.networks import data as targets
from sim.networks import mlp, training
from sim.networks.course import call_config, result_attrs


def mean_field_gain(scale, *, width: int):
    """g = width·a²/6: the factor by which one ReLU layer with U(±a) weights multiplies the second moment."""
    return width * np.square(np.asarray(scale, dtype=np.float64)) / 6.0


def relu_correlation(rho):
    """Correlation of relu(u), relu(v) (normalized by E relu(u)²) for jointly Gaussian u, v of correlation ρ."""
    rho = np.clip(np.asarray(rho, dtype=np.float64), -1.0, 1.0)
    return (np.sqrt(1 - rho**2) + (np.pi - np.arccos(rho)) * rho) / np.pi


def predicted_grad_norms(scale, x, y, *, depth: int, width: int) -> np.ndarray:
    """Mean-field RMS of each layer's weight-gradient norm of the MSE at init (all weights U(±a), zero biases).

    Derivation (1-D input, so f(x) = |x| f(sign x) and ∂f(x)/∂W_l = |x| J_l(sign x) exactly): the MSE gradient is
    ∇_{W_l} L = 2 (R₊ J₊ + R₋ J₋) with R± = f(±1) m± − c±, m± = mean_j x_j² 1[±x_j > 0] and
    c± = mean_j y_j |x_j| 1[±x_j > 0].
    Mean field: E f(±1)² = (a²/3) g^D, E‖J±‖² = g^D (forward gain g per layer times backward gain g per layer; the
    first and output layers give the same product), and inputs of opposite sign are correlated through the ReLU
    arc-cosine map: pre-activations start at ρ⁽¹⁾ = −1 and ρ⁽ˡ⁺¹⁾ = :func:`relu_correlation` (ρ⁽ˡ⁾); backward signals
    get the factor 1 − arccos(ρ⁽ˡ⁾)/π per layer. Treating R and J as independent,
    E‖∇_{W_l} L‖² ≈ 4 g^D [E R₊² + E R₋² + 2 ρ_l^J E R₊R₋], ρ_l^J = ρ⁽ˡ⁾ · Π_{k=l}^{D} (1 − arccos(ρ⁽ᵏ⁾)/π).

    Args:
      scale: a, array of any shape.
      x, y: training data, arrays of shape [n].
      depth: D hidden layers; width: N units each.

    Returns:
      Predicted RMS gradient norms, float64 array of shape [*scale.shape, depth + 1].
    """
    a = np.asarray(scale, dtype=np.float64)[..., None]
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    pos, neg = x > 0, x < 0
    m = [np.mean(x**2 * s) for s in (pos, neg)]
    c = [np.mean(y * np.abs(x) * s) for s in (pos, neg)]
    rho = [-1.0]
    for _ in range(depth):
        rho.append(float(relu_correlation(rho[-1])))  # ρ⁽¹⁾ … ρ⁽ᴰ⁺¹⁾ (the last is the output's)
    back = [1.0]  # backward correlation, from the output layer down
    for layer in range(depth, 0, -1):
        back.append(back[-1] * (1 - math.acos(rho[layer - 1]) / math.pi))
    rho_j = np.array([rho[layer] * back[depth - layer] for layer in range(depth + 1)])
    g_d = mean_field_gain(a, width=width) ** depth
    f2 = a**2 / 3 * g_d
    r_pp, r_mm = f2 * m[0] ** 2 + c[0] ** 2, f2 * m[1] ** 2 + c[1] ** 2
    r_pm = f2 * rho[-1] * m[0] * m[1] + c[0] * c[1]
    return 2 * np.sqrt(np.maximum(g_d * (r_pp + r_mm + 2 * rho_j * r_pm), 0))


def init_scale_sweep(
    scales,
    seeds=16,
    *,
    depth: int = 4,
    width: int = 20,
    n_train: int = 1500,
    noise: float = 0.1,
    data_seed: int = 0,
    progress: bool = True,
) -> xr.Dataset:
    """Per-layer gradient norms and signal second moments at init, vmapped over weight scales a and seeds.

    Weights are a·U(±1) (= U(±a)), biases zero, on the Part II sum-of-sines training data.

    Args:
      scales: a > 0, array of shape [S].
      seeds: a count k (seeds 0 … k−1) or a sequence of init seeds.

    Returns:
      Dataset over (scale, seed, layer): ``grad_norm``, ``second_moment`` (mean squared pre-activation of each
      hidden layer, and of the output f), their seed averages ``grad_norm_rms`` and ``second_moment_mean``, and
      the mean-field ``predicted_grad_norm``, ``predicted_second_moment`` and ``gain`` g = width·a²/6;
      attrs ``slope_small`` = D and ``slope_large`` = 2D + 1 (the two power laws).
    """
    config = call_config(locals())
    a = check_positive_finite("scales", scales).ravel()
    seeds = list(range(check_int("seeds", seeds, minimum=1))) if np.ndim(seeds) == 0 else list(seeds)
    seeds = [check_int("seeds", s, minimum=0) for s in seeds]
    depth, width = check_int("depth", depth, minimum=1), check_int("width", width, minimum=1)
    data = targets.sines_data(n_train=n_train, n_test=1, noise=noise, seed=data_seed)
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)

    def point(scale, key):
        unit = mlp.init_mlp(key, depth=depth, width=width, init="uniform", scale=1.0, zero_bias=True)
        params = [{"w": scale * layer["w"], "b": layer["b"]} for layer in unit]
        grads = jax.grad(lambda p: training.mse(mlp.apply_mlp(p, x), y))(params)
        h, moments = x[:, None], []
        for i, layer in enumerate(params):
            pre = h @ layer["w"] + layer["b"]
            moments.append(jnp.mean(pre**2))
            h = jax.nn.relu(pre) if i < depth else pre
        return jnp.stack([jnp.linalg.norm(g["w"]) for g in grads]), jnp.stack(moments)

    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    fn = jax.jit(jax.vmap(jax.vmap(point, (None, 0)), (0, None)))
    norms, moments = (np.asarray(v, dtype=np.float64) for v in fn(jnp.asarray(a, dtype=jnp.float32), keys))
    mean_x2 = float(np.mean(np.square(data.x_train, dtype=np.float64)))
    gain = mean_field_gain(a, width=width)
    predicted_q = a[:, None] ** 2 / 3 * mean_x2 * gain[:, None] ** np.arange(depth + 1)
    layers = mlp.layer_names([None] * (depth + 1))
    ds = xr.Dataset(
        {
            "grad_norm": (("scale", "seed", "layer"), norms),
            "second_moment": (("scale", "seed", "layer"), moments),
            "grad_norm_rms": (("scale", "layer"), np.sqrt(np.mean(norms**2, axis=1))),
            "second_moment_mean": (("scale", "layer"), moments.mean(axis=1)),
            "predicted_grad_norm": (
                ("scale", "layer"),
                predicted_grad_norms(a, data.x_train, data.y_train, depth=depth, width=width),
            ),
            "predicted_second_moment": (("scale", "layer"), predicted_q),
            "gain": ("scale", gain),
        },
        coords={"scale": a, "seed": seeds, "layer": layers},
    )
    config |= {"scales": a.tolist(), "seeds": seeds, "slope_small": depth, "slope_large": 2 * depth + 1}
    return ds.assign_attrs(result_attrs(config | {"he_scale": math.sqrt(6 / width), "experiment": "init_scale_sweep"}))
