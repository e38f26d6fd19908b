"""The explorer page in headless Chromium (Debian's ``chromium`` driven by Playwright, loaded from ``file://``).

Part 1 evaluates the page's own JavaScript (``window.SimExplorer``) at random points and holds every closed form it
re-implements against ``sim.linear.theory`` / ``sim.linear.dynamics`` in float64, and its simulator against
``sim.linear.dynamics.run`` and the sweep engine's settle step. Part 2 uses the page as a reader would: clicks and
drags on the map, presets, the spectrum field, and reads the displayed numbers back against the Python closed forms;
every page must load with no console error and no request but its own file. Part 3 takes the screenshot.

Without Playwright or a Chromium these tests skip, saying why; the page's Python side is tested in test_page.py.
"""

from __future__ import annotations

import functools
import math
import re
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sim import explore
from sim.core.grid import Axis, Grid
from sim.linear import dynamics, theory
from sim.linear.sweep import engine as sweep

EPS = np.finfo(np.float64).eps
FEW_ULPS = 1e-14
"""Relative tolerance for closed forms of a handful of operations (+ − × ÷ √, each correctly rounded to ½ ulp in
both IEEE-754 float64 implementations): their results agree to a few ulps (~1e-15) even where one side fuses a
multiply-add; 1e-14 is about 45 ulps, room for that and no room for a wrong formula (which errs by far more)."""

DISPLAYED = 1e-5
"""Relative tolerance for numbers read off the page: it prints 6 significant digits (rounding error ≤ 5e-6)."""

VIEWPORT = {"width": 1280, "height": 900}


# --------------------------------------------------------------------------------------------------------------
# Fixtures: one browser per module (closed at teardown), a fresh page per test that must stay clean


@pytest.fixture(scope="module")
def browser():
    reason = explore.browser_unavailable()
    if reason is not None:
        pytest.skip(f"browser tests need Playwright and Chromium: {reason}")
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(
            executable_path=explore.find_chromium(), headless=True, args=list(explore.CHROMIUM_ARGS)
        )
    except PlaywrightError as err:
        pw.stop()
        pytest.skip(f"browser tests need a Chromium that starts: {' '.join(str(err).split())[:200]}")
    yield chromium
    chromium.close()
    pw.stop()


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    return explore.write_page(tmp_path_factory.mktemp("explore") / "explorer.html")


class Loaded:
    """A loaded page and what it logged: console errors, uncaught exceptions and every request it made."""

    def __init__(self, page, url):
        self.page, self.url, self.errors, self.requests = page, url, [], []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))
        page.goto(url)
        page.wait_for_function("document.documentElement.dataset.ready === '1'", timeout=20_000)

    def js(self, name, rows):
        """Call ``SimExplorer[name](*row)`` for every row in one round trip."""
        return self.page.evaluate("([name, rows]) => rows.map((a) => SimExplorer[name](...a))", [name, rows])

    def text(self, selector) -> str:
        return self.page.inner_text(selector).strip()

    def num(self, selector) -> float:
        return _number(self.text(selector))

    def value(self, selector) -> float:
        """The full-precision value a readout keeps in ``data-value``."""
        return float(self.page.get_attribute(selector, "data-value"))


@pytest.fixture
def loaded(browser, page_file):
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    try:
        page = Loaded(context.new_page(), page_file.as_uri())
        yield page
        assert page.errors == [], f"console errors: {page.errors}"
        assert set(page.requests) == {page.url}, f"requests beyond the page itself: {page.requests}"
    finally:
        context.close()


def _number(text: str) -> float:
    text = text.strip().replace("\u2212", "-")
    return math.inf if text == "\u221e" else float(text)


def _complex(text: str) -> complex:
    m = re.fullmatch(r"(\S+)(?: ([+-]) (\S+)i)?", text.strip())
    assert m, text
    re_, sign, im = m.groups()
    return complex(_number(re_), 0.0 if im is None else (1 if sign == "+" else -1) * _number(im))


@functools.cache
def _jit(fn):
    return jax.jit(fn)


def _f64(fn, *args):
    """A ``sim.linear.theory`` function (jit-compiled once per shape) at float64 arguments, as numpy."""
    with jax.enable_x64(True):
        return np.asarray(_jit(fn)(*(np.asarray(a, dtype=np.float64) for a in args)))


def _mode_rate(eta, beta, sigma2):
    """ρ(R) of one mode per point."""
    return theory.momentum_rate(eta, beta, sigma2[..., None])


def _thresholds(beta, sigma2):
    return jnp.stack(theory.momentum_thresholds(beta, sigma2))


