"""Gradient descent and momentum on least squares: the dynamics, their closed forms, and sweeps over huge grids.

- ``dynamics``: GD, EMA momentum, heavy ball and Nesterov as pure ``(init, step)`` pairs, and the conversions between
  the momentum conventions.
- ``problems``: a least-squares problem as its spectrum (or a matrix via its SVD); the course's worked example.
- ``theory``: closed forms (rates, stability, optimal hyperparameters, regimes, transition matrices), in float64.
- ``symbolic``: the same derivations in sympy.
- ``report``: ``sim theory``, closed forms printed beside simulated step counts.
- ``sweep``: the engine that runs a method at every point of a grid (``sweep.sweep``), with its XLA and compiled
  CPU kernels.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__, submodules=["dynamics", "problems", "report", "sweep", "symbolic", "theory"]
)
