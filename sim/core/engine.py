"""The run engine: every grid computation runs its chunks here, on every local device, safe to interrupt.

Contract: :func:`run` takes a list of chunks (whatever a computation cuts its work into: blocks of grid points,
blocks of trajectories, configurations), a ``launch(chunk, device)`` that dispatches one chunk's work to a device and
returns a handle, a ``collect(chunk, handle)`` that waits for it and returns its results, and a ``store(chunk,
results)`` that keeps them (in memory, or written to disk at once). It runs one host thread per device, each taking
chunks from a shared queue and launching its next chunk before collecting the last one, so an asynchronous device (a
GPU) always has one queued while a CPU device runs the compiled kernel on its own thread. It shows progress, and
handles SIGINT and SIGTERM alike: the first signal stops launching, the chunks in flight finish and are stored, and
:func:`run` returns an :class:`Outcome` saying which signal stopped it (the ``sim`` command then exits 130 or 143); a
second signal while stopping exits the process at once (status 128 + signal number), keeping what is on disk: it
never hangs and never aborts with a traceback. An exception in any of the three functions stops the run and is
re-raised in the caller, after the other devices finish the chunks they launched.

:func:`blocks` cuts a C-ordered grid into chunks that are rectangular blocks of contiguous flat indices, so each chunk
is one chunk of a chunked array on disk (whole-chunk writes need no locks) and a contiguous range in memory.
"""

from __future__ import annotations

import dataclasses
import math
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from tqdm.auto import tqdm

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclasses.dataclass(frozen=True)
class Block:
    """A chunk of a C-ordered grid: flat indices ``[start, stop)``, which are the block ``region`` of the grid.

    Attributes:
      index: the block's position in the list :func:`blocks` returns.
      start, stop: its flat index range.
      region: one slice per grid dimension.
    """

    index: int
    start: int
    stop: int
    region: tuple[slice, ...]

    @property
    def size(self) -> int:
        return self.stop - self.start