def _repeated_roots(beta, sigma2):
    return jnp.stack(theory.momentum_repeated_root_lrs(beta, sigma2))


def _best_interval(beta, spectrum):
    return jnp.stack(theory.momentum_best_interval(beta, spectrum))


def _random_points(n, seed):
    """(η, β, σ²) as in tests/linear/test_theory.py: β ∈ [0.02, 1), σ² ∈ [0.05, 5), η up to 1.2× the stable limit."""
    rng = np.random.default_rng(seed)
    beta = rng.uniform(0.02, 1, n)
    s = rng.uniform(0.05, 5, n)
    eta = rng.uniform(0, 1.2, n) * (2 - beta) / (beta * s)
    return eta, beta, s


def _root_tol(tr, det, disc):
    """Tolerance on a root of μ² − tr μ + det, the one of tests/linear/test_theory.py capped at its worst case.

    1e-12 plus the square-root sensitivity: a rounding δ ≈ eps (tr² + 4|det|) in the discriminant D moves the roots
    by |δ| / (2√|D|), and never by more than √|δ| / 2 (at D = 0), which the cap √(8 eps (tr² + 4|det|)) bounds.
    """
    scale = tr * tr + 4 * np.abs(det)
    sens = 1e-7 * np.sqrt(1e-16 * scale / np.maximum(np.abs(disc), 1e-300))
    return 1e-12 + np.minimum(sens, np.sqrt(8 * EPS * scale))


# --------------------------------------------------------------------------------------------------------------
# Part 1: the page's closed forms against sim's, at random points


