"""The ``sim features`` command: both course presets at --quick size and one tiny network write a readable netCDF
file that agrees with the printed table (and, for the network, with ``sim.networks.course.model`` called directly);
bad input is one line naming the parameter, exit status 2, before anything compiles and before any file is written."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr

from sim import cli
from sim.networks import course as experiments
from sim.networks import mlp as networks
from sim.networks import training

TINY = ["--depth", "2", "--width", "4", "--init", "he", "--n-train", "64", "--steps", "30"]


def _read(path) -> xr.Dataset:
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()


def _table(text: str) -> dict[str, list[str]]:
    """The printed table's rows: model name → the remaining columns."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("model "))
    rows = {}
    for line in lines[start + 1 :]:
        if line.startswith("weight-gradient norms"):
            break
        name, *cols = line.split()
        rows[name] = cols
    return rows


def _check_file_matches_table(ds: xr.Dataset, text: str, *, published: bool):
    rows = _table(text)
    assert list(rows) == [str(m) for m in ds.model.values]
    for name, cols in rows.items():
        m = ds.sel(model=name)
        assert int(cols[0]) == int(m.num_params)
        assert float(cols[1]) == pytest.approx(float(m.final_test_mse), rel=1e-3)
        if published:
            pub = float(m.published_test_mse)
            assert (cols[2] == "NaN") if np.isnan(pub) else (float(cols[2]) == pytest.approx(pub))
        assert float(cols[3 if published else 2]) == pytest.approx(float(m.constant_mse), rel=1e-3)
        assert cols[4 if published else 3] == ("yes" if bool(m.diverged) else "no")
    # one gradient-norm line per model, one number per layer
    for name in rows:
        (line,) = [ln for ln in text.splitlines() if ln.startswith(f"  {name} ") and "->" not in ln]
        assert len(line.split()) - 1 == int(ds.num_layers.sel(model=name))


