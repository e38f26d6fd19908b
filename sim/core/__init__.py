"""What every family of simulations shares: input validation, grids of hyperparameters, devices and provenance,
and the results files.

- ``validate``: :class:`~sim.core.validate.InputError` and the checks that raise it before anything is compiled.
- ``grid``: axes (``start:stop:num``, ``log:…``, lists) and their product, the grid of a sweep.
- ``runtime``: one JAX CPU device per core, the device mesh, provenance recorded with every result.
- ``io``: the one writer (atomic) and reader of results files.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=["grid", "io", "runtime", "validate"])
