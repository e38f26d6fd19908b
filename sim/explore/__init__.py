"""An interactive momentum explorer: one self-contained HTML page, built from strings and plain floats.

Contract: :func:`build_page` returns the page as a string: HTML with its style, script and data inline (nothing is
fetched, so it works offline from ``file://``), a few tens of kB, and byte-identical for the same arguments (no
timestamp, no random id). :func:`write_page` validates everything, then writes the page atomically (a temporary file
in the same folder, then ``os.replace``). :func:`screenshot` renders a page to PNG in headless Chromium through
Playwright, at a fixed viewport and device scale, and returns ``(False, reason)`` where no browser can be had;
:func:`render` does both for ``sim figures``. Bad input raises :class:`sim.core.validate.InputError` naming the
parameter, before anything is written. This module (with what it takes from ``sim.core``) imports neither JAX,
xarray nor sympy; the tests check it with the package root stubbed out, since ``sim/__init__.py`` imports JAX.

The page (``page.html``, ``explorer.css``, ``explorer.js`` in this folder) shows, for an editable spectrum σ_i²: the
(η, β) map of the EMA momentum rate max_i ρ(R_i) with divergence in black, the extreme modes' regime boundaries, the
best-rate η interval for each β and the joint optimum; for a clicked or dragged point, every R_i's eigenvalues in the
complex plane, each mode's regime, the per-mode and total error over T steps, simulated steps to a tolerance beside
⌈log ε / log ρ⌉, GD at the same η and at its optimal η; the modes in Distill's (αλ, β_D) coordinates; and the point
as GD / EMA / heavy-ball (optax, PyTorch) / Distill parameters. Its JavaScript re-implements the closed forms of
``sim.linear.theory`` and the conversions of ``sim.linear.dynamics`` in float64 and exposes them on
``window.SimExplorer``; the tests evaluate them in Chromium against the Python originals.

Conventions (glossary in ``sim``): L(w) = ‖y − Xw‖² (no ½); EMA momentum z ← (1 − β) z + β ∇L, w ← w − η z;
heavy ball v ← m v + ∇L, w ← w − lr v with lr = η β, m = 1 − β; Distill's α = η β, β_D = 1 − β, λ = 2σ².

References: EECS 182 Sp23 HW2 Q2 (momentum; Q2(g) is the σ² ∈ {5, 0.05} example); G. Goh, "Why Momentum Really
Works", Distill (2017); B. T. Polyak, "Some methods of speeding up the convergence of iteration methods" (1964).
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import shutil
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from sim.core import io
from sim.core.validate import InputError, check_writable

DEFAULT_SPECTRUM = (5.0, 0.05)
"""The course's worked example (EECS 182 Sp23 HW2 Q1–Q2): σ² ∈ {5, 0.05}."""

DEFAULT_PRESETS = (
    ("Sp23 HW2 Q2(g): 5, 0.05", (5.0, 0.05)),
    ("newer course example: 4, 1", (4.0, 1.0)),
    ("four modes: 9, 1, 0.25, 0.04", (9.0, 1.0, 0.25, 0.04)),
)
"""Preset spectra as (button label, σ_i²): the seeds' example, the newer course example (singular values 2 and 1)
and four modes with singular values 3, 1, 0.5, 0.2 (κ = 15)."""

DEFAULT_TOL = 1e-3
DEFAULT_STEPS = 1000
MAX_MODES = 32
MAX_STEPS = 100_000
MAX_BYTES = 3_000_000
FILENAME = "momentum_explorer.html"
SCREENSHOT_SIZE = (1280, 900)
FIGURE_POINT = (1.0, 0.1)
"""The point the committed figure opens at: Sp23 HW2 Q2(g)'s β = 0.1 with η = 1, inside its best-rate interval
[0.2633, 3.797] (both modes complex, rate √0.9), away from the joint optimum's star."""
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--run-all-compositor-stages-before-draw",
)
"""Flags for headless Chromium: no sandbox (containers, root), software rendering, no background traffic, and every
compositor stage finished before a frame is drawn (a screenshot on a busy machine is never of a half-rastered page;
same bytes as without it on an idle one)."""

_PLACEHOLDERS = ("/*__SIM_CSS__*/", "/*__SIM_JS__*/", "__SIM_DATA__")


