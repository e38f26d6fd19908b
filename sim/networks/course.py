"""The course's local-linearization experiments (EECS 182 Sp25 HW1 Q5) as ``xarray.Dataset`` results, and their parts.

Contract: every function takes keyword configuration (defaults = the course's full size), validates it (an
:class:`sim.core.validate.InputError` naming the parameter, before anything is compiled), runs ``sim.networks.training``
and ``sim.networks.features`` and returns one ``xarray.Dataset`` holding everything a figure or a table needs, with the
configuration and ``sim.core.runtime.provenance()`` in netCDF-safe ``attrs``. No NaN anywhere: ragged axes are padded
with 0 (``layer``: see ``num_layers``; ``unit``: see ``width``, elbows padded with +inf and ``elbow_defined`` False),
and a diverged run is frozen and flagged (``diverged``, ``diverge_step``), see ``sim.networks.training``.

* :func:`part1` — Sp25 HW1 Q5 Part I: elbow-initialized 1 → w → 1 ReLU nets (widths 10 / 20 / 40, one and two hidden
  layers) on the piecewise-linear kink target, SGD lr 0.02, batch 40, 150 000 steps (``steps`` to shorten).
* :func:`part2` — Part II: sum of sines, heavy-ball momentum 0.9, lr 0.1, batch 32, 468 steps; a shallow 1 × 20 net
  (PyTorch default init) against 4 × 20 nets with U(±0.03), U(±3), He-uniform weights and zero biases, and He trained
  on the mismatched x ∈ [−1, 0.4].
* :func:`part2_seeds` — Part II's published numbers (per-layer gradient norms, test MSE, the mismatched model's
  out-of-distribution test MSE) against their distribution over seeds: median, range and the published value's
  percentile.
* :func:`model` — one network of any depth, width and initialization on either target, with Part II's training
  defaults (the ``sim features`` command).

Per model (dimension ``model``): singular values of Φ (top ``num_sv``, zero-padded) and principal features ψ_k on a
grid, at init and trained (``stage``); per-layer weight-gradient norms (Frobenius, full training MSE,
``sim.networks.training``); train/test MSE per checkpoint; predictions on the grid; on the kink target also the first
layer's elbows over training and its features ∂f/∂W⁽¹⁾_i, ∂f/∂b⁽¹⁾_i. MSE is the mean squared error (PyTorch's MSELoss),
as in the course. The building blocks :func:`part2_setup`, :func:`feature_grid`, :func:`feature_views`,
:func:`call_config` and :func:`result_attrs` are shared with the experiments beyond the course
(``sim.networks.init_scale``, ``sim.networks.linearized``).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from sim.core import engine, runtime
from sim.core.validate import InputError, check_int
from sim.networks import data as targets
from sim.networks import elbows, features, mlp, training

STAGES = ("init", "trained")
KINKS = tuple(k / 10 for k in range(11))  # the kink target's knots (EECS 182 Sp25 HW0 Q5)
PART2_MODELS = {
    "shallow": {"depth": 1, "width": 20, "init": "pytorch", "scale": None, "train_interval": (-1.0, 1.0)},
    "small": {"depth": 4, "width": 20, "init": "uniform", "scale": 0.03, "train_interval": (-1.0, 1.0)},
    "large": {"depth": 4, "width": 20, "init": "uniform", "scale": 3.0, "train_interval": (-1.0, 1.0)},
    "he": {"depth": 4, "width": 20, "init": "he_uniform", "scale": None, "train_interval": (-1.0, 1.0)},
    "he_mismatched": {"depth": 4, "width": 20, "init": "he_uniform", "scale": None, "train_interval": (-1.0, 0.4)},
}
PART2_ZERO_BIAS = ("small", "large", "he", "he_mismatched")  # the 4 × 20 nets; the shallow one keeps nn.Linear's
# the course's run of "large" diverged: its published test MSE is NaN
PUBLISHED_TEST_MSE = {"shallow": 0.011, "small": 0.130, "large": float("nan"), "he": 0.0046, "he_mismatched": 0.257}
# its per-layer weight-gradient norms at init (hidden_1 ... output); for U(±3) only their range over the layers
PUBLISHED_GRAD_NORMS = {"small": (1e-6,) * 5, "he": (0.085, 0.31, 0.34, 0.40, 0.42)}
PUBLISHED_GRAD_NORM_RANGE = {"large": (5e4, 1.8e5)}
OOD_MODEL = "he_mismatched"  # trained on x in [-1, 0.4], tested on [-1, 1]: its test MSE is out of distribution
# target name → (function, course training interval, course n_train); test points: sines U[−1, 1], kinks a grid
TARGETS = {"sines": (targets.sum_of_sines, (-1.0, 1.0), 1500), "kinks": (targets.piecewise_linear, (0.0, 1.0), 200)}


# --------------------------------------------------------------------------------------------------------------
# Part I and Part II


def part1(
    *,
    widths=(10, 20, 40),
    depths=(1, 2),
    steps: int = 150_000,
    learning_rate: float = 0.02,
    batch_size: int = 40,
    n_train: int = 200,
    noise: float = 0.1,
    data_seed: int = 0,
    seed: int = 0,
    checkpoint_every: int | None = None,
    grid_points: int = 400,
    num_sv: int = 20,
    num_pf: int = 4,
    progress: bool = True,
) -> xr.Dataset:
    """Sp25 HW1 Q5 Part I: elbow nets of every (depth, width), at init and after SGD on the kink target.

    Adds to the common per-model variables: ``elbows`` [model, step, unit] (first-layer −b/W over the checkpoints),
    ``feature_w`` and ``feature_b`` [model, stage, unit, x] (∂f/∂W⁽¹⁾_i and ∂f/∂b⁽¹⁾_i on the grid).
    Model names are ``"{depth}x{width}"``; init key ``fold_in(key(seed), model index)``, batches from ``seed``.
    """
    config = call_config(locals(), optimizer="sgd", interval=(0.0, 1.0))
    widths = [check_int("widths", w, minimum=1) for w in np.atleast_1d(widths)]
    depths = [check_int("depths", d, minimum=1) for d in np.atleast_1d(depths)]
    data = targets.elbow_data(n_train=n_train, noise=noise, seed=data_seed)
    specs = {f"{d}x{w}": {"depth": d, "width": w, "init": "elbows", "scale": None} for d in depths for w in widths}
    train_kw = {"optimizer": "sgd", "learning_rate": learning_rate, "steps": steps, "batch_size": batch_size}
    training.check_options(data.x_train.size, **train_kw, checkpoint_every=checkpoint_every, seed=seed)
    config |= {"widths": widths, "depths": depths}

    def run(i, name):
        spec = specs[name]
        params = mlp.init_mlp(jax.random.fold_in(jax.random.key(seed), i), **spec)
        return _run_model(name, spec, params, data, train_kw, seed, checkpoint_every, config, elbow_view=True)

    records, complete = _run_models(list(specs), run, "part I", progress)
    ds = _assemble(records, targets.piecewise_linear)
    return ds.assign_attrs(result_attrs(config | {"experiment": "part1", "kinks": list(KINKS), "complete": complete}))


def part2(
    *,
    models=tuple(PART2_MODELS),
    steps: int = 468,
    learning_rate: float = 0.1,
    momentum: float = 0.9,
    batch_size: int = 32,
    n_train: int = 1500,
    n_test: int = 500,
    noise: float = 0.1,
    data_seed: int = 0,
    seed: int = 0,
    checkpoint_every: int | None = None,
    grid_points: int = 400,
    num_sv: int = 20,
    num_pf: int = 4,
    progress: bool = True,
) -> xr.Dataset:
    """Sp25 HW1 Q5 Part II: shallow vs deep nets and three initializations on the sum of sines (see module doc).

    Args:
      models: names from ``PART2_MODELS``.
      (the rest): training and data configuration; defaults are the course's.

    Returns:
      The common per-model dataset (module docstring) plus ``constant_mse`` (test MSE of the best constant,
      the training mean) and ``published_test_mse`` (EECS 182 Sp25 HW1 Q5; NaN where the published run diverged and
      printed NaN).
    """
    config = call_config(locals(), optimizer="momentum", interval=(-1.0, 1.0))
    models = list(models) if not isinstance(models, str) else [models]
    for name in models:
        if name not in PART2_MODELS:
            raise InputError("models", f"must be names from {tuple(PART2_MODELS)}, got {name!r}")
    config["models"] = models
    train_kw, n_train = _part2_training(steps, learning_rate, momentum, batch_size, n_train, checkpoint_every, seed)
    data_kw = {"n_train": n_train, "n_test": n_test, "noise": noise, "data_seed": data_seed, "seed": seed}

    def run(_, name):
        spec, data, params = part2_setup(name, **data_kw)
        return _run_model(name, spec, params, data, train_kw, seed, checkpoint_every, config)

    records, complete = _run_models(models, run, "part II", progress)
    ds = _assemble(records, targets.sum_of_sines)
    ds["published_test_mse"] = (
        "model",
        np.array([PUBLISHED_TEST_MSE[r["name"]] for r in records]),
        {"description": "the course's published test MSE (NaN: the published run diverged and printed NaN)"},
    )
    return ds.assign_attrs(result_attrs(config | {"experiment": "part2", "complete": complete}))


def part2_seeds(
    *,
    seeds: int = 32,
    first_seed: int = 0,
    steps: int = 468,
    learning_rate: float = 0.1,
    momentum: float = 0.9,
    batch_size: int = 32,
    n_train: int = 1500,
    n_test: int = 500,
    noise: float = 0.1,
    data_seed: int = 0,
    progress: bool = True,
) -> xr.Dataset:
    """Sp25 HW1 Q5 Part II over seeds: where does each published number fall in the distribution of runs?

    The course trains every Part II model once, with one seed; this trains each of ``PART2_MODELS`` with the seeds
    ``first_seed … first_seed + seeds − 1`` (a seed draws the initial parameters and the minibatch order, exactly as
    in :func:`part2`; the data are the course's, fixed by ``data_seed``) and sets every published quantity beside
    its seed distribution. The quantities (coordinate ``quantity``): the per-layer weight-gradient norms at init of
    ``small`` and ``he`` (``PUBLISHED_GRAD_NORMS``), the smallest and the largest layer's of ``large`` (the course gave
    their range), the final test MSE of ``shallow``, ``small`` and ``he``, and the out-of-distribution test MSE of
    ``he_mismatched`` (trained on [−1, 0.4], tested on [−1, 1]). ``large`` diverged in the course (published NaN):
    its share of diverged seeds is ``diverged_fraction``.

    Returns:
      ``xarray.Dataset`` with per-seed results (``seed`` × ``model``: ``grad_norms`` over ``layer``, ``test_loss``
      over ``step``, ``final_test_mse``, ``diverged``) and per quantity ``published``, ``seed_median``,
      ``seed_q25``/``seed_q75``, ``seed_min``/``seed_max`` (the range over seeds), ``percentile`` (the share of
      seeds below the published value, ties counted half, in %) and ``seeds_used`` (seeds whose run did not
      diverge). A diverged run's test MSE is excluded from the statistics (its frozen value is not a test error);
      gradient norms at init are always defined.
    """
    seeds = check_int("seeds", seeds, minimum=2, maximum=4096)
    first_seed = check_int("first_seed", first_seed, minimum=0)
    config = call_config(locals(), optimizer="momentum", interval=(-1.0, 1.0))
    last = first_seed + seeds - 1
    train_kw, n_train = _part2_training(steps, learning_rate, momentum, batch_size, n_train, None, last)
    data_kw = {"n_train": n_train, "n_test": n_test, "noise": noise, "data_seed": data_seed}
    models = list(PART2_MODELS)
    runs = [(first_seed + i, name) for i in range(seeds) for name in models]

    def run(_, item):
        seed, name = item
        spec, data, params = part2_setup(name, **data_kw, seed=seed)
        args = (data.x_train, data.y_train, data.x_test, data.y_test)
        res = training.train(params, *args, **train_kw, seed=seed)
        return jax.tree.map(np.asarray, (res.grad_norms[0], res.test_loss, res.diverged, res.checkpoint_steps))

    records, complete = _run_models(runs, run, "part II over seeds", progress)
    done = len(records) // len(models)  # whole seeds only: a seed whose models did not all finish is dropped
    records = records[: done * len(models)]
    config |= {"experiment": "part2_seeds", "models": models, "seeds_run": done, "complete": complete}
    if not done:  # stopped before a seed finished: nothing to compare
        return xr.Dataset(coords={"model": models}).assign_attrs(result_attrs(config))
    n_layers = max(spec["depth"] + 1 for spec in PART2_MODELS.values())
    grad = np.zeros((done, len(models), n_layers))
    loss = np.stack([r[1] for r in records]).reshape(done, len(models), -1)
    for k, r in enumerate(records):
        grad[k // len(models), k % len(models), : r[0].size] = r[0]
    diverged = np.array([bool(r[2]) for r in records]).reshape(done, len(models))
    coords = {"seed": first_seed + np.arange(done), "model": models, "layer": np.arange(1, n_layers + 1)}
    coords["step"] = records[0][3]
    ds = xr.Dataset(
        {
            "grad_norms": (
                ("seed", "model", "layer"),
                grad,
                {"description": "weight-gradient norm at init (0: no layer)"},
            ),
            "test_loss": (("seed", "model", "step"), loss),
            "final_test_mse": (("seed", "model"), loss[:, :, -1]),
            "diverged": (("seed", "model"), diverged),
            "diverged_fraction": ("model", diverged.mean(axis=0)),
            "published_test_mse": ("model", np.array([PUBLISHED_TEST_MSE[m] for m in models])),
        },
        coords=coords,
    )
    ds = xr.merge([ds, published_comparison(ds)])
    return ds.assign_attrs(result_attrs(config))


def published_comparison(ds: xr.Dataset) -> xr.Dataset:
    """Every published Part II number beside its distribution over the seeds of ``ds`` (see :func:`part2_seeds`)."""
    names, published, samples = [], [], []
    grad = lambda m: ds.grad_norms.sel(model=m).values  # noqa: E731  [seed, layer]
    for m, values in PUBLISHED_GRAD_NORMS.items():
        for layer, value in enumerate(values):
            names.append(f"{m} grad norm layer {layer + 1}")
            published.append(value)
            samples.append(grad(m)[:, layer])
    for m, (low, high) in PUBLISHED_GRAD_NORM_RANGE.items():
        layers = int(PART2_MODELS[m]["depth"]) + 1
        names += [f"{m} grad norm smallest layer", f"{m} grad norm largest layer"]
        published += [low, high]
        samples += [grad(m)[:, :layers].min(axis=1), grad(m)[:, :layers].max(axis=1)]
    for m in PART2_MODELS:
        value = PUBLISHED_TEST_MSE[m]
        if np.isfinite(value):
            names.append(mse_quantity(m))
            published.append(value)
            kept = ~ds.diverged.sel(model=m).values
            samples.append(ds.final_test_mse.sel(model=m).values[kept])
    stats = {k: [] for k in ("seed_median", "seed_q25", "seed_q75", "seed_min", "seed_max", "percentile", "seeds_used")}
    for value, sample in zip(published, samples, strict=True):
        sample = np.asarray(sample, dtype=np.float64)
        if sample.size == 0:
            row = dict.fromkeys(stats, np.nan) | {"seeds_used": 0}
        else:
            q25, median, q75 = np.percentile(sample, [25, 50, 75])
            below = np.mean(sample < value) + 0.5 * np.mean(sample == value)
            row = {"seed_median": median, "seed_q25": q25, "seed_q75": q75}
            row |= {"seed_min": sample.min(), "seed_max": sample.max()}
            row |= {"percentile": 100 * below, "seeds_used": sample.size}
        for k, v in row.items():
            stats[k].append(v)
    doc = {
        "published": "the course's published value (EECS 182 Sp25 HW1 Q5, one seed)",
        "seed_median": "median over seeds",
        "seed_q25": "25th percentile over seeds",
        "seed_q75": "75th percentile over seeds",
        "seed_min": "smallest value over seeds",
        "seed_max": "largest value over seeds",
        "percentile": "share of seeds below the published value, ties counted half (%)",
        "seeds_used": "seeds the statistics rest on (a diverged run's test MSE is excluded)",
    }
    data = {"published": np.array(published)} | {k: np.array(v) for k, v in stats.items()}
    return xr.Dataset(
        {k: ("quantity", v, {"description": doc[k]}) for k, v in data.items()}, coords={"quantity": names}
    )


def mse_quantity(model: str) -> str:
    """The ``quantity`` name of ``model``'s test MSE in :func:`published_comparison` (OOD for ``OOD_MODEL``)."""
    return f"{model} {'OOD test MSE' if model == OOD_MODEL else 'test MSE'}"


