"""SGD with noisy inputs: Monte Carlo over millions of trajectories beside the exact moments (and ridge).

- ``engine``: the Monte Carlo engine (chunks of trajectories on every device, streamed float64 moments).
- ``streaming``: its reduction (Pébay moments, histogram quantiles, sample paths).
- ``scalar``: one data point: the exact mean, variance and their thresholds, and the simulator and (η, σ) sweeps.
- ``vector``: m points in n dimensions: minibatch SGD whose mean converges to ridge, with its exact moments.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=["engine", "scalar", "streaming", "vector"])
