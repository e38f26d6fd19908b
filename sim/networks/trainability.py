"""Deep-network trainability over seeds and hyperparameter grids: initialization, optimizers and depth.

Contract: three studies, each taking keyword configuration (defaults = the course's sizes), validating it first
(:class:`sim.core.validate.InputError` naming the parameter, before anything is compiled), training every network
with :mod:`sim.networks.deep` (fully connected ReLU nets, softmax cross-entropy, the course's optimizers) in chunks run
by :func:`sim.core.engine.run` on every device, and returning one ``xarray.Dataset`` with the configuration and
``sim.core.runtime.provenance()`` in netCDF-safe attrs, a ``computed`` mask and ``attrs["complete"]`` (0 when SIGINT
or SIGTERM stopped the run: the chunks that finished are kept). :func:`summary` reduces a dataset to the JSON summary
of ``sim nets … --json``. Data come from :mod:`sim.networks.images` (``digits`` or ``cifar10:DIR``).

* :func:`init_study` — EECS 182 Sp23 HW2 Q5's initialization experiment: 10 hidden layers of 50, SGD lr 1e-3, batch
  100, 200 iterations, weights zero / N(0, 0.01²) / He N(0, 2 / fan_in) (biases zero). Per iteration: the minibatch
  loss, accuracy on the training-evaluation subset and on the validation set, and the mean gradient norm in both
  definitions the course mixes (:func:`sim.networks.deep.grad_norms`). Per layer at init: the weights' standard
  deviation, the ReLU activations' standard deviation and RMS and the weight gradients' norms, beside the analytic
  per-layer gain g = fan_in·Var(W)/2 (:func:`predicted_layers`).
* :func:`optimizer_study` — the same homework's optimizer comparison: 5 hidden layers of 100, weight scale 5e-2, SGD lr
  1e-2, heavy-ball momentum 0.9 at 1e-2, Adam 1e-3, RMSprop 1e-4 on 4,000 training images, 200 iterations of batch 100;
  and the course's remark that momentum acts like a larger batch, tested at the same number of steps: SGD at
  momentum's effective step lr/(1 − μ) = 0.1 with batch 100 and with batch 100/(1 − μ) = 1,000.
* :func:`depth_study` — EECS 182 Sp25 HW0 Q6: a 3-layer net (hidden [100, 100]) and a 5-layer net (hidden [100] × 4)
  overfitting 50 training images with 40 SGD steps (batch 25, 20 epochs), over a log grid of (weight scale × learning
  rate) and seeds. A network succeeds when it reaches 100 % training accuracy without diverging; the success area of a
  depth is the fraction of grid cells where at least half the seeds succeed (:func:`success_region`).

Theory of the init study (zero biases, symmetric weights of variance v_l in layer l of fan-in n_l, inputs of mean
square m): by symmetry E[relu(z)² | h] = ½ E[z² | h] = ½ v_l ‖h‖², so the mean square of layer l's activations is
exactly m·Π_{k≤l} g_k in expectation, g_k = n_k v_k / 2 (He: 1 at every layer, the activations keep the input's
scale; N(0, 0.01²) with fan-in 50: g = 0.0025, the signal's second moment shrinks 400× per layer; zero: 0). With
Gaussian pre-activations the standard deviation of relu(z) is √(1 − 1/π) times its RMS. Backwards, the per-sample
signal δ_l = ∂ℓ/∂z_l obeys E‖δ_l‖² = g_{l+1} E‖δ_{l+1}‖² under the mean-field assumption that the ReLU masks are
independent of the weights applied after them, from the measured output signal E‖softmax(z) − e_y‖²; a per-sample
weight gradient is the outer product h_{l−1} δ_lᵀ, so its squared norm is predicted by E‖h_{l−1}‖² E‖δ_l‖².

Data preprocessing (the course's): the mean training image subtracted, no other scaling. Minibatches are drawn with
replacement (the course's solver); accuracies and losses are measured on the first ``eval_size`` training images and
on the validation split.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from sim.core.validate import InputError, check_int, check_positive_finite
from sim.networks import images

if TYPE_CHECKING:
    import xarray as xr

DEFAULT_SEEDS = 8
INIT_SCHEMES = {"zero": ("zero", None), "random": ("normal", 1e-2), "he": ("he_normal", None)}
"""The init study's schemes: name → (``sim.networks.deep`` scheme, weight scale)."""
INIT_CONFIG = {
    "hidden": [50] * 10,
    "learning_rate": 1e-3,
    "batch_size": 100,
    "steps": 200,
    "eval_size": 1000,
    "eval_every": 1,
}
OPTIMIZER_RUNS = {  # name → (optimizer, learning rate, batch size)
    "sgd": ("sgd", 1e-2, 100),
    "momentum": ("momentum", 1e-2, 100),
    "adam": ("adam", 1e-3, 100),
    "rmsprop": ("rmsprop", 1e-4, 100),
    "sgd_lr_0.1": ("sgd", 1e-1, 100),
    "sgd_lr_0.1_batch_1000": ("sgd", 1e-1, 1000),
}
"""The optimizer study's runs. The last two are the "momentum ≈ a larger batch" comparison: momentum μ = 0.9 moves
with the effective step lr/(1 − μ) and averages the gradients of about 1/(1 − μ) steps."""
COURSE_OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop")
OPTIMIZER_CONFIG = {
    "hidden": [100] * 5,
    "weight_scale": 5e-2,
    "steps": 200,
    "n_train": 4000,
    "eval_size": 1000,
    "eval_every": 10,
}
DEPTHS = {3: [100, 100], 5: [100] * 4}
"""The depth study's nets: layers (weight matrices) → hidden widths."""
DEPTH_CONFIG = {
    "scales": "log:1e-3:10:32",
    "lrs": "log:1e-6:10:32",
    "n_train": 50,
    "batch_size": 25,
    "epochs": 20,
}
DEPTH_CHUNK = 256  # networks per chunk of the depth grid
WORK_PER_DEVICE = 3e11  # multiply-adds (about 5 s on one core) that justify compiling on one more device
SUCCESS_SEED_FRACTION = 0.5  # a cell counts towards the success area when at least this fraction of its seeds succeed


