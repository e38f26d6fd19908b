"""Minibatch training of the 1-D ReLU MLPs of ``sim.networks.mlp`` with optax, and of their linearization beside them.

Contract: :func:`train` runs ``steps`` optimizer steps inside one compiled ``jax.lax.scan`` and returns a
:class:`TrainResult` (a pytree of arrays): the final parameters, parameter checkpoints every ``checkpoint_every``
steps stacked along a leading axis, and at every checkpoint the full training loss, the test loss and the per-layer
gradient norms; plus the minibatch loss of every step. :func:`train_linearized` does the same for the linearized
model f(θ₀; x) + J(θ₀; x)(θ − θ₀) (a ``jax.jvp``), with the same optimizer and, for the same ``seed``, the same
minibatches. Nothing here draws initial parameters: pass them from ``sim.networks.mlp.init_mlp``.

Conventions:

* Loss ``"mse"``: L(θ) = mean_j (f(x_j) − y_j)², PyTorch's ``nn.MSELoss()`` (mean squared error, no ½), as in the
  course's notebooks. ``"half_mse"`` is ½ of it, the ℓ = ½(f̂ − y)² of the elbow problem (EECS 182 Sp25 HW0 Q5).
* Optimizers (``OPTIMIZERS``): ``"sgd"`` is θ ← θ − lr ∇L (exactly :func:`sgd_step`); ``"momentum"`` is optax's and
  PyTorch's heavy ball ``optax.sgd(lr, momentum=m)``: v ← m v + ∇L, θ ← θ − lr v (the package glossary's
  ``momentum``; the course's EMA form is the same with lr = η β, m = 1 − β); ``"adam"`` is ``optax.adam(lr)``.
* Minibatches: drawn inside the scan from ``jax.random.key(seed)``. By default WITHOUT replacement, like the course's
  ``DataLoader(shuffle=True)``: the data are reshuffled every epoch (a fresh permutation per epoch) and step t takes
  positions t·B … t·B + B − 1 of the concatenated epochs, so every batch has exactly B points and a batch may
  straddle two epochs (PyTorch instead yields a short last batch per epoch). ``replace=True`` draws each batch
  i.i.d. uniformly with replacement.
* Gradient norms: the Frobenius norm of each layer's WEIGHT gradient (biases excluded) of the FULL training loss,
  at each checkpoint; layers ordered ``hidden_1 … hidden_depth, output`` (``mlp.layer_names``).
* Divergence is a result, not a crash: a step whose minibatch loss is non-finite or above ``divergence_bound`` sets
  ``diverged`` and ``diverge_step``, restores the last parameters whose loss was below the bound and freezes
  training there. Logged losses are clipped at the bound and every logged number is finite (no NaN).

References: EECS 182 Sp25 HW1 Q5 (local-linearization features, Parts I and II), Sp25 HW0 Q5 (elbows); Jacot et
al. 2018 and Lee et al. 2019 ("wide networks evolve as linear models") for the linearized model.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sim.core.validate import InputError, check_in_interval, check_int, check_positive_finite
from sim.networks import mlp

Params = mlp.Params
OPTIMIZERS = ("sgd", "momentum", "adam")
LOSSES = ("mse", "half_mse")
DEFAULT_CHECKPOINTS = 100  # checkpoint_every=None keeps about this many checkpoints (plus the initial one)
DIVERGENCE_BOUND = 1e8


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What one training run returns (C = number of checkpoints including step 0, L = number of layers).

    Attributes:
      params: final parameters (the frozen ones if the run diverged).
      checkpoints: parameters at ``checkpoint_steps``, each leaf stacked to shape [C, ...].
      checkpoint_steps: int array of shape [C]: 0, k, 2k, …, steps.
      train_loss: full training-set loss at each checkpoint, shape [C].
      test_loss: test-set loss at each checkpoint, shape [C].
      grad_norms: Frobenius norm of each layer's weight gradient of the full training loss, shape [C, L].
      batch_loss: the minibatch loss at the parameters before each step, shape [steps].
      diverged: bool scalar.
      diverge_step: the step whose loss crossed the bound, −1 if none.
    """

    params: Params
    checkpoints: Params
    checkpoint_steps: jax.Array
    train_loss: jax.Array
    test_loss: jax.Array
    grad_norms: jax.Array
    batch_loss: jax.Array
    diverged: jax.Array
    diverge_step: jax.Array


