"""Local-linearization features of a network: the exact Jacobian Φ and its spectral views.

Contract: :func:`feature_matrix` returns Φ, an array of shape [n, P] whose row j is ∂f(x_j)/∂θ, with the P columns
in ``ravel_pytree`` order of the parameters (:func:`sim.networks.mlp.parameter_slices` names them). Every method gives
the same Φ up to roundoff:

- ``"reverse"`` (what ``"auto"`` picks): ``vmap`` over samples of ``grad`` of the scalar f(x_j); cost O(n·P).
- ``"jacfwd"``: ``jax.jacfwd`` of the flat-parameter function θ ↦ f(x; θ) over a batch: P forward tangents, each
  costing a forward pass, so O(n·P·width): the slow reference.
- ``"analytic"``: one hidden layer only, in closed form: ∂f/∂W⁽²⁾ = relu(h), ∂f/∂b⁽²⁾ = 1,
  ∂f/∂b⁽¹⁾ = W⁽²⁾·1[h > 0], ∂f/∂W⁽¹⁾ = x·W⁽²⁾·1[h > 0], with h = W⁽¹⁾x + b⁽¹⁾ and relu′(0) = 0.

Samples are sharded over the local devices (one chunk per device per call, through a ``shard_map``) in fixed-size
chunks, the last call padded: any large n compiles once, and Φ for n = 1e5 never builds the whole batch's
intermediates at once.

Spectral views, with the thin SVD Φ = U S Vᵀ (:func:`feature_svd`): principal features ψ_k(x) = Σ_p V_pk φ_p(x) on
any grid, by projecting the grid's features onto the TRAINING V (:func:`principal_features`; on the training
points ψ = U S); the empirical NTK Θ = ΦΦᵀ (:func:`empirical_ntk`, eigenvalues S²); the relative feature drift
‖Φ_t − Φ₀‖_F / ‖Φ₀‖_F; the alignment of top-k right singular subspaces; effective and numerical ranks.

References: EECS 182 Sp25 HW1 Q5 and Sp23 HW2 Q6 (visualizing the features of a local linearization);
Jacot et al. 2018 (neural tangent kernel); Roy & Vetterli 2007 (entropy effective rank).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from sim.core.validate import InputError, check_int, check_positive_finite
from sim.networks.mlp import Params, apply_mlp, check_params, check_x, flatten, num_params

METHODS = ("auto", "reverse", "jacfwd", "analytic")
AUTO_METHOD = "reverse"
CHUNK_BUDGET_BYTES = 128 * 2**20  # intermediates of one chunk stay below this
MAX_CHUNK = 4096
EFFECTIVE_RANKS = ("entropy", "stable")


def per_sample_features(
    params: Params, x: jax.Array, *, method: str = AUTO_METHOD, activation: Callable = jax.nn.relu
) -> jax.Array:
    """Φ for one batch, with no validation and no chunking: safe to call under ``jit``, ``vmap`` or ``scan``.

    Args:
      params: network parameters (one hidden layer for ``"analytic"``).
      x: inputs, array of shape [n].
      method: ``"auto"`` (= ``"reverse"``), ``"reverse"``, ``"jacfwd"`` or ``"analytic"``.
      activation: the hidden nonlinearity (``"analytic"`` assumes ReLU).

    Returns:
      Φ, array of shape [n, P].
    """
    n = x.shape[0]
    method = AUTO_METHOD if method == "auto" else method
    if method == "jacfwd":
        flat, unflatten = flatten(params)
        return jax.jacfwd(lambda theta: apply_mlp(unflatten(theta), x, activation=activation))(flat)
    if method == "reverse":
        grad = jax.grad(lambda p, xi: apply_mlp(p, xi, activation=activation))
        return _rows(jax.vmap(grad, in_axes=(None, 0))(params, x), n)
    if method == "analytic":
        (hidden, out) = params
        h = x[:, None] * hidden["w"][0] + hidden["b"]
        active = h > 0
        slope = jnp.where(active, out["w"][:, 0], 0)  # ∂f/∂b⁽¹⁾
        tree = [
            {"b": slope, "w": (x[:, None] * slope)[:, None, :]},
            {"b": jnp.ones((n, 1), h.dtype), "w": jnp.where(active, h, 0)[:, :, None]},
        ]
        return _rows(tree, n)
    raise InputError("method", f"must be one of {METHODS}, got {method!r}")


def feature_matrix(
    params: Params,
    x,
    *,
    method: str = "auto",
    chunk_size: int | None = None,
    activation: Callable = jax.nn.relu,
    devices: Sequence[jax.Device] | None = None,
) -> np.ndarray:
    """The exact Jacobian feature matrix Φ (row j = ∂f(x_j)/∂θ), computed chunk by chunk.

    Args:
      params: ``Params`` of :mod:`sim.networks.mlp`; Φ has their dtype.
      x: inputs, array of shape [n].
      method: ``"auto"`` (= ``"reverse"``), ``"reverse"``, ``"jacfwd"`` or ``"analytic"`` (one hidden layer, ReLU).
      chunk_size: samples per device per compiled call; default: as many as fit a 128 MiB budget for one chunk's
        intermediates, at most 4096. If n <= chunk_size × devices, one call with n split evenly over the devices
        (compiled per n); otherwise calls of exactly chunk_size × devices samples, the last padded (compiled once).
      activation: the hidden nonlinearity.
      devices: the devices to shard samples over (default: all local devices).

    Returns:
      Φ, a NumPy array of shape [n, P] in the parameters' dtype, filled chunk by chunk on the host (for n = 1e5 and
      P = 2000 that is 800 MB in float32; a JAX copy would double it).
    """
    params = check_params(params)
    x = check_x(x)
    if method not in METHODS:
        raise InputError("method", f"must be one of {METHODS}, got {method!r}")
    method = AUTO_METHOD if method == "auto" else method
    if method == "analytic":
        if len(params) != 2:
            raise InputError("method", f"'analytic' needs one hidden layer, params has {len(params) - 1}")
        if activation is not jax.nn.relu:
            raise InputError("activation", "method='analytic' is the closed form for jax.nn.relu only")
    devices = tuple(devices) if devices is not None else tuple(jax.local_devices())
    if not devices:
        raise InputError("devices", "must name at least one device")
    dtype = np.dtype(params[0]["w"].dtype)
    n, n_params, n_dev = x.shape[0], num_params(params), len(devices)
    if chunk_size is None:
        width = max(layer["w"].shape[1] for layer in params)
        per_sample = dtype.itemsize * n_params * (width if method == "jacfwd" else 8)
        chunk_size = min(MAX_CHUNK, 2 ** int(math.log2(max(1, CHUNK_BUDGET_BYTES // per_sample))))
    chunk = check_int("chunk_size", chunk_size, minimum=1)
    if n <= chunk * n_dev:  # a single call: split n evenly over the devices instead of padding to the chunk size
        chunk = -(-n // n_dev)
    group = chunk * n_dev  # one chunk per device per call; every call of a run has this shape
    n_groups = -(-n // group)
    x = x.astype(dtype)
    padded = np.concatenate([x, np.full(n_groups * group - n, x[-1], dtype)])
    fn, mesh = _sharded(method, activation, devices)
    params = jax.device_put(params, NamedSharding(mesh, P()))
    x_sharding = NamedSharding(mesh, P("points"))
    out = np.empty((n, n_params), dtype)
    pending: list[tuple[int, jax.Array]] = []

    def collect():
        # copy each device's rows straight into ``out`` (one host copy; assembling the sharded array first would
        # add a second pass over up to n × P values)
        start, rows = pending.pop(0)
        for shard in rows.addressable_shards:
            lo = start + (shard.index[0].start or 0)
            hi = min(lo + shard.data.shape[0], n)
            if hi > lo:
                out[lo:hi] = np.asarray(shard.data)[: hi - lo]

    for i in range(n_groups):
        xg = jax.device_put(padded[i * group : (i + 1) * group], x_sharding)
        pending.append((i * group, fn(params, xg)))
        if len(pending) > 2:  # bound the groups in flight (and their memory)
            collect()
    while pending:
        collect()
    return out


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class FeatureSVD:
    """Thin SVD Φ = U S Vᵀ, r = min(n, P).

    Attributes:
      u: left singular vectors, array of shape [n, r].
      s: singular values in decreasing order, array of shape [r].
      v: right singular vectors (directions in parameter space), array of shape [P, r].
    """

    u: jax.Array
    s: jax.Array
    v: jax.Array


def feature_svd(phi) -> FeatureSVD:
    """The thin SVD of a feature matrix Φ of shape [n, P]."""
    phi = _check_matrix("phi", phi)
    u, s, vt = jnp.linalg.svd(phi, full_matrices=False)
    return FeatureSVD(u, s, vt.T)


def principal_features(phi_grid, svd: FeatureSVD, *, k: int | None = None) -> jax.Array:
    """Principal features ψ_k(x) = Σ_p V_pk φ_p(x) on a grid, with V from the TRAINING features (no refit).

    Args:
      phi_grid: features of the grid points, array of shape [m, P] (:func:`feature_matrix` on the grid).
      svd: :func:`feature_svd` of the training features.
      k: how many leading principal features (default: all r).

    Returns:
      ψ, array of shape [m, k]; on the training points themselves this is U S (column k has norm s_k).
    """
    phi_grid = _check_matrix("phi_grid", phi_grid)
    if phi_grid.shape[1] != svd.v.shape[0]:
        raise InputError("phi_grid", f"has {phi_grid.shape[1]} columns, the SVD has P = {svd.v.shape[0]}")
    k = svd.v.shape[1] if k is None else check_int("k", k, minimum=1, maximum=svd.v.shape[1])
    return phi_grid @ svd.v[:, :k]


def empirical_ntk(phi, phi_other=None) -> jax.Array:
    """The empirical neural tangent kernel Θ = Φ Φ'ᵀ, array of shape [n, m] (Φ' = Φ by default; eigenvalues S²)."""
    phi = _check_matrix("phi", phi)
    other = phi if phi_other is None else _check_matrix("phi_other", phi_other)
    if other.shape[1] != phi.shape[1]:
        raise InputError("phi_other", f"has {other.shape[1]} columns, phi has {phi.shape[1]}")
    return phi @ other.T


def feature_drift(phi_t, phi_0) -> jax.Array:
    """Relative feature movement ‖Φ_t − Φ₀‖_F / ‖Φ₀‖_F (0 for a network that stays linearized)."""
    phi_t, phi_0 = _check_matrix("phi_t", phi_t), _check_matrix("phi_0", phi_0)
    if phi_t.shape != phi_0.shape:
        raise InputError("phi_t", f"has shape {phi_t.shape}, phi_0 has {phi_0.shape}")
    return jnp.linalg.norm(phi_t - phi_0) / jnp.linalg.norm(phi_0)


def subspace_alignment(v_0, v_t, *, k: int) -> jax.Array:
    """Overlap of two top-k right singular subspaces: ‖V₀ₖᵀ Vₜₖ‖_F² / k = mean cos² of the principal angles.

    1 when the subspaces coincide, 0 when orthogonal; about k / P for random subspaces.

    Args:
      v_0, v_t: right singular vectors (``FeatureSVD.v``), arrays of shape [P, r] with r >= k.
      k: subspace dimension.
    """
    overlap = _overlap(v_0, v_t, k)
    return jnp.sum(overlap**2) / k


def principal_angles(v_0, v_t, *, k: int) -> jax.Array:
    """Principal angles (radians, increasing) between the spans of the first k columns of ``v_0`` and ``v_t``."""
    sv = jnp.linalg.svd(_overlap(v_0, v_t, k), compute_uv=False)
    return jnp.arccos(jnp.clip(sv, -1.0, 1.0))


def effective_rank(s, *, definition: str = "entropy") -> jax.Array:
    """Effective rank of a spectrum of singular values s (between 1 and the number of nonzero values).

    ``"entropy"`` (Roy & Vetterli 2007): exp(H(p)) with p = s / Σ s and H(p) = −Σ p log p (0 log 0 = 0).
    ``"stable"``: Σ s² / s₁² (the stable rank ‖Φ‖_F² / ‖Φ‖₂²).
    """
    if definition not in EFFECTIVE_RANKS:
        raise InputError("definition", f"must be one of {EFFECTIVE_RANKS}, got {definition!r}")
    s = jnp.abs(_check_spectrum(s))
    if definition == "stable":
        return jnp.sum(s**2) / jnp.max(s) ** 2
    p = s / jnp.sum(s)
    return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1)), 0)))


def numerical_rank(s, *, rtol: float) -> int:
    """How many singular values exceed ``rtol`` times the largest."""
    s = jnp.abs(_check_spectrum(s))
    rtol = float(check_positive_finite("rtol", rtol))
    return int(jnp.sum(s > rtol * jnp.max(s)))


@functools.lru_cache(maxsize=32)
def _sharded(method: str, activation: Callable, devices: tuple):
    """Φ of one chunk per device, as one jitted ``shard_map`` over a 1-D mesh of ``devices``."""
    mesh = Mesh(np.array(devices), ("points",))
    fn = functools.partial(per_sample_features, method=method, activation=activation)
    return jax.jit(
        jax.shard_map(fn, mesh=mesh, in_specs=(P(), P("points")), out_specs=P("points"), check_vma=False)
    ), mesh


def _rows(tree, n: int) -> jax.Array:
    """Per-sample pytree (leaves with a leading axis n) -> [n, P] in ``ravel_pytree`` column order."""
    return jnp.concatenate([leaf.reshape(n, -1) for leaf in jax.tree.leaves(tree)], axis=1)


def _overlap(v_0, v_t, k) -> jax.Array:
    v_0, v_t = _check_matrix("v_0", v_0), _check_matrix("v_t", v_t)
    if v_0.shape[0] != v_t.shape[0]:
        raise InputError("v_t", f"has {v_t.shape[0]} rows, v_0 has {v_0.shape[0]}")
    k = check_int("k", k, minimum=1, maximum=min(v_0.shape[1], v_t.shape[1]))
    return v_0[:, :k].T @ v_t[:, :k]


def _check_matrix(name: str, a) -> jax.Array:
    if np.ndim(a) != 2 or 0 in np.shape(a):
        raise InputError(name, f"must be a non-empty 2-D array, got shape {np.shape(a)}")
    return jnp.asarray(a)


def _check_spectrum(s) -> jax.Array:
    if np.ndim(s) != 1 or np.size(s) == 0:
        raise InputError("s", f"must be a non-empty 1-D array of singular values, got shape {np.shape(s)}")
    return jnp.asarray(s)
