"""``sim nets``: every study at --quick size through the command's own parser and ``run`` (the JSON summary, the
netCDF file with provenance), CIFAR-10 files written here, and bad input as one line naming the flag (exit 2) before
anything is imported or compiled."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from sim import cli
from sim.cli import nets
from sim.core.validate import InputError
from tests.networks.test_images import write_cifar


def _parser() -> argparse.ArgumentParser:
    parser = cli.Parser(prog="sim")
    nets.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = argv
    return nets.run(args)


def _error(argv: list[str]) -> str:
    """The one line the sim command prints for bad input (its InputError through the flag names)."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = argv
    with pytest.raises(InputError) as info:
        nets.run(args)
    return cli.user_message(info.value, cli.flag_names(parser, args, argv))


def test_init_quick_json_and_file(tmp_path, capsys):
    out = tmp_path / "init.nc"
    assert _run(["nets", "init", "--quick", "--json", "--no-progress", "-o", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["input_dim"] == 64 and summary["n_train"] == 1497 and summary["seeds"] == 2
    assert set(summary["schemes"]) == {"zero", "random", "he"}
    assert summary["schemes"]["zero"]["weight_std"] == [0.0] * 11
    he = summary["schemes"]["he"]["weight_std"]
    assert len(he) == 11 and abs(he[0] - np.sqrt(2 / 64)) < 0.01 and abs(he[5] - 0.2) < 0.02
    with xr.open_dataset(out, engine="netcdf4") as ds:
        assert ds.attrs["study"] == "init" and ds.attrs["quick"] == 1 and "git_revision" in ds.attrs
        assert ds.attrs["command"].startswith("sim nets init")
        final = float(np.median(ds.train_loss.sel(scheme="he").values[:, -1]))
        assert summary["schemes"]["he"]["final_loss"] == pytest.approx(final)


def test_optimizers_quick_table(capsys):
    assert _run(["nets", "optimizers", "--quick", "--seeds", "1", "--no-progress"]) == 0
    text = capsys.readouterr().out
    for run in ("sgd", "momentum", "adam", "rmsprop", "sgd_lr_0.1", "sgd_lr_0.1_batch_1000"):
        assert any(line.split()[:1] == [run] for line in text.splitlines()), run


def test_depth_quick_json(capsys):
    argv = ["nets", "depth", "--quick", "--scales", "0.03,0.3", "--lrs", "0.01,0.3", "--json", "--no-progress"]
    assert _run(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["depths"]) == {"3", "5"} and summary["n_train"] == 50 and summary["steps"] == 40
    for r in summary["depths"].values():
        assert 0 <= r["success_area"] <= 1 and r["cells_computed"] == 4
    assert summary["scales"] == "0.03,0.3"


def test_depth_on_cifar_files(tmp_path, capsys):
    write_cifar(tmp_path / "c", per_batch=(12, 12, 12, 12, 12), test=10)
    argv = ["nets", "depth", "--data", f"cifar10:{tmp_path / 'c'}", "--seeds", "1", "--scales", "0.01"]
    argv += ["--lrs", "1e-3", "--json", "--no-progress"]
    assert _run(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["input_dim"] == 3072 and summary["n_train"] == 50 and summary["data"].startswith("cifar10:")


BAD = [
    (["nets", "init", "--seeds", "0"], "--seeds"),
    (["nets", "init", "--seeds", "2.5"], "--seeds"),
    (["nets", "init", "--data", "mnist"], "--data"),
    (["nets", "depth", "--scales", "log:0:1:4"], "--scales"),
    (["nets", "depth", "--lrs", "1,1"], "--lrs"),
    (["nets", "depth", "--chunk-size", "0"], "--chunk-size"),
    (["nets", "optimizers", "-o", "/nonexistent-folder/x.nc"], "--output"),
]


@pytest.mark.parametrize(("argv", "flag"), BAD)
def test_bad_input_is_one_line_naming_the_flag(argv, flag):
    message = _error(argv)
    assert message.startswith(f"{flag}: ") and "\n" not in message


def test_a_missing_cifar_folder_names_the_path(tmp_path):
    message = _error(["nets", "init", "--data", f"cifar10:{tmp_path / 'none'}"])
    assert message.startswith("--data: ") and str(tmp_path / "none") in message
    write_cifar(tmp_path / "c")
    (tmp_path / "c" / "batches.meta").unlink()
    message = _error(["nets", "depth", "--data", f"cifar10:{tmp_path / 'c'}"])
    assert "batches.meta" in message and str(tmp_path / "c") in message


def test_help_and_argument_errors_import_no_heavy_library(tmp_path):
    code = (
        "import sys\nfrom sim import cli\nfrom sim.cli import nets\n"
        "p = cli.Parser(prog='sim'); nets.add_parser(p.add_subparsers(dest='command'))\n"
        "for argv in (['nets', 'depth', '--scales', 'log:0:1:3'], ['nets', 'init', '--seeds', '0'],"
        f" ['nets', 'init', '--data', 'cifar10:{tmp_path}/none']):\n"
        "    a = p.parse_args(argv); a.argv = argv\n"
        "    try:\n        nets.run(a)\n    except cli.InputError:\n        pass\n"
        "    else:\n        raise SystemExit('no error')\n"
        "try:\n    p.parse_args(['nets', 'depth', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('MODULES', ' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = set(out.stdout.splitlines()[-1].split()[1:])
    heavy = ("jax", "jaxlib", "xarray", "sympy", "matplotlib", "optax", "sklearn", "netCDF4")
    assert not [m for m in loaded if m.split(".")[0] in heavy]


def test_command_defaults_match_the_studies():
    from sim.networks import trainability

    assert nets.DEPTH_AXES == {k: trainability.DEPTH_CONFIG[k] for k in ("scales", "lrs")}
    assert nets.DEFAULT_SEEDS == trainability.DEFAULT_SEEDS


def test_an_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "init.nc"
    out.write_text("an earlier result")
    message = _error(["nets", "init", "--quick", "-o", str(out)])
    assert message == f"--output: {out} exists: add --overwrite to replace it"
    assert out.read_text() == "an earlier result"