# --------------------------------------------------------------------------------------------------------------
# Theory


def gains(sizes: Sequence[int], stds) -> np.ndarray:
    """The per-layer gains g_l = fan_in_l · std_l² / 2 (float64, [..., layers])."""
    from sim.networks.deep import relu_gain

    return relu_gain(np.asarray(sizes[:-1], dtype=np.float64), np.square(np.asarray(stds, dtype=np.float64)))


def predicted_layers(sizes: Sequence[int], stds, input_mean_square, output_signal) -> dict[str, np.ndarray]:
    """The module docstring's predictions, float64.

    Args:
      sizes: (input_dim, *hidden, classes).
      stds: the weights' standard deviation per layer, [layers].
      input_mean_square: m, mean over samples and features of x² (scalar or [...]).
      output_signal: E‖softmax(z) − e_y‖², measured (scalar or [...], broadcast with m).

    Returns:
      ``gain`` [layers]; ``activation_rms`` and ``activation_std`` [..., hidden layers] (exact in expectation for
      the mean square; the std assumes Gaussian pre-activations); ``per_sample_grad_rms`` [..., layers] (mean field).
    """
    g = gains(sizes, stds)
    m = np.asarray(input_mean_square, dtype=np.float64)[..., None]
    signal = np.asarray(output_signal, dtype=np.float64)[..., None]
    cum = np.cumprod(g)  # Π_{k≤l} g_k for l = 1 … L
    act_ms = m * cum[:-1]  # hidden layers only
    width = np.asarray(sizes, dtype=np.float64)
    h_sq = np.concatenate([width[:1] * m, width[1:-1] * act_ms], axis=-1)  # E‖h_{l−1}‖² for l = 1 … L
    later = np.concatenate([np.cumprod(g[::-1])[::-1][1:], [1.0]])  # Π_{k>l} g_k
    return {
        "gain": g,
        "activation_rms": np.sqrt(act_ms),
        "activation_std": np.sqrt((1 - 1 / np.pi) * act_ms),
        "per_sample_grad_rms": np.sqrt(h_sq * signal * later),
    }


# --------------------------------------------------------------------------------------------------------------
# Shared set-up


def load_data(data) -> images.ImageData:
    """An :class:`~sim.networks.images.ImageData`, given as one or as ``--data`` text."""
    return data if isinstance(data, images.ImageData) else images.load(data)