def check_spectrum(values, *, name: str = "spectrum") -> list[float]:
    """A spectrum as a list of Python floats: 1 to :data:`MAX_MODES` finite squared singular values, all > 0.

    Raises:
      InputError: naming ``name``.
    """
    if isinstance(values, str | bytes):
        raise InputError(name, f"expected a sequence of numbers, got {values!r}")
    try:
        values = list(values)
    except TypeError:
        raise InputError(name, f"expected a sequence of numbers, got {values!r}") from None
    out = []
    for v in values:
        if isinstance(v, bool):
            raise InputError(name, f"expected numbers, got {v!r}")
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise InputError(name, f"expected numbers, got {v!r}") from None
        if not math.isfinite(f):
            raise InputError(name, f"must be finite, got {f:g}")
        if f <= 0:
            raise InputError(name, f"every squared singular value must be > 0, got {f:g}")
        out.append(f)
    if not out:
        raise InputError(name, "is empty: give squared singular values, e.g. 5,0.05")
    if len(out) > MAX_MODES:
        raise InputError(name, f"at most {MAX_MODES} modes, got {len(out)}")
    return out


def _check_presets(presets) -> list[dict]:
    items = presets.items() if isinstance(presets, Mapping) else presets
    out = []
    try:
        pairs = [tuple(item) for item in items]
    except TypeError:
        raise InputError("presets", "expected a mapping or a sequence of (label, spectrum) pairs") from None
    for pair in pairs:
        if len(pair) != 2 or not isinstance(pair[0], str) or not pair[0].strip() or len(pair[0]) > 80:
            raise InputError("presets", f"each preset is (label of 1 to 80 characters, spectrum), got {pair!r}")
        out.append({"name": pair[0], "spectrum": check_spectrum(pair[1], name=f"presets[{pair[0]!r}]")})
    return out


def _check_point(point) -> list[float] | None:
    if point is None:
        return None
    try:
        eta, beta = (float(v) for v in point)
    except (TypeError, ValueError):
        raise InputError("point", f"expected (learning_rate, beta), got {point!r}") from None
    if not (math.isfinite(eta) and eta > 0):
        raise InputError("point", f"the learning rate must be finite and > 0, got {eta:g}")
    if not 0 < beta <= 1:
        raise InputError("point", f"beta must lie in (0, 1], got {beta:g}")
    return [eta, beta]


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def build_page(
    spectrum=DEFAULT_SPECTRUM,
    presets=DEFAULT_PRESETS,
    *,
    point=None,
    tol: float = DEFAULT_TOL,
    steps: int = DEFAULT_STEPS,
) -> str:
    """The explorer as one self-contained HTML string (deterministic: same arguments, same bytes).

    Args:
      spectrum: the squared singular values σ_i² shown first (1 to :data:`MAX_MODES`, finite, > 0).
      presets: the preset buttons, a mapping or sequence of (label, spectrum); default :data:`DEFAULT_PRESETS`.
      point: the (η, β) selected on load; default the spectrum's joint optimum (η*, β*).
      tol: the relative-error tolerance ε ∈ (0, 1) of the step counts.
      steps: T, the steps simulated at the selected point (1 to :data:`MAX_STEPS`).

    Returns:
      The page, UTF-8 text with ``\\n`` line ends.

    Raises:
      InputError: naming the bad argument.
    """
    data = {
        "spectrum": check_spectrum(spectrum),
        "presets": _check_presets(DEFAULT_PRESETS if presets is None else presets),
        "point": _check_point(point),
        "tol": _check_tol(tol),
        "steps": _check_steps(steps),
    }
    css, js, template = _asset("explorer.css"), _asset("explorer.js"), _asset("page.html")
    for name, text in (("explorer.css", css), ("explorer.js", js)):
        if "</" + "style" in text.lower() or "</" + "script" in text.lower():
            raise RuntimeError(f"{name} must not contain a closing style or script tag")
    # inside <script type="application/json"> only "</script" could end the element early: escape <, > and &
    payload = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    page = template
    for marker, text in zip(_PLACEHOLDERS, (css.rstrip("\n"), js.rstrip("\n"), payload), strict=True):
        if page.count(marker) != 1:
            raise RuntimeError(f"page.html must contain {marker} exactly once")
        page = page.replace(marker, text)
    return page


def _check_tol(tol) -> float:
    try:
        tol = float(tol)
    except (TypeError, ValueError):
        raise InputError("tol", f"must be a number, got {tol!r}") from None
    if not 0 < tol < 1:
        raise InputError("tol", f"must lie in (0, 1), got {tol:g}")
    return tol


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int | float) or not float(steps).is_integer():
        raise InputError("steps", f"must be an integer, got {steps!r}")
    if not 1 <= steps <= MAX_STEPS:
        raise InputError("steps", f"must lie in [1, {MAX_STEPS}], got {int(steps)}")
    return int(steps)