def _part2_training(steps, learning_rate, momentum, batch_size, n_train, checkpoint_every, seed):
    """Part II's heavy-ball training options, checked (``InputError`` naming the parameter), and ``n_train``."""
    train_kw = {"optimizer": "momentum", "learning_rate": learning_rate, "momentum": momentum, "steps": steps}
    train_kw["batch_size"] = batch_size
    n_train = check_int("n_train", n_train, minimum=1)
    training.check_options(n_train, **train_kw, checkpoint_every=checkpoint_every, seed=seed)
    return train_kw, n_train


def _run_models(names, run, desc, progress) -> tuple[list, bool]:
    """``run(i, name)`` for every model, the models spread over the local devices by the run engine; returns the
    records in the order of ``names`` and whether all finished (a signal keeps the finished ones, complete = False)."""
    records = {}

    def launch(chunk, device):
        with jax.default_device(device):
            return run(*chunk)

    outcome = engine.run(
        list(enumerate(names)),
        launch,
        lambda chunk, record: record,
        lambda chunk, record: records.__setitem__(chunk[0], record),
        devices=jax.local_devices(),
        total=len(names),
        progress=progress,
        desc=desc,
        unit="model",
    )
    if not outcome.complete:
        tqdm.write(f"interrupted: keeping the {len(records)} of {len(names)} models that finished")
    return [records[i] for i in sorted(records)], outcome.complete


