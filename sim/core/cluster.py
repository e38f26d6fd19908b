"""Many processes, on one machine or a cluster, through ``jax.distributed``.

Contract: :func:`initialize` joins this process to a group of processes (the coordinator's address, their number
and this one's index; or, with ``auto``, what ``jax.distributed.initialize()`` detects under SLURM or Open MPI) before
any computation, and selects the gloo collectives on CPUs so the group can meet at barriers. Afterwards
``jax.process_count()`` and ``jax.process_index()`` say who is who, and each process computes on its
``jax.local_devices()`` only. :func:`barrier` waits for every process. The engines split their chunks between the
processes (process ``i`` takes every ``n``-th chunk from the ``i``-th), process 0 writes the results store's template
before the first barrier and its final attrs after the last, and every process writes its own chunks into the same
store (whole-chunk writes need no locks).
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