def write_page(
    path,
    spectrum=DEFAULT_SPECTRUM,
    presets=DEFAULT_PRESETS,
    *,
    point=None,
    tol: float = DEFAULT_TOL,
    steps: int = DEFAULT_STEPS,
    overwrite: bool = False,
) -> Path:
    """Build the page (:func:`build_page`) and write it to ``path`` atomically.

    Everything is checked first: the arguments, that the folder exists and is writable, and that ``path`` does not
    exist unless ``overwrite``. The page goes to a temporary file in the same folder, which then replaces ``path``
    (``os.replace``), so a reader never sees half a page.

    Returns:
      ``path`` as a :class:`pathlib.Path`.

    Raises:
      InputError: ``output`` for the path, else the bad argument's name; nothing is written.
    """
    html = build_page(spectrum, presets, point=point, tol=tol, steps=steps)
    target = Path(path)
    check_writable(target, name="output")
    if target.exists() and not overwrite:
        raise InputError("output", f"{target} exists; pass overwrite=True (sim explore: --overwrite) to replace it")
    _atomic_write(target, html.encode("utf-8"), name="output")
    return target


def _atomic_write(target: Path, data: bytes, *, name: str) -> None:
    with io.atomic_path(target, name=name) as tmp:
        tmp.write_bytes(data)


def find_chromium() -> str | None:
    """Path of a Chromium executable: ``$SIM_CHROMIUM``, else ``chromium`` or ``chromium-browser`` on the PATH."""
    env = os.environ.get("SIM_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def browser_unavailable() -> str | None:
    """Why no headless Chromium can be driven here (one line), or ``None`` when Playwright and Chromium are present."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; do not run `playwright install`)"
    if find_chromium() is None:
        return "no chromium executable (apt-get install chromium, or set SIM_CHROMIUM)"
    return None


def screenshot(html_path, png_path, width: int = SCREENSHOT_SIZE[0], height: int = SCREENSHOT_SIZE[1]):
    """Render a page (e.g. from :func:`write_page`) to a PNG of exactly ``width`` × ``height`` pixels.

    Headless Chromium (:func:`find_chromium`) through Playwright, device scale 1, reduced motion, the page loaded
    from ``file://`` and shot once its script has drawn everything (``<html data-ready="1">``) and two shots in a
    row agree; the page has no animation, clock or randomness, so the same page on the same machine gives the same
    pixels. The PNG is written atomically.

    Returns:
      ``(True, "")`` when written, ``(False, reason)`` (one line) when no browser can be had or it failed.
    """
    reason = browser_unavailable()
    if reason is not None:
        return False, reason
    html_path, png_path = Path(html_path).resolve(), Path(png_path)
    check_writable(png_path, name="png_path")
    # Playwright's sync API refuses a thread with a running event loop (Jupyter, another sync_playwright session):
    # drive the browser from a thread of its own
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        png, reason = pool.submit(_shoot, html_path, int(width), int(height)).result()
    if png is None:
        return False, reason
    _atomic_write(png_path, png, name="png_path")
    return True, ""


def _shoot(html_path: Path, width: int, height: int) -> tuple[bytes | None, str]:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=find_chromium(), headless=True, args=list(CHROMIUM_ARGS))
            try:
                page = browser.new_page(
                    viewport={"width": width, "height": height}, device_scale_factor=1, reduced_motion="reduce"
                )
                page.goto(html_path.as_uri())
                page.wait_for_function("document.documentElement.dataset.ready === '1'", timeout=30_000)
                return _settled_screenshot(page)
            finally:
                browser.close()
    except PlaywrightError as err:
        return None, "chromium failed: " + " ".join(str(err).split())[:300]


def _settled_screenshot(page, attempts: int = 8) -> tuple[bytes | None, str]:
    """Shoot until two shots in a row are identical, each after two animation frames (a busy machine can still be
    painting the first time; Playwright's screenshot itself waits for the fonts); give up after ``attempts`` shots."""
    settle = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
    shot = None
    for _ in range(attempts):
        page.evaluate(settle)
        again = page.screenshot(full_page=False, animations="disabled", caret="hide")
        if again == shot:
            return shot, ""
        shot = again
    return None, f"the page kept changing over {attempts} screenshots"


def render(
    outdir,
    *,
    spectrum=DEFAULT_SPECTRUM,
    point=FIGURE_POINT,
    width: int = SCREENSHOT_SIZE[0],
    height: int = SCREENSHOT_SIZE[1],
):
    """Write ``outdir/momentum_explorer.html`` (replacing it) and its screenshot ``momentum_explorer.png``.

    The page opens at ``point`` (default :data:`FIGURE_POINT`), which the screenshot shows.

    Returns:
      ``(html_path, png_path or None, reason)``: ``png_path`` is ``None`` and ``reason`` says why when no browser
      could render the page (the HTML is written regardless).
    """
    html = write_page(Path(outdir) / FILENAME, spectrum, point=point, overwrite=True)
    png = html.with_suffix(".png")
    ok, reason = screenshot(html, png, width, height)
    return html, (png if ok else None), reason