def make_optimizer(name: str, *, learning_rate, momentum=0.9) -> optax.GradientTransformation:
    """The optax transformation named ``name`` (one of ``OPTIMIZERS``); ``momentum`` is used by "momentum" only."""
    if name == "sgd":
        return optax.sgd(learning_rate)
    if name == "momentum":
        return optax.sgd(learning_rate, momentum=momentum)
    if name == "adam":
        return optax.adam(learning_rate)
    raise InputError("optimizer", f"must be one of {OPTIMIZERS}, got {name!r}")


def mse(prediction: jax.Array, y: jax.Array, *, half: bool = False) -> jax.Array:
    """Mean squared error mean_j (prediction_j − y_j)², or half of it with ``half``."""
    m = jnp.mean(jnp.square(prediction - y))
    return 0.5 * m if half else m


def linearized_apply(params: Params, x: jax.typing.ArrayLike, params0: Params) -> jax.Array:
    """The network linearized at θ₀: f(θ₀; x) + J(θ₀; x)(θ − θ₀), one forward-mode ``jax.jvp``; shape of ``x``."""
    delta = jax.tree.map(jnp.subtract, params, params0)
    f0, df = jax.jvp(lambda p: mlp.apply_mlp(p, x), (params0,), (delta,))
    return f0 + df


def batch_indices(key: jax.Array, step, *, n: int, batch_size: int, replace: bool = False) -> jax.Array:
    """Indices of the minibatch used at ``step`` (traceable in ``step``), int array of shape [batch_size].

    Without replacement, epoch e is ``jax.random.permutation(fold_in(key, e), n)`` and step t takes positions
    t·B … t·B + B − 1 of the concatenated epochs (needs B <= n, so a batch touches at most two epochs).
    """
    if replace:
        return jax.random.randint(jax.random.fold_in(key, step), (batch_size,), 0, n)
    pos = step * batch_size + jnp.arange(batch_size)
    epoch, slot = pos // n, pos % n
    first = epoch[0]
    p0 = jax.random.permutation(jax.random.fold_in(key, first), n)
    p1 = jax.random.permutation(jax.random.fold_in(key, first + 1), n)
    return jnp.where(epoch == first, p0[slot], p1[slot])


