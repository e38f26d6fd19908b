"""Devices, the device mesh and provenance.

Contract: :func:`configure_cpu_devices` is called by entry points (the ``sim`` command, benchmarks) before JAX
starts, never on import: it presents each CPU core as its own JAX device (measured on a 2-core machine, XLA's own
threading ran the sweep's loop kernels 2–2.7× slower on two cores than on one, while one device per core scaled),
turns off XLA's concurrency-optimized scheduling (no core is left to run a program's operations side by side) and
lets XLA use 512-bit vectors where the CPU has them. It does nothing if the user set ``XLA_FLAGS``. From Python, call
it first (``sim.core.runtime.configure_cpu_devices(strict=True)``) to get the command's devices and float32 numbers;
once JAX's backends have started the flags can no longer take effect, so it sets nothing and warns (raises with
``strict=True``). :func:`mesh` is the 1-D mesh over every device JAX sees; :func:`provenance` is what results files
record: versions, devices, XLA flags, CPU model and the git revision (:func:`git_revision`: the source tree's, else
the one a build recorded in ``sim/_build_info.py``, see ``hatch_build.py``).

This module imports only the standard library (``hatch_build.py`` loads it from its file at build time).
"""

from __future__ import annotations

import ast
import functools
import os
import platform
import subprocess
import sys
import warnings
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[2]
"""The folder holding the ``sim`` package: the repository root in a checkout or editable install."""
BUILD_INFO = Path(__file__).resolve().parents[1] / "_build_info.py"
"""Written into wheels and sdists by ``hatch_build.py`` (never committed): ``GIT_REVISION = '…'``."""


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


def jax_started() -> bool:
    """Whether JAX's backends are initialized (XLA has read ``XLA_FLAGS``), found without initializing them."""
    bridge = sys.modules.get("jax._src.xla_bridge")  # absent until something imports jax
    if bridge is None:
        return False
    started = getattr(bridge, "backends_are_initialized", None)
    if callable(started):
        return bool(started())
    return bool(getattr(bridge, "_backends", None))  # older or newer JAX without the function: its cache of backends


def configure_cpu_devices(count: int | None = None, *, strict: bool = False) -> str | None:
    """Set ``XLA_FLAGS`` for one CPU device per core (the ``sim`` command's setup) unless the user already set it.

    Must run before JAX initializes its backends (before the first computation, ``jax.devices()`` and the like;
    importing ``sim`` or ``jax`` is fine). From Python, make it the first line::

        from sim.core import runtime
        runtime.configure_cpu_devices(strict=True)

    Args:
      count: devices to present; default one per core available to this process.
      strict: raise instead of warning when JAX's backends have already started.

    Returns:
      The flags it set, or None if it left ``XLA_FLAGS`` alone (set by the user, or JAX already started).

    Raises:
      RuntimeError: with ``strict``, when JAX's backends started before this call and ``XLA_FLAGS`` is unset.

    Warns:
      RuntimeWarning: the same without ``strict``; ``XLA_FLAGS`` stays unset, so results record the setup JAX runs.
    """
    if "XLA_FLAGS" in os.environ:
        return None
    if jax_started():
        message = (
            "JAX's backends are already initialized, so the sim command's setup (one CPU device per core, its XLA "
            "flags) cannot take effect: call sim.core.runtime.configure_cpu_devices() before anything runs on JAX "
            "(restart the Python process or kernel and make it the first line), or set XLA_FLAGS before starting "
            "Python. JAX keeps its current devices; results record them."
        )
        if strict:
            raise RuntimeError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
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


def tree_revision(root) -> str | None:
    """The git revision of the source tree whose top level is ``root`` (``-dirty`` if ``root/sim`` has uncommitted
    changes), or None when ``root`` is not the top of a git work tree (an installed copy inside some other
    repository does not take that repository's revision) or git is missing."""
    root = Path(root).resolve()

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5)

    try:
        top = git("rev-parse", "--show-toplevel")
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root:
            return None
        rev = git("rev-parse", "--short=12", "HEAD")
        if rev.returncode != 0:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "sim").stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() + ("-dirty" if dirty else "")


def build_info_text(revision: str) -> str:
    """The text of ``sim/_build_info.py`` recording ``revision`` (written by ``hatch_build.py``)."""
    header = '"""Written by hatch_build.py when this copy of sim was built; not in git."""'
    return f"{header}\n\nGIT_REVISION = {revision!r}\n"


def build_revision(path=BUILD_INFO) -> str | None:
    """The revision a build recorded in ``path`` (see :func:`build_info_text`), or None if there is none.

    The file is parsed, not imported or executed."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, SyntaxError):
        return None
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["GIT_REVISION"]
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            and node.value.value
        ):
            return node.value.value
    return None


def source_revision(root=SOURCE_ROOT, build_info=BUILD_INFO) -> str:
    """The revision of the sim at ``root``: its git tree's (:func:`tree_revision`) when ``root`` is the top of one,
    else the one recorded at build time in ``build_info`` (:func:`build_revision`), else ``unknown``."""
    return tree_revision(root) or build_revision(build_info) or "unknown"


@functools.cache
def git_revision() -> str:
    """The git revision of this copy of sim (``-dirty`` if modified), or ``unknown`` (:func:`source_revision`).

    Inside a checkout (or an editable install) it is the work tree's; a copy installed by ``pip install .`` or from
    a wheel reports the revision of the tree it was built from."""
    return source_revision()


def cpu_model(cpuinfo="/proc/cpuinfo") -> str:
    """The CPU's model name (``model name`` in ``cpuinfo``; else ``platform.processor()`` or the machine type), or
    ``unknown``.

    Float32 results and PNGs are reproducible bit for bit on one CPU model only: XLA compiles for the host's vector
    instructions."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() == "model name" and value.strip():
                    return " ".join(value.split())
    except OSError:
        pass
    return " ".join((platform.processor() or platform.machine() or "unknown").split())


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
    """Attributes recorded with every result: versions, devices, XLA flags, CPU model and git revision (netCDF-safe
    types)."""
    import jax

    devices = jax.devices()
    return {
        **{f"version_{k}": v for k, v in versions().items()},
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "cpu_model": cpu_model(),
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
        "cpu_model": cpu_model(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "git_revision": git_revision(),
        "versions": versions(),
    }