def model(
    *,
    depth: int,
    width: int,
    init: str,
    scale: float | None = None,
    zero_bias: bool = False,
    target: str = "sines",
    train_interval: tuple[float, float] | None = None,
    optimizer: str = "momentum",
    learning_rate: float = 0.1,
    momentum: float = 0.9,
    batch_size: int = 32,
    steps: int = 468,
    n_train: int | None = None,
    n_test: int = 500,
    noise: float = 0.1,
    data_seed: int = 0,
    seed: int = 0,
    checkpoint_every: int | None = None,
    grid_points: int = 400,
    num_sv: int = 20,
    num_pf: int = 4,
    progress: bool = True,
) -> xr.Dataset:
    """One 1 → width → … → width → 1 ReLU net, at init and trained, through the features of its linearization.

    The network is ``sim.networks.mlp.init_mlp(fold_in(key(seed), 0), ...)`` and batches come from ``seed``, as for the
    first model of :func:`part1` and :func:`part2`: ``model(depth=1, width=20, init="pytorch")`` is Part II's
    ``shallow`` model and ``model(depth=1, width=10, init="elbows", target="kinks", optimizer="sgd",
    learning_rate=0.02, batch_size=40, steps=150_000, n_test=1000)`` is Part I's ``1x10``.

    Args:
      depth: hidden layers D >= 1; width: units N >= 1 per hidden layer.
      init: one of ``sim.networks.mlp.INITS``; scale: a of ``"uniform"`` (required) or ``"elbows"`` (default 1).
      zero_bias: zero biases at init (``sim.networks.mlp.init_mlp``).
      target: ``"sines"`` (Part II's sum of sines; test points U[−1, 1]) or ``"kinks"`` (Part I's piecewise-linear
        target; test points a grid over the training interval).
      train_interval: ``(low, high)`` of the training inputs; default [−1, 1] (sines) or [0, 1] (kinks).
      optimizer, learning_rate, momentum, batch_size, steps, checkpoint_every: ``sim.networks.training.train``'s
        (defaults: Part II's heavy ball).
      n_train: training points; default 1500 (sines) or 200 (kinks). n_test: test points.
      noise: training-label noise σ; data_seed: seed of the data.
      grid_points, num_sv, num_pf: the grid of x, and how many singular values and principal features to keep.

    Returns:
      The per-model dataset of the module docstring with one ``model`` named like ``"4x20-he_uniform"`` (the scale
      appended for ``uniform``), plus ``constant_mse``; on the kink target the elbow views of :func:`part1`.
    """
    config = call_config(locals())
    if target not in TARGETS:
        raise InputError("target", f"must be one of {tuple(TARGETS)}, got {target!r}")
    target_fn, course_interval, course_n = TARGETS[target]
    interval = course_interval if train_interval is None else mlp.check_bounds("train_interval", train_interval)
    depth, width = check_int("depth", depth, minimum=1), check_int("width", width, minimum=1)
    if init not in mlp.INITS:
        raise InputError("init", f"must be one of {mlp.INITS}, got {init!r}")
    n_train = course_n if n_train is None else n_train
    data_seed = check_int("data_seed", data_seed, minimum=0)
    if target == "sines":
        data = targets.sines_data(n_train=n_train, n_test=n_test, noise=noise, train_interval=interval, seed=data_seed)
        grid_interval = (min(interval[0], -1.0), max(interval[1], 1.0))  # covers the training and the test points
    else:
        data = targets.elbow_data(n_train=n_train, n_test=n_test, noise=noise, interval=interval, seed=data_seed)
        grid_interval = interval
    train_kw = {"optimizer": optimizer, "learning_rate": learning_rate, "momentum": momentum, "steps": steps}
    train_kw["batch_size"] = batch_size
    opts = training.check_options(data.x_train.size, **train_kw, checkpoint_every=checkpoint_every, seed=seed)
    train_kw = {k: opts[k] for k in train_kw}
    config |= train_kw | {"depth": depth, "width": width, "seed": opts["seed"], "data_seed": data_seed}
    config |= {"n_train": data.x_train.size, "train_interval": list(interval), "interval": grid_interval}
    spec = {"depth": depth, "width": width, "init": init, "scale": scale}
    params = mlp.init_mlp(jax.random.fold_in(jax.random.key(seed), 0), **spec, zero_bias=zero_bias)
    name = f"{depth}x{width}-{init}" + (f"-{scale:g}" if init == "uniform" else "")

    def run(_, name):
        return _run_model(
            name, spec, params, data, train_kw, opts["seed"], checkpoint_every, config, elbow_view=target == "kinks"
        )

    # on the run engine like every computation: a signal lets the training finish, then it is kept (a second one
    # stops at once)
    (record,), _ = _run_models([name], run, name, progress)
    extra = {"kinks": list(KINKS)} if target == "kinks" else {}
    return _assemble([record], target_fn).assign_attrs(result_attrs(config | extra | {"experiment": "model"}))


