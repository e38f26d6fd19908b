"""Helpers shared by the benchmark scripts: load-aware timing, waiting for a quiet machine, the CPU model, and
writing a results file. Not a test helper: the scripts import it as a sibling module (run them from anywhere)."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path


def _system_busy_s() -> float | None:
    """CPU seconds all processes have been busy since boot (from /proc/stat), or None where unavailable."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


class Timed:
    """Wall time of a block and the other processes' mean CPU load during it, in cores."""

    def __enter__(self):
        self.busy0, self.own0, self.t0 = _system_busy_s(), _own_cpu_s(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        busy1, own1 = _system_busy_s(), _own_cpu_s()
        if self.busy0 is None or busy1 is None:
            self.other_load = float("nan")
        else:
            other = (busy1 - self.busy0) - (own1 - self.own0)
            self.other_load = max(0.0, other / max(self.seconds, 1e-9))
        return False


def wait_quiet(max_wait_s: float, threshold: float = 0.2, window_s: float = 3.0) -> dict:
    """Wait (up to ``max_wait_s``) until other processes use less than ``threshold`` cores over ``window_s``."""
    t0 = time.perf_counter()
    while True:
        with Timed() as probe:
            time.sleep(window_s)
        waited = time.perf_counter() - t0
        if probe.other_load < threshold or waited >= max_wait_s or math.isnan(probe.other_load):
            return {"waited_s": waited, "other_load_cores": probe.other_load, "quiet": probe.other_load < threshold}
        print(f"  machine busy ({probe.other_load:.2f} other cores); waiting ...", flush=True)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_header(dtype: str, note: str = "") -> None:
    """Print the run's setup: JAX's devices and the CPU model, XLA_FLAGS, versions, dtype and git revision."""
    import jax
    import numpy as np

    from sim.core import runtime

    devices = jax.devices()
    print(f"devices: {len(devices)} x {devices[0].device_kind} ({devices[0].platform}); CPU: {cpu_model()}")
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    git = runtime.provenance()["git_revision"]
    line = f"jax {jax.__version__}, numpy {np.__version__}, dtype {dtype}, git {git}"
    print(f"{line}; {note}" if note else line, flush=True)


def torch_status(install_hint: str) -> tuple[object | None, str]:
    """``(torch, note)``: the torch module and its version, or None and why it is skipped (``install_hint``)."""
    try:
        import torch
    except ImportError as err:
        return None, f"skipped: torch is not installed ({err}); {install_hint}"
    return torch, f"torch {torch.__version__} ({torch.get_num_threads()} threads)"


RESULTS = Path(__file__).resolve().parent / "results"


def add_out_argument(parser, name: str) -> None:
    """``--out``: where the JSON goes; by default ``results/NAME.json`` beside this file (the recorded full-size run)
    and ``results/quick/NAME.json`` for a ``--quick`` smoke run, which never replaces the recorded one."""
    parser.add_argument(
        "--out",
        type=Path,
        help=f"JSON output (default {RESULTS / name}.json; with --quick {RESULTS / 'quick' / name}.json)",
    )


def results_path(args, name: str) -> Path:
    """The ``--out`` path of :func:`add_out_argument`'s parser (``args`` needs ``out`` and ``quick``)."""
    return args.out or (RESULTS / "quick" if args.quick else RESULTS) / f"{name}.json"


def write_results(path: Path, record: dict) -> None:
    """Write ``record`` as indented JSON (numpy scalars as floats), creating the folder, and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, default=float) + "\n")
    print(f"wrote {path}")