def check_seeds(seeds) -> list[int]:
    """A count k ≥ 1 (seeds 0 … k − 1) or a sequence of distinct seeds ≥ 0."""
    if np.ndim(seeds) == 0:
        return list(range(check_int("seeds", seeds, minimum=1, maximum=2**16)))
    out = [check_int("seeds", s, minimum=0, maximum=2**31 - 1) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise InputError("seeds", f"must be distinct and non-empty, got {list(seeds)}")
    return out


def check_hidden(hidden) -> list[int]:
    hidden = [check_int("hidden", h, minimum=1) for h in hidden]
    if not hidden:
        raise InputError("hidden", "needs at least one hidden layer")
    return hidden


@dataclasses.dataclass
class _Table:
    """Per-chunk results gathered in memory: name → array with the chunk axis first, and the ``computed`` mask."""

    arrays: dict[str, np.ndarray]
    computed: np.ndarray

    def store(self, index: int, values: Mapping[str, np.ndarray]) -> None:
        for name, value in values.items():
            self.arrays.setdefault(name, np.zeros((self.computed.size, *np.shape(value)), np.asarray(value).dtype))
            self.arrays[name][index] = value
        self.computed[index] = True


def _devices(devices, chunks: int, work: float):
    """The devices to run ``chunks`` chunks of ``work`` multiply-adds on: every device compiles its own copy of the
    training (seconds), which only pays off for work of more than :data:`WORK_PER_DEVICE` per device; given
    ``devices`` are all used (up to one per chunk)."""
    import jax

    if devices is not None:
        return list(devices)[: max(1, min(len(devices), chunks))]
    devices = jax.devices()
    return devices[: int(max(1, min(len(devices), chunks, work // WORK_PER_DEVICE)))]


def _work(sizes, networks: int, steps: int, batch: int, evals: int, eval_points: int) -> float:
    """Multiply-adds of training ``networks`` nets of ``sizes``: forward and backward passes (about 3 forward) of
    every step, and the forward passes of every evaluation."""
    per_sample = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    return float(networks) * per_sample * (3 * steps * batch + evals * eval_points)


def _attrs(config: dict, data: images.ImageData, outcome) -> dict:
    from sim.networks.course import result_attrs

    sizes = data.summary()
    sizes["train_split"] = sizes.pop("n_train")
    record = {"n_train": sizes["train_split"], **sizes, **config, "dtype": "float32", "complete": int(outcome.complete)}
    record["stopped_by_signal"] = outcome.signal or 0
    return result_attrs(record)


def _train_chunks(
    chunks: list[dict], data_arrays, seeds: list[int], *, devices, progress: bool, desc: str, extra=None
) -> tuple[_Table, object]:
    """Run each chunk (``sizes``, ``stds`` [layers], ``learning_rate``, static training options) over every seed;
    ``extra(chunk, device_data, seeds)`` launches more per-chunk work (returns a dict of arrays)."""
    import jax
    import jax.numpy as jnp

    from sim.core import engine
    from sim.networks import deep

    eval_points = data_arrays[2].shape[0] + data_arrays[4].shape[0]
    work = sum(
        _work(c["sizes"], len(seeds), c["steps"], c["batch_size"], c["steps"] // c["eval_every"] + 1, eval_points)
        for c in chunks
    )
    devices = _devices(devices, len(chunks), work)
    on_device = {d: jax.device_put(tuple(jnp.asarray(a) for a in data_arrays), d) for d in devices}
    seed_array = np.asarray(seeds, dtype=np.int32)
    table = _Table({}, np.zeros(len(chunks), bool))

    def launch(index, device):
        c = chunks[index]
        fn = deep.grid_trainer(
            tuple(c["sizes"]),
            optimizer=c["optimizer"],
            steps=c["steps"],
            batch_size=c["batch_size"],
            eval_every=c["eval_every"],
            record_norms=c.get("record_norms", False),
        )
        stds = np.asarray(c["stds"], np.float32)[None, :]
        lr = np.asarray([c["learning_rate"]], np.float32)
        args = jax.device_put((stds, lr, seed_array), device)
        data = on_device[device]
        out = fn(*args, data)
        more = extra(c, data, args) if extra is not None else {}
        return out, more

    def collect(index, handle):
        out, more = handle
        values = {k: np.asarray(v)[:, 0] for k, v in out.items()}
        values.update({k: np.asarray(v) for k, v in more.items()})
        return values

    outcome = engine.run(
        list(range(len(chunks))),
        launch,
        collect,
        table.store,
        devices=devices,
        size=lambda index: len(seeds),
        total=len(chunks) * len(seeds),
        progress=progress,
        desc=desc,
        unit="net",
    )
    return table, outcome


def _fill(table: _Table, name: str, shape, dtype=np.float32) -> np.ndarray:
    """The table's array ``name``, or a filled one (NaN / −1 / False) when no chunk finished."""
    if name in table.arrays:
        arr = table.arrays[name]
    else:
        arr = np.zeros((table.computed.size, *shape), dtype)
    from sim.core.io import fill_value

    arr = arr.copy()
    arr[~table.computed] = fill_value(arr.dtype)
    return arr


# --------------------------------------------------------------------------------------------------------------
# The initialization study


def init_study(
    data="digits",
    *,
    seeds=DEFAULT_SEEDS,
    hidden=INIT_CONFIG["hidden"],
    learning_rate: float = INIT_CONFIG["learning_rate"],
    batch_size: int = INIT_CONFIG["batch_size"],
    steps: int = INIT_CONFIG["steps"],
    eval_size: int = INIT_CONFIG["eval_size"],
    eval_every: int = INIT_CONFIG["eval_every"],
    schemes: Sequence[str] = tuple(INIT_SCHEMES),
    progress: bool = True,
    devices=None,
) -> xr.Dataset:
    """Zero, N(0, 0.01²) and He initialization of a deep ReLU net trained with SGD, over seeds (module docstring).

    Args:
      data: ``digits``, ``cifar10:DIR`` or an :class:`~sim.networks.images.ImageData`.
      seeds: a count k (seeds 0 … k − 1) or a list of seeds; seed s draws the init and the minibatches.
      hidden: hidden widths; learning_rate, batch_size, steps: SGD's.
      eval_size: accuracies and the evaluation loss are measured on the first eval_size training images.
      eval_every: iterations between evaluations (divides steps).
      schemes: a subset of ``zero``, ``random``, ``he``.
      progress: show a progress bar; devices: JAX devices to use (default all).

    Returns:
      A dataset over (scheme, seed, step | eval_step | layer | hidden_layer): ``loss``, ``grad_norm_frobenius``,
      ``grad_norm_spectral`` per iteration; ``train_loss``, ``train_accuracy``, ``val_accuracy`` per evaluation; at
      init ``weight_std``, ``activation_std``, ``activation_rms``, ``init_grad_norm`` (Frobenius, mean loss on the
      evaluation subset), ``per_sample_grad_rms``, with ``expected_weight_std``, ``gain`` and the ``predicted_*``
      of :func:`predicted_layers`; ``diverged``, ``diverge_step``; ``computed`` per scheme.
    """
    import xarray as xr

    config = {k: v for k, v in locals().items() if k not in ("progress", "devices", "data")}
    seeds = check_seeds(seeds)
    hidden = check_hidden(hidden)
    for name in schemes:
        if name not in INIT_SCHEMES:
            raise InputError("schemes", f"must be among {tuple(INIT_SCHEMES)}, got {name!r}")
    learning_rate = float(check_positive_finite("learning_rate", learning_rate))
    d = load_data(data)
    eval_size = min(check_int("eval_size", eval_size, minimum=1), d.n_train)
    from sim.networks import deep

    options = deep.check_training(
        optimizer="sgd",
        steps=steps,
        batch_size=batch_size,
        eval_every=eval_every,
        n_train=d.n_train,
        divergence_bound=deep.DIVERGENCE_BOUND,
    )
    sizes = deep.layer_sizes(d.input_dim, hidden, d.num_classes)
    stds = {name: deep.layer_stds(INIT_SCHEMES[name][0], sizes, INIT_SCHEMES[name][1]) for name in schemes}
    chunks = [
        {"name": name, "sizes": sizes, "stds": stds[name], "learning_rate": learning_rate, "record_norms": True}
        | {k: options[k] for k in ("optimizer", "steps", "batch_size", "eval_every")}
        for name in schemes
    ]
    x_eval, y_eval = d.x_train[:eval_size], d.y_train[:eval_size]
    arrays = (d.x_train, d.y_train, x_eval, y_eval, d.x_val, d.y_val)
    table, outcome = _train_chunks(
        chunks, arrays, seeds, devices=devices, progress=progress, desc="nets init", extra=_init_statistics(sizes)
    )
    n_layers, n_hidden = len(sizes) - 1, len(hidden)
    S, T, E = len(seeds), options["steps"], options["steps"] // options["eval_every"] + 1
    get = lambda name, shape: _fill(table, name, shape)  # noqa: E731
    per_step = {name: get(name, (S, T)) for name in ("loss", "grad_norm_frobenius", "grad_norm_spectral")}
    per_eval = {name: get(name, (S, E)) for name in ("train_loss", "train_accuracy", "val_accuracy")}
    stats = {
        "weight_std": get("weight_std", (S, n_layers)),
        "activation_std": get("activation_std", (S, n_hidden)),
        "activation_rms": get("activation_rms", (S, n_hidden)),
        "init_grad_norm": get("grad_norm", (S, n_layers)),
        "per_sample_grad_rms": get("per_sample_grad_rms", (S, n_layers)),
        "input_mean_square": get("input_mean_square", (S,)),
        "output_signal": get("output_signal", (S,)),
    }
    predicted = [
        predicted_layers(sizes, stds[name], stats["input_mean_square"][i], stats["output_signal"][i])
        for i, name in enumerate(schemes)
    ]
    dims_step, dims_eval = ("scheme", "seed", "step"), ("scheme", "seed", "eval_step")
    dims_layer, dims_hidden = ("scheme", "seed", "layer"), ("scheme", "seed", "hidden_layer")
    variables = {name: (dims_step, v) for name, v in per_step.items()}
    variables |= {name: (dims_eval, v) for name, v in per_eval.items()}
    variables |= {
        "weight_std": (dims_layer, stats["weight_std"]),
        "activation_std": (dims_hidden, stats["activation_std"]),
        "activation_rms": (dims_hidden, stats["activation_rms"]),
        "init_grad_norm": (dims_layer, stats["init_grad_norm"]),
        "per_sample_grad_rms": (dims_layer, stats["per_sample_grad_rms"]),
        "input_mean_square": (("scheme", "seed"), stats["input_mean_square"]),
        "output_signal": (("scheme", "seed"), stats["output_signal"]),
        "expected_weight_std": (("scheme", "layer"), np.stack([stds[n] for n in schemes])),
        "gain": (("scheme", "layer"), np.stack([p["gain"] for p in predicted])),
        "predicted_activation_rms": (dims_hidden, np.stack([p["activation_rms"] for p in predicted])),
        "predicted_activation_std": (dims_hidden, np.stack([p["activation_std"] for p in predicted])),
        "predicted_per_sample_grad_rms": (dims_layer, np.stack([p["per_sample_grad_rms"] for p in predicted])),
        "diverged": (("scheme", "seed"), _fill(table, "diverged", (S,), bool)),
        "diverge_step": (("scheme", "seed"), _fill(table, "diverge_step", (S,), np.int32)),
        "computed": (("scheme",), table.computed.copy()),
    }
    coords = {
        "scheme": list(schemes),
        "seed": seeds,
        "step": np.arange(1, T + 1),
        "eval_step": np.arange(E) * options["eval_every"],
        "layer": [f"W{i + 1}" for i in range(n_layers)],
        "hidden_layer": np.arange(1, n_hidden + 1),
        "fan_in": ("layer", np.asarray(sizes[:-1])),
    }
    config |= {"seeds": seeds, "hidden": hidden, "eval_size": eval_size, "study": "init"}
    config |= {"schemes": list(schemes), "scheme_scales": {n: INIT_SCHEMES[n][1] for n in schemes}}
    ds = xr.Dataset(variables, coords=coords, attrs=_attrs(config, d, outcome))
    _describe(ds)
    return ds


def _init_statistics(sizes):
    """The init study's per-layer statistics at init, launched beside each scheme's training on the same weights."""

    def launch(chunk, data, args):
        from sim.networks import deep

        stds, _, seeds = args
        x = data[0]
        drawer = deep.seed_drawer(
            tuple(sizes), "normal", chunk["steps"], chunk["batch_size"], int(x.shape[0]), "float32"
        )
        unit_all, _ = drawer(seeds)  # the same draw as the training's (compiled once, cached)
        return _layer_statistics_fn()(unit_all, stds[0], data[2], data[3])

    return launch


def _layer_statistics_fn():
    import jax

    from sim.networks import deep

    if "stats" not in _COMPILED:

        def one(unit, stds, x, y):
            return deep.layer_statistics(deep.scale_params(unit, stds), x, y)

        _COMPILED["stats"] = jax.jit(jax.vmap(one, in_axes=(0, None, None, None)))
    return _COMPILED["stats"]


_COMPILED: dict = {}


# --------------------------------------------------------------------------------------------------------------
# The optimizer study


def optimizer_study(
    data="digits",
    *,
    seeds=DEFAULT_SEEDS,
    hidden=OPTIMIZER_CONFIG["hidden"],
    weight_scale: float = OPTIMIZER_CONFIG["weight_scale"],
    steps: int = OPTIMIZER_CONFIG["steps"],
    n_train: int = OPTIMIZER_CONFIG["n_train"],
    eval_size: int = OPTIMIZER_CONFIG["eval_size"],
    eval_every: int = OPTIMIZER_CONFIG["eval_every"],
    runs: Sequence[str] | None = None,
    progress: bool = True,
    devices=None,
) -> xr.Dataset:
    """SGD, momentum, Adam and RMSprop on one deep net, and momentum against a larger batch, over seeds.

    Args:
      data: as for :func:`init_study`; the first ``n_train`` training images are used (all if fewer).
      seeds: a count or a list; every run of a seed starts from the same weights N(0, weight_scale²).
      hidden, weight_scale, steps: the network, its init and the iterations of every run.
      eval_size, eval_every: as for :func:`init_study`.
      runs: names of :data:`OPTIMIZER_RUNS`, a run whose batch exceeds the training images refused; default every
        run whose batch fits (the others are listed in ``attrs["skipped_runs"]``).

    Returns:
      A dataset over (run, seed, step | eval_step): ``loss`` per iteration, ``train_loss``, ``train_accuracy``,
      ``val_accuracy`` per evaluation, ``diverged``, ``diverge_step``; coordinates ``optimizer``,
      ``learning_rate``, ``batch_size`` per run; ``computed`` per run.
    """
    import xarray as xr

    config = {k: v for k, v in locals().items() if k not in ("progress", "devices", "data")}
    seeds = check_seeds(seeds)
    hidden = check_hidden(hidden)
    weight_scale = float(check_positive_finite("weight_scale", weight_scale))
    for name in runs or ():
        if name not in OPTIMIZER_RUNS:
            raise InputError("runs", f"must be among {tuple(OPTIMIZER_RUNS)}, got {name!r}")
    d = load_data(data)
    n_train = min(check_int("n_train", n_train, minimum=1), d.n_train)
    skipped = []
    if runs is None:
        skipped = [name for name, (_, _, batch) in OPTIMIZER_RUNS.items() if batch > n_train]
        runs = [name for name in OPTIMIZER_RUNS if name not in skipped]
        if not runs:
            raise InputError("data", f"holds {n_train} training images, fewer than any run's batch")
    runs = list(runs)
    eval_size = min(check_int("eval_size", eval_size, minimum=1), n_train)
    from sim.networks import deep

    sizes = deep.layer_sizes(d.input_dim, hidden, d.num_classes)
    stds = deep.layer_stds("normal", sizes, weight_scale)
    chunks = []
    for name in runs:
        optimizer, lr, batch = OPTIMIZER_RUNS[name]
        if batch > n_train:
            raise InputError("runs", f"run {name!r} needs batches of {batch}, more than the {n_train} training images")
        options = deep.check_training(
            optimizer=optimizer,
            steps=steps,
            batch_size=batch,
            eval_every=eval_every,
            n_train=n_train,
            divergence_bound=deep.DIVERGENCE_BOUND,
        )
        chunks.append({"name": name, "sizes": sizes, "stds": stds, "learning_rate": lr} | options)
    x, y = d.x_train[:n_train], d.y_train[:n_train]
    arrays = (x, y, x[:eval_size], y[:eval_size], d.x_val, d.y_val)
    table, outcome = _train_chunks(chunks, arrays, seeds, devices=devices, progress=progress, desc="nets optimizers")
    S, T = len(seeds), chunks[0]["steps"]
    E = T // chunks[0]["eval_every"] + 1
    dims_step, dims_eval = ("run", "seed", "step"), ("run", "seed", "eval_step")
    variables = {"loss": (dims_step, _fill(table, "loss", (S, T)))}
    variables |= {n: (dims_eval, _fill(table, n, (S, E))) for n in ("train_loss", "train_accuracy", "val_accuracy")}
    variables |= {
        "diverged": (("run", "seed"), _fill(table, "diverged", (S,), bool)),
        "diverge_step": (("run", "seed"), _fill(table, "diverge_step", (S,), np.int32)),
        "computed": (("run",), table.computed.copy()),
    }
    coords = {
        "run": list(runs),
        "seed": seeds,
        "step": np.arange(1, T + 1),
        "eval_step": np.arange(E) * chunks[0]["eval_every"],
        "optimizer": ("run", [OPTIMIZER_RUNS[n][0] for n in runs]),
        "learning_rate": ("run", [OPTIMIZER_RUNS[n][1] for n in runs]),
        "batch_size": ("run", [OPTIMIZER_RUNS[n][2] for n in runs]),
    }
    config |= {"seeds": seeds, "hidden": hidden, "n_train": n_train, "eval_size": eval_size, "study": "optimizers"}
    config |= {"momentum": deep.MOMENTUM, "rmsprop_decay": deep.RMSPROP_DECAY, "eps": deep.EPS, "runs": runs}
    config["skipped_runs"] = ",".join(skipped) or "none"
    ds = xr.Dataset(variables, coords=coords, attrs=_attrs(config, d, outcome))
    _describe(ds)
    return ds


# --------------------------------------------------------------------------------------------------------------
# The depth study


def depth_grid(scales: str, lrs: str):
    """The (scale, learning_rate) axes of the depth study from their axis text (``sim.core.grid`` syntax)."""
    from sim.core.grid import parse_axis
    from sim.core.validate import check_positive_finite as positive

    scale_axis = parse_axis("scales", scales, max_points=4096)
    lr_axis = parse_axis("lrs", lrs, max_points=4096)
    positive("scales", scale_axis.values)
    positive("lrs", lr_axis.values)
    return scale_axis, lr_axis


def depth_study(
    data="digits",
    *,
    seeds=DEFAULT_SEEDS,
    scales: str = DEPTH_CONFIG["scales"],
    lrs: str = DEPTH_CONFIG["lrs"],
    depths: Sequence[int] = tuple(DEPTHS),
    n_train: int = DEPTH_CONFIG["n_train"],
    batch_size: int = DEPTH_CONFIG["batch_size"],
    epochs: int = DEPTH_CONFIG["epochs"],
    chunk_size: int = DEPTH_CHUNK,
    progress: bool = True,
    devices=None,
) -> xr.Dataset:
    """The success map of 3- and 5-layer nets overfitting ``n_train`` images, over (weight scale × lr) and seeds.

    Every network of the grid (depths × scales × learning rates × seeds) trains with SGD for epochs · n_train /
    batch_size steps from weights N(0, scale²) (zero biases); a seed draws the same unit weights and minibatches at
    every grid point. The grid runs in chunks of ``chunk_size`` networks (blocks of the C-ordered grid,
    :func:`sim.core.engine.blocks`) kept by :class:`sim.core.io.Results`.

    Args:
      data: as for :func:`init_study`; its first ``n_train`` training images are the training set.
      seeds: a count or a list.
      scales, lrs: axes in ``sim.core.grid`` syntax (``log:1e-4:1:32``).
      depths: a subset of :data:`DEPTHS` (3, 5).
      n_train, batch_size, epochs: 50, 25 and 20 in the course (40 steps).
      chunk_size: networks per chunk (one compiled call on one device).

    Returns:
      A dataset over (depth, scale, learning_rate, seed): ``final_train_accuracy``, ``final_loss`` (on the n_train
      images after the last step), ``diverged``, ``success`` (100 % and not diverged), ``computed``; over (depth,
      scale, learning_rate): ``success_fraction`` (NaN where a cell was not computed); over depth:
      ``success_area`` (:func:`success_region`).
    """
    config = {k: v for k, v in locals().items() if k not in ("progress", "devices", "data")}
    seeds = check_seeds(seeds)
    scale_axis, lr_axis = depth_grid(scales, lrs)
    depths = list(depths)
    for depth in depths:
        if depth not in DEPTHS:
            raise InputError("depths", f"must be among {tuple(DEPTHS)}, got {depth!r}")
    if not depths or len(set(depths)) != len(depths):
        raise InputError("depths", f"must be distinct and non-empty, got {depths}")
    d = load_data(data)
    n_train = check_int("n_train", n_train, minimum=1, maximum=d.n_train)
    batch_size = check_int("batch_size", batch_size, minimum=1, maximum=n_train)
    epochs = check_int("epochs", epochs, minimum=1)
    steps = epochs * n_train // batch_size
    if steps < 1:
        raise InputError("epochs", f"{epochs} epoch(s) of {n_train} images in batches of {batch_size} is no step")
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)

    import jax
    import jax.numpy as jnp

    from sim.core import engine, io
    from sim.networks import deep

    shape = (len(depths), len(scale_axis), len(lr_axis), len(seeds))
    per_depth = math.prod(shape[1:])
    chunk_size = min(chunk_size, per_depth)  # a block never spans two depths
    bshape = engine.block_shape(shape, chunk_size)
    blocks = engine.blocks(shape, chunk_size)
    n_points, n_seeds = bshape[1] * bshape[2], bshape[3]
    sizes = {depth: deep.layer_sizes(d.input_dim, DEPTHS[depth], d.num_classes) for depth in depths}
    x, y = d.x_train[:n_train], d.y_train[:n_train]
    work = sum(_work(sizes[dp], per_depth, steps, batch_size, 2, 2 * n_train) for dp in depths)
    devices = _devices(devices, len(blocks), work)
    on_device = {dev: jax.device_put(tuple(jnp.asarray(a) for a in (x, y, x, y, x, y)), dev) for dev in devices}
    outputs = ("train_accuracy", "train_loss", "diverged")
    fns = {
        depth: deep.grid_trainer(
            tuple(sizes[depth]),
            optimizer="sgd",
            steps=steps,
            batch_size=batch_size,
            eval_every=steps,
            outputs=outputs,
        )
        for depth in depths
    }
    seed_values = np.asarray(seeds, dtype=np.int64)
    results = io.Results(
        None,
        dims=("depth", "scale", "learning_rate", "seed"),
        shape=shape,
        coords={
            "depth": np.asarray(depths),
            "scale": scale_axis.values,
            "learning_rate": lr_axis.values,
            "seed": seed_values,
        },
        variables={
            "final_train_accuracy": (
                np.float32,
                {"description": "accuracy on the training images after the last step"},
            ),
            "final_loss": (np.float32, {"description": "cross-entropy on the training images after the last step"}),
            "diverged": (np.bool_, {"description": "a minibatch loss was non-finite or above the bound; frozen"}),
            "success": (np.bool_, {"description": "100 % training accuracy at the end, not diverged"}),
        },
        attrs={},
        block_shape=bshape,
    )

    def launch(block, device):
        di, si, li, ki = block.region
        depth = depths[di.start]
        s, lr = np.meshgrid(scale_axis.values[si], lr_axis.values[li], indexing="ij")
        points = s.size
        stds = np.repeat(_pad(s.ravel(), n_points)[:, None], len(sizes[depth]) - 1, axis=1).astype(np.float32)
        lrs_ = _pad(lr.ravel(), n_points).astype(np.float32)
        seed_block = _pad(seed_values[ki], n_seeds).astype(np.int32)
        args = jax.device_put((stds, lrs_, seed_block), device)
        return fns[depth](*args, on_device[device]), (points, ki.stop - ki.start)

    def collect(block, handle):
        out, (points, n_real) = handle
        values = {}
        for name, arr in out.items():
            arr = np.asarray(arr)
            arr = arr[..., -1] if arr.ndim == 3 else arr  # the last evaluation
            values[name] = arr[:n_real, :points].T.reshape(-1)
        acc, diverged = values["train_accuracy"], values["diverged"].astype(bool)
        return {
            "final_train_accuracy": acc,
            "final_loss": values["train_loss"],
            "diverged": diverged,
            "success": (acc == 1.0) & ~diverged,
        }

    outcome = engine.run(
        blocks,
        launch,
        collect,
        results.store,
        devices=devices,
        size=lambda block: block.size,
        total=math.prod(shape),
        progress=progress,
        desc="nets depth",
        unit="net",
    )
    ds = results.dataset()
    complete_cells = ds.computed.all("seed")
    fraction = ds.success.mean("seed").where(complete_cells)
    ds["success_fraction"] = fraction.astype(np.float64)
    ds["success_fraction"].attrs["description"] = "fraction of seeds reaching 100 % training accuracy (NaN: not run)"
    regions = {depth: success_region(ds.sel(depth=depth)) for depth in depths}
    ds["success_area"] = ("depth", np.asarray([regions[dp]["success_area"] for dp in depths]))
    ds["success_area"].attrs["description"] = (
        f"fraction of (scale, learning_rate) cells where at least {SUCCESS_SEED_FRACTION:.0%} of the seeds succeed"
    )
    ds.coords["hidden"] = ("depth", [",".join(str(w) for w in DEPTHS[dp]) for dp in depths])
    config |= {"seeds": seeds, "depths": depths, "n_train": n_train, "steps": steps, "chunk_size": chunk_size}
    config |= {"study": "depth", "optimizer": "sgd", "success_seed_fraction": SUCCESS_SEED_FRACTION}
    ds.attrs.update(_attrs(config, d, outcome))
    _describe(ds)
    return ds


def _pad(values: np.ndarray, size: int) -> np.ndarray:
    """``values`` padded to ``size`` entries by repeating the last one."""
    return np.concatenate([values, np.repeat(values[-1:], size - values.size)])


def success_region(ds) -> dict:
    """Where one depth succeeds (``ds``: one depth of :func:`depth_study`'s dataset).

    Returns a JSON-ready dict: ``success_area`` (the fraction of computed cells where at least
    ``SUCCESS_SEED_FRACTION`` of the seeds succeed), ``cells`` (their number) of ``cells_computed``, the bounding
    ``scale_range`` and ``lr_range`` of those cells and their widths in decades, the ``centroid`` (geometric means of
    scale and learning rate over the cells), and the ``best`` cell (highest success fraction, then the largest learning
    rate, then the smallest scale) with its fraction.
    """
    fraction = ds.success_fraction.transpose("scale", "learning_rate").values
    computed = np.isfinite(fraction)
    good = computed & (fraction >= SUCCESS_SEED_FRACTION)
    scales, lrs = ds.scale.values, ds.learning_rate.values
    out = {
        "success_area": float(good.sum() / computed.sum()) if computed.any() else 0.0,
        "cells": int(good.sum()),
        "cells_computed": int(computed.sum()),
    }
    if good.any():
        si, li = np.nonzero(good)
        out |= {
            "scale_range": [float(scales[si.min()]), float(scales[si.max()])],
            "lr_range": [float(lrs[li.min()]), float(lrs[li.max()])],
            "scale_decades": float(np.log10(scales[si.max()] / scales[si.min()])),
            "lr_decades": float(np.log10(lrs[li.max()] / lrs[li.min()])),
            "centroid": {
                "scale": float(np.exp(np.mean(np.log(scales[si])))),
                "learning_rate": float(np.exp(np.mean(np.log(lrs[li])))),
            },
        }
    else:
        out |= {"scale_range": None, "lr_range": None, "scale_decades": 0.0, "lr_decades": 0.0, "centroid": None}
    if computed.any():
        masked = np.where(computed, fraction, -1.0)
        best = np.flatnonzero(masked == masked.max())
        k = best[np.argmax(np.unravel_index(best, masked.shape)[1])]
        i, j = np.unravel_index(k, masked.shape)
        out["best"] = {
            "scale": float(scales[i]),
            "learning_rate": float(lrs[j]),
            "success_fraction": float(masked[i, j]),
        }
    else:
        out["best"] = None
    return out


# --------------------------------------------------------------------------------------------------------------
# Summaries


def quantiles(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The median and interquartile range (25 %, 75 %) along ``axis`` (NumPy's linear interpolation)."""
    q = np.quantile(np.asarray(values, dtype=np.float64), [0.25, 0.5, 0.75], axis=axis)
    return q[1], q[0], q[2]


def summary(ds) -> dict:
    """The JSON summary of a study's dataset (``sim nets … --json``): sizes, and per study its headline numbers."""
    a = ds.attrs
    study = a["study"]
    out = {
        "study": study,
        "data": a["data"],
        "input_dim": int(a["input_dim"]),
        "n_train": int(a["n_train"]),
        "n_val": int(a["n_val"]),
        "n_test": int(a["n_test"]),
        "seeds": len(ds.seed),
        "complete": bool(a["complete"]),
        "dtype": a["dtype"],
    }
    if study == "init":
        out["schemes"] = {}
        for name in ds.scheme.values:
            r = ds.sel(scheme=name)
            if not bool(r.computed):
                continue
            med = lambda v: float(np.median(v))  # noqa: E731
            out["schemes"][str(name)] = {
                "weight_std": [float(v) for v in np.median(r.weight_std.values, axis=0)],
                "expected_weight_std": [float(v) for v in r.expected_weight_std.values],
                "gain": [float(v) for v in r.gain.values],
                "activation_rms": [float(v) for v in np.median(r.activation_rms.values, axis=0)],
                "predicted_activation_rms": [float(v) for v in np.median(r.predicted_activation_rms.values, axis=0)],
                "init_grad_norm": [float(v) for v in np.median(r.init_grad_norm.values, axis=0)],
                "final_loss": med(r.train_loss.values[:, -1]),
                "final_minibatch_loss": med(r.loss.values[:, -1]),
                "final_train_accuracy": med(r.train_accuracy.values[:, -1]),
                "final_val_accuracy": med(r.val_accuracy.values[:, -1]),
                "final_grad_norm_frobenius": med(r.grad_norm_frobenius.values[:, -1]),
                "final_grad_norm_spectral": med(r.grad_norm_spectral.values[:, -1]),
                "diverged": int(r.diverged.values.sum()),
            }
    elif study == "optimizers":
        out["runs"] = {}
        for name in ds.run.values:
            r = ds.sel(run=name)
            if not bool(r.computed):
                continue
            m, lo, hi = quantiles(r.train_loss.values[:, -1], 0)
            out["runs"][str(name)] = {
                "optimizer": str(r.optimizer.values),
                "learning_rate": float(r.learning_rate),
                "batch_size": int(r.batch_size),
                "final_loss": float(m),
                "final_loss_iqr": [float(lo), float(hi)],
                "final_train_accuracy": float(np.median(r.train_accuracy.values[:, -1])),
                "final_val_accuracy": float(np.median(r.val_accuracy.values[:, -1])),
                "diverged": int(r.diverged.values.sum()),
            }
    elif study == "depth":
        out["scales"] = a["scales"]
        out["lrs"] = a["lrs"]
        out["steps"] = int(a["steps"])
        out["depths"] = {}
        for depth in ds.depth.values:
            region = success_region(ds.sel(depth=depth))
            region["hidden"] = [int(w) for w in str(ds.hidden.sel(depth=depth).values).split(",")]
            region["diverged_fraction"] = float(ds.diverged.sel(depth=depth).where(ds.computed.sel(depth=depth)).mean())
            out["depths"][str(int(depth))] = region
        if len(ds.depth) == 2:
            f = ds.success_fraction.values
            both = np.isfinite(f).all(axis=0)
            good = np.where(np.isfinite(f), f, 0) >= SUCCESS_SEED_FRACTION
            first, second = (str(int(v)) for v in ds.depth.values)
            n = max(int(both.sum()), 1)
            out["overlap"] = {
                "both": float((good[0] & good[1] & both).sum() / n),
                f"only_{first}": float((good[0] & ~good[1] & both).sum() / n),
                f"only_{second}": float((~good[0] & good[1] & both).sum() / n),
            }
    return out


DESCRIPTIONS = {
    "loss": "minibatch cross-entropy before each step (clipped at the divergence bound)",
    "grad_norm_frobenius": "mean over every weight and bias array of the Frobenius norm of its minibatch gradient",
    "grad_norm_spectral": "mean over every weight and bias array of the spectral norm (largest singular value; a "
    "bias vector's Euclidean norm) of its minibatch gradient",
    "train_loss": "cross-entropy on the training-evaluation subset (first eval_size training images)",
    "train_accuracy": "accuracy on the training-evaluation subset",
    "val_accuracy": "accuracy on the validation split",
    "weight_std": "standard deviation of each weight matrix at init",
    "activation_std": "standard deviation of each hidden layer's ReLU outputs at init (training-evaluation subset)",
    "activation_rms": "root mean square of each hidden layer's ReLU outputs at init",
    "init_grad_norm": "Frobenius norm of each weight matrix's gradient of the mean loss at init",
    "per_sample_grad_rms": "RMS over samples of the Frobenius norm of each weight matrix's per-sample gradient at init",
    "gain": "fan_in * Var(W) / 2, the ReLU layer's gain of the signal's second moment",
    "predicted_activation_rms": "sqrt(input mean square * product of the gains up to the layer): exact in expectation",
    "predicted_activation_std": "sqrt(1 - 1/pi) * predicted_activation_rms (Gaussian pre-activations)",
    "predicted_per_sample_grad_rms": "mean-field prediction from the gains and the measured output signal",
    "diverged": "a minibatch loss was non-finite or above the bound; the run is frozen there",
    "diverge_step": "the step whose loss crossed the bound (-1: none)",
}


def _describe(ds) -> None:
    for name, text in DESCRIPTIONS.items():
        if name in ds and "description" not in ds[name].attrs:
            ds[name].attrs["description"] = text