# --------------------------------------------------------------------------------------------------------------
# Building blocks (shared with sim.networks.init_scale and sim.networks.linearized)


def part2_setup(name: str, *, n_train: int, n_test: int, noise: float, data_seed: int, seed: int):
    """One Part II model: ``(spec, data, params)``.

    ``spec`` is its ``PART2_MODELS`` entry without the training interval (depth, width, init, scale); ``data`` the
    sum-of-sines ``targets.Dataset`` on that interval; ``params`` its initial parameters, drawn with the key
    ``fold_in(key(seed), index of name in PART2_MODELS)`` and zero biases for the ``PART2_ZERO_BIAS`` models.
    """
    spec = dict(PART2_MODELS[name])
    interval = spec.pop("train_interval")
    data = targets.sines_data(n_train=n_train, n_test=n_test, noise=noise, train_interval=interval, seed=data_seed)
    key = jax.random.fold_in(jax.random.key(seed), list(PART2_MODELS).index(name))
    return spec, data, mlp.init_mlp(key, **spec, zero_bias=name in PART2_ZERO_BIAS)


def feature_grid(interval, points):
    """A float32 grid of ``points`` x over ``interval`` widened by 10 % on each side (features beyond the data)."""
    lo, hi = interval
    pad = 0.1 * (hi - lo)
    return np.linspace(lo - pad, hi + pad, check_int("grid_points", points, minimum=2)).astype(np.float32)


