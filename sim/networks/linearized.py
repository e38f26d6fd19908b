"""A network and its linearization at θ₀ trained side by side: where the linear model's stability bound binds.

Contract: :func:`linearized_comparison` trains a Part II network (``sim.networks.course.PART2_MODELS``) and the
linearized model f(θ₀) + J(θ₀)(θ − θ₀) (``sim.networks.training.train_linearized``) with the same optimizer,
hyperparameters and minibatches at each learning rate, and returns one ``xarray.Dataset`` of losses, predictions,
distances and feature drift, with the linearization's stability bound; configuration and provenance in netCDF-safe
``attrs``. Bad input raises :class:`sim.core.validate.InputError` naming the parameter.

References: Jacot et al. 2018, Lee et al. 2019 (wide networks evolve as their linearization); Lewkowycz et al. 2020
(the catapult phase above the linear bound); EECS 182 Sp25 HW1 Q5 Part II (the networks and data).
"""

from __future__ import annotations

import jax
import numpy as np
import xarray as xr

from sim.core import engine
from sim.core.validate import InputError, check_positive_finite
from sim.networks import data as targets
from sim.networks import mlp, training
from sim.networks.course import PART2_MODELS, call_config, feature_grid, feature_views, part2_setup, result_attrs


def linearized_comparison(
    *,
    model: str = "he",
    learning_rates=(0.1, 0.02),
    steps: int = 468,
    momentum: float = 0.9,
    optimizer: str = "momentum",
    batch_size: int = 32,
    n_train: int = 1500,
    n_test: int = 500,
    noise: float = 0.1,
    data_seed: int = 0,
    seed: int = 0,
    checkpoint_every: int | None = None,
    grid_points: int = 400,
    progress: bool = True,
) -> xr.Dataset:
    """A Part II network and its linearization f(θ₀) + J(θ₀)(θ − θ₀) trained with the same optimizer and batches.

    The linearized model is linear regression on the fixed features Φ₀ = J(θ₀), so its full-batch dynamics are
    those of a quadratic with top Hessian eigenvalue h = 2 s₁²/n (MSE, s₁ = top singular value of Φ₀): full-batch
    GD is stable iff lr < 2/h, heavy ball iff lr < 2(1 + m)/h (``learning_rate_stable``; inf for adam, which has no such
    bound). That bound is the one of the MEAN iterate: with minibatches the gradient noise makes the second moment
    grow earlier (as for noisy-input SGD, ``sim.noisy.scalar``), so minibatch runs can diverge somewhat below it.
    The network is not bound by it: its features move (``feature_drift``) and it can train at learning rates where
    its linearization diverges (the "catapult" regime of Lewkowycz et al. 2020).

    Returns:
      Dataset over ``learning_rate``, ``kind`` = ("network", "linearized") and ``step``: ``train_loss``,
      ``test_loss``, ``prediction`` [learning_rate, kind, x], ``distance`` ‖θ_T − θ₀‖, ``diverged``,
      ``diverge_step``; ``feature_drift`` [learning_rate] ‖Φ_T − Φ₀‖_F / ‖Φ₀‖_F of the network (0 for the
      linearized model by construction); ``learning_rate_stable`` and ``top_singular_value`` s₁.
    """
    config = call_config(locals())
    if model not in PART2_MODELS:
        raise InputError("model", f"must be one of {tuple(PART2_MODELS)}, got {model!r}")
    lrs = check_positive_finite("learning_rates", learning_rates).ravel()
    config["learning_rates"] = lrs.tolist()
    _, data, params0 = part2_setup(model, n_train=n_train, n_test=n_test, noise=noise, data_seed=data_seed, seed=seed)
    kw = {"optimizer": optimizer, "momentum": momentum, "steps": steps, "batch_size": batch_size}
    kw |= {"checkpoint_every": checkpoint_every, "seed": seed}
    args = (data.x_train, data.y_train, data.x_test, data.y_test)
    grid = feature_grid((-1.0, 1.0), grid_points)
    phi0, _, pred0 = (np.asarray(v) for v in feature_views(params0, data.x_train, grid))
    flat0 = np.asarray(mlp.flatten(params0)[0])

    def one(lr) -> dict:
        net = training.train(params0, *args, learning_rate=lr, **kw)
        lin = training.train_linearized(params0, *args, learning_rate=lr, **kw)
        runs = (net, lin)
        preds = (mlp.apply_mlp(net.params, grid), training.linearized_apply(lin.params, grid, params0))
        phi_t = np.asarray(feature_views(net.params, data.x_train, grid)[0])
        return {
            "train_loss": np.stack([r.train_loss for r in runs]),
            "test_loss": np.stack([r.test_loss for r in runs]),
            "prediction": np.stack(preds),
            "distance": [np.linalg.norm(np.asarray(mlp.flatten(r.params)[0]) - flat0) for r in runs],
            "diverged": [bool(r.diverged) for r in runs],
            "diverge_step": [int(r.diverge_step) for r in runs],
            "drift": np.linalg.norm(phi_t - phi0) / np.linalg.norm(phi0),  # features.feature_drift, in NumPy
            "checkpoint_steps": np.asarray(net.checkpoint_steps),
        }

    def launch(i, device):
        with jax.default_device(device):
            return one(lrs[i])

    results = {}
    outcome = engine.run(
        list(range(lrs.size)),
        launch,
        lambda i, record: record,
        results.__setitem__,
        devices=jax.local_devices(),
        total=lrs.size,
        progress=progress,
        desc="linearized",
        unit="lr",
    )
    done = sorted(results)  # a signal keeps the learning rates that finished (attrs complete = 0)
    lrs = lrs[done]
    out = {k: [results[i][k] for i in done] for k in ("train_loss", "test_loss", "prediction", "distance")}
    out |= {k: [results[i][k] for i in done] for k in ("diverged", "diverge_step")}
    drift = [results[i]["drift"] for i in done]
    checkpoint_steps = results[done[0]]["checkpoint_steps"]
    s1 = float(np.linalg.norm(phi0.astype(np.float64), ord=2))
    h = 2 * s1**2 / n_train
    learning_rate_stable = {"sgd": 2 / h, "momentum": 2 * (1 + momentum) / h}.get(optimizer, np.inf)
    dims = {"train_loss": ("step",), "test_loss": ("step",), "prediction": ("x",)}
    ds = xr.Dataset(
        {k: (("learning_rate", "kind", *dims.get(k, ())), np.asarray(v)) for k, v in out.items()}
        | {
            "feature_drift": ("learning_rate", np.asarray(drift)),
            "initial_prediction": ("x", pred0),
            "target": ("x", targets.sum_of_sines(grid)),
            "x_train": ("sample", data.x_train),
            "y_train": ("sample", data.y_train),
            "learning_rate_stable": learning_rate_stable,
            "top_singular_value": s1,
        },
        coords={"learning_rate": lrs, "kind": ["network", "linearized"], "step": checkpoint_steps} | {"x": grid},
    )
    return ds.assign_attrs(result_attrs(config | {"experiment": "linearized_comparison", "complete": outcome.complete}))
