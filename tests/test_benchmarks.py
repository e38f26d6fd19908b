"""The benchmark scripts run at their smoke size and write their results file."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_sweep_throughput_quick(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "sweep_throughput.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert "point-steps/s" in proc.stdout or "pt-steps/s" in proc.stdout
    text = json.dumps(result)
    assert "float32" in text and "jax" in text
