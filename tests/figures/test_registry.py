"""Tests for sim.figures.registry: every figure renders at quick size, byte-stably, and its data agrees with closed
forms.

The closed forms here are written out again with numpy (float64) rather than taken from ``sim.linear.theory``, so a
wrong formula there cannot hide a wrong sweep.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import jax
import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure as MplFigure

from sim.core.validate import InputError
from sim.figures import networks as figures_features
from sim.figures import registry as figures
from sim.figures.base import Figure
from sim.linear import theory
from sim.linear.problems import COURSE_SPECTRUM
from tests import reference

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[2]


# its module-scoped fixtures are costly: one xdist worker runs the whole module (pyproject: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("figures.test_registry")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    seconds: dict[str, float] = {}
    figures_features.clear_cache()  # computed independently of the data fixture
    paths = figures.render(quick=True, outdir=out, progress=False, seconds=seconds)
    return out, paths, seconds


@pytest.fixture(scope="module")
def data():
    figures_features.clear_cache()  # computed independently of the render (the byte-stability test compares them)
    return {name: fig.compute(True, progress=False) for name, fig in figures.FIGURES.items()}


# --------------------------------------------------------------------------------------------------------------
# Rendering


def _png_size(blob: bytes) -> tuple[int, int]:
    return struct.unpack(">II", blob[16:24])  # IHDR width, height


def test_render_writes_every_figure(rendered):
    out, paths, seconds = rendered
    pages = [out / filename for filename, _ in figures.PAGES.values()]
    assert paths == [out / fig.filename for fig in figures.FIGURES.values()] + pages
    paths = paths[: len(figures.FIGURES)]
    assert all(p.read_bytes().startswith(b"<!DOCTYPE html>") for p in pages)
    assert set(seconds) == set(figures.FIGURES) and all(s > 0 for s in seconds.values())
    for path in paths:
        blob = path.read_bytes()
        assert blob.startswith(PNG_SIGNATURE)
        assert len(blob) > 20_000  # a real plot, not an empty canvas
        assert b"matplotlib" not in blob.lower()  # no Software metadata: PNGs do not change with the version
        width, height = _png_size(blob)
        assert width >= 1000 and height >= 600


def test_render_is_byte_stable(rendered, data, tmp_path):
    # an independent compute (the data fixture) plotted and saved again gives the rendered bytes
    out, _, _ = rendered
    for name, fig in figures.FIGURES.items():
        with figures.fixed_style():
            again = figures.save(fig.plot(data[name]), tmp_path / fig.filename)
        assert again.read_bytes() == (out / fig.filename).read_bytes(), name


def test_mc_vector_ridge_data_has_no_nan(data):
    from sim.figures import noisy

    assert set(noisy.MC_VECTOR_RIDGE_QUICK) <= set(noisy.MC_VECTOR_RIDGE_FULL)  # quick only shrinks the full config
    ds = data["mc_vector_ridge"]
    for var in ds.data_vars:
        assert not np.isnan(np.asarray(ds[var].values, dtype=float)).any(), var


def test_provenance_records_each_figure(rendered):
    out, _, _ = rendered
    prov = json.loads((out / figures.PROVENANCE_FILE).read_text())
    assert set(prov) == set(figures.FIGURES) | set(figures.PAGES)
    for name in figures.PAGES:
        assert prov.pop(name)["file"] == figures.PAGES[name][0]
    for name, record in prov.items():
        fig = figures.FIGURES[name]
        assert record["file"] == fig.filename
        assert record["config"]["quick"] is True
        for key in ("steps", "tol"):
            if key in fig.quick:
                assert record["config"][key] == fig.quick[key]
        assert {"git_revision", "version_jax", "device_count", "xla_flags", "cpu_model"} <= set(record["provenance"])


def test_render_only_one_figure_keeps_other_provenance(tmp_path):
    older = {"older_figure": {"file": "older.png", "config": {"quick": True}}}
    (tmp_path / figures.PROVENANCE_FILE).write_text(json.dumps(older))
    paths = figures.render(["gd_steps_heatmap"], quick=True, outdir=tmp_path, progress=False)
    assert [p.name for p in paths] == ["gd_steps_heatmap.png"]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["gd_steps_heatmap.png"]
    prov = json.loads((tmp_path / figures.PROVENANCE_FILE).read_text())
    assert set(prov) == {"older_figure", "gd_steps_heatmap"}


def test_render_rejects_unknown_names_before_computing(tmp_path):
    with pytest.raises(InputError, match="only: unknown figure 'nope'"):
        figures.render(["gd_steps_heatmap", "nope"], quick=True, outdir=tmp_path, progress=False)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------------------------------------------
# Where renders go: quick ones apart from the full-size figures, never over them


@pytest.fixture
def fake(monkeypatch):
    """Two cheap figures in the registry; ``calls`` counts their computations, the ``fail_at``-th one is interrupted."""
    state = {"calls": 0, "fail_at": None}

    def compute(n, progress):
        state["calls"] += 1
        if state["calls"] == state["fail_at"]:
            raise KeyboardInterrupt
        return xr.Dataset(attrs={"n": n})

    def plot(ds):
        fig = MplFigure(figsize=(2, 1.5))
        fig.add_subplot().plot([0, 1], [0, ds.attrs["n"]])
        return fig

    for name in ("fake_a", "fake_b"):
        fig = Figure(f"{name}.png", f"{name} for tests", {"n": 3}, {"n": 1}, compute, plot)
        monkeypatch.setitem(figures.FIGURES, name, fig)
    return state


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_quick_renders_go_apart_from_full_ones_by_default(fake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert figures.render(["fake_a"], progress=False) == [Path("figures/fake_a.png")]
    assert figures.render(["fake_a"], quick=True, progress=False) == [Path("figures/quick/fake_a.png")]
    full = json.loads(Path("figures/provenance.json").read_text())
    quick = json.loads(Path("figures/quick/provenance.json").read_text())
    assert full["fake_a"]["config"] == {"n": 3, "quick": False, "dpi": figures.DPI}
    assert quick["fake_a"]["config"] == {"n": 1, "quick": True, "dpi": figures.DPI}
    assert Path("figures/fake_a.png").read_bytes() != Path("figures/quick/fake_a.png").read_bytes()


def test_quick_render_is_refused_over_full_figures(fake, tmp_path):
    figures.render(["fake_a"], outdir=tmp_path, progress=False)
    before, calls = _snapshot(tmp_path), fake["calls"]
    for names in (["fake_a"], ["fake_b"]):  # the folder's provenance holds a full-size figure: no quick one lands
        with pytest.raises(InputError, match=r"outdir: .* holds full-size figures \(fake_a in provenance.json\)"):
            figures.render(names, quick=True, outdir=tmp_path, progress=False)
    assert _snapshot(tmp_path) == before and fake["calls"] == calls  # refused before computing anything
    figures.render(["fake_b"], outdir=tmp_path, progress=False)  # full over full: regenerating, as before
    assert set(json.loads((tmp_path / figures.PROVENANCE_FILE).read_text())) == {"fake_a", "fake_b"}


def test_quick_render_is_refused_over_unrecorded_pngs(fake, tmp_path):
    (tmp_path / "fake_a.png").write_bytes(b"someone's figure")
    with pytest.raises(InputError, match="holds fake_a.png not recorded as quick renders"):
        figures.render(["fake_a"], quick=True, outdir=tmp_path, progress=False)
    assert _snapshot(tmp_path) == {"fake_a.png": b"someone's figure"} and fake["calls"] == 0
    figures.render(["fake_b"], quick=True, outdir=tmp_path, progress=False)  # other names do not collide
    figures.render(["fake_b"], quick=True, outdir=tmp_path, progress=False)  # nor a quick render with itself


def test_full_render_replaces_quick_records(fake, tmp_path):
    figures.render(["fake_a", "fake_b"], quick=True, outdir=tmp_path, progress=False)
    figures.render(["fake_a"], outdir=tmp_path, progress=False)
    prov = json.loads((tmp_path / figures.PROVENANCE_FILE).read_text())
    assert (prov["fake_a"]["config"]["quick"], prov["fake_b"]["config"]["quick"]) == (False, True)


def test_a_foreign_provenance_file_is_never_replaced(fake, tmp_path):
    (tmp_path / figures.PROVENANCE_FILE).write_text("[1, 2]\n")
    for quick in (False, True):
        with pytest.raises(InputError, match="is not a provenance file of sim figures"):
            figures.render(["fake_a"], quick=quick, outdir=tmp_path, progress=False)
    assert _snapshot(tmp_path) == {figures.PROVENANCE_FILE: b"[1, 2]\n"} and fake["calls"] == 0


def test_an_interrupted_render_records_the_figures_it_saved(fake, tmp_path):
    fake["fail_at"] = fake["calls"] + 2  # Ctrl-C while computing the second figure
    with pytest.raises(KeyboardInterrupt):
        figures.render(["fake_a", "fake_b"], quick=True, outdir=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake_a.png", figures.PROVENANCE_FILE]  # no temporary file
    assert set(json.loads((tmp_path / figures.PROVENANCE_FILE).read_text())) == {"fake_a"}
    # the saved PNG is recorded as a quick render, so running again is not refused
    paths = figures.render(["fake_a", "fake_b"], quick=True, outdir=tmp_path, progress=False)
    assert paths == [tmp_path / "fake_a.png", tmp_path / "fake_b.png"]


def test_quick_render_into_the_committed_figures_is_refused(monkeypatch):
    committed = REPO / "figures"
    if not (committed / figures.PROVENANCE_FILE).exists():
        pytest.skip("no committed figures here")
    name = "gd_steps_heatmap"

    def must_not_compute(**_):
        raise AssertionError("computed a quick figure for the committed folder")

    monkeypatch.setitem(figures.FIGURES, name, dataclasses.replace(figures.FIGURES[name], compute_fn=must_not_compute))
    before = (committed / figures.PROVENANCE_FILE).read_bytes()
    with pytest.raises(InputError, match="holds full-size figures"):
        figures.render([name], quick=True, outdir=committed, progress=False)
    assert (committed / figures.PROVENANCE_FILE).read_bytes() == before


# --------------------------------------------------------------------------------------------------------------
# (a) GD rate against the learning rate


def test_gd_rate_vs_lr_agrees_with_closed_form(data):
    ds = data["gd_rate_vs_lr"]
    spec = np.array(COURSE_SPECTRUM)
    lr = ds.learning_rate.values
    factors = np.abs(1 - 2 * lr[:, None] * spec)  # per-mode |1 − 2ησ²|
    np.testing.assert_allclose(ds.rate.values, factors.max(axis=1), rtol=0, atol=1e-6)
    # divergence exactly beyond the stability limit 1/σ_max² = 0.2 (η = 0.2 itself has ρ = 1: neither)
    assert np.array_equal(ds.diverged.values, lr > 0.2 + 1e-9)
    # measured contraction (‖u_t‖/‖u_0‖)^(1/t) at the simulated step t, with half the squared error in each mode
    ok = ~ds.diverged.values
    t = ds.simulated_steps.values[ok]
    exact = np.sqrt(0.5 * (factors[ok] ** (2 * t[:, None])).sum(axis=1)) ** (1 / t)
    np.testing.assert_allclose(ds.contraction.values[ok], exact, rtol=1e-5)
    # the course's numbers: η* = 1/(5 + 0.05) is on the grid, takes 346 steps, and minimizes the closed-form rate
    eta_star = 1 / 5.05
    i_star = int(np.argmin(np.abs(lr - eta_star)))
    assert abs(lr[i_star] - eta_star) < 1e-12
    assert ds.settle_step.values[i_star] == 346
    eta = ds.learning_rate_theory.values
    assert abs(eta[np.argmin(ds.theory_rate.values)] - eta_star) <= eta[1] - eta[0]
    assert ds.theory_rate.values.min() == pytest.approx(99 / 101, abs=1e-4)  # (κ² − 1)/(κ² + 1), κ² = 100


# --------------------------------------------------------------------------------------------------------------
# (b) GD steps over (η, σ²)


def test_gd_steps_heatmap_is_the_closed_form_step_count(data):
    ds = data["gd_steps_heatmap"]
    tol, steps = ds.attrs["tol"], ds.attrs["steps"]
    rho = np.abs(1 - 2 * ds.learning_rate.values[:, None] * ds.sigma2.values[None, :])
    converges = rho < 1
    with np.errstate(divide="ignore"):  # ρ = 0 gives ratio −0: one step
        # the error ρ^t falls below ε from step ⌊log ε / log ρ⌋ + 1 on (placeholder 0.5 where ρ ≥ 1)
        ratio = np.log(tol) / np.log(np.where(converges, rho, 0.5))
    expected = np.where(converges, np.floor(ratio) + 1, -1)
    expected = np.where(expected > steps, -1, expected)
    settle = ds.settle_step.values
    # Allowed exceptions: the sweep runs in float32, whose rounding of η, σ² and each step's update can move the
    # crossing ρ^t = ε by a small fraction of a step; only where log ε / log ρ is within 1e-3 of an integer can
    # that change the step count. (Measured: no exception on the quick grid nor on the full 401×401 grid.)
    near_tie = converges & (np.abs(ratio - np.round(ratio)) < 1e-3)
    wrong = (settle != expected) & ~near_tie
    assert not wrong.any(), list(zip(settle[wrong], expected[wrong], strict=True))[:5]
    assert (settle == expected).sum() >= settle.size - 3
    # every category occurs: reached, not reached within T, and diverged
    assert (settle > 0).any() and ((settle < 0) & converges).any() and ds.diverged.values.any()
    assert not (ds.diverged.values & converges).any()
    assert ds.diverged.values[rho > 1.01].all()  # growth 1.01^t passes the 1e10 bound long before T


# --------------------------------------------------------------------------------------------------------------
# (c) EMA momentum over (η, β)


def _seed_interval(beta, s_min, s_max):
    """η range where both modes have complex roots: σ_min²'s smaller to σ_max²'s larger repeated root."""
    root = 2 * np.sqrt(1 - beta)
    return (2 - beta - root) / (2 * beta * s_min), (2 - beta + root) / (2 * beta * s_max)


def test_momentum_rate_is_sqrt_one_minus_beta_inside_the_seeds_interval(data):
    ds = data["momentum_steps_heatmap"]
    j = int(np.argmin(np.abs(ds.beta.values - 0.1)))
    assert ds.beta.values[j] == pytest.approx(0.1, rel=1e-12)
    lo, hi = _seed_interval(0.1, 0.05, 5.0)
    assert (round(lo, 4), round(hi, 3)) == (0.2633, 3.797)  # the course's numbers
    assert ds.attrs["example_interval"] == pytest.approx([lo, hi], rel=1e-12)
    eta, rate = ds.learning_rate.values, ds.rate.values[:, j]
    inside = (eta > lo) & (eta < hi)
    assert inside.sum() >= 5
    np.testing.assert_allclose(rate[inside], np.sqrt(0.9), rtol=0, atol=1e-5)
    outside = (eta < lo * 0.98) | (eta > hi * 1.02)  # real roots: one of them is larger than √(1 − β)
    assert outside.sum() >= 5
    assert (rate[outside] > np.sqrt(0.9) + 1e-4).all()
    settle = ds.settle_step.values[inside, j]
    asymptotic = np.log(1e-3) / np.log(np.sqrt(0.9))  # ≈ 131.1, the course's "≈132 iterations"
    assert ((settle > 0.7 * asymptotic) & (settle < 1.5 * asymptotic)).all()


def test_momentum_settle_steps_match_a_float64_recursion(data):
    ds = data["momentum_steps_heatmap"]
    tol, steps = ds.attrs["tol"], ds.attrs["steps"]
    spec = np.array(COURSE_SPECTRUM)
    cols = sorted({int(np.argmin(np.abs(ds.beta.values - b))) for b in (0.1, 0.33, 1.0)})
    eta, beta = np.meshgrid(ds.learning_rate.values, ds.beta.values[cols], indexing="ij")
    eta, beta = eta.ravel(), beta.ravel()
    errors = reference.momentum_errors(eta, beta, spec, steps)
    expected = reference.settle_steps(errors, tol)
    settle = ds.settle_step.values[:, cols].ravel()
    diverged = ds.diverged.values[:, cols].ravel()
    assert (~diverged).sum() >= 40
    # Allowed exceptions: float32 vs float64 near-ties, where the float64 error at the disputed step is within
    # 1e-4 (relative) of ε.
    for k in np.nonzero((settle != expected) & ~diverged)[0]:
        disputed = max(settle[k], expected[k]) - 1
        assert abs(errors[disputed, k] / tol - 1) < 1e-4, (eta[k], beta[k], settle[k], expected[k])
    assert ((settle != expected) & ~diverged).sum() <= 3
    assert (np.nan_to_num(errors[:, diverged], nan=np.inf) > 1e6).any(axis=0).all()  # they do blow up


def test_momentum_optimum_is_where_the_complex_regions_touch(data):
    eta, beta, rho = theory.momentum_optimum(COURSE_SPECTRUM)
    assert (eta, beta, rho) == pytest.approx((1.0, 40 / 121, 9 / 11), rel=1e-12)
    with jax.enable_x64():
        lo_small = float(theory.momentum_repeated_root_lrs(beta, 0.05)[0])
        hi_large = float(theory.momentum_repeated_root_lrs(beta, 5.0)[1])
        radii = theory.spectral_radius(theory.momentum_matrix(eta, beta, np.array(COURSE_SPECTRUM)))
    assert lo_small == pytest.approx(eta, rel=1e-9) and hi_large == pytest.approx(eta, rel=1e-9)
    np.testing.assert_allclose(radii, rho, rtol=1e-6)
    # no grid point beats the optimal rate
    assert data["momentum_steps_heatmap"].rate.values.min() >= rho - 1e-6
