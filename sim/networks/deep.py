"""Fully connected ReLU classifiers with a softmax cross-entropy loss, as pure functions, trained many at a time.

Contract: ``Params`` is a list with one dict per layer, ``{"w": [fan_in, fan_out], "b": [fan_out]}``, the last layer
linear (the logits) and every other layer followed by ReLU. :func:`init_params` draws one network,
:func:`logits` / :func:`loss` / :func:`accuracy` evaluate it, :func:`train` runs ``steps`` optimizer steps inside one
compiled ``lax.scan`` and :func:`grid_trainer` compiles the same training vmapped over a grid of (initialization,
learning rate) points and over seeds, every network of a chunk trained at once. Bad input raises
:class:`sim.core.validate.InputError` naming the parameter.

Conventions (those of the course's solver, EECS 182 Sp23 HW2 Q5 and Sp25 HW0 Q6):

* Loss: the mean over the minibatch of −log softmax(z)_y (no regularization), computed stably with ``log_softmax``.
* Initialization (:data:`SCHEMES`), biases always zero: ``zero`` (every weight 0); ``normal``: N(0, s²) with the
  weight scale s (the course's ``weight_scale``); ``uniform``: U(−√3 s, √3 s), the same variance s²; ``he_normal``:
  N(0, 2 / fan_in); ``he_uniform``: U(±√(6 / fan_in)), the same variance. A ReLU layer of fan-in n and weight
  variance v multiplies the second moment of the signal by the gain g = n·v/2 (:func:`relu_gain`), 1 for He.
  Every scheme is a unit-variance draw times a per-layer standard deviation (:func:`layer_stds`), so a seed draws the
  same unit weights at every scale (common random numbers across a grid of scales).
* Minibatches: ``batch_size`` indices drawn uniformly WITH replacement at every step (NumPy's
  ``random.choice(n, B)`` in the course's solver), from ``fold_in(data_key, step)``.
* Optimizers (:data:`OPTIMIZERS`), each the course's update rule through optax: ``sgd`` w ← w − lr·g;
  ``momentum`` heavy ball with μ = 0.9: the course's v ← μv − lr·g, w ← w + v, which is ``optax.sgd(lr,
  momentum=0.9)`` (v ← μv + g, w ← w − lr·v: the same iterates at constant lr); ``rmsprop``:
  c ← 0.99 c + 0.01 g², w ← w − lr·g / (√c + 1e-8), c₀ = 0 (``optax.rmsprop(lr, decay=0.99, eps=1e-8,
  eps_in_sqrt=False)``); ``adam``: β₁ = 0.9, β₂ = 0.999, ε = 1e-8 outside the root, bias-corrected from t = 1
  (``optax.adam(lr)``). Each is checked step by step against a NumPy transcription of the rule in the tests.
* Gradient norms (the two definitions the course mixes, :func:`grad_norms`): of every weight and bias array of the
  minibatch gradient, the Frobenius norm of the flattened array and the spectral norm (largest singular value; a
  bias vector's is its Euclidean norm), each averaged over all 2·(layers) arrays.
* Divergence is a result: a step whose minibatch loss is non-finite or above ``divergence_bound`` is not taken; the
  run stays at those parameters from then on, flagged (``diverged``, ``diverge_step``). Logged losses are clipped at
  the bound and a frozen run logs gradient norms of 0, so no logged number is NaN or infinite. (Unlike
  ``sim.networks.training``, no copy of the last good parameters is kept: it would add a pass over every network's
  parameters per step, and a diverged network counts as failed whatever its parameters.)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sim.core.validate import InputError, check_int, check_positive_finite

Params = list[dict[str, jax.Array]]
SCHEMES = ("zero", "normal", "uniform", "he_normal", "he_uniform")
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
MOMENTUM = 0.9
RMSPROP_DECAY = 0.99
EPS = 1e-8
DIVERGENCE_BOUND = 1e8
GROUP = 4  # networks vmapped together inside a chunk (grid_trainer)


# --------------------------------------------------------------------------------------------------------------
# Architecture and initialization


def layer_sizes(input_dim: int, hidden: Sequence[int], num_classes: int) -> tuple[int, ...]:
    """``(input_dim, *hidden, num_classes)``, checked."""
    input_dim = check_int("input_dim", input_dim, minimum=1)
    hidden = tuple(check_int("hidden", h, minimum=1) for h in hidden)
    num_classes = check_int("num_classes", num_classes, minimum=2)
    return (input_dim, *hidden, num_classes)


def check_scheme(scheme: str, scale) -> float | None:
    """Require a known scheme and a weight scale s > 0 exactly when it needs one; return s (or None)."""
    if scheme not in SCHEMES:
        raise InputError("scheme", f"must be one of {SCHEMES}, got {scheme!r}")
    if scheme in ("normal", "uniform"):
        if scale is None:
            raise InputError("scale", f"scheme {scheme!r} needs a weight scale s > 0")
        return float(check_positive_finite("scale", scale))
    if scale is not None:
        raise InputError("scale", f"is only used by the schemes 'normal' and 'uniform', not {scheme!r}")
    return None


def distribution(scheme: str) -> str:
    """``"normal"`` or ``"uniform"``: the unit-variance draw a scheme scales."""
    return "uniform" if scheme in ("uniform", "he_uniform") else "normal"


def layer_stds(scheme: str, sizes: Sequence[int], scale=None) -> np.ndarray:
    """The standard deviation of each layer's weights, float64 [layers]: s, √(2 / fan_in) or 0."""
    scale = check_scheme(scheme, scale)
    fan_in = np.asarray(sizes[:-1], dtype=np.float64)
    if scheme == "zero":
        return np.zeros_like(fan_in)
    if scheme in ("normal", "uniform"):
        return np.full_like(fan_in, scale)
    return np.sqrt(2.0 / fan_in)