def _assert_close(got, want, scale):
    """|got − want| ≤ FEW_ULPS · scale, with ``scale`` the magnitude of the formula's largest term: a difference of
    terms (1 − 2ηβσ² near 0) keeps the absolute rounding of its terms, not a relative one."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    bad = ~(np.abs(got - want) <= FEW_ULPS * np.asarray(scale))
    assert not bad.any(), f"{bad.sum()} of {bad.size} differ, e.g. {got[bad][:3]} vs {want[bad][:3]}"


def test_matrix_trace_determinant_discriminant(loaded):
    eta, beta, s = _random_points(1500, 1)
    rows = np.stack([eta, beta, s], 1).tolist()
    term = 2 * eta * beta * s
    scale = np.stack([np.ones_like(eta), 2 * beta * s, eta, 1 + term], -1).reshape(-1, 2, 2)
    _assert_close(loaded.js("momentumMatrix", rows), _f64(theory.momentum_matrix, eta, beta, s), scale)
    tr = _f64(theory.momentum_trace, eta, beta, s)
    _assert_close(loaded.js("momentumTrace", rows), tr, 2 + beta + term)
    _assert_close(loaded.js("momentumDeterminant", [[b] for b in beta]), _f64(theory.momentum_determinant, beta), 1)
    # D = tr² − 4 det cancels near the repeated roots: compare on the scale of its terms
    disc = _f64(theory.momentum_discriminant, eta, beta, s)
    _assert_close(loaded.js("momentumDiscriminant", rows), disc, (2 + beta + term) ** 2 + 4)


def test_eigenvalues(loaded):
    eta, beta, s = _random_points(2000, 2)
    with jax.enable_x64(True):
        lo, hi = (np.asarray(t) for t in theory.momentum_repeated_root_lrs(beta, s))
    eta[:200], eta[200:400] = lo[:200], hi[200:400]  # and right at the repeated roots
    got = np.array(loaded.js("momentumEigenvalues", np.stack([eta, beta, s], 1).tolist()))
    got = got[..., 0] + 1j * got[..., 1]
    want = _f64(theory.momentum_eigenvalues, eta, beta, s)
    tr, disc = _f64(theory.momentum_trace, eta, beta, s), _f64(theory.momentum_discriminant, eta, beta, s)
    # the same ordering (λ₊ first), so compare index by index
    assert np.all(np.abs(got - want).max(-1) <= _root_tol(tr, 1 - beta, disc))
    complex_ = disc < -8 * EPS * (tr * tr + 4 * (1 - beta))
    assert np.all(got[complex_, 0].imag > 0) and np.all(got[complex_, 1].imag < 0)


def test_spectral_radius_and_rate(loaded):
    rng = np.random.default_rng(3)
    m = rng.normal(size=(800, 2, 2))
    got = np.array(loaded.page.evaluate("(ms) => ms.map((m) => SimExplorer.spectralRadius(m))", m.tolist()))
    want = _f64(theory.spectral_radius, m)
    tr, det = np.trace(m, axis1=-2, axis2=-1), np.linalg.det(m)
    assert np.all(np.abs(got - want) <= _root_tol(tr, det, tr * tr - 4 * det))
    # the rate over random 1- to 6-mode spectra (as in test_momentum_rate_is_max_spectral_radius)
    for k in range(1, 7):
        eta, beta, _ = _random_points(100, 4 + k)
        spec = rng.uniform(0.05, 5, (100, k))
        got = np.array(
            loaded.js("momentumRate", [[e, b, sp] for e, b, sp in zip(eta, beta, spec.tolist(), strict=True)])
        )
        want = _f64(theory.momentum_rate, eta, beta, spec)
        tr = _f64(theory.momentum_trace, eta[:, None], beta[:, None], spec)
        tol = _root_tol(tr, 1 - beta[:, None], tr * tr - 4 * (1 - beta[:, None])).max(-1)
        assert np.all(np.abs(got - want) <= tol)


def test_regimes_inside_each_region_and_on_the_thresholds(loaded):
    # the regions of test_momentum_regimes_inside_each_region, each point classified by both implementations
    rng = np.random.default_rng(5)
    beta, s = rng.uniform(0.05, 0.95, 300), rng.uniform(0.05, 5, 300)
    with jax.enable_x64(True):
        lo, hi, stable = (np.asarray(t) for t in theory.momentum_thresholds(beta, s))
    u = rng.uniform(0.05, 0.95, 300)
    cases = {
        0: u * lo,
        1: lo,  # exactly at the thresholds (computed in Python): the repeated band must catch both sides' roundings
        2: lo + u * (hi - lo),
        0.5: hi + u * (stable - hi),
        1.5: hi,
        3: stable * (1 + u),
    }
    for want, eta in cases.items():
        got = loaded.js("momentumRegime", np.stack([eta, beta, s], 1).tolist())
        assert got == _f64(theory.momentum_regime, eta, beta, s).tolist() == [int(want)] * 300, want
    # random points: the same code, except within rounding of a region edge (none expected at this density)
    eta, beta, s = _random_points(3000, 6)
    got = np.array(loaded.js("momentumRegime", np.stack([eta, beta, s], 1).tolist()))
    want = _f64(theory.momentum_regime, eta, beta, s)
    rho = _f64(_mode_rate, eta, beta, s)
    np.testing.assert_array_equal(got[np.abs(rho - 1) > 1e-12], want[np.abs(rho - 1) > 1e-12])
    assert sorted(set(got.tolist())) == [0, 2, 3]  # random points hit the open regions, never a boundary


def test_thresholds_best_interval_and_optimum(loaded):
    rng = np.random.default_rng(7)
    beta, s = rng.uniform(0.001, 1, 500), rng.uniform(0.01, 20, 500)
    rows = np.stack([beta, s], 1).tolist()
    np.testing.assert_allclose(
        np.array(loaded.js("momentumThresholds", rows)).T,
        np.stack(_f64(_thresholds, beta, s)),
        rtol=FEW_ULPS,
    )
    np.testing.assert_allclose(
        loaded.js("momentumStableLr", rows), _f64(theory.momentum_stable_lr, beta, s), rtol=FEW_ULPS
    )
    np.testing.assert_allclose(
        np.array(loaded.js("momentumRepeatedRootLrs", rows)).T,
        np.stack(_f64(_repeated_roots, beta, s)),
        rtol=FEW_ULPS,
    )
    spectra = [rng.uniform(0.01, 20, k).tolist() for k in rng.integers(1, 7, 300)]
    betas = rng.uniform(0.001, 1, 300)
    got = np.array(loaded.js("momentumBestInterval", [[b, sp] for b, sp in zip(betas, spectra, strict=True)]))
    want = np.array([_f64(_best_interval, b, sp) for b, sp in zip(betas, spectra, strict=True)])
    np.testing.assert_allclose(got[:, :2], want[:, :2], rtol=FEW_ULPS)
    # the rate √(1 − β) or (t + √(t² − 4(1 − β)))/2: the second has the square-root sensitivity at t² = 4(1 − β)
    smax, smin = np.array([max(sp) for sp in spectra]), np.array([min(sp) for sp in spectra])
    t = (2 - betas) * (smax - smin) / (smax + smin)
    assert np.all(np.abs(got[:, 2] - want[:, 2]) <= _root_tol(t, 1 - betas, t * t - 4 * (1 - betas)))
    got = np.array(loaded.js("momentumOptimum", [[sp] for sp in spectra]))
    np.testing.assert_allclose(got, [theory.momentum_optimum(sp) for sp in spectra], rtol=FEW_ULPS, atol=1e-300)


def test_gd_closed_forms_and_steps(loaded):
    rng = np.random.default_rng(8)
    spectra = [rng.uniform(0.01, 20, k).tolist() for k in rng.integers(1, 7, 300)]
    eta = rng.uniform(0, 2.5, 300) / np.array([max(sp) for sp in spectra])
    rows = [[e, sp] for e, sp in zip(eta, spectra, strict=True)]
    smax = np.array([max(sp) for sp in spectra])
    _assert_close(loaded.js("gdRate", rows), [_f64(theory.gd_rate, e, sp) for e, sp in rows], 1 + 2 * eta * smax)
    for name, fn in [
        ("gdStableLr", theory.gd_stable_lr),
        ("gdOptimalLr", theory.gd_optimal_lr),
        ("gdOptimalRate", theory.gd_optimal_rate),
    ]:
        got = loaded.js(name, [[sp] for sp in spectra])
        np.testing.assert_allclose(got, [_f64(fn, sp) for sp in spectra], rtol=FEW_ULPS)
    s0 = np.array([sp[0] for sp in spectra])
    _assert_close(
        loaded.js("gdFactor", [[e, sp[0]] for e, sp in rows]), _f64(theory.gd_factor, eta, s0), 1 + 2 * eta * s0
    )
    # ⌈log ε / log ρ⌉ is an integer: equal, except where the quotient lies within rounding (1e-9) of an integer,
    # where two libm logs may round it to either side
    rate = np.concatenate([rng.uniform(0, 1, 500), [0.0, 1.0, 1.5, 0.5]])
    tol = np.concatenate([10 ** rng.uniform(-12, -0.1, 500), [1e-3] * 4])
    got = np.array(loaded.js("stepsToTolerance", np.stack([rate, tol], 1).tolist()))
    want = _f64(theory.steps_to_tolerance, rate, tol)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.log(tol) / np.log(rate)
        clear = ~(np.abs(q - np.round(q)) < 1e-9)
    np.testing.assert_array_equal(got[clear], want[clear])
    assert got[-4:].tolist() == [1.0, math.inf, math.inf, 10.0]


def test_parameter_conversions(loaded):
    eta, beta, s = _random_points(500, 9)
    rows2, rows3 = np.stack([eta, beta], 1).tolist(), np.stack([eta, beta, s], 1).tolist()
    with jax.enable_x64(True):
        np.testing.assert_allclose(
            np.array(loaded.js("emaToHeavyBall", rows2)).T, dynamics.ema_to_heavy_ball(eta, beta), rtol=FEW_ULPS
        )
        np.testing.assert_allclose(
            np.array(loaded.js("emaToDistill", rows3)).T, dynamics.ema_to_distill(eta, beta, s), rtol=FEW_ULPS
        )
        lr, m = dynamics.ema_to_heavy_ball(eta, beta)
        np.testing.assert_allclose(
            np.array(loaded.js("heavyBallToEma", np.stack([lr, m], 1).tolist())).T,
            dynamics.heavy_ball_to_ema(lr, m),
            rtol=FEW_ULPS,
        )
        alpha, beta_d, lam = dynamics.ema_to_distill(eta, beta, s)
        np.testing.assert_allclose(
            np.array(loaded.js("distillToEma", np.stack([alpha, beta_d, lam], 1).tolist())).T,
            dynamics.distill_to_ema(alpha, beta_d, lam),
            rtol=FEW_ULPS,
        )


def test_distill_coordinates(loaded):
    """Distill's one-mode diagram: its ρ at (αλ, β_D) is momentum_rate at distill_to_ema's point, and its five
    regimes are sim's: unstable ↔ divergence, complex ↔ ripples, else the sign of the roots (tr R)."""
    rng = np.random.default_rng(10)
    al, bd = rng.uniform(0, 4.5, 2000), rng.uniform(0, 0.999, 2000)
    lam = 1.0
    eta, beta, s = dynamics.distill_to_ema(al / lam, bd, lam)
    rho_js = np.array(
        loaded.page.evaluate(
            "(rows) => rows.map(([a, b]) => SimExplorer.spectralRadius(SimExplorer.distillMatrix(a, b, 1)))",
            np.stack([al, bd], 1).tolist(),
        )
    )
    rho_py = _f64(_mode_rate, eta, beta, s)
    tr = 1 + bd - al
    # the two matrices are similar, not equal (Distill's velocity is ours divided by β), so their entries round
    # differently: the root tolerance covers that and the square-root sensitivity
    assert np.all(np.abs(rho_js - rho_py) <= _root_tol(tr, bd, tr * tr - 4 * bd) * 10)
    regime = np.array(loaded.js("distillRegime", np.stack([al, bd], 1).tolist()))
    code = _f64(theory.momentum_regime, eta, beta, s)
    far = (np.abs(rho_py - 1) > 1e-9) & (np.abs(tr * tr - 4 * bd) > 1e-9)
    want = np.where(code == 3, 4, np.where(code == 2, 1, np.where(tr > 0, 0, 3)))
    np.testing.assert_array_equal(regime[far], want[far])
    names = loaded.page.evaluate("SimExplorer.DISTILL_REGIMES")
    assert names == ["monotonic decrease", "ripples", "one-step convergence", "monotonic oscillation", "divergence"]
    # one-step convergence is the point (1, 0): R nilpotent, ρ = 0 (GD at η = 1/(2σ²))
    assert loaded.js("distillRegime", [[1.0, 0.0], [0.9, 0.0], [1.1, 0.0]]) == [2, 0, 3]
    assert float(_f64(_mode_rate, *dynamics.distill_to_ema(1.0, 0.0, 1.0))) == 0


