"""The project's figures: one module per topic computes, draws and registers its figures; ``registry`` renders them.

- ``base``: the :class:`~sim.figures.base.Figure` record, the fixed style, byte-stable saving, drawing helpers.
- ``registry``: every figure by name (``FIGURES``) and :func:`~sim.figures.registry.render`.
- ``gd``: GD's rate against η and its steps over (η, σ²).
- ``momentum``: the eigenvalues of momentum's transition matrix and its phase diagrams.
- ``momentum_steps``: momentum's steps to tolerance over (η, β) and against η beside GD.
- ``momentum_notebook``: the course's momentum notebook.
- ``regression``: ridge shrinkage and early stopping.
- ``noisy``: noisy-input SGD (scalar runs, the (η, σ) boundaries, the vector problem and ridge).
- ``networks``: local-linearization features, initialization scale, the linearized model.
- ``trainability``: deep-net initialization, optimizers and depth success maps over seeds.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submodules=[
        "base",
        "gd",
        "momentum",
        "momentum_notebook",
        "momentum_steps",
        "networks",
        "noisy",
        "registry",
        "regression",
        "trainability",
    ],
    submod_attrs={"registry": ["FIGURES", "render"]},
)