def relu_gain(fan_in, variance):
    """g = fan_in · Var(W) / 2: the factor by which a ReLU layer multiplies the signal's second moment (1 for He)."""
    return np.asarray(fan_in, dtype=np.float64) * np.asarray(variance, dtype=np.float64) / 2.0


def unit_params(key: jax.Array, sizes: Sequence[int], *, dist: str = "normal", dtype=jnp.float32) -> Params:
    """Unit-variance weights (N(0, 1) or U(±√3)) and zero biases: one draw from ``key`` of every weight in turn,
    layer by layer, each matrix filled in row-major order (one draw, not one per layer: every random call compiles its
    own threefry hash, and per-layer draws made a deep net's compilation several seconds longer)."""
    shapes = [(int(a), int(b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    total = sum(a * b for a, b in shapes)
    if dist == "uniform":
        flat = jax.random.uniform(key, (total,), dtype, -math.sqrt(3.0), math.sqrt(3.0))
    else:
        flat = jax.random.normal(key, (total,), dtype)
    params, start = [], 0
    for fan_in, fan_out in shapes:
        w = flat[start : start + fan_in * fan_out].reshape(fan_in, fan_out)
        start += fan_in * fan_out
        params.append({"w": w, "b": jnp.zeros((fan_out,), dtype)})
    return params


def scale_params(unit: Params, stds) -> Params:
    """Each layer's unit weights times its standard deviation (``stds`` [layers], traceable); biases as they are."""
    return [{"w": layer["w"] * stds[i].astype(layer["w"].dtype), "b": layer["b"]} for i, layer in enumerate(unit)]


def seed_keys(seed) -> tuple[jax.Array, jax.Array]:
    """``(init_key, data_key)`` of a seed (traceable): ``fold_in(key(seed), 0)`` and ``fold_in(key(seed), 1)``."""
    key = jax.random.key(seed)
    return jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)


def init_params(key: jax.Array, sizes: Sequence[int], *, scheme: str, scale=None, dtype="float32") -> Params:
    """One network's parameters for ``sizes`` = (input_dim, *hidden, num_classes) (module docstring for the schemes).

    Args:
      key: a ``jax.random.key`` (the init key; :func:`seed_keys` derives it from a seed).
      sizes: layer widths, input first.
      scheme: one of :data:`SCHEMES`.
      scale: the weight scale s of ``normal`` and ``uniform`` (their std); None for the others.
      dtype: float32 or float64 (float64 needs ``jax.enable_x64``).
    """
    stds = layer_stds(scheme, sizes, scale)
    unit = unit_params(key, tuple(int(n) for n in sizes), dist=distribution(scheme), dtype=jnp.dtype(dtype))
    return scale_params(unit, jnp.asarray(stds))


def array_names(num_layers: int) -> list[str]:
    """Names of the parameter arrays in the order of :func:`grad_norms`: ``W1, b1, W2, b2, …``."""
    return [f"{kind}{i + 1}" for i in range(num_layers) for kind in ("W", "b")]


# --------------------------------------------------------------------------------------------------------------
# Forward pass, loss, gradient norms


def logits(params: Params, x: jax.Array) -> jax.Array:
    """The scores z [n, classes] of the inputs x [n, input_dim]."""
    h = x
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
    return h @ params[-1]["w"] + params[-1]["b"]


def cross_entropy(z: jax.Array, y: jax.Array) -> jax.Array:
    """Mean over samples of −log softmax(z)_y."""
    logp = jax.nn.log_softmax(z, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))


def loss(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """The softmax cross-entropy loss of ``params`` on (x, y)."""
    return cross_entropy(logits(params, x), y)


def accuracy(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """The fraction of samples whose largest score is the label's (ties go to the lowest class, as ``argmax``)."""
    return jnp.mean((jnp.argmax(logits(params, x), axis=-1) == y).astype(jnp.float32))


def frobenius_norm(g: jax.Array) -> jax.Array:
    """‖g‖ of the flattened array, computed as max|g| · ‖g / max|g|‖ (no underflow or overflow of the squares)."""
    s = jnp.max(jnp.abs(g))
    safe = jnp.where(s > 0, s, 1)
    return safe * jnp.sqrt(jnp.sum(jnp.square(g / safe))) * (s > 0)


def spectral_norm(g: jax.Array) -> jax.Array:
    """The largest singular value of a matrix (the Euclidean norm of a vector), from the smaller Gram matrix of
    g / max|g| (its largest eigenvalue, ``eigvalsh``), rescaled."""
    if g.ndim < 2:
        return frobenius_norm(g)
    s = jnp.max(jnp.abs(g))
    safe = jnp.where(s > 0, s, 1)
    u = g / safe
    gram = u.T @ u if u.shape[1] <= u.shape[0] else u @ u.T
    top = jnp.linalg.eigvalsh(gram)[-1]
    return safe * jnp.sqrt(jnp.maximum(top, 0)) * (s > 0)


def grad_norms(grads: Params) -> tuple[jax.Array, jax.Array]:
    """Per-array Frobenius and spectral norms of a gradient, each [2·layers] in the order ``W1, b1, W2, b2, …``."""
    arrays = [a for layer in grads for a in (layer["w"], layer["b"])]
    return jnp.stack([frobenius_norm(a) for a in arrays]), jnp.stack([spectral_norm(a) for a in arrays])


def layer_statistics(params: Params, x: jax.Array, y: jax.Array) -> dict[str, jax.Array]:
    """What each layer does to the signal at ``params``, on the samples (x, y), by an explicit backward pass.

    Returns a dict of arrays (L = number of layers, the last one the logits):
      ``weight_std`` [L]: the standard deviation of each weight matrix's entries (ddof 0).
      ``activation_std``, ``activation_rms`` [L − 1]: of each hidden layer's ReLU outputs over samples and units.
      ``grad_norm`` [L]: Frobenius norm of each weight matrix's gradient of the mean loss on (x, y).
      ``per_sample_grad_rms`` [L]: √(mean_b ‖∂ℓ_b/∂W_l‖²), exact: a per-sample weight gradient is the outer product
      h_{l−1,b} δ_{l,b}ᵀ, of norm ‖h_{l−1,b}‖ ‖δ_{l,b}‖.
      ``input_mean_square``: m = mean over samples and features of x².
      ``output_signal``: mean_b ‖softmax(z_b) − e_{y_b}‖², the squared norm of the per-sample loss's gradient in z.
    """
    hs, zs = [x], []
    for layer in params[:-1]:
        z = hs[-1] @ layer["w"] + layer["b"]
        zs.append(z)
        hs.append(jax.nn.relu(z))
    out = hs[-1] @ params[-1]["w"] + params[-1]["b"]
    delta = jax.nn.softmax(out, axis=-1) - jax.nn.one_hot(y, out.shape[-1], dtype=out.dtype)
    output_signal = jnp.mean(jnp.sum(delta**2, axis=1))
    n = x.shape[0]
    grad_norm, per_sample = [], []
    for layer in range(len(params) - 1, -1, -1):
        h = hs[layer]
        grad_norm.append(frobenius_norm(h.T @ delta / n))
        per_sample.append(jnp.sqrt(jnp.mean(jnp.sum(h**2, axis=1) * jnp.sum(delta**2, axis=1))))
        if layer > 0:
            delta = (delta @ params[layer]["w"].T) * (zs[layer - 1] > 0)
    acts = hs[1:]
    return {
        "weight_std": jnp.stack([jnp.std(layer["w"]) for layer in params]),
        "activation_std": jnp.stack([jnp.std(h) for h in acts]),
        "activation_rms": jnp.stack([jnp.sqrt(jnp.mean(h**2)) for h in acts]),
        "grad_norm": jnp.stack(grad_norm[::-1]),
        "per_sample_grad_rms": jnp.stack(per_sample[::-1]),
        "input_mean_square": jnp.mean(x**2),
        "output_signal": output_signal,
    }


# --------------------------------------------------------------------------------------------------------------
# Optimizers and training


def check_optimizer(name: str) -> str:
    if name not in OPTIMIZERS:
        raise InputError("optimizer", f"must be one of {OPTIMIZERS}, got {name!r}")
    return name


def make_optimizer(name: str, learning_rate, *, momentum: float = MOMENTUM) -> optax.GradientTransformation:
    """The optax transformation of one of :data:`OPTIMIZERS` with the course's constants (module docstring);
    ``learning_rate`` may be traced (one per network of a vmapped grid)."""
    check_optimizer(name)
    if name == "sgd":
        return optax.sgd(learning_rate)
    if name == "momentum":
        return optax.sgd(learning_rate, momentum=momentum)
    if name == "rmsprop":
        return optax.rmsprop(learning_rate, decay=RMSPROP_DECAY, eps=EPS, eps_in_sqrt=False)
    return optax.adam(learning_rate, b1=0.9, b2=0.999, eps=EPS)


def batch_indices(data_key: jax.Array, step, *, n: int, batch_size: int) -> jax.Array:
    """The minibatch of ``step``: ``batch_size`` indices uniform in [0, n) with replacement (traceable in step)."""
    return jax.random.randint(jax.random.fold_in(data_key, step), (batch_size,), 0, n)


def draw(seed, *, sizes: Sequence[int], dist: str, steps: int, batch_size: int, n: int, dtype=jnp.float32):
    """What a seed decides (traceable in ``seed``): its unit weights (:func:`unit_params` from the init key) and the
    minibatch indices of every step, [steps, batch_size] (:func:`batch_indices` from the data key)."""
    init_key, data_key = seed_keys(seed)
    unit = unit_params(init_key, tuple(sizes), dist=dist, dtype=dtype)
    indices = jax.vmap(lambda t: batch_indices(data_key, t, n=n, batch_size=batch_size))(jnp.arange(steps))
    return unit, indices


def check_training(*, optimizer: str, steps, batch_size, eval_every, n_train: int, divergence_bound) -> dict:
    """Validate the static training options (pure Python); return them as Python scalars."""
    steps = check_int("steps", steps, minimum=1)
    eval_every = check_int("eval_every", eval_every, minimum=1, maximum=steps)
    if steps % eval_every:
        raise InputError("eval_every", f"must divide steps = {steps}, got {eval_every}")
    return {
        "optimizer": check_optimizer(optimizer),
        "steps": steps,
        "batch_size": check_int("batch_size", batch_size, minimum=1, maximum=n_train),
        "eval_every": eval_every,
        "divergence_bound": float(check_positive_finite("divergence_bound", divergence_bound)),
    }


def _finite(v, cap):
    """``v`` with non-finite entries and entries above ``cap`` replaced by ``cap`` (logs stay NaN-free)."""
    return jnp.where(jnp.isfinite(v), jnp.minimum(v, cap), cap)


def _select(cond, a, b):
    return jax.tree.map(lambda u, v: jnp.where(cond, u, v), a, b)


def train(
    params: Params,
    learning_rate,
    indices: jax.Array,
    data: Sequence[jax.Array],
    *,
    optimizer: str,
    eval_every: int,
    record_norms: bool = False,
    divergence_bound: float = DIVERGENCE_BOUND,
) -> dict[str, jax.Array]:
    """Train one network; traceable and vmappable in ``params``, ``learning_rate`` and ``indices``.

    Static options are not re-checked here (call :func:`check_training` first, as the studies do).

    Args:
      params: initial ``Params``.
      learning_rate: lr > 0 (a scalar, possibly traced).
      indices: the minibatch of every step, int [steps, batch_size] (:func:`draw`).
      data: ``(x_train, y_train, x_eval, y_eval, x_val, y_val)``: minibatches come from the training set, accuracy
        and loss are measured on the evaluation set (a fixed subset of the training set) and the validation set.
      optimizer: one of :data:`OPTIMIZERS`; eval_every divides the number of steps.
      record_norms: log the mean Frobenius and spectral norms of every step's minibatch gradient.
      divergence_bound: a minibatch loss above it (or non-finite) freezes and flags the run.

    Returns:
      ``loss`` [steps] (the minibatch loss before each step), ``grad_norm_frobenius`` and ``grad_norm_spectral``
      [steps] (zeros unless ``record_norms``), ``train_loss``, ``train_accuracy``, ``val_accuracy`` [steps /
      eval_every + 1] at steps 0, eval_every, …, steps, ``diverged`` and ``diverge_step`` (−1 if none), ``params``.
    """
    x, y, x_eval, y_eval, x_val, y_val = data
    opt = make_optimizer(optimizer, learning_rate)
    steps = indices.shape[0]
    bound = jnp.asarray(divergence_bound, x.dtype)
    value_and_grad = jax.value_and_grad(loss)

    def evaluate(p):
        z = logits(p, x_eval)
        hit = (jnp.argmax(z, axis=-1) == y_eval).astype(jnp.float32)
        return _finite(cross_entropy(z, y_eval), bound), jnp.mean(hit), accuracy(p, x_val, y_val)

    def step(carry, t_idx):
        t, idx = t_idx
        p, state, diverged, diverge_step = carry
        value, g = value_and_grad(p, x[idx], y[idx])
        bad = ~diverged & ~(value <= bound)  # NaN compares False, so it is caught too
        ok = ~diverged & ~bad
        updates, new_state = opt.update(g, state, p)
        carry = (
            _select(ok, optax.apply_updates(p, updates), p),
            _select(ok, new_state, state),
            diverged | bad,
            jnp.where(bad, t, diverge_step),
        )
        if record_norms:
            fro, spec = grad_norms(g)
            cap = jnp.finfo(x.dtype).max
            norms = (_finite(jnp.mean(fro), cap), _finite(jnp.mean(spec), cap))
            norms = tuple(jnp.where(ok, v, 0) for v in norms)  # a frozen run takes no step
        else:
            norms = (jnp.zeros((), x.dtype), jnp.zeros((), x.dtype))
        return carry, (_finite(value, bound), *norms)

    n_chunks = steps // eval_every

    def run_steps(carry, c):
        ts = c * eval_every + jnp.arange(eval_every, dtype=jnp.int32)
        return jax.lax.scan(step, carry, (ts, jax.lax.dynamic_slice_in_dim(indices, c * eval_every, eval_every)))

    def chunk(carry, c):
        # evaluate, then take the next eval_every steps (none after the last evaluation): one copy of each in the
        # compiled program (an evaluation before the loop would compile a second copy)
        measured = evaluate(carry[0])
        no_logs = (jnp.zeros(eval_every, x.dtype),) * 3
        carry, logs = jax.lax.cond(c < n_chunks, run_steps, lambda cr, _: (cr, no_logs), carry, c)
        return carry, (measured, logs)

    init = (params, opt.init(params), jnp.asarray(False), jnp.asarray(-1, dtype=jnp.int32))
    carry, (evals, logs) = jax.lax.scan(chunk, init, jnp.arange(n_chunks + 1, dtype=jnp.int32))
    train_loss, train_acc, val_acc = evals
    logs = tuple(v[:-1] for v in logs)
    return {
        "loss": logs[0].reshape(-1),
        "grad_norm_frobenius": logs[1].reshape(-1),
        "grad_norm_spectral": logs[2].reshape(-1),
        "train_loss": train_loss,
        "train_accuracy": train_acc,
        "val_accuracy": val_acc,
        "diverged": carry[2],
        "diverge_step": carry[3],
        "params": carry[0],
    }


def train_network(
    std,
    learning_rate,
    seed,
    data: Sequence[jax.Array],
    *,
    sizes: Sequence[int],
    dist: str = "normal",
    optimizer: str,
    steps: int,
    batch_size: int,
    eval_every: int,
    **options,
) -> dict[str, jax.Array]:
    """One network of a grid, alone, from its seed: unit weights (:func:`draw`) times the per-layer ``std``
    ([layers], or a scalar for every layer), trained by :func:`train` on the seed's minibatches. Traceable."""
    dtype = data[0].dtype
    unit, indices = draw(
        seed, sizes=sizes, dist=dist, steps=steps, batch_size=batch_size, n=data[0].shape[0], dtype=dtype
    )
    stds = jnp.broadcast_to(jnp.asarray(std, dtype), (len(sizes) - 1,))
    params = scale_params(unit, stds)
    return train(
        params, jnp.asarray(learning_rate, dtype), indices, data, optimizer=optimizer, eval_every=eval_every, **options
    )


def group_size(networks: int, group: int = GROUP) -> int:
    """The largest divisor of ``networks`` up to ``group``: the groups then tile the chunk exactly (a remainder would
    compile a second copy of the whole training)."""
    return max(k for k in range(1, min(group, networks) + 1) if networks % k == 0)


@functools.lru_cache(maxsize=32)
def seed_drawer(sizes: tuple[int, ...], dist: str, steps: int, batch_size: int, n: int, dtype: str):
    """:func:`draw` vmapped over seeds, jitted (one compilation shared by every training of these shapes)."""
    return jax.jit(
        jax.vmap(lambda s: draw(s, sizes=sizes, dist=dist, steps=steps, batch_size=batch_size, n=n, dtype=dtype))
    )


@functools.lru_cache(maxsize=32)
def _trainer(
    optimizer: str,
    eval_every: int,
    record_norms: bool,
    divergence_bound: float,
    keep_params: bool,
    outputs: tuple[str, ...] | None,
    group: int,
):
    def one(args, unit_all, indices_all, data):
        std, lr, s = args
        unit = jax.tree.map(lambda a: a[s], unit_all)
        out = train(
            scale_params(unit, std),
            lr,
            indices_all[s],
            data,
            optimizer=optimizer,
            eval_every=eval_every,
            record_norms=record_norms,
            divergence_bound=divergence_bound,
        )
        if not keep_params:
            out.pop("params")
        if outputs is not None:
            out = {k: out[k] for k in outputs}
        return out

    def fn(stds, learning_rates, unit_all, indices_all, data):
        n_points, n_seeds = stds.shape[0], indices_all.shape[0]
        flat = (
            jnp.tile(stds, (n_seeds, 1)),
            jnp.tile(learning_rates, n_seeds),
            jnp.repeat(jnp.arange(n_seeds, dtype=jnp.int32), n_points),
        )
        out = jax.lax.map(
            lambda a: one(a, unit_all, indices_all, data), flat, batch_size=group_size(n_points * n_seeds, group)
        )
        return jax.tree.map(lambda v: v.reshape(n_seeds, n_points, *v.shape[1:]), out)

    return jax.jit(fn)


def grid_trainer(
    sizes: Sequence[int],
    *,
    dist: str = "normal",
    optimizer: str,
    steps: int,
    batch_size: int,
    eval_every: int,
    record_norms: bool = False,
    divergence_bound: float = DIVERGENCE_BOUND,
    keep_params: bool = False,
    outputs: Sequence[str] | None = None,
    group: int = GROUP,
):
    """A function ``fn(stds, learning_rates, seeds, data)`` training every network of a chunk in one compiled call.

    ``stds`` [P, layers] and ``learning_rates`` [P] are P grid points, ``seeds`` [S] int32; the result holds, for
    each output of :func:`train`, an array [S, P, …]: network (s, p) is :func:`train_network` (stds[p],
    learning_rates[p], seeds[s]). Two jitted calls, dispatched asynchronously: :func:`draw` vmapped over the seeds
    (compiled once per shape, shared by every optimizer), then the training, in which the S·P networks are vmapped in
    groups of up to ``group`` (``jax.lax.map`` with that batch size: a vmap inside a loop over the groups), each
    group trained through all its steps before the next: a group's parameters stay in cache from step to step, while
    vmapping the whole chunk at once streams every network's weights from memory at every step (measured: 2x slower
    per network than one network alone). ``keep_params`` returns the final parameters too; ``outputs`` keeps only
    the named outputs.
    """
    sizes = tuple(int(v) for v in sizes)
    trainer = _trainer(
        optimizer,
        int(eval_every),
        bool(record_norms),
        float(divergence_bound),
        bool(keep_params),
        None if outputs is None else tuple(outputs),
        int(group),
    )

    def fn(stds, learning_rates, seeds, data):
        x = data[0]
        drawer = seed_drawer(sizes, dist, int(steps), int(batch_size), int(x.shape[0]), jnp.dtype(x.dtype).name)
        unit_all, indices_all = drawer(seeds)
        return trainer(stds, learning_rates, unit_all, indices_all, data)

    return fn
