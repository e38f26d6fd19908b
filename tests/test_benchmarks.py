"""The benchmark scripts run at their smoke size, print their table and write their results file."""

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
