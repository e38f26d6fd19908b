"""Sweeps streamed to a Zarr store: equal to the in-memory run, resumable after SIGKILL, SIGTERM keeps what finished,
refused when the store was written by a different command, and memory that does not grow with the grid."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from sim.core import io
from sim.core.grid import Grid, parse_axis
from sim.core.validate import InputError
from sim.linear.sweep import engine

ROOT = Path(__file__).resolve().parents[2]
# every point runs every step (η far below 1/σ²: nothing settles or diverges): about 0.1 s a block, 3 s a run
SLOW = {"eta": "log:1e-7:1e-6:40", "sigma2": "0.1:1:50", "steps": 16_000_000, "tol": 1e-3, "chunk_size": 64}
SCRIPT = textwrap.dedent(
    """
    import sys
    from sim.core import runtime
    runtime.configure_cpu_devices(2)
    from sim.core.grid import Grid, parse_axis
    from sim.linear.sweep import engine
    eta, sigma2, steps, tol, chunk, out, resume = sys.argv[1:]
    grid = Grid((parse_axis("learning_rate", eta), parse_axis("sigma2", sigma2)))
    ds = engine.sweep("gd", grid, steps=int(steps), tol=float(tol), chunk_size=int(chunk), output=out,
                      resume=resume == "1", progress=False)
    print("complete", ds.attrs["complete"], "signal", ds.attrs["stopped_by_signal"], flush=True)
    """
)


def _start(out, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("XLA_FLAGS", None)
    cfg = SLOW | kw
    argv = [sys.executable, "-c", SCRIPT, cfg["eta"], cfg["sigma2"], str(cfg["steps"]), str(cfg["tol"])]
    argv += [str(cfg["chunk_size"]), str(out), "1" if kw.get("resume") else "0"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_blocks(out: Path, proc, minimum: int, timeout: float = 120.0) -> int:
    """Poll the store until ``minimum`` points are marked computed; return how many are."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            done = int(np.asarray(zarr.open_group(str(out), mode="r")["computed"][...]).sum())
        except (FileNotFoundError, KeyError, ValueError):
            done = 0
        if done >= minimum:
            return done
        time.sleep(0.02)
    raise AssertionError("the run made no progress")


def _assert_same(a, b):
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def _grid(**kw):
    cfg = SLOW | kw
    return Grid((parse_axis("learning_rate", cfg["eta"]), parse_axis("sigma2", cfg["sigma2"])))


def test_store_equals_the_in_memory_sweep_for_any_chunk_size(tmp_path):
    grid = Grid((parse_axis("learning_rate", "0.01:1.4:37"), parse_axis("sigma2", "log:0.1:1:23")))
    memory = engine.sweep("gd", grid, steps=300, tol=1e-3, progress=False)
    for chunk in (8, 100, 4096):
        ds = engine.sweep(
            "gd", grid, steps=300, tol=1e-3, progress=False, chunk_size=chunk, output=tmp_path / f"{chunk}.zarr"
        )
        assert ds.attrs["complete"] == 1 and bool(ds.computed.all())
        _assert_same(memory, io.read(tmp_path / f"{chunk}.zarr"))


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    killed, whole = tmp_path / "killed.zarr", tmp_path / "whole.zarr"
    proc = _start(killed)
    try:
        done = _wait_for_blocks(killed, proc, 200)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert done < _grid().size  # killed midway
    resumed = _start(killed, resume=True)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "complete 1" in out
    reference = _start(whole)
    reference.communicate(timeout=300)
    _assert_same(io.read(whole), io.read(killed))


def test_sigterm_writes_the_finished_chunks_and_marks_the_store_incomplete(tmp_path):
    out = tmp_path / "term.zarr"
    proc = _start(out)
    try:
        _wait_for_blocks(out, proc, 100)
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "complete 0 signal 15" in stdout
    ds = io.read(out)
    done = ds.computed.values
    assert 0 < done.sum() < done.size
    assert (ds.settle_step.values[~done] == -1).all() and np.isnan(ds.final_error.values[~done]).all()
    reference = engine.sweep("gd", _grid(eta="log:1e-7:1e-6:40"), steps=SLOW["steps"], tol=1e-3, progress=False)
    for name in ("settle_step", "final_error", "max_error", "contraction"):
        np.testing.assert_array_equal(ds[name].values[done], reference[name].values[done], err_msg=name)


def test_resume_refuses_a_store_written_by_another_command(tmp_path):
    out = tmp_path / "a.zarr"
    grid = _grid(eta="0.1,0.2", sigma2="1")
    engine.sweep("gd", grid, steps=10, tol=1e-3, progress=False, output=out)
    spec = dict(zarr.open_group(str(out), mode="r").attrs)["spec"]
    import json

    spec = json.loads(spec)
    assert io.check_output(out, resume=True, overwrite=False, spec=spec) is True
    with pytest.raises(InputError, match="steps is 10 there, 11 now") as err:
        io.check_output(out, resume=True, overwrite=False, spec=spec | {"steps": 11})
    assert err.value.param == "--resume"
    with pytest.raises(InputError, match="--overwrite to replace it or --resume to continue it") as err:
        io.check_output(out, resume=False, overwrite=False, spec=spec)
    assert io.check_output(out, resume=False, overwrite=True, spec=spec) is False


