"""The run engine: blocks cover a grid exactly once, every chunk is stored once, errors and signals stop it cleanly."""

import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from sim.core import engine


@pytest.mark.parametrize(
    ("shape", "chunk"),
    [((7,), 3), ((5, 4), 8), ((5, 4), 3), ((3, 5, 7), 11), ((3, 5, 7), 200), ((2, 3, 4, 5), 1), ((1000,), 4096)],
)
def test_blocks_cover_the_grid_once_with_contiguous_flat_ranges(shape, chunk):
    seen = np.zeros(shape, int)
    flat = np.arange(math.prod(shape)).reshape(shape)
    blocks = engine.blocks(shape, chunk)
    for k, b in enumerate(blocks):
        assert b.index == k and 0 < b.size <= chunk
        seen[b.region] += 1
        np.testing.assert_array_equal(flat[b.region].ravel(), np.arange(b.start, b.stop))  # contiguous, C order
    assert (seen == 1).all()
    bshape = engine.block_shape(shape, chunk)
    assert all(tuple(r.stop - r.start for r in b.region) == bshape for b in blocks if b.size == math.prod(bshape))


def _fake_run(n_chunks, *, fail_at=None, delay=0.0, devices=("a", "b", "c")):
    stored, lock = {}, threading.Lock()

    def launch(chunk, device):
        time.sleep(delay)
        return (chunk, device)

    def collect(chunk, handle):
        if chunk == fail_at:
            raise RuntimeError(f"chunk {chunk} failed")
        return handle[0] * 10

    def store(chunk, value):
        with lock:
            assert chunk not in stored
            stored[chunk] = value

    outcome = engine.run(list(range(n_chunks)), launch, collect, store, devices=devices, progress=False)
    return outcome, stored


def test_every_chunk_is_stored_once_on_some_device():
    outcome, stored = _fake_run(50)
    assert outcome.complete and outcome.exit_code == 0
    assert stored == {k: 10 * k for k in range(50)}


def test_an_error_in_a_chunk_is_raised_in_the_caller_after_the_others_finish():
    with pytest.raises(RuntimeError, match="chunk 7 failed"):
        _fake_run(50, fail_at=7)


def test_sigterm_keeps_the_finished_chunks_and_says_which_signal():
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        outcome, stored = _fake_run(200, delay=0.02, devices=("a", "b"))
    finally:
        timer.cancel()
    assert not outcome.complete and outcome.signal == signal.SIGTERM and outcome.exit_code == 143
    assert 0 < len(stored) < 200
    assert all(stored[k] == 10 * k for k in stored)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the previous handler is back


def test_a_second_signal_stops_the_process_at_once_without_a_traceback():
    """Chunks take 30 s each: after one SIGINT the run would wait for the chunks in flight; the second ends it."""
    code = textwrap.dedent(
        """
        import time, sys
        from sim.core import engine
        print("ready", flush=True)
        engine.run(list(range(4)), lambda c, d: time.sleep(30), lambda c, h: None, lambda c, r: None,
                   devices=("a", "b"), progress=False)
        print("returned")
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130
    assert "returned" not in out and "Traceback" not in err
    assert "SIGINT again: stopping now" in err
