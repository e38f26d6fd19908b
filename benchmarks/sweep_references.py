"""The references ``sweep_throughput.py`` measures ``sim.linear.sweep.engine`` against, on the same grids.

* :func:`numpy_sweep`: the kernel's summaries with whole-array float32 NumPy ops (``out=`` buffers or textbook
  expressions), no early exit.
* :func:`build_tight_loop` / :func:`tight_loop_runner`: the same per-step work as a C++ loop (``tight_loop.cc``)
  built with the system's compiler and called through ctypes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from common import Timed

from sim.core import runtime

TIGHT_LOOP_SOURCE = Path(__file__).with_name("tight_loop.cc")


def subsample(grid, n: int):
    """``n`` strided flat indices of ``grid`` and their float32 coordinates (C order, like sim)."""
    import numpy as np

    n = min(n, grid.size)
    idx = np.unique(np.linspace(0, grid.size - 1, n).round().astype(np.int64))
    multi = np.unravel_index(idx, grid.shape)
    coords = {a.name: a.values[i].astype(np.float32) for a, i in zip(grid.axes, multi, strict=True)}
    return idx, coords


def numpy_sweep(
    method: str, coords: dict, spectrum, steps: int, tol: float, bound: float, block: int, naive: bool = False
) -> dict:
    """The kernel's summaries for every point of ``coords`` with whole-array float32 NumPy ops, no early exit.

    Same semantics as ``sim.linear.sweep.xla.chunk_summary``: e^2 = sum_i w_i^2 after every step, a running max, the
    last step with e^2 >= tol^2; every ``block`` steps (and at the end) a point whose state norm^2 (params and velocity)
    is not <= bound^2 is frozen at the previous check and its divergence step is this check's step. The contraction is
    measured over all ``steps`` (sim measures it up to the step where it stopped a settled point).

    ``naive=False`` writes every step with ``out=`` buffers (the faster, reported baseline); ``naive=True`` writes
    the textbook expressions (``z = (1 - beta) * z + beta * g``), allocating temporaries; both give the same numbers.
    """
    import numpy as np

    f32 = np.float32
    lr = coords["learning_rate"]
    n = lr.shape[0]
    momentum = method == "momentum"
    if spectrum is None:
        s = [coords["sigma2"]]
        x0 = [np.full(n, -1.0, f32)]
    else:
        from sim.linear.problems import from_spectrum

        problem = from_spectrum(spectrum)
        s = [f32(v) for v in problem.spectrum]
        x0 = [np.full(n, v, f32) for v in problem.initial_error().astype(f32)]
    modes = len(s)
    two_s = [f32(2) * si for si in s]
    if momentum:
        beta = coords["beta"]
        one_minus_beta = (f32(1) - beta).astype(f32)
    tol2 = f32(tol) * f32(tol)
    bound2 = f32(bound) * f32(bound)

    w = [x.copy() for x in x0]
    z = [np.zeros(n, f32) for _ in range(modes)] if momentum else []
    emax = np.zeros(n, f32)
    for wi in w:
        emax += wi * wi
    last = np.zeros(n, np.int32)
    g = np.empty(n, f32)
    e2 = np.empty(n, f32)
    tmp = np.empty(n, f32)
    above = np.empty(n, bool)
    # block-start snapshots and the values frozen at divergence
    snap = [x.copy() for x in w + z]
    snap_emax, snap_last = emax.copy(), last.copy()
    frozen = [np.zeros(n, f32) for _ in w + z]
    frozen_emax, frozen_last = np.zeros(n, f32), np.zeros(n, np.int32)
    alive = np.ones(n, bool)
    diverge_step = np.full(n, -1, np.int32)

    t = 0
    while t < steps:
        length = min(block, steps - t)
        for _ in range(length if naive else 0):
            t += 1
            for i in range(modes):
                g_i = two_s[i] * w[i]
                if momentum:
                    z[i] = (1 - beta) * z[i] + beta * g_i
                    w[i] = w[i] - lr * z[i]
                else:
                    w[i] = w[i] - lr * g_i
            e2 = w[0] * w[0]
            for i in range(1, modes):
                e2 = e2 + w[i] * w[i]
            emax = np.where(e2 > emax, e2, emax)
            last = np.where(e2 >= tol2, t, last)
        for _ in range(0 if naive else length):
            t += 1
            for i in range(modes):
                np.multiply(two_s[i], w[i], out=g)  # gradient 2 sigma2 w
                if momentum:
                    np.multiply(one_minus_beta, z[i], out=z[i])
                    np.multiply(beta, g, out=g)
                    np.add(z[i], g, out=z[i])
                    np.multiply(lr, z[i], out=g)
                else:
                    np.multiply(lr, g, out=g)
                np.subtract(w[i], g, out=w[i])
            np.multiply(w[0], w[0], out=e2)
            for i in range(1, modes):
                np.multiply(w[i], w[i], out=tmp)
                np.add(e2, tmp, out=e2)
            np.fmax(emax, e2, out=emax)
            np.greater_equal(e2, tol2, out=above)
            np.copyto(last, t, where=above)
        # divergence check at the block end
        norm2 = np.zeros(n, f32)
        for x in w + z:
            norm2 += x * x
        newly = alive & ~(norm2 <= bound2)
        last = last.astype(np.int32, copy=False)
        if newly.any():
            for src, dst, live in zip(snap, frozen, w + z, strict=True):
                dst[newly] = src[newly]
                live[newly] = 0  # stop the overflow; this point's outputs come from the frozen copies
            frozen_emax[newly] = snap_emax[newly]
            frozen_last[newly] = snap_last[newly]
            diverge_step[newly] = t
            alive &= ~newly
        for src, dst in zip(w + z, snap, strict=True):
            np.copyto(dst, src)
        np.copyto(snap_emax, emax)
        np.copyto(snap_last, last)

    diverged = ~alive
    state = [np.where(diverged, fz, x) for fz, x in zip(frozen, w + z, strict=True)]
    emax = np.where(diverged, frozen_emax, emax)
    last = np.where(diverged, frozen_last, last)
    final2 = np.zeros(n, f32)
    for x in state[:modes]:
        final2 += x * x
    norm2 = np.zeros(n, f32)
    for x in state:
        norm2 += x * x
    contraction = np.where(
        diverged,
        f32(bound) ** (f32(1) / np.maximum(diverge_step, 1).astype(f32)),
        np.sqrt(norm2) ** (f32(1) / f32(max(steps, 1))),
    )
    return {
        "settle_step": np.where(~diverged & (last < steps), last + 1, -1).astype(np.int32),
        "final_error": np.sqrt(final2),
        "max_error": np.sqrt(emax),
        "diverged": diverged,
        "diverge_step": diverge_step,
        "contraction": contraction.astype(f32),
    }


def time_numpy(
    case: dict, grid, steps: int, n_points: int, repeats: int, block: int, bound: float, naive: bool = False
):
    import numpy as np

    idx, coords = subsample(grid, n_points)
    times = []
    result = None
    with np.errstate(over="ignore", invalid="ignore", under="ignore"), Timed() as all_runs:
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            result = numpy_sweep(case["method"], coords, case["spectrum"], steps, case["tol"], bound, block, naive)
            times.append(time.perf_counter() - t0)
    return idx, result, times, all_runs.other_load


def agreement(ds, idx, ref: dict) -> dict:
    """How often sim and the NumPy baseline agree on the subsample."""
    import numpy as np

    sim = {k: ds[k].values.ravel()[idx] for k in ("settle_step", "diverged", "diverge_step", "max_error")}
    settle_diff = np.abs(sim["settle_step"].astype(np.int64) - ref["settle_step"])
    both_finite = (~ref["diverged"]) & (~sim["diverged"])
    rel = np.abs(sim["max_error"] - ref["max_error"]) / np.maximum(ref["max_error"], 1e-30)
    return {
        "points": int(len(idx)),
        "settle_step_equal": float((settle_diff == 0).mean()),
        "settle_step_within_1": float((settle_diff <= 1).mean()),
        "diverged_equal": float((sim["diverged"] == ref["diverged"]).mean()),
        "diverge_step_equal": float((sim["diverge_step"] == ref["diverge_step"]).mean()),
        "max_error_max_rel_diff": float(rel[both_finite].max()) if both_finite.any() else 0.0,
        "settle_step_mismatches": int((settle_diff != 0).sum()),
    }


# --------------------------------------------------------------------------------------------------------------
# Tight loop


def build_tight_loop(build_dir: Path):
    """Compile benchmarks/tight_loop.cc and load it; returns ``(library, None)`` or ``(None, reason)``."""
    import ctypes
    import shutil
    import subprocess

    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        return None, "no C++ compiler found (set CXX)"
    os.environ.setdefault("OMP_NUM_THREADS", str(runtime.cpu_count()))  # read when libgomp loads
    # its threads sleep between calls instead of spinning into the next measurement (sim's, interleaved with them)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    library = build_dir / "tight_loop.so"
    command = [compiler, "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-o", str(library)]
    done = subprocess.run([*command, str(TIGHT_LOOP_SOURCE)], capture_output=True, text=True)
    if done.returncode != 0:
        return None, f"{' '.join(command)} failed: {done.stderr.strip()[:300]}"
    lib = ctypes.CDLL(str(library))
    f32p = ctypes.POINTER(ctypes.c_float)
    for name in ("gd_1", "momentum_1", "momentum_2"):
        getattr(lib, name).argtypes = [
            ctypes.c_int64, ctypes.c_int32, f32p, f32p, f32p, f32p, ctypes.c_float, f32p, f32p,
            ctypes.POINTER(ctypes.c_int32),
        ]  # fmt: skip
    return lib, None


def tight_loop_runner(lib, case: dict, grid, steps: int, n_points: int):
    """The tight loop on ``n_points`` strided points of the case's grid: ``(idx, call, times, results)``, where
    ``call()`` runs it once and appends the seconds it took to ``times``, and ``results()`` gives the last call's
    final and max errors and last step above tol. The caller times it in turn with sim, so both see the same
    machine."""
    import ctypes

    import numpy as np

    tile = lib.tile_points()
    idx, coords = subsample(grid, max(tile, n_points // tile * tile))
    idx = idx[: len(idx) // tile * tile]
    n = len(idx)
    f32 = np.float32
    lr = np.ascontiguousarray(coords["learning_rate"][:n])
    beta = np.ascontiguousarray(coords["beta"][:n]) if case["method"] == "momentum" else np.zeros(n, f32)
    if case["spectrum"] is None:
        h = (2 * coords["sigma2"][:n]).astype(f32)[None, :]
        x0 = np.full((1, n), -1.0, f32)
    else:
        from sim.linear.problems import from_spectrum

        problem = from_spectrum(case["spectrum"])
        h = np.repeat((2 * problem.spectrum).astype(f32)[:, None], n, axis=1)
        x0 = np.repeat(problem.initial_error().astype(f32)[:, None], n, axis=1)
    out = {"final_e2": np.empty(n, f32), "max_e2": np.empty(n, f32), "last": np.empty(n, np.int32)}
    fn = getattr(lib, f"{case['method']}_{case['modes']}")

    def ptr(a, kind=ctypes.c_float):
        return a.ctypes.data_as(ctypes.POINTER(kind))

    h, x0 = np.ascontiguousarray(h), np.ascontiguousarray(x0)
    args = (n, steps, ptr(lr), ptr(beta), ptr(h), ptr(x0), float(f32(case["tol"]) ** 2))
    outs = (ptr(out["final_e2"]), ptr(out["max_e2"]), ptr(out["last"], ctypes.c_int32))

    times = []

    def call():
        t0 = time.perf_counter()
        fn(*args, *outs)
        times.append(time.perf_counter() - t0)

    def results():
        return {"final_error": np.sqrt(out["final_e2"]), "max_error": np.sqrt(out["max_e2"]), "last": out["last"]}

    call()  # warm up (thread pool start)
    times.clear()
    return idx, call, times, results


def tight_loop_agreement(ds, idx, ref: dict) -> dict:
    """Largest relative differences between sim and the tight loop (float32 rounding, FMA contraction)."""
    import numpy as np

    out = {"points": int(len(idx))}
    for k in ("final_error", "max_error"):
        sim = ds[k].values.ravel()[idx]
        out[f"{k}_max_rel_diff"] = float(np.max(np.abs(sim - ref[k]) / np.maximum(np.abs(ref[k]), 1e-30)))
    return out
