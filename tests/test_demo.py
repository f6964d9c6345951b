"""`make demo`'s pipeline in reduced form (a few steps, a few documents), so the demo cannot silently break."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the whole pipeline in small: corpus, 3 trainings, eval, probes, MQAR
def test_demo_script_runs_end_to_end(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DEMO_RUNS": str(tmp_path / "demo"),
        "DEMO_STEPS": "3",
        "DEMO_EVAL_DOCS": "2",
        "DEMO_PROBE_EXAMPLES": "2",
        "DEMO_MQAR_STEPS": "3",
    }
    done = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "gap = loss(tiny_transformer) - loss(other)" in out
    for line in ("all ", "content ", "function ", "close_bracket "):
        assert any(row.startswith(line) for row in out.splitlines()), line
    assert "tokens.html:" in out and "total time:" in out
    summary = json.loads((tmp_path / "demo" / "eval" / "summary.json").read_text())
    assert summary["models"] == ["tiny_transformer", "tiny_hybrid", "tiny_rnn"]
    for run in summary["models"]:
        start = json.loads((tmp_path / "demo" / run / "metrics.jsonl").read_text().splitlines()[0])
        assert start["event"] == "start"
    hashes = {json.loads((tmp_path / "demo" / r / "metrics.jsonl").read_text().splitlines()[0])["first_batch_sha256"]
              for r in summary["models"]}  # fmt: skip
    assert len(hashes) == 1  # the three architectures saw the same batches
    assert (tmp_path / "demo" / "eval" / "tokens.html").is_file()
    assert "probe accuracy per model" in out and any(row.startswith("closure ") for row in out.splitlines())
    probes = json.loads((tmp_path / "demo" / "probes" / "summary.json").read_text())
    assert {r["probe"] for r in probes["probes"]} == {"pronoun", "entity", "closure", "copy"}
    mqar = json.loads((tmp_path / "demo" / "mqar" / "eval" / "summary.json").read_text())
    assert {r["probe"] for r in mqar["probes"]} == {"mqar"}
    assert {r["model"] for r in mqar["probes"]} == {"tiny_transformer"}  # the one past its phase change
