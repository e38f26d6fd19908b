"""The per-point summaries of a sweep: their names (in the kernels' output order) and descriptions.

Both kernels (:mod:`sim.linear.sweep.xla` and the compiled :mod:`sim.linear.sweep.native`) return these fields in this
order, and the engine writes each as a variable of the results dataset with its description.

Every value is measured on the run or computed from theory, and finite unless the method's transition matrix itself
overflows the dtype (entries beyond ~3e38 in float32). For a diverged point the run is measured up to its last state
within the divergence bound: the step s before the state first left the bound in the block at whose end divergence was
detected. Values below the dtype's smallest normal number (1.2e-38 in float32, 2.2e-308 in float64) are 0, as the
arithmetic flushes them.
"""

FIELDS = {
    "settle_step": "first step t such that the relative error stays below tol for every step from t to the end "
    "(-1: not reached within the run, or diverged)",
    "final_error": "relative error ||w_T - w*|| / ||w*|| after the last step T; for diverged points, that of the last "
    "state within the divergence bound (step s, see contraction). 0 where it is below the dtype's smallest normal "
    "number (1.2e-38 in float32, 2.2e-308 in float64)",
    "max_error": "largest relative error seen (transient growth; 1 at the start); for diverged points, up to the last "
    "state within the divergence bound (step s, see contraction)",
    "diverged": "measured: the state norm left the divergence bound (or became non-finite) at a block end within the "
    "run. An unstable point (see unstable) may not diverge within T steps: slow growth (rate near 1), rate exactly 1, "
    "or a start with no component along its growing modes",
    "unstable": "theory: rate >= 1, the largest spectral radius of the point's per-mode transition matrices is at "
    "least 1 (the error does not go to 0 from a generic start; also where the rate is NaN, its matrix overflowed), "
    "whether or not the run diverged",
    "diverge_step": "block end at which divergence was detected (-1: did not diverge)",
    "rate": "theoretical asymptotic rate: the largest spectral radius of the per-mode transition matrices",
    "contraction": "measured per-step contraction (||u_t|| / ||u_0||)^(1/t) of the state (error and velocity) over the "
    "t = simulated_steps steps; for diverged points, measured up to their last state within the divergence bound, "
    "t = s (or t = 1, from the first state, when step 1 already left the bound). 0 only where the state is exactly 0 "
    "(states below the dtype's range are measured on a run rescaled by powers of two)",
    "simulated_steps": "steps actually simulated before the point was provably settled, diverged or done",
}
