"""`scripts/bench_throughput.py` (the GPU throughput benchmark) runs end to end on a CPU."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "bench_throughput.py"


@pytest.mark.slow
def test_cpu_smoke_trains_and_reports_measured_figures(tmp_path) -> None:
    """Synthetic corpus -> `python -m train` -> metrics.jsonl -> a table row with measured numbers."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu-smoke", "--models", "tiny_hybrid", "--workdir", str(tmp_path),
         "--json", str(tmp_path / "bench.json")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    row = next(line for line in done.stdout.splitlines() if line.startswith("tiny_hybrid"))
    tokens_per_s, mfu, peak_gb, relative = re.split(r"\s+", row.strip())[1:]
    assert float(tokens_per_s.replace(",", "")) > 0 and float(peak_gb) > 0
    assert mfu.endswith("%") and float(mfu[:-1]) > 0
    assert relative == "1.00"
    assert (tmp_path / "runs" / "tiny_hybrid" / "final" / "model.safetensors").is_file()
    saved = json.loads((tmp_path / "bench.json").read_text())  # the device check's step format
    assert saved["passed"] and saved["headline"].startswith("tiny_hybrid ")
    assert [r["model"] for r in saved["rows"]] == ["tiny_hybrid"]
    assert saved["rows"][0]["tokens_per_s"] == pytest.approx(float(tokens_per_s.replace(",", "")), abs=1)
