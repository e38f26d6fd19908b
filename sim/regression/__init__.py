"""Ridge regression and early stopping: every form of ridge, GD stopped early as a regularizer, and the designs.

- ``ridge``: primal, kernel, SVD filter, fake data, fake features, MAP, Tikhonov; least squares and min-norm.
- ``early_stopping``: GD's filter factors and the ill-conditioned early-stopping experiment.
- ``designs``: random designs with a prescribed spectrum, and a loader of user data files.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=["designs", "early_stopping", "ridge"])
