"""Symbolic derivations (sympy) of the GD and EMA-momentum closed forms in :mod:`sim.linear.theory`.

Contract: nothing here is typed in. Starting from the per-mode loss L = (y − σw)² and the course's EMA update
z ← (1 − β) z + β ∇L, w ← w − η z, sympy derives the gradient, the transition matrix R (the Jacobian of the update
in the state (a, x) = (velocity, error), the ordering of :func:`sim.linear.theory.momentum_matrix`), its trace,
determinant, characteristic polynomial, eigenvalues and discriminant, the repeated-root learning rates
(discriminant = 0 solved for η), the stability conditions (the Jury conditions of a 2×2 matrix solved for β and
η), the complex-root modulus (Vieta), Distill's convergence condition (our stability limit through the
parameterization change) and the GD factor. The tests hold every expression against :mod:`sim.linear.theory`.

References: EECS 182 Sp23 HW2 Q1–Q2 ("use the computer to symbolically find the eigenvalues"); Goh, "Why Momentum
Really Works", Distill (2017).
"""

from __future__ import annotations

import functools

import sympy as sp

ETA = sp.Symbol("eta", real=True)
BETA = sp.Symbol("beta", real=True)
SIGMA = sp.Symbol("sigma", positive=True)
"""σ (so expressions print with σ²); evaluate at σ = √σ² to compare with :mod:`sim.linear.theory`."""
ALPHA = sp.Symbol("alpha", real=True)
BETA_D = sp.Symbol("beta_D", real=True)
LAMBDA = sp.Symbol("lambda", positive=True)
"""Distill's Hessian eigenvalue λ (= 2σ²)."""
LAM = sp.Symbol("z")
"""Variable of the characteristic polynomial (z, so it cannot be confused with Distill's λ)."""

# (key, header) in the order :func:`render` prints them.
ITEMS = (
    ("gd_gradient", "Gradient of the per-mode loss L = (y - sigma*w)^2 in the error x = w - y/sigma"),
    ("gd_factor", "GD per-mode factor: x <- factor * x (derivative of the GD update w.r.t. x)"),
    ("gd_stable_lr", "GD stability limit (factor = -1 solved for eta; GD converges iff 0 < eta < it)"),
    ("update", "EMA momentum update of one mode, state (a, x): a <- (1-beta) a + beta dL, x <- x - eta a_new"),
    ("R", "Transition matrix R = Jacobian of the update w.r.t. (a, x)"),
    ("trace", "trace(R)"),
    ("det", "det(R)"),
    ("charpoly", "Characteristic polynomial det(z I - R)"),
    ("eigenvalues", "Eigenvalues (roots of the characteristic polynomial), (lambda_+, lambda_-)"),
    ("discriminant", "Discriminant of the characteristic polynomial (= trace^2 - 4 det)"),
    ("repeated_root_lrs", "Repeated-root learning rates (discriminant = 0 solved for eta), (eta_1, eta_2)"),
    ("repeated_root_eigenvalues", "The repeated eigenvalue at eta_1 and at eta_2 (= trace/2 there)"),
    ("complex_modulus", "Modulus of complex eigenvalues, eta_1 < eta < eta_2 (Vieta: |z|^2 = det)"),
    ("jury_conditions", "Jury stability conditions of a 2x2 matrix: |det| < 1, |trace| < 1 + det"),
    ("stability_beta", "Jury |det| < 1 solved for beta"),
    ("stability_eta", "Jury |trace| < 1 + det solved for eta (given beta > 0)"),
    ("stable_lr", "Stability limit eta_3 (largest stable eta)"),
    (
        "distill_condition",
        "Distill's convergence condition: 0 < eta < eta_3 with eta = alpha/(1 - beta_D), "
        "beta = 1 - beta_D, sigma^2 = lambda/2",
    ),
)


def _ordered(exprs, point):
    """Sort two expressions by their value at ``point`` (descending), to name roots ± reproducibly."""
    return tuple(sorted(exprs, key=lambda e: -complex(e.subs(point).evalf()).real))


