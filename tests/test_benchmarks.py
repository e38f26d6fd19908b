"""The benchmark scripts run at their smoke size, print their table and write their results file."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run_quick(script: str, tmp_path) -> tuple[str, dict]:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, json.loads(out.read_text())


@pytest.mark.parametrize(
    ("script", "printed"),
    [("sweep_throughput.py", "pt-steps/s"), ("sweep_store.py", "streamed / in memory"), ("train_grid.py", "nets/s")],
)
def test_benchmark_runs_at_smoke_size(script, printed, tmp_path):
    stdout, result = _run_quick(script, tmp_path)
    assert printed in stdout or printed.replace("pt-", "point-") in stdout
    text = json.dumps(result)
    assert "float32" in text and "jax" in text  # the dtype and versions travel with every number
    if script == "sweep_store.py":
        assert result["in_memory"]["complete"] == result["streamed"]["complete"] == result["resumed"]["complete"] == 1
        assert result["cpu_model"]


SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if "\ndef main(" in p.read_text())


def test_every_benchmark_script_is_found():
    assert SCRIPTS == [
        "jacobian_features.py", "mc_throughput.py", "sweep_store.py", "sweep_throughput.py", "train_grid.py"
    ]  # fmt: skip


@pytest.mark.parametrize("script", SCRIPTS)
def test_smoke_runs_never_replace_the_recorded_results(script, monkeypatch):
    """A --quick run writes to results/quick/ (git-ignored), a full run to results/, --out wherever it says."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import common

    results = ROOT / "benchmarks" / "results"
    name = script.removesuffix(".py")
    source = (ROOT / "benchmarks" / script).read_text()
    assert f'add_out_argument(p, "{name}")' in source and f'results_path(args, "{name}")' in source
    parse = argparse.ArgumentParser()
    parse.add_argument("--quick", action="store_true")
    common.add_out_argument(parse, name)
    assert common.results_path(parse.parse_args([]), name) == results / f"{name}.json"
    assert common.results_path(parse.parse_args(["--quick"]), name) == results / "quick" / f"{name}.json"
    assert common.results_path(parse.parse_args(["--quick", "--out", "x.json"]), name) == Path("x.json")
    ignored = subprocess.run(["git", "check-ignore", "-q", str(results / "quick" / f"{name}.json")], cwd=ROOT)
    assert ignored.returncode == 0
