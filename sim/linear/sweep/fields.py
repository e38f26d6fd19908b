"""The per-point summaries of a sweep: their names (in the kernels' output order) and descriptions.

Both kernels (:mod:`sim.linear.sweep.xla` and the compiled :mod:`sim.linear.sweep.native`) return these fields in this
order, and the engine writes each as a variable of the results dataset with its description.
"""

FIELDS = {
    "settle_step": "first step t such that the relative error stays below tol for every step from t to the end "
    "(-1: not reached within the run)",
    "final_error": "relative error ||w_T - w*|| / ||w*|| after the last step (0 where it is below the dtype's range)",
    "max_error": "largest relative error seen (transient growth; 1 at the start)",
    "diverged": "the state norm left the divergence bound or became non-finite",
    "diverge_step": "block end at which divergence was detected (-1: did not diverge)",
    "rate": "theoretical asymptotic rate: the largest spectral radius of the per-mode transition matrices",
    "contraction": "measured per-step contraction (||u_t|| / ||u_0||)^(1/t) of the state over the simulated steps "
    "(for diverged points, the growth bound^(1/diverge_step))",
    "simulated_steps": "steps actually simulated before the point was provably settled, diverged or done",
}