def test_simulation_against_dynamics_and_the_sweep_engine(loaded):
    spectrum = [9.0, 1.0, 0.25, 0.04]
    steps, tol = 400, 1e-3
    rng = np.random.default_rng(11)
    beta = rng.uniform(0.05, 1, 8)
    eta = rng.uniform(0.1, 0.95, 8) * (2 - beta) / (beta * max(spectrum))  # stable: ρ < 1
    eta[0], beta[0] = theory.momentum_optimum(spectrum)[:2]
    for e, b in zip(eta, beta, strict=True):
        got = loaded.page.evaluate(
            "([e, b, s, T]) => { const r = SimExplorer.simulate('momentum', e, b, s, T);"
            " return [r.modes.map((m) => Array.from(m)), r.diverged]; }",
            [e, b, spectrum, steps],
        )
        x = np.array(got[0]).T
        with jax.enable_x64(True):
            x0 = -np.ones(4) / np.linalg.norm(np.ones(4))
            path = np.asarray(dynamics.run(dynamics.momentum(e, b), lambda w: 2 * jnp.asarray(spectrum) * w, x0, steps))
            g = float(np.max(_f64(theory.power_bound, theory.momentum_matrix(e, b, np.asarray(spectrum)))))
        # each step rounds a few times (relative eps) numbers bounded by the running maximum M; R^(t−s) carries a
        # rounding made at step s forward by at most the transient bound G: |Δx_t| ≤ 60 (t + 1) eps G M
        running = np.maximum.accumulate(np.abs(path).max(1))
        bound = 60 * (np.arange(steps + 1) + 1) * EPS * max(g, 1) * running
        assert not got[1] and np.all(np.abs(x - path).max(1) <= bound)
    # a diverging point stops at the first step whose error exceeds the bound 1e10, as the sweep engine's does
    got = loaded.page.evaluate("SimExplorer.simulate('momentum', 1.0, 0.6, [9, 1, 0.25, 0.04], 400).divergeStep")
    with jax.enable_x64(True):
        path = np.asarray(dynamics.run(dynamics.momentum(1.0, 0.6), lambda w: 2 * jnp.asarray(spectrum) * w, x0, 400))
    with np.errstate(over="ignore", invalid="ignore"):
        assert got == int(np.argmax(np.linalg.norm(path, axis=1) > 1e10))
    # the settle step is sim sweep's (float64): first t after which the error stays below tol up to T
    grid_eta, grid_beta = np.array([0.05, 0.3, 0.8, 2.0]), np.array([0.05, 0.2, 0.6, 1.0])
    with jax.enable_x64(True):
        ds = sweep.sweep(
            "momentum",
            Grid((Axis("learning_rate", grid_eta, "test"), Axis("beta", grid_beta, "test"))),
            steps=steps,
            tol=tol,
            spectrum=spectrum,
            dtype="float64",
            chunk_size=16,
            progress=False,
        )
    got = np.array(
        loaded.page.evaluate(
            "([es, bs, s, T, tol]) => es.map((e) => bs.map((b) =>"
            " SimExplorer.settleStep(SimExplorer.simulate('momentum', e, b, s, T), tol, T)))",
            [grid_eta.tolist(), grid_beta.tolist(), spectrum, steps, tol],
        )
    )
    np.testing.assert_array_equal(got, ds.settle_step.values)
    assert (got > 0).sum() >= 4 and (got == -1).sum() >= 2  # both outcomes exercised


