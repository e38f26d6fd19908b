"""Many processes, on one machine or a cluster, through ``jax.distributed``.

Contract: :func:`initialize` joins this process to a group of processes (the coordinator's address, their number
and this one's index; or, with ``auto``, what ``jax.distributed.initialize()`` detects under SLURM or Open MPI) before
any computation, and selects the gloo collectives on CPUs so the group can meet at barriers. Afterwards
``jax.process_count()`` and ``jax.process_index()`` say who is who, and each process computes on its
``jax.local_devices()`` only. :func:`barrier` waits for every process. The engines that write a store (``sim
sweep``'s and ``sim mc sweep``'s) share it through :func:`open_results` (process 0 writes the store's template before
the first barrier), :func:`share` (process ``i`` takes every ``n``-th block from the ``i``-th) and
:func:`finish_results` (process 0 writes the final attrs after the last barrier); every process writes its own blocks
into the same store (whole-chunk writes need no locks).
"""

from __future__ import annotations

from sim.core.validate import InputError


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
) -> None:
    """Join the process group (module docstring). Call before anything runs on a device.

    Args:
      coordinator: ``HOST:PORT`` of process 0's coordinator service.
      num_processes: how many processes take part (≥ 1).
      process_id: this process's index in [0, num_processes).
      auto: let ``jax.distributed.initialize()`` detect all three from the cluster's environment instead.
    """
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if auto and any(given):
        raise InputError("--distributed", "detects the cluster itself: give it without --coordinator and friends")
    if not auto and not all(given):
        missing = [f for f, g in zip(("--coordinator", "--num-processes", "--process-id"), given, strict=True) if not g]
        raise InputError(missing[0], "several processes need --coordinator, --num-processes and --process-id")
    if not auto:
        host, _, port = str(coordinator).rpartition(":")
        if not host or not port.isdigit():
            raise InputError("--coordinator", f"must be HOST:PORT, got {coordinator!r}")
        if int(num_processes) < 1:
            raise InputError("--num-processes", f"must be >= 1, got {num_processes}")
        if not 0 <= int(process_id) < int(num_processes):
            raise InputError("--process-id", f"must be in [0, {num_processes}), got {process_id}")
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if auto:
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(
            coordinator_address=coordinator, num_processes=int(num_processes), process_id=int(process_id)
        )


def barrier(name: str) -> None:
    """Wait until every process of the group reaches the barrier ``name`` (nothing to wait for in one process)."""
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def check_output(path) -> None:
    """Refuse (``InputError`` naming ``output``) several processes without a store to write into."""
    import jax

    if jax.process_count() > 1 and path is None:
        raise InputError("output", "several processes need a .zarr store to write into")


def open_results(path, layout: dict, *, resume: bool, template=None):
    """The run's :class:`sim.core.io.Results` (``layout``: its keyword arguments but ``resume``), shared by the
    processes: process 0 creates the store, or opens it to resume, and on creation calls ``template(results)`` to add
    what else the store holds; then every process meets at a barrier and the others open the store. In one process
    this is just the ``Results`` (in memory when ``path`` is None)."""
    import jax

    from sim.core import io

    results = None
    if jax.process_index() == 0:
        results = io.Results(path, **layout, resume=resume)
        if template is not None and not resume:
            template(results)
    barrier("sim-results-template")
    return results or io.Results(path, **layout, resume=True)


def share(blocks, results) -> list:
    """This process's share of ``blocks`` (:class:`sim.core.engine.Block`) that ``results`` does not hold yet: process
    ``i`` of ``n`` takes every ``n``-th block by index from the ``i``-th, the same share whatever is already done."""
    import jax

    done = {b.index for b in results.done(blocks)}
    n, i = jax.process_count(), jax.process_index()
    return [b for b in blocks if b.index % n == i and b.index not in done]


def finish_results(results, blocks, outcome) -> bool:
    """Once this process's share has run: wait for every process, then return whether the whole run is complete (in
    one process: whether its run was; in several: whether every block is done), recorded by process 0 before a last
    barrier."""
    import jax

    barrier("sim-results-done")
    complete = outcome.complete if jax.process_count() == 1 else len(results.done(blocks)) == len(blocks)
    if jax.process_index() == 0:
        results.finish(complete=int(complete), stopped_by_signal=outcome.signal or 0)
    barrier("sim-results-final")  # every process reads the final attrs afterwards
    return complete
