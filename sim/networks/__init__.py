"""Small ReLU networks: training, exact Jacobian features (the local linearization), elbows and initialization.

- ``mlp``: MLPs and their initializations as pure functions.
- ``data``: the course's 1-D targets and training sets.
- ``training``: optax training inside one ``lax.scan`` (SGD, heavy ball, Adam), divergence frozen and flagged.
- ``features``: the Jacobian features Φ and their spectral views (SVD, principal features, NTK).
- ``elbows``: ReLU elbows and the one-step elbow update.
- ``course``: the course's local-linearization experiments (Parts I and II).
- ``init_scale``: gradient norms against the initialization scale, with the mean-field gain.
- ``linearized``: a network trained beside its linearization.
- ``images``: CIFAR-10 python batches and scikit-learn's digits, the course's preprocessing.
- ``deep``: fully connected ReLU classifiers (softmax cross-entropy), inits, the course's optimizers, grid training.
- ``trainability``: the initialization, optimizer and depth studies over seeds and grids.
"""

import lazy_loader as _lazy

INITS = ("uniform", "he_uniform", "he_normal", "pytorch", "elbows")  # sim.networks.mlp.init_mlp's initializations

__getattr__, __dir__, _lazy_all = _lazy.attach(
    __name__,
    submodules=[
        "course",
        "data",
        "deep",
        "elbows",
        "features",
        "images",
        "init_scale",
        "linearized",
        "mlp",
        "trainability",
        "training",
    ],
)
__all__ = ["INITS", *_lazy_all]