# --------------------------------------------------------------------------------------------------------------
# Part 2: the page as a reader uses it


def _click_map(loaded, eta, beta, *, release=True):
    x, y = loaded.page.evaluate("([e, b]) => SimExplorer.view.mapPixel(e, b)", [eta, beta])
    box = loaded.page.locator("#map").bounding_box()
    loaded.page.mouse.move(box["x"] + x, box["y"] + y)
    loaded.page.mouse.down()
    if release:
        loaded.page.mouse.up()
    return box["x"] + x, box["y"] + y


def _one_pixel(loaded):
    """The map's resolution: log10 range per CSS pixel, along η and β."""
    one, ten = loaded.page.evaluate("[SimExplorer.view.mapPixel(1, 1), SimExplorer.view.mapPixel(10, 0.1)]")
    return 1 / abs(ten[0] - one[0]), 1 / abs(ten[1] - one[1])


def _simulated_steps(spectrum, tol, steps, method, **point):
    """sim sweep's settle step (float64) at one point: what the page's 'simulated steps' must show."""
    axes = tuple(Axis(k, np.array([v]), "test") for k, v in point.items())
    with jax.enable_x64(True):
        ds = sweep.sweep(
            method, Grid(axes), steps=steps, tol=tol, spectrum=spectrum, dtype="float64", chunk_size=8, progress=False
        )
    return int(ds.settle_step.values.ravel()[0]), bool(ds.diverged.values.ravel()[0])


