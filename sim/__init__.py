"""sim: JAX-accelerated simulations of the optimization dynamics taught in deep learning theory courses.

Every simulator has its closed form beside it (``sim.linear.theory``), and the tests hold one against the other.

Glossary (one name per concept; conversions are explicit functions):

=================  ======================================================================================
name               meaning
=================  ======================================================================================
``learning_rate``  η, the step size. Loss for GD and momentum: L(w) = ‖y − Xw‖² (no ½), so the per-mode GD
                   factor is 1 − 2ησ² and GD is stable iff 0 < η < 1/σ_max².
``sigma2``         σ², a squared singular value of X (one "mode" of the problem).
``spectrum``       the σ_i² of ONE problem with several modes.
``target``         coordinates of the optimum w* in the right singular basis (default: all equal).
``beta``           β ∈ (0, 1], EMA momentum weight of the NEW gradient (the course's form):
                   z ← (1 − β) z + β ∇L, w ← w − η z. β = 1 is plain GD.
``momentum``       m ∈ [0, 1), heavy-ball / optax / PyTorch weight of the OLD velocity: v ← m v + ∇L,
                   w ← w − lr v. Same iterates as EMA with lr = η β, m = 1 − β (``ema_to_heavy_ball``).
Distill            "Why Momentum Really Works" uses β_D = 1 − β, α = η β and λ_i = 2σ_i² (f = ½wᵀAw).
``tol``            ε, a relative error ‖w_t − w*‖ / ‖w*‖; runs start at w₀ = 0 (relative error 1).
``sigma``          σ, the standard deviation of the Gaussian input noise in noisy-input SGD
                   (``sim.noisy.scalar``): x̃ = x + N(0, σ²), per-sample loss ½(x̃ᵀw − y)²
                   (with ½), so the mean factor is 1 − η(x² + σ²).
``lam``            λ, the ridge weight in ‖y − Xw‖² + λ‖w‖² (``sim.regression.ridge``). Noisy-input SGD on m points is
                   ridge with λ = mσ² in this form (λ = σ² for the (1/m)-normalized objective).
early stopping     ``early_stopping`` (``sim.regression.early_stopping``) uses J(w) = ½‖y − Fw‖² (with ½): GD's factor
                   is 1 − (1 − ησ²)ᵗ, the same iteration as the no-½ convention at half the learning rate.
MSE                networks (``sim.networks.training``) train on the mean squared error (PyTorch's MSELoss, no ½);
                   gradient norms are Frobenius norms of each layer's weight gradient.
``Φ``              the n × P Jacobian features ∂f(x_j)/∂θ (``sim.networks.features``); empirical NTK Θ = ΦΦᵀ.
=================  ======================================================================================
"""

__version__ = "0.1.0"

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submodules=["cli", "core", "explore", "figures", "linear", "networks", "noisy", "regression"],
    submod_attrs={
        "core.grid": ["Axis", "Grid", "parse_axis"],
        "core.validate": ["InputError"],
        "linear.dynamics": ["Dynamics", "State", "gd", "heavy_ball", "momentum", "nesterov"],
        "linear.problems": ["Problem", "from_matrix", "from_spectrum"],
    },
)
