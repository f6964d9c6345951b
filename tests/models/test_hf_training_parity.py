"""`scripts/bench_hf_parity.py`: ours and transformers' Olmo models, trained alike, stay equal step by step."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "bench_hf_parity.py"


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tiny_transformer", "tiny_hybrid"])
def test_training_losses_match_transformers_step_by_step(model: str) -> None:
    """Same exported weights, same batches, the demo recipe: a few AdamW steps give the same losses.

    The batches repeat a random block, so the models learn within these steps and a layer, loss or
    schedule that differs from transformers' moves the loss by far more than 1e-4 (a RoPE theta
    exported 10x too large, for one, does).
    """
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--models", model, "--steps", "6", "--batch", "2", "--seq-len", "64",
         "--random-tokens", "--log-interval", "0"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    step_diff = float(re.search(r"max per-step \|train loss ours - hf\|: (\S+)", done.stdout).group(1))
    validation = float(re.search(r"ours - hf: train \S+, validation (\S+)", done.stdout).group(1))
    assert step_diff < 1e-4
    assert abs(validation) < 1e-4