def _check_panels(loaded, spectrum):
    """Every readout of the selected point against sim's Python closed forms and simulators (float64)."""
    eta, beta = loaded.value("#pt-eta"), loaded.value("#pt-beta")
    assert loaded.num("#pt-eta") == pytest.approx(eta, rel=DISPLAYED)
    state = loaded.page.evaluate("SimExplorer.view.state()")
    tol, steps, spec = state["tol"], state["steps"], np.asarray(spectrum, dtype=np.float64)
    with jax.enable_x64(True):
        rate = float(theory.momentum_rate(eta, beta, spec))
        eta_gd = float(theory.gd_optimal_lr(spec))
        rows = {
            "mom": (rate, "momentum", {"learning_rate": eta, "beta": beta}),
            "gd": (float(theory.gd_rate(eta, spec)), "gd", {"learning_rate": eta}),
            "gdopt": (float(theory.gd_rate(eta_gd, spec)), "gd", {"learning_rate": eta_gd}),
        }
        for key, (rho, method, point) in rows.items():
            assert loaded.num(f"#{key}-rate") == pytest.approx(rho, rel=DISPLAYED)
            assert loaded.num(f"#{key}-pred") == float(theory.steps_to_tolerance(rho, tol))
            settle, diverged = _simulated_steps(spectrum, tol, steps, method, **point)
            shown = loaded.text(f"#{key}-sim")
            if diverged:
                assert shown.startswith("diverged")
            elif settle < 0:
                assert shown == f"not within T = {steps}"
            else:
                assert int(shown) == settle
        assert loaded.num("#gdopt-eta") == pytest.approx(eta_gd, rel=DISPLAYED)
        lo, hi, best = (float(v) for v in theory.momentum_best_interval(beta, spec))
        for sel, want in (("#best-lo", lo), ("#best-hi", hi), ("#best-rate", best)):
            assert loaded.num(sel) == pytest.approx(want, rel=DISPLAYED)
        lr, m = dynamics.ema_to_heavy_ball(eta, beta)
        alpha, beta_d, _ = dynamics.ema_to_distill(eta, beta, spec[0])
        for sel, want in (
            ("#par-hb-lr", lr),
            ("#par-hb-m", m),
            ("#par-distill-alpha", alpha),
            ("#par-distill-betad", beta_d),
        ):
            assert loaded.num(sel) == pytest.approx(float(want), rel=DISPLAYED)
        assert f"learning_rate={float(lr):.8g}" in loaded.text("#code-optax").replace("e-0", "e-")
        regimes = _f64(theory.momentum_regime, eta, beta, spec)
        eig = _f64(theory.momentum_eigenvalues, eta, beta, spec)
        radius = _f64(_mode_rate, eta, beta, spec)
    rows = loaded.page.locator("#modes-body tr")
    assert rows.count() == len(spectrum)
    for i in range(len(spectrum)):
        row = rows.nth(i)
        assert _number(row.locator(".mode").inner_text()) == pytest.approx(spectrum[i], rel=1e-12)
        assert row.locator(".regime").inner_text() == theory.REGIMES[int(regimes[i])]
        assert _number(row.locator(".rho").inner_text()) == pytest.approx(radius[i], rel=DISPLAYED)
        for j, cls in enumerate((".eig-plus", ".eig-minus")):
            shown = _complex(row.locator(cls).inner_text())
            assert abs(shown - eig[i, j]) <= 1e-4 * max(abs(eig[i, j]), 1e-3)  # printed with 5 digits
        assert _number(row.locator(".alpha-lambda").inner_text()) == pytest.approx(
            2 * eta * beta * spectrum[i], rel=DISPLAYED
        )
    assert loaded.page.locator("#eig circle.eig").count() == 2 * len(spectrum)
    assert loaded.page.locator("#err polyline").count() == len(spectrum) + 3
    return eta, beta


