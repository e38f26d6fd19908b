"""sim: JAX-accelerated simulations of the optimization dynamics taught in deep learning theory courses.

Every simulator has its closed form beside it (``sim.theory``), and the tests hold one against the other.

Glossary (one name per concept; conversions are explicit functions):

=================  ======================================================================================
name               meaning
=================  ======================================================================================
``learning_rate``  η, the step size. Loss for GD and momentum: L(w) = ‖y − Xw‖² (no ½), so the per-mode GD
                   factor is 1 − 2ησ² and GD is stable iff 0 < η < 1/σ_max².
``sigma2``         σ², a squared singular value of X (one "mode" of the problem).
``spectrum``       the σ_i² of ONE problem with several modes.
``target``         coordinates of the optimum w* in the right singular basis (default: all equal).
``beta``           β ∈ (0, 1], EMA momentum weight of the NEW gradient (seeds' form):
                   z ← (1 − β) z + β ∇L, w ← w − η z. β = 1 is plain GD.
``momentum``       m ∈ [0, 1), heavy-ball / optax / PyTorch weight of the OLD velocity: v ← m v + ∇L,
                   w ← w − lr v. Same iterates as EMA with lr = η β, m = 1 − β (``ema_to_heavy_ball``).
Distill            "Why Momentum Really Works" uses β_D = 1 − β, α = η β and λ_i = 2σ_i² (f = ½wᵀAw).
``tol``            ε, a relative error ‖w_t − w*‖ / ‖w*‖; runs start at w₀ = 0 (relative error 1).
=================  ======================================================================================
"""

__version__ = "0.1.0"

from sim import dynamics, grid, kernel, problems, runtime, sweep, theory, validate
from sim.dynamics import Dynamics, State, gd, heavy_ball, momentum, nesterov
from sim.grid import Axis, Grid, parse_axis
from sim.problems import Problem, from_matrix, from_spectrum
from sim.validate import InputError

__all__ = [
    "Axis",
    "Dynamics",
    "Grid",
    "InputError",
    "Problem",
    "State",
    "dynamics",
    "from_matrix",
    "from_spectrum",
    "gd",
    "grid",
    "heavy_ball",
    "kernel",
    "momentum",
    "nesterov",
    "parse_axis",
    "problems",
    "runtime",
    "sweep",
    "theory",
    "validate",
]