@jax.jit
def feature_views(params, x_train, grid):
    """``(Φ on x_train [n, P], Φ on the grid [g, P], f on the grid [g])``: one ``per_sample_features`` call."""
    phi = features.per_sample_features(params, jnp.concatenate([x_train, grid]))
    return phi[: x_train.shape[0]], phi[x_train.shape[0] :], mlp.apply_mlp(params, grid)


def call_config(arguments: dict, **extra) -> dict:
    """The keyword configuration of a call (its ``locals()`` on entry, without ``progress``) with ``extra`` merged.

    Checks ``num_sv``, ``num_pf`` (>= 1) and ``grid_points`` (>= 2) where present.
    """
    config = {k: v for k, v in arguments.items() if k != "progress"} | extra
    for name in ("num_sv", "num_pf", "grid_points"):
        if name in config:
            check_int(name, config[name], minimum=2 if name == "grid_points" else 1)
    return config


def result_attrs(config: dict) -> dict:
    """netCDF-safe attrs: the configuration and ``sim.core.runtime.provenance()``.

    None becomes ``"none"``, a bool an int, a flat list of numbers (or bools, as ints) a numeric list, anything
    else nested or mixed a JSON string (numpy scalars and arrays converted).
    """
    return {key: _netcdf_attr(value) for key, value in config.items()} | runtime.provenance()


