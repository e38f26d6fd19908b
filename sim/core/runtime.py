"""Devices, the device mesh and provenance.

Contract: :func:`configure_cpu_devices` is called by entry points (the ``sim`` command, benchmarks) before JAX
starts, never on import: it presents each CPU core as its own JAX device (measured on a 2-core machine, XLA's own
threading ran the sweep's loop kernels 2–2.7× slower on two cores than on one, while one device per core scaled),
turns off XLA's concurrency-optimized scheduling (no core is left to run a program's operations side by side) and
lets XLA use 512-bit vectors where the CPU has them. It does nothing if the user set ``XLA_FLAGS``.
:func:`mesh` is the 1-D mesh over every device JAX sees; :func:`provenance` is what results files record.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def configure_cpu_devices(count: int | None = None) -> str | None:
    """Set ``XLA_FLAGS`` for one CPU device per core unless the user already set it.

    Must run before JAX initializes its backends. Returns the flags it set, or None if it left them alone.
    """
    if "XLA_FLAGS" in os.environ:
        return None
    flags = [
        f"--xla_force_host_platform_device_count={count or cpu_count()}",
        # With one device per core there is no core left for XLA to run a program's independent operations side by
        # side; its concurrency-optimized schedule then only left the cores idle (measured: the 2-mode momentum sweep
        # used 1.45 of 2 cores with it, 1.8 without, and took 1.25x longer).
        "--xla_cpu_enable_concurrency_optimized_scheduler=false",
    ]
    if _has_avx512():
        # XLA's CPU default of 128/256-bit vectors halves the sweep kernel's throughput on AVX-512 machines.
        flags.append("--xla_cpu_prefer_vector_width=512")
    os.environ["XLA_FLAGS"] = " ".join(flags)
    return os.environ["XLA_FLAGS"]


def mesh():
    """A 1-D mesh named ``points`` over every device JAX sees (a ``jax.sharding.Mesh``)."""
    import jax

    return jax.make_mesh((jax.device_count(),), ("points",), axis_types=(jax.sharding.AxisType.Auto,))


@functools.cache
def git_revision() -> str:
    """The git revision of the sim source tree (with ``-dirty`` if modified), or ``unknown``."""
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "sim"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return rev.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    import jax
    import jaxlib
    import numpy as np
    import optax
    import xarray

    from sim import __version__

    return {
        "sim": __version__,
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "xarray": xarray.__version__,
    }


def provenance() -> dict[str, str | int]:
    """Attributes recorded with every result: versions, devices and git revision (netCDF-safe types)."""
    import jax

    devices = jax.devices()
    return {
        **{f"version_{k}": v for k, v in versions().items()},
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "git_revision": git_revision(),
    }


def info() -> dict:
    """What ``sim info`` prints: devices, default dtype, x64 mode, CPU cores, versions."""
    import jax

    return {
        "devices": [str(d) for d in jax.devices()],
        "platform": jax.devices()[0].platform,
        "device_kind": jax.devices()[0].device_kind,
        "default_dtype": "float64" if jax.config.jax_enable_x64 else "float32",
        "cpu_cores": cpu_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "git_revision": git_revision(),
        "versions": versions(),
    }