def _peak_rss_mib(points_per_axis: int, out: Path) -> float:
    code = textwrap.dedent(
        f"""
        import resource
        from sim.core import runtime
        runtime.configure_cpu_devices(2)
        from sim.core.grid import Grid, parse_axis
        from sim.linear.sweep import engine
        grid = Grid((parse_axis("learning_rate", "log:1e-3:1:{points_per_axis}"),
                     parse_axis("sigma2", "log:1e-2:1:{points_per_axis}")))
        engine.sweep("gd", grid, steps=8, tol=1e-3, chunk_size=32768, output={str(out)!r}, progress=False)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("XLA_FLAGS", None)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    return float(run.stdout.split()[-1])


def test_memory_of_a_streamed_sweep_does_not_grow_with_the_grid(tmp_path):
    """16× more points (2^20 vs 2^24: 0.6 GB of summaries in memory) must cost well under that in resident memory
    (same chunks: the memory in flight is the chunks', and the default grows them with the grid)."""
    small = _peak_rss_mib(1024, tmp_path / "small.zarr")
    large = _peak_rss_mib(4096, tmp_path / "large.zarr")
    assert large < small + 150, (small, large)  # in memory the large grid alone would add ~480 MiB of summaries


def test_a_failing_store_raises_and_keeps_what_was_written(tmp_path, monkeypatch):
    out = tmp_path / "full.zarr"
    grid = _grid(eta="log:1e-3:1:40", sigma2="0.1:1:50")
    original, calls = io.Results.store, []

    def store(self, block, values):
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        calls.append(block)
        original(self, block, values)

    monkeypatch.setattr(io.Results, "store", store)
    with pytest.raises(OSError, match="No space left"):
        engine.sweep("gd", grid, steps=50, tol=1e-3, chunk_size=64, progress=False, output=out)
    monkeypatch.undo()
    ds = io.read(out)
    assert int(ds.computed.sum()) == sum(b.size for b in calls) > 0


def run_two_processes(argv, env) -> list[str]:
    """Run ``argv(coordinator, rank)`` as two processes at once (a free local port as the coordinator's), wait for
    both (4 minutes at most; neither is left behind), assert both exited 0, and return their stdouts."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [
        subprocess.Popen(
            argv(f"127.0.0.1:{port}", rank), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for rank in range(2)
    ]
    try:
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    for p, (_, stderr) in zip(procs, results, strict=True):
        assert p.returncode == 0, stderr[-2000:]
    return [stdout for stdout, _ in results]


def test_two_processes_joined_by_jax_distributed_equal_one(tmp_path):
    """Two local processes of one CPU device each write their shares of the chunks into one store."""
    code = textwrap.dedent(
        """
        import sys
        from sim.core import cluster
        cluster.initialize(sys.argv[1], 2, int(sys.argv[2]))
        from sim.core.grid import Grid, parse_axis
        from sim.linear.sweep import engine
        grid = Grid((parse_axis("learning_rate", "0.01:1.4:37"), parse_axis("beta", "0.05:1:23")))
        ds = engine.sweep("momentum", grid, steps=400, tol=1e-3, spectrum=[0.05, 5], chunk_size=64,
                          output=sys.argv[3], progress=False)
        print("rank", sys.argv[2], "complete", ds.attrs["complete"], flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    out = tmp_path / "two.zarr"
    printed = run_two_processes(lambda address, rank: [sys.executable, "-c", code, address, str(rank), str(out)], env)
    assert "rank 0 complete 1" in printed[0] and "rank 1 complete 1" in printed[1]  # both read the final attrs
    grid = Grid((parse_axis("learning_rate", "0.01:1.4:37"), parse_axis("beta", "0.05:1:23")))
    one = engine.sweep("momentum", grid, steps=400, tol=1e-3, spectrum=[0.05, 5], progress=False)
    _assert_same(one, io.read(out))


def test_default_chunks_grow_with_a_stored_grid_only():
    """A store's chunk is one write per variable: large stored grids get large chunks (a function of the grid's size
    alone, so a resumed store gets the same ones anywhere); in memory 32768 points, the fastest there."""
    from sim.linear.sweep import spec

    assert [spec.default_chunk(n, store=False) for n in (1, 2**20, 2**30)] == [32768] * 3
    assert [spec.default_chunk(n, store=True) for n in (1, 2**21, 2**22, 2**24, 2**26, 2**30)] == [
        32768,
        32768,
        65536,
        2**18,
        2**20,
        2**20,
    ]
    grid = _grid(eta="log:1e-3:1:4096", sigma2="0.1:1:1024")  # 2^22 points
    checked = spec.validate("gd", grid, steps=10, tol=1e-3, store=True)
    assert checked["chunk_size"] == 65536 and spec.validate("gd", grid, steps=10, tol=1e-3)["chunk_size"] == 32768