def _netcdf_attr(value):
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (str, int, float, np.number)):
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        try:
            arr = np.asarray(value)
        except ValueError:  # ragged
            arr = None
        if arr is not None and arr.ndim == 1 and arr.dtype.kind in "biuf":
            return arr.astype(np.int64 if arr.dtype.kind == "b" else arr.dtype).tolist()
    return json.dumps(value, default=lambda v: v.tolist() if isinstance(v, (np.ndarray, np.generic)) else str(v))


# --------------------------------------------------------------------------------------------------------------
# Implementation


def _spectral(phi, phi_grid, num_sv, num_pf):
    """Top singular values, principal features on the grid and on the training points (ψ = U S), signs fixed."""
    svd = features.feature_svd(phi)
    k = min(num_pf, svd.s.size)
    psi = np.asarray(features.principal_features(phi_grid, svd, k=k))
    psi_train = np.asarray(svd.u[:, :k] * svd.s[:k])
    sign = np.sign(psi[np.argmax(np.abs(psi), axis=0), np.arange(k)])  # SVD signs are arbitrary: largest value > 0
    sign[sign == 0] = 1
    s = _pad(np.asarray(svd.s[:num_sv]), num_sv, 0, 0.0)
    return s, _pad(psi * sign, num_pf, 1, 0.0).T, _pad(psi_train * sign, num_pf, 1, 0.0).T