def block_shape(shape: Sequence[int], chunk_size: int) -> tuple[int, ...]:
    """The shape of the blocks :func:`blocks` cuts ``shape`` into: whole trailing dimensions, as many as fit in
    ``chunk_size`` points, then a run of the next dimension, then 1 along the leading ones."""
    shape = tuple(int(n) for n in shape)
    out = [1] * len(shape)
    trailing = 1
    for d in reversed(range(len(shape))):
        if trailing * shape[d] <= chunk_size:
            out[d] = shape[d]
            trailing *= shape[d]
            continue
        out[d] = max(1, chunk_size // trailing)
        break
    return tuple(out)


def blocks(shape: Sequence[int], chunk_size: int) -> list[Block]:
    """Cut a grid of ``shape`` (C order) into blocks of at most ``chunk_size`` points whose flat indices are
    contiguous (:func:`block_shape`; the last block along the cut dimension may be shorter)."""
    shape = tuple(int(n) for n in shape)
    bshape = block_shape(shape, chunk_size)
    counts = [math.ceil(n / b) for n, b in zip(shape, bshape, strict=True)]
    strides = [math.prod(shape[d + 1 :]) for d in range(len(shape))]
    out = []
    for k in range(math.prod(counts)):
        pos, rem = [], k
        for c in reversed(counts):
            pos.append(rem % c)
            rem //= c
        pos.reverse()
        region = tuple(slice(p * b, min((p + 1) * b, n)) for p, b, n in zip(pos, bshape, shape, strict=True))
        start = sum(r.start * s for r, s in zip(region, strides, strict=True))
        size = math.prod(r.stop - r.start for r in region)
        out.append(Block(k, start, start + size, region))
    return out


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a run ended: ``complete`` when every chunk was stored; otherwise the ``signal`` that stopped it."""

    complete: bool
    signal: int | None = None

    @property
    def exit_code(self) -> int:
        """0 when complete, 128 + the signal number when a signal stopped it (130 for SIGINT, 143 for SIGTERM)."""
        return 0 if self.complete or self.signal is None else 128 + self.signal


def run(
    chunks: Sequence[Any],
    launch: Callable[[Any, Any], Any],
    collect: Callable[[Any, Any], Any],
    store: Callable[[Any, Any], None],
    *,
    devices: Sequence[Any],
    size: Callable[[Any], int] = lambda chunk: 1,
    total: int | None = None,
    done: int = 0,
    progress: bool = True,
    desc: str = "",
    unit: str = "it",
) -> Outcome:
    """Run every chunk on ``devices`` (module docstring).

    Args:
      chunks: the chunks still to compute, in the order to start them.
      launch: ``launch(chunk, device) -> handle``, called on the device's host thread.
      collect: ``collect(chunk, handle) -> results``, called on the same thread after its next launch.
      store: ``store(chunk, results)``, called on the same thread; chunks finish in any order.
      devices: one host thread each.
      size: a chunk's work in ``unit`` (progress); ``total`` the whole computation's and ``done`` what was finished
        before (a resumed run).
      progress: show a tqdm bar; desc, unit: its label and unit.

    Returns:
      The :class:`Outcome`.
    """
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for chunk in chunks:
        todo.put(chunk)
    finished: queue.SimpleQueue = queue.SimpleQueue()  # the size of each stored chunk, or a worker's exception
    stopping = threading.Event()
    stop_signal: list[int] = []
    context = _thread_context()

    def work(device):
        try:
            with context():
                pending = None
                while True:
                    launched = None
                    if not stopping.is_set():
                        try:
                            chunk = todo.get_nowait()
                        except queue.Empty:
                            pass
                        else:
                            launched = (chunk, launch(chunk, device))
                    if pending is not None:
                        store(pending[0], collect(*pending))
                        finished.put(size(pending[0]))
                    if launched is None:
                        return
                    pending = launched
        except BaseException as err:  # handed to the main thread, which re-raises it
            stopping.set()
            finished.put(err)

    def on_signal(signum, frame):
        if stop_signal:  # a second signal: stop at once, keeping what is on disk
            os.write(2, f"\n{signal.Signals(signum).name} again: stopping now\n".encode())
            os._exit(128 + signum)
        stop_signal.append(signum)
        stopping.set()
        os.write(2, f"\n{signal.Signals(signum).name}: finishing the chunks in flight (again to stop now)\n".encode())

    previous = _install(on_signal)
    bar = tqdm(total=total, initial=done, unit=unit, unit_scale=True, disable=not progress, desc=desc)
    workers = [threading.Thread(target=work, args=(d,), daemon=True, name=f"sim-{d}") for d in devices]
    error = None
    try:
        for worker in workers:
            worker.start()
        remaining = len(chunks)
        while remaining and any(w.is_alive() for w in workers) or not finished.empty():
            try:
                item = finished.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(item, BaseException):
                error = error or item
                continue
            remaining -= 1
            bar.update(item)
        for worker in workers:  # each has finished the chunks it launched
            worker.join()
        while not finished.empty():
            item = finished.get()
            if isinstance(item, BaseException):
                error = error or item
            else:
                remaining -= 1
                bar.update(item)
    finally:
        bar.close()
        _restore(previous)
    if error is not None:
        raise error
    if remaining and stop_signal:
        return Outcome(False, stop_signal[0])
    return Outcome(remaining == 0)


def _thread_context():
    """What a worker thread must inherit from the caller's: JAX's x64 mode (thread-local) when JAX is in use."""
    if "jax" not in sys.modules:
        import contextlib

        return contextlib.nullcontext
    import jax

    x64 = bool(jax.config.jax_enable_x64)
    return lambda: jax.enable_x64(x64)


def _install(handler) -> dict | None:
    """Install ``handler`` for SIGINT and SIGTERM (main thread only); return the handlers it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return {sig: signal.signal(sig, handler) for sig in SIGNALS}


def _restore(previous: dict | None) -> None:
    for sig, handler in (previous or {}).items():
        signal.signal(sig, handler)