def test_course_part2_quick(tmp_path, capsys):
    out = tmp_path / "part2.nc"
    assert cli.main(["features", "course-part2", "--quick", "-o", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    ds = _read(out)
    assert list(ds.model.values) == list(experiments.PART2_MODELS) and ds.sizes["sample"] == 300
    _check_file_matches_table(ds, text, published=True)
    assert _table(text)["large"][4] == "yes" and bool(ds.diverged.sel(model="large"))  # U(±3) diverges
    assert not ds.diverged.sel(model=["shallow", "small", "he"]).any()
    assert ds.diverged.dtype == bool and ds.attrs["preset"] == "course-part2" and ds.attrs["quick"] == 1
    assert ds.attrs["command"] == f"sim features course-part2 --quick -o {out} --no-progress"
    assert f"wrote {out}" in text


def test_course_part1_quick_with_steps(tmp_path, capsys):
    out = tmp_path / "part1.nc"
    assert cli.main(["features", "course-part1", "--quick", "--steps", "500", "-o", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    ds = _read(out)
    assert list(ds.model.values) == ["1x10", "2x10"] and int(ds.attrs["steps"]) == 500 and int(ds.step[-1]) == 500
    _check_file_matches_table(ds, text, published=False)
    assert "published" not in text.splitlines()[1]
    assert ds.elbows.shape[-1] == 10 and ds.elbow_defined.dtype == bool
    np.testing.assert_allclose(ds.attrs["kinks"], experiments.KINKS)


def test_one_network_agrees_with_the_experiment(tmp_path, capsys):
    out = tmp_path / "net.nc"
    extra = ["--zero-bias", "--target", "kinks", "--train-interval", "0,0.8", "--optimizer", "adam", "--lr", "0.01"]
    extra += ["--batch-size", "16", "--checkpoint-every", "10", "--seed", "3"]
    assert cli.main(["features", *TINY, *extra, "-o", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    ds = _read(out)
    _check_file_matches_table(ds, text, published=False)
    kw = {"zero_bias": True, "target": "kinks", "train_interval": (0.0, 0.8), "optimizer": "adam"}
    kw |= {"learning_rate": 0.01, "batch_size": 16, "n_train": 64, "steps": 30, "checkpoint_every": 10, "seed": 3}
    ref = experiments.model(depth=2, width=4, init="he_uniform", **kw, progress=False)
    assert list(ds.model.values) == ["2x4-he_uniform"] and list(ds.step.values) == [0, 10, 20, 30]
    for name in ("final_test_mse", "singular_values", "grad_norms", "elbows", "elbow_defined", "diverged"):
        np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)
    assert ds.attrs["optimizer"] == "adam" and ds.attrs["zero_bias"] == 1 and ds.attrs["target"] == "kinks"
    assert ds.x_train.values.max() <= 0.8


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        cli.main(["features", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "sim features course-part2" in text and "he (= he_uniform)" in text


BAD = [  # (arguments, flag named in the error)
    (["--depth", "0", "--width", "4", "--init", "he"], "--depth"),
    (["--depth", "2", "--width", "0", "--init", "he"], "--width"),
    (["--depth", "2.5", "--width", "4", "--init", "he"], "--depth"),
    (["--depth", "-2", "--width", "4", "--init", "he"], "--depth"),
    (["--depth", "2", "--width", "4", "--init", "xavier"], "--init"),
    (["--depth", "2", "--width", "4", "--init", "uniform"], "--scale"),
    (["--depth", "2", "--width", "4", "--init", "he", "--scale", "1"], "--scale"),
    (["--depth", "2", "--width", "4"], "--init"),
    (["--width", "4", "--init", "he"], "--depth"),
    ([*TINY, "--lr", "0"], "--lr"),
    ([*TINY, "--lr=-0.1"], "--lr"),
    ([*TINY, "--lr", "-0.1"], "--lr"),
    ([*TINY, "--eta", "-0.1"], "--eta"),  # the alias the user typed
    ([*TINY, "--lr", "nan"], "--lr"),
    ([*TINY, "--batch-size", "65"], "--batch-size"),
    ([*TINY, "--momentum", "1"], "--momentum"),
    ([*TINY, "--steps", "0"], "--steps"),
    ([*TINY, "--checkpoint-every", "0"], "--checkpoint-every"),
    ([*TINY, "--seed=-1"], "--seed"),
    ([*TINY, "--seed", "-1"], "--seed"),
    ([*TINY, "--train-interval", "1,0"], "--train-interval"),
    ([*TINY, "--train-interval", "-1,-2"], "--train-interval"),
    ([*TINY, "--train-interval", "0"], "--train-interval"),
    ([*TINY, "--train-interval", "a,b"], "--train-interval"),
    ([*TINY, "--target", "cubic"], "--target"),
    ([*TINY, "--optimizer", "rmsprop"], "--optimizer"),
    ([*TINY, "--quick"], "--quick"),
    (["course-part3"], "preset"),
    (["course-part2", "--depth", "4"], "--depth"),
    (["course-part1", "--lr", "0.1"], "--lr"),
    (["course-part2", "--steps", "0"], "--steps"),
    ([*TINY, "--seeds", "4"], "--seeds"),
    (["course-part1", "--seeds", "4"], "--seeds"),
    (["course-part2", "--seeds", "1"], "--seeds"),
    (["course-part2", "--seeds", "2.5"], "--seeds"),
]


@pytest.mark.parametrize(("argv", "param"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_naming_the_parameter(argv, param, tmp_path, capsys, monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(networks, "_init", no_compile)
    monkeypatch.setattr(training, "_compiled", no_compile)
    code = cli.main(["features", *argv, "-o", str(tmp_path / "out.nc")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"sim features: error: {param}: "), err
    assert not (tmp_path / "out.nc").exists()


@pytest.mark.parametrize("output", ["/nonexistent-dir/x.nc", ".", "{tmp}/existing.nc/a.nc", "/proc/a.nc"])
def test_unwritable_output(output, tmp_path, capsys, monkeypatch):
    if output.startswith("/proc") and not os.path.isdir("/proc/self"):
        pytest.skip("needs Linux's /proc")

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before checking the output")

    monkeypatch.setattr(networks, "_init", no_compile)
    monkeypatch.setattr(training, "_compiled", no_compile)
    (tmp_path / "existing.nc").write_text("")
    assert cli.main(["features", *TINY, "-o", output.replace("{tmp}", str(tmp_path))]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("sim features: error: --output: "), err
    if "existing" in output:
        assert err.endswith("existing.nc is a file, not a directory"), err
    if output.startswith("/proc"):
        assert "cannot create a file in /proc" in err, err


def test_a_negative_interval_needs_no_equals_sign(tmp_path):
    # argparse used to take "-1,0.4" for an option; the help told users to write --train-interval=-1,0.4
    out = tmp_path / "neg.nc"
    argv = ["features", *TINY, "--steps", "5", "--train-interval", "-1,-0.5", "-o", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    x = _read(out).x_train.values
    assert x.min() >= -1 and x.max() <= -0.5


def test_an_existing_output_needs_overwrite(tmp_path, capsys, monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before checking the output")

    out = tmp_path / "net.nc"
    out.write_text("an earlier result")
    monkeypatch.setattr(networks, "_init", no_compile)
    monkeypatch.setattr(training, "_compiled", no_compile)
    assert cli.main(["features", *TINY, "--no-progress", "-o", str(out)]) == 2
    assert (
        capsys.readouterr().err.strip() == f"sim features: error: --output: {out} exists: add --overwrite to replace it"
    )
    assert out.read_text() == "an earlier result"
    monkeypatch.undo()
    assert cli.main(["features", *TINY, "--no-progress", "-o", str(out), "--overwrite"]) == 0
    assert _read(out).attrs["command"].endswith("--overwrite")


def test_course_part2_over_seeds_prints_the_file(tmp_path, capsys):
    out = tmp_path / "seeds.nc"
    argv = ["features", "course-part2", "--seeds", "2", "--quick", "--steps", "20", "--no-progress", "-o", str(out)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    ds = _read(out)
    assert list(ds.seed.values) == [0, 1] and ds.attrs["experiment"] == "part2_seeds" and ds.attrs["n_train"] == 300
    lines = {line.split("  ")[0].strip(): line for line in text.splitlines()}
    for q in ds.quantity.values:
        r = ds.sel(quantity=q)
        cols = lines[str(q)][len(str(q)) :].split()
        assert float(cols[0]) == pytest.approx(float(r.published), rel=1e-2)  # printed with 3 digits
        assert float(cols[1]) == pytest.approx(float(r.seed_median), rel=1e-2)
        if int(r.seeds_used):
            assert cols[6] == f"{float(r.percentile):.0f}%"
    diverged = int(ds.diverged.sel(model="large").sum())
    assert f"large: the course's run diverged (test MSE NaN); here {diverged} of 2 seeds diverged" in text