def _run_model(name, spec, params, data, train_kw, seed, every, config, *, elbow_view=False):
    num_sv = check_int("num_sv", config["num_sv"], minimum=1)
    num_pf = check_int("num_pf", config["num_pf"], minimum=1)
    grid = feature_grid(config["interval"], config["grid_points"])
    args = (data.x_train, data.y_train, data.x_test, data.y_test)
    res = jax.tree.map(np.asarray, training.train(params, *args, **train_kw, checkpoint_every=every, seed=seed))
    rec = {"name": name, "depth": spec["depth"], "width": spec["width"], "init": spec["init"], "grid": grid}
    rec |= {"scale": spec["scale"] or 0.0, "num_params": mlp.num_params(params), "result": res}
    rec |= {"x_train": data.x_train, "y_train": data.y_train}
    rec["constant_mse"] = float(np.mean((data.y_test - data.y_train.mean()) ** 2))
    views = [[np.asarray(v) for v in feature_views(p, data.x_train, grid)] for p in (params, res.params)]
    spectra = [_spectral(phi, phi_grid, num_sv, num_pf) for phi, phi_grid, _ in views]
    rec["sv"], rec["psi"], rec["psi_train"] = (np.stack(v) for v in zip(*spectra, strict=True))
    (phi0, grid0, pred0), (phi1, grid1, pred1) = views
    rec["drift"] = float(np.linalg.norm(phi1 - phi0) / np.linalg.norm(phi0))  # features.feature_drift, in NumPy
    rec["prediction"] = np.stack([pred0, pred1])
    if elbow_view:
        el = elbows.track_elbows(res.checkpoints)
        rec["elbows"], rec["elbow_defined"] = np.asarray(el.position), np.asarray(el.defined)
        cols = mlp.parameter_slices(params)
        rec["feature_w"] = np.stack([g[:, cols["hidden_1.w"]].T for g in (grid0, grid1)])
        rec["feature_b"] = np.stack([g[:, cols["hidden_1.b"]].T for g in (grid0, grid1)])
    return rec