def checkpoint_schedule(steps: int, checkpoint_every: int | None = None) -> np.ndarray:
    """The steps at which :func:`train` keeps checkpoints: 0, k, 2k, …, and ``steps`` (int array).

    ``checkpoint_every`` = k >= 1 (capped at ``steps``); None picks k = ⌈steps / DEFAULT_CHECKPOINTS⌉.
    """
    steps = check_int("steps", steps, minimum=1)
    if checkpoint_every is None:
        every = math.ceil(steps / DEFAULT_CHECKPOINTS)
    else:
        every = min(check_int("checkpoint_every", checkpoint_every, minimum=1), steps)
    return np.minimum(np.arange(-(-steps // every) + 1) * every, steps)


def layer_grad_norms(params: Params, x: jax.typing.ArrayLike, y: jax.typing.ArrayLike, *, loss: str = "mse"):
    """Frobenius norms of each layer's weight gradient of the loss on (x, y), array of shape [L]."""
    params = mlp.check_params(params)
    _check_xy(x, y, "x", "y")
    _check_choice("loss", loss, LOSSES)
    return _grad_norms(jax.grad(_loss_fn(_net, loss == "half_mse"))(params, None, jnp.asarray(x), jnp.asarray(y)))


def sgd_step(params: Params, x: jax.typing.ArrayLike, y: jax.typing.ArrayLike, *, learning_rate, loss: str = "mse"):
    """One plain gradient step θ − lr ∇L(θ) on (x, y) (the whole batch given), as a new ``Params``."""
    params = mlp.check_params(params)
    _check_xy(x, y, "x", "y")
    _check_choice("loss", loss, LOSSES)
    lr = float(check_positive_finite("learning_rate", learning_rate))
    g = jax.grad(_loss_fn(_net, loss == "half_mse"))(params, None, jnp.asarray(x), jnp.asarray(y))
    return jax.tree.map(lambda p, gi: p - lr * gi, params, g)


def check_options(
    n: int,
    *,
    optimizer: str = "sgd",
    learning_rate,
    steps: int,
    batch_size: int,
    momentum: float = 0.9,
    checkpoint_every: int | None = None,
    seed: int = 0,
    loss: str = "mse",
    replace: bool = False,
    divergence_bound: float = DIVERGENCE_BOUND,
) -> dict:
    """Validate :func:`train`'s keyword options for ``n`` training points, in pure Python (nothing is compiled).

    Callers that set up more than a training run (data, initial parameters) call this first, so that a bad option
    is reported before anything compiles; :func:`train` calls it again.

    Returns:
      The options as Python scalars, with ``checkpoint_every`` replaced by ``checkpoint_steps``
      (:func:`checkpoint_schedule`).

    Raises:
      InputError: naming the first bad option.
    """
    _check_choice("optimizer", optimizer, OPTIMIZERS)
    _check_choice("loss", loss, LOSSES)
    learning_rate = float(check_positive_finite("learning_rate", learning_rate))
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1, maximum=n)
    momentum = float(check_in_interval("momentum", momentum, 0.0, 1.0, closed_low=True, closed_high=False))
    checkpoint_steps = checkpoint_schedule(steps, checkpoint_every)
    seed = check_int("seed", seed, minimum=0)
    divergence_bound = float(check_positive_finite("divergence_bound", divergence_bound))
    return {
        "optimizer": optimizer,
        "loss": loss,
        "learning_rate": learning_rate,
        "steps": steps,
        "batch_size": batch_size,
        "momentum": momentum,
        "checkpoint_steps": checkpoint_steps,
        "seed": seed,
        "replace": bool(replace),
        "divergence_bound": divergence_bound,
    }


def train(
    params: Params,
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    optimizer: str = "sgd",
    learning_rate,
    steps: int,
    batch_size: int,
    momentum: float = 0.9,
    checkpoint_every: int | None = None,
    seed: int = 0,
    loss: str = "mse",
    replace: bool = False,
    divergence_bound: float = DIVERGENCE_BOUND,
) -> TrainResult:
    """Train the MLP ``params`` on (x_train, y_train) with minibatch ``optimizer`` steps, logging test loss too.

    Args:
      params: initial ``Params`` (``sim.networks.mlp``).
      x_train: inputs, array of shape [n].
      y_train: targets, array of shape [n].
      x_test: test inputs, array of shape [m].
      y_test: test targets, array of shape [m].
      optimizer: one of ``OPTIMIZERS``.
      learning_rate: lr > 0.
      steps: number of optimizer steps, >= 1.
      batch_size: minibatch size B, 1 <= B <= n (B = n: full batch).
      momentum: heavy-ball m in [0, 1), used by ``"momentum"``.
      checkpoint_every: k >= 1; parameters and full losses are kept at steps 0, k, 2k, …, and at ``steps``.
        Default: about ``DEFAULT_CHECKPOINTS`` checkpoints.
      seed: seed of the minibatch draws.
      loss: ``"mse"`` (mean, no ½; PyTorch's MSELoss) or ``"half_mse"``.
      replace: draw minibatches with replacement instead of per-epoch shuffling.
      divergence_bound: a minibatch loss above this (or non-finite) marks the run diverged and freezes it.

    Returns:
      A :class:`TrainResult`.
    """
    return _train("net", params, None, x_train, y_train, x_test, y_test, locals())


def train_linearized(
    params0: Params,
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    optimizer: str = "sgd",
    learning_rate,
    steps: int,
    batch_size: int,
    momentum: float = 0.9,
    checkpoint_every: int | None = None,
    seed: int = 0,
    loss: str = "mse",
    replace: bool = False,
    divergence_bound: float = DIVERGENCE_BOUND,
) -> TrainResult:
    """Train the linearized model f(θ₀) + J(θ₀)(θ − θ₀) from θ = θ₀, exactly as :func:`train` trains the network.

    The model is linear in θ with the fixed features J(θ₀; x) (the rows of the feature matrix Φ), so this is linear
    regression on those features, run with the same optimizer, hyperparameters and (same ``seed``) minibatches as
    :func:`train`. Arguments and result are those of :func:`train`, with ``params0`` = θ₀ (also the start).
    """
    return _train("linearized", params0, params0, x_train, y_train, x_test, y_test, locals())


# --------------------------------------------------------------------------------------------------------------
# Implementation


def _net(params, x, aux):
    del aux
    return mlp.apply_mlp(params, x)


def _linearized(params, x, params0):
    return linearized_apply(params, x, params0)


_MODELS = {"net": _net, "linearized": _linearized}
_DATA_ARGS = ("params", "params0", "x_train", "y_train", "x_test", "y_test")


def _loss_fn(model, half):
    def loss_fn(params, aux, x, y):
        return mse(model(params, x, aux), y, half=half)

    return loss_fn


def _grad_norms(grads) -> jax.Array:
    return jnp.stack([_frobenius(layer["w"]) for layer in grads])


def _frobenius(g) -> jax.Array:
    """‖g‖_F computed as max|g| · ‖g / max|g|‖_F: no overflow of the squares in float32 for norms up to ~1e38."""
    scale = jnp.max(jnp.abs(g))
    safe = jnp.where(scale > 0, scale, 1)
    return safe * jnp.linalg.norm(g / safe) * (scale > 0)


def _finite(v, cap):
    """``v`` with non-finite entries and entries above ``cap`` replaced by ``cap`` (logs stay NaN-free)."""
    return jnp.where(jnp.isfinite(v), jnp.minimum(v, cap), cap)


def _select(cond, a, b):
    return jax.tree.map(lambda u, v: jnp.where(cond, u, v), a, b)


def _train(model, params, aux, x, y, x_test, y_test, kw) -> TrainResult:
    params = mlp.check_params(params, name="params0" if model == "linearized" else "params")
    x, y = _check_xy(x, y, "x_train", "y_train")
    x_test, y_test = _check_xy(x_test, y_test, "x_test", "y_test")
    o = check_options(x.size, **{k: v for k, v in kw.items() if k not in _DATA_ARGS})
    ckpt_steps, steps = o["checkpoint_steps"], o["steps"]
    dtype = params[0]["w"].dtype
    data = [jnp.asarray(a, dtype=dtype) for a in (x, y, x_test, y_test)]
    fn = _compiled(
        model, o["optimizer"], o["loss"] == "half_mse", steps, o["batch_size"], int(ckpt_steps[1]), o["replace"]
    )
    out = fn(params, aux, *data, jax.random.key(o["seed"]), o["learning_rate"], o["momentum"], o["divergence_bound"])
    return dataclasses.replace(out, checkpoint_steps=jnp.asarray(ckpt_steps), batch_loss=out.batch_loss[:steps])


@functools.cache
def _compiled(model, optimizer, half, steps, batch_size, every, replace):
    loss_fn = _loss_fn(_MODELS[model], half)
    value_and_grad = jax.value_and_grad(loss_fn)
    n_chunks = -(-steps // every)

    def run(params, aux, x, y, x_test, y_test, key, learning_rate, momentum, bound):
        opt = make_optimizer(optimizer, learning_rate=learning_rate, momentum=momentum)
        cap = jnp.finfo(x.dtype).max

        def evaluate(p):
            train_loss, g = value_and_grad(p, aux, x, y)
            test_loss = loss_fn(p, aux, x_test, y_test)
            return _finite(train_loss, bound), _finite(test_loss, bound), _finite(_grad_norms(g), cap)

        def step(carry, t):
            p, state, good, diverged, diverge_step = carry
            idx = batch_indices(key, t, n=x.shape[0], batch_size=batch_size, replace=replace)
            loss, g = value_and_grad(p, aux, x[idx], y[idx])
            active = (t < steps) & ~diverged
            bad = active & ~(loss <= bound)  # NaN compares False, so it is caught too
            ok = active & ~bad
            updates, new_state = opt.update(g, state, p)
            new_p = optax.apply_updates(p, updates)
            carry = (
                _select(ok, new_p, _select(bad, good, p)),
                _select(ok, new_state, state),
                _select(ok, p, good),
                diverged | bad,
                jnp.where(bad, t, diverge_step),
            )
            return carry, _finite(loss, bound)

        def chunk(carry, c):
            carry, losses = jax.lax.scan(step, carry, c * every + jnp.arange(every, dtype=jnp.int32))
            return carry, (carry[0], evaluate(carry[0]), losses)

        init = (params, opt.init(params), params, jnp.asarray(False), jnp.asarray(-1, dtype=jnp.int32))
        carry, (ckpts, evals, losses) = jax.lax.scan(chunk, init, jnp.arange(n_chunks, dtype=jnp.int32))
        first = evaluate(params)
        stack = lambda a, b: jnp.concatenate([a[None], b])  # noqa: E731
        train_loss, test_loss, norms = (stack(a, b) for a, b in zip(first, evals, strict=True))
        return TrainResult(
            params=carry[0],
            checkpoints=jax.tree.map(stack, params, ckpts),
            checkpoint_steps=jnp.zeros(n_chunks + 1, dtype=jnp.int32),  # filled in outside (static)
            train_loss=train_loss,
            test_loss=test_loss,
            grad_norms=norms,
            batch_loss=losses.reshape(-1),
            diverged=carry[3],
            diverge_step=carry[4],
        )

    return jax.jit(run)


def _check_choice(name, value, choices):
    if value not in choices:
        raise InputError(name, f"must be one of {choices}, got {value!r}")


def _check_xy(x, y, xname, yname):
    x = mlp.check_x(x, name=xname)
    y = mlp.check_x(y, name=yname)
    if y.shape != x.shape:
        raise InputError(yname, f"must have the shape of {xname} {x.shape}, got {y.shape}")
    return x, y
