"""Sweeps of GD and momentum over grids of hyperparameters: per-point summaries of millions of runs.

- ``engine``: :func:`sweep` (chunks on every device, progress, interruption, the results dataset).
- ``spec``: the methods, their hyperparameters and limits, and the validation of a sweep's arguments (no JAX).
- ``fields``: the summaries each point gets, with their descriptions.
- ``xla``: the kernel as an XLA ``while_loop`` (GPUs, more than four modes, no compiler).
- ``native``: the same kernel compiled from ``kernel.cc`` for this CPU and called through XLA's FFI.

To add an optimizer: its ``(init, step)`` pair goes in :mod:`sim.linear.dynamics`, its transition matrix follows from
the step (:func:`sim.linear.theory.transition_matrix`), ``spec.PARAMETERS`` names its hyperparameters and
``engine.METHODS`` its dynamics.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submodules=["engine", "fields", "native", "spec", "xla"],
    submod_attrs={"engine": ["DEFAULT_BLOCK", "DEFAULT_BOUND", "DEFAULT_CHUNK", "METHODS", "sweep"]},
)