def _pad(a, size, axis, fill):
    a = np.asarray(a)
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, size - a.shape[axis])
    return np.pad(a, widths, constant_values=fill)


def _assemble(records, target_fn) -> xr.Dataset:
    n_layers = max(r["depth"] + 1 for r in records)
    n_units = max(r["width"] for r in records)
    res = [r["result"] for r in records]
    stack = lambda key: np.stack([r[key] for r in records])  # noqa: E731
    layer_pad = lambda a: _pad(a, n_layers, a.ndim - 1, 0.0)  # noqa: E731
    data = {
        "depth": ("model", stack("depth")),
        "width": ("model", stack("width")),
        "init": ("model", stack("init")),
        "scale": ("model", stack("scale")),
        "num_params": ("model", stack("num_params")),
        "num_layers": ("model", stack("depth") + 1),
        "singular_values": (("model", "stage", "sv_index"), stack("sv")),
        "principal_features": (("model", "stage", "pf_index", "x"), stack("psi")),
        "principal_train": (("model", "stage", "pf_index", "sample"), stack("psi_train")),
        "feature_drift": ("model", stack("drift")),
        "prediction": (("model", "stage", "x"), stack("prediction")),
        "x_train": (("model", "sample"), stack("x_train")),
        "y_train": (("model", "sample"), stack("y_train")),
        "train_loss": (("model", "step"), np.stack([r.train_loss for r in res])),
        "test_loss": (("model", "step"), np.stack([r.test_loss for r in res])),
        "grad_norm_history": (("model", "step", "layer"), np.stack([layer_pad(r.grad_norms) for r in res])),
        "grad_norms": (("model", "stage", "layer"), np.stack([layer_pad(r.grad_norms[[0, -1]]) for r in res])),
        "final_test_mse": ("model", np.array([float(r.test_loss[-1]) for r in res])),
        "final_train_mse": ("model", np.array([float(r.train_loss[-1]) for r in res])),
        "constant_mse": ("model", stack("constant_mse")),
        "diverged": ("model", np.array([bool(r.diverged) for r in res])),
        "diverge_step": ("model", np.array([int(r.diverge_step) for r in res])),
        "target": ("x", target_fn(records[0]["grid"])),
    }
    if "elbows" in records[0]:
        data["elbows"] = (("model", "step", "unit"), np.stack([_pad(r["elbows"], n_units, 1, np.inf) for r in records]))
        data["elbow_defined"] = (
            ("model", "step", "unit"),
            np.stack([_pad(r["elbow_defined"], n_units, 1, False) for r in records]),
        )
        for key in ("feature_w", "feature_b"):
            data[key] = (("model", "stage", "unit", "x"), np.stack([_pad(r[key], n_units, 1, 0.0) for r in records]))
    coords = {"model": [r["name"] for r in records], "stage": list(STAGES), "x": records[0]["grid"]}
    coords |= {"step": np.asarray(res[0].checkpoint_steps), "layer": np.arange(1, n_layers + 1)}
    return xr.Dataset(data, coords=coords)