def test_loads_offline_at_the_joint_optimum(loaded):
    spectrum = list(explore.DEFAULT_SPECTRUM)
    eta_opt, beta_opt, rate_opt = theory.momentum_optimum(spectrum)
    assert loaded.value("#pt-eta") == pytest.approx(eta_opt, rel=FEW_ULPS)
    assert loaded.value("#pt-beta") == pytest.approx(beta_opt, rel=FEW_ULPS)
    assert loaded.num("#opt-rate") == pytest.approx(rate_opt, rel=DISPLAYED) == 9 / 11
    eta, beta = _check_panels(loaded, spectrum)
    # at the optimum both extreme modes sit on a repeated root (Polyak's heavy-ball optimum)
    assert [c.inner_text() for c in loaded.page.locator("#modes-body .regime").all()] == ["repeated", "repeated"]
    assert loaded.text("#best-where") == "inside"  # the best interval for β* is the single η*
    buttons = [b.inner_text() for b in loaded.page.locator("#presets button").all()]
    assert buttons == [name for name, _ in explore.DEFAULT_PRESETS]


def test_click_and_drag_on_the_map(loaded):
    spectrum = list(explore.DEFAULT_SPECTRUM)
    px_eta, px_beta = _one_pixel(loaded)
    # Sp23 HW2 Q2(g): β = 0.1, any η in [0.2633, 3.797] has the rate √0.9
    _click_map(loaded, 1.0, 0.1)
    eta, beta = _check_panels(loaded, spectrum)
    assert abs(math.log10(eta)) <= px_eta and abs(math.log10(beta / 0.1)) <= px_beta
    assert loaded.num("#mom-rate") == pytest.approx(math.sqrt(1 - beta), rel=DISPLAYED)
    assert loaded.text("#best-where") == "inside"
    assert [c.inner_text() for c in loaded.page.locator("#modes-body .regime").all()] == ["complex", "complex"]
    # drag from there into the black region (diverges): the panels follow while the button is held
    start = _click_map(loaded, 0.3, 0.5, release=False)
    x1, y1 = loaded.page.evaluate("SimExplorer.view.mapPixel(3, 0.5)")
    box = loaded.page.locator("#map").bounding_box()
    loaded.page.mouse.move((start[0] + box["x"] + x1) / 2, start[1], steps=3)
    middle = loaded.value("#pt-eta")
    loaded.page.mouse.move(box["x"] + x1, box["y"] + y1, steps=3)
    loaded.page.mouse.up()
    eta, beta = _check_panels(loaded, spectrum)
    assert 0.3 < middle < 3 and abs(math.log10(eta / 3)) <= px_eta and abs(math.log10(beta / 0.5)) <= px_beta
    assert loaded.text("#mom-sim").startswith("diverged")
    assert loaded.page.locator("#modes-body .regime").first.inner_text() == "unstable"
    # moving without the button held selects nothing
    loaded.page.mouse.move(box["x"] + 100, box["y"] + 100)
    assert loaded.value("#pt-eta") == eta


def _pixel(loaded, eta, beta):
    """RGB of the map canvas at (η, β), device scale 1."""
    return loaded.page.evaluate(
        "([e, b]) => { const [x, y] = SimExplorer.view.mapPixel(e, b);"
        " return Array.from(document.getElementById('map').getContext('2d')"
        ".getImageData(Math.floor(x), Math.floor(y), 1, 1).data).slice(0, 3); }",
        [eta, beta],
    )


