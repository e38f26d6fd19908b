"""The sweep kernel compiled for this CPU (``sim/linear/sweep/kernel.cc``), called from JAX through XLA's FFI.

Contract: :func:`status` builds the library on first use with the system's C++ compiler (``$CXX``, else ``c++``,
``g++`` or ``clang++``), caches it under ``$SIM_CACHE_DIR`` (default ``$XDG_CACHE_HOME/sim`` or ``~/.cache/sim``)
keyed by the source, the compiler, the JAX version and this CPU, and registers its handlers with JAX. Where no
compiler works, or ``SIM_NATIVE=0`` is set, :func:`status` says why and the sweep runs its XLA loop instead
(:func:`sim.linear.sweep.xla.chunk_summary` with ``native=False``, also the path on GPUs). :func:`summarize` is the
kernel itself: the same arithmetic as the XLA version (transition matrices, time loop, summaries), per point, with the
state of 64 float32 (32 float64) points in vector registers.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from sim.linear import dynamics
from sim.linear.sweep.fields import FIELDS

SOURCE = Path(__file__).with_name("kernel.cc")
METHOD_IDS = {dynamics.gd: 0, dynamics.momentum: 1, dynamics.heavy_ball: 2, dynamics.nesterov: 3}
TARGETS = {"float32": "sim_sweep_f32", "float64": "sim_sweep_f64"}
MAX_MODES = 4  # each mode count up to here has its own compiled instance (kernel.cc)
FLAGS = ["-O3", "-march=native", "-ffp-contract=fast", "-fno-math-errno", "-std=c++17", "-fPIC", "-shared", "-w"]


def cache_dir() -> Path:
    if "SIM_CACHE_DIR" in os.environ:
        return Path(os.environ["SIM_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sim"


def _compiler() -> str | None:
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def _cpu_flags() -> str:
    try:
        return next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return platform.processor()


@functools.cache
def status() -> tuple[bool, str]:
    """``(available, description)``: whether the compiled loop is registered with JAX, and which build or why not."""
    if os.environ.get("SIM_NATIVE", "1") == "0":
        return False, "disabled by SIM_NATIVE=0"
    cxx = _compiler()
    if cxx is None:
        return False, "no C++ compiler found ($CXX, c++, g++, clang++)"
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
        key = hashlib.sha256(
            "\0".join([SOURCE.read_text(), version, jax.__version__, " ".join(FLAGS), _cpu_flags()]).encode()
        ).hexdigest()[:16]
        lib = cache_dir() / f"sweep_kernel-{key}.so"
        if not lib.exists():
            print(f"sim: compiling the sweep's CPU loop into {lib.parent} (once, about 10 s)", file=sys.stderr)
            lib.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=lib.parent) as tmp:  # built aside, then moved in atomically
                out = Path(tmp) / lib.name
                cmd = [cxx, *FLAGS, f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o", str(out)]
                built = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
                if built.returncode != 0:
                    last = (built.stderr.strip().splitlines() or ["no message"])[-1]
                    return False, f"{cxx} failed: {last}"
                os.replace(out, lib)
        handle = ctypes.cdll.LoadLibrary(str(lib))
        jax.ffi.register_ffi_target(TARGETS["float32"], jax.ffi.pycapsule(handle.SimSweepF32), platform="cpu")
        jax.ffi.register_ffi_target(TARGETS["float64"], jax.ffi.pycapsule(handle.SimSweepF64), platform="cpu")
    except (OSError, subprocess.SubprocessError) as err:
        return False, f"build or load failed: {err}"
    return True, f"{version.splitlines()[0] if version else cxx}, {lib}"


def loop_for(modes: int) -> tuple[bool, str]:
    """``(native, description)``: whether a sweep of ``modes``-mode problems on the default devices runs the compiled
    loop, and what runs it (recorded with the results)."""
    if jax.devices()[0].platform != "cpu":
        return False, f"XLA while_loop ({jax.devices()[0].platform})"
    available, why = status()
    if not available:
        return False, f"XLA while_loop ({why})"
    if modes > MAX_MODES:
        return False, f"XLA while_loop (the compiled loop takes at most {MAX_MODES} modes)"
    return True, f"compiled C++ loop ({why})"


def summarize(make, hyper, sigma2, x0, tol, bound, count, *, steps: int, block: int) -> dict:
    """:func:`sim.linear.sweep.xla.chunk_summary` computed by the compiled library: the same summaries, point by point.

    :func:`status` must say it is available. The jitted function around this call only moves data, so XLA runs it
    on the calling thread once its inputs are in place (it costs it at under 1000 flops), and one host thread per
    device runs the devices in parallel (see :func:`sim.linear.sweep.engine.sweep`).

    Args:
      make: the method's constructor (a key of ``METHOD_IDS``).
      hyper: the method's hyperparameters, a tuple of one or two arrays of shape [n].
      sigma2, x0: per-mode σ_i² and initial error, arrays of shape [n, modes].
      tol, bound: tolerance and divergence bound (scalars).
      count: int32 scalar; the points from index ``count`` on are padding: not run, their results are 0.
      steps, block: as in :func:`sim.linear.sweep.xla.chunk_summary`.

    Returns:
      A dict of arrays of shape [n] keyed like ``sim.linear.sweep.fields.FIELDS``.
    """

    available, why = status()  # registers the handlers on first use
    if not available:
        raise RuntimeError(f"the compiled sweep loop is not available: {why}")
    dtype = x0.dtype
    n = x0.shape[0]
    rows = jnp.stack([*hyper, *([] if len(hyper) == 2 else [jnp.zeros_like(hyper[0])])])
    dtypes = {
        "settle_step": jnp.int32,
        "diverged": jnp.bool_,
        "unstable": jnp.bool_,
        "diverge_step": jnp.int32,
        "simulated_steps": jnp.int32,
    }
    call = jax.ffi.ffi_call(
        TARGETS[np.dtype(dtype).name], [jax.ShapeDtypeStruct((n,), dtypes.get(name, dtype)) for name in FIELDS]
    )
    out = call(
        rows,
        sigma2.T,
        x0.T,
        jnp.asarray(tol, dtype),
        jnp.asarray(bound, dtype),
        jnp.asarray(count, jnp.int32),
        method=np.int32(METHOD_IDS[make]),
        steps=np.int32(steps),
        block=np.int32(block),
    )
    return dict(zip(FIELDS, out, strict=True))