@functools.cache
def _derive() -> dict[str, sp.Basic]:
    w, y, a, x = sp.symbols("w y a x", real=True)
    out: dict[str, sp.Basic] = {}

    # Gradient of L = (y − σw)² in the error coordinate x = w − w*, w* = y/σ.
    loss = (y - SIGMA * w) ** 2
    grad = sp.expand(sp.diff(loss, w).subs(w, x + y / SIGMA))
    out["gd_gradient"] = grad
    gd_factor = sp.diff(x - ETA * grad, x)
    out["gd_factor"] = gd_factor
    out["gd_stable_lr"] = sp.solve(sp.Eq(gd_factor, -1), ETA)[0]

    a_new = (1 - BETA) * a + BETA * grad
    x_new = x - ETA * a_new
    update = sp.Matrix([a_new, x_new])
    out["update"] = update
    r = update.jacobian([a, x])
    out["R"] = r
    tr, det = sp.expand(r.trace()), sp.expand(r.det())
    out["trace"], out["det"] = tr, det
    poly = r.charpoly(LAM)
    out["charpoly"] = poly.as_expr()
    # a point where the discriminant is positive names the roots: lambda_+ is the larger one there
    real_point = {ETA: sp.Rational(1, 100), BETA: sp.Rational(1, 2), SIGMA: 1}
    out["eigenvalues"] = sp.Tuple(*_ordered(list(sp.roots(poly)), real_point))
    disc = sp.discriminant(poly.as_expr(), LAM)
    out["discriminant"] = sp.expand(disc)

    # the repeated-root rates are increasing in the root's sign: name them by value at beta = 1/2, sigma = 1
    lrs = _ordered(sp.solve(disc, ETA), {BETA: sp.Rational(1, 2), SIGMA: 1})[::-1]
    out["repeated_root_lrs"] = sp.Tuple(*lrs)
    out["repeated_root_eigenvalues"] = sp.Tuple(*(sp.simplify(sp.radsimp(tr.subs(ETA, lr) / 2)) for lr in lrs))
    out["complex_modulus"] = sp.sqrt(poly.all_coeffs()[-1])

    jury = (sp.Abs(det) < 1, sp.Abs(tr) < 1 + det)
    out["jury_conditions"] = sp.Tuple(*jury)
    # |det| < 1 ⇔ −1 < det < 1, each linear in β
    out["stability_beta"] = sp.And(sp.solve(det < 1, BETA), sp.solve(det > -1, BETA))
    # given β > 0 (from the first condition), solve −(1 + det) < tr < 1 + det for η
    beta_pos = sp.Symbol("beta", positive=True)
    eta_conds = [sp.solve(c.subs(BETA, beta_pos), ETA) for c in (tr < 1 + det, -tr < 1 + det)]
    out["stability_eta"] = sp.And(*(sp.simplify(c) for c in eta_conds)).subs(beta_pos, BETA)
    stable_lr = sp.solve(sp.Eq(-tr, 1 + det), ETA)[0]
    out["stable_lr"] = sp.factor(stable_lr)

    # Distill: eta = alpha / beta, beta = 1 − beta_D, sigma² = lambda/2; the stability range 0 < eta < eta_3 maps
    # to a range of alpha whose ends, times lambda, are Distill's bounds.
    to_distill = {ETA: ALPHA / (1 - BETA_D), BETA: 1 - BETA_D, SIGMA: sp.sqrt(LAMBDA / 2)}
    eta_d = ETA.subs(to_distill)
    alpha_hi = sp.solve(sp.Eq(eta_d, stable_lr.subs(to_distill)), ALPHA)[0]
    alpha_lo = sp.solve(sp.Eq(eta_d, 0), ALPHA)[0]
    out["distill_condition"] = sp.And(
        sp.simplify(alpha_lo * LAMBDA) < ALPHA * LAMBDA, ALPHA * LAMBDA < sp.factor(sp.simplify(alpha_hi * LAMBDA))
    )
    return out


def momentum_derivation() -> dict[str, sp.Basic]:
    """The derived expressions, keyed as in :data:`ITEMS` (cached; a fresh dict each call).

    Symbols: :data:`ETA` η, :data:`BETA` β, :data:`SIGMA` σ (expressions contain σ²), the characteristic
    variable :data:`LAM`, and Distill's :data:`ALPHA`, :data:`BETA_D`, :data:`LAMBDA`.

    Returns:
      dict from the keys of :data:`ITEMS` to sympy expressions (matrices, tuples and relations included).

    References:
      EECS 182 Sp23 HW2 Q2(c)–(f); Sp25 HW1 Q1 (GD factor).
    """
    return dict(_derive())


def render(fmt: str = "text") -> str:
    """All derivations as a readable report: a header line per item, then the expression.

    Args:
      fmt: ``"text"`` (sympy's unicode pretty printer) or ``"latex"`` (one ``\\[ ... \\]`` display per item,
        headers as ``%`` comments, so the output pastes into a LaTeX document).

    Returns:
      The report as one string.
    """
    if fmt not in ("text", "latex"):
        raise ValueError(f"render: fmt must be 'text' or 'latex', got {fmt!r}")
    exprs = _derive()
    lines = ["Momentum (EMA form) and GD on one mode, derived with sympy from L = (y - sigma*w)^2 and the updates."]
    lines.append("Symbols: eta learning rate, beta EMA weight of the new gradient, sigma^2 squared singular value,")
    lines.append("state (a, x) = (velocity, error); Distill: alpha, beta_D, lambda = 2 sigma^2.")
    for i, (key, header) in enumerate(ITEMS, start=1):
        expr = exprs[key]
        if fmt == "text":
            lines += ["", f"[{i}] {header}:", sp.pretty(expr, use_unicode=True)]
        else:
            lines += ["", f"% [{i}] {header}", f"\\[ {sp.latex(expr)} \\]"]
    return "\n".join(lines) + "\n"