def test_presets_and_the_spectrum_field(loaded):
    # β = 0.9 at η = 0.4 > (2 − β)/(βσ_max²) = 0.244 diverges: black; a stable point is not
    assert _pixel(loaded, 0.4, 0.9) == [0, 0, 0]
    assert _pixel(loaded, 0.01, 0.9) != [0, 0, 0]
    loaded.page.get_by_role("button", name=explore.DEFAULT_PRESETS[1][0]).click()
    assert loaded.page.input_value("#in-spectrum") == "4, 1"
    assert loaded.page.get_attribute("#presets button >> nth=1", "aria-pressed") == "true"
    eta_opt, beta_opt, rate_opt = theory.momentum_optimum([4.0, 1.0])  # 1/4, 8/9, 1/3
    assert (loaded.num("#opt-eta"), loaded.num("#opt-beta")) == (
        pytest.approx(eta_opt, rel=DISPLAYED),
        pytest.approx(beta_opt, rel=DISPLAYED),
    )
    assert loaded.num("#opt-rate") == pytest.approx(rate_opt, rel=DISPLAYED)
    _check_panels(loaded, [4.0, 1.0])
    assert _pixel(loaded, 0.5, 0.9) == [0, 0, 0]
    # the newer course example's point: β = 3/4, η = 1/3 has the rate 1/2, twice as fast per step as GD's 0.6
    loaded.page.fill("#in-eta", "0.3333333333333333")
    loaded.page.fill("#in-beta", "0.75")
    loaded.page.press("#in-beta", "Enter")
    assert loaded.num("#mom-rate") == pytest.approx(0.5, rel=DISPLAYED)
    assert loaded.num("#gdopt-rate") == pytest.approx(0.6, rel=DISPLAYED)
    _check_panels(loaded, [4.0, 1.0])
    # a typed spectrum (commas or spaces), and T and ε from their fields
    loaded.page.fill("#in-spectrum", "3 1, 0.2")
    loaded.page.press("#in-spectrum", "Enter")
    assert loaded.page.locator("#modes-body tr").count() == 3
    assert loaded.page.get_attribute("#presets button >> nth=1", "aria-pressed") == "false"
    assert loaded.value("#pt-beta") == pytest.approx(theory.momentum_optimum([3.0, 1.0, 0.2])[1], rel=FEW_ULPS)
    loaded.page.fill("#in-steps", "20")
    loaded.page.fill("#in-tol", "1e-6")
    loaded.page.press("#in-tol", "Enter")
    assert loaded.num("#mom-pred") > 20 and loaded.text("#mom-sim") == "not within T = 20"
    _check_panels(loaded, [3.0, 1.0, 0.2])
    assert loaded.page.evaluate("SimExplorer.parseSpectrum('1e-3 2, .5')") == [0.001, 2, 0.5]
    # bad spectra: a message, the field marked, the page unchanged; no console error (checked at teardown)
    for bad in ("1, -2", "abc", "", "0", "1, nan", ", ,"):
        loaded.page.fill("#in-spectrum", bad)
        loaded.page.press("#in-spectrum", "Enter")
        assert loaded.page.is_visible("#spectrum-error") and loaded.text("#spectrum-error")
        assert loaded.page.get_attribute("#in-spectrum", "aria-invalid") == "true"
        assert loaded.page.evaluate("SimExplorer.view.state().spectrum") == [3, 1, 0.2]
    loaded.page.fill("#in-eta", "-1")
    loaded.page.press("#in-eta", "Enter")
    assert "\u03b7" in loaded.text("#point-error")
    loaded.page.get_by_role("button", name=explore.DEFAULT_PRESETS[2][0]).click()
    assert not loaded.page.is_visible("#spectrum-error")
    _check_panels(loaded, list(explore.DEFAULT_PRESETS[2][1]))


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 1280, "height": 900}])
def test_fits_a_laptop_screen(browser, page_file, viewport):
    """No horizontal scrolling, and the whole map (with its axes) on the first screen."""
    context = browser.new_context(viewport=viewport, device_scale_factor=1)
    try:
        page = Loaded(context.new_page(), page_file.as_uri())
        assert page.page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        box = page.page.locator("#map").bounding_box()
        assert box["y"] + box["height"] <= viewport["height"] and box["x"] >= 0
        assert page.errors == []
    finally:
        context.close()


# --------------------------------------------------------------------------------------------------------------
# Part 3: the screenshot


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_screenshot(browser, page_file, tmp_path):
    del browser  # skips this test where no browser can be had; screenshot() starts its own
    png = tmp_path / "explorer.png"
    ok, reason = explore.screenshot(page_file, png, width=1280, height=900)
    assert ok, reason
    data = png.read_bytes()
    assert _png_size(data) == (1280, 900)
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    colors = np.unique(pixels, axis=0)
    assert len(colors) > 500  # a heat map, not a blank page
    assert (pixels == 0).all(1).mean() > 0.02  # the black divergence region is on screen
    # deterministic: the same page renders to the same bytes
    again = tmp_path / "again.png"
    assert explore.screenshot(page_file, again, width=1280, height=900) == (True, "")
    assert again.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.png", "explorer.png"]  # no temporary left
