"""Running `python -m train` / `torchrun` in subprocesses on a small demo corpus, and reading metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DEMO_CAPS = [f"data.sources.{s}.max_bytes=120000" for s in ("prose", "books", "python", "html", "latex")]
TINY = ["trainer.global_batch_tokens=1024", "trainer.seq_len=64", "trainer.micro_batch_size=4",
        "trainer.precision=fp32", "trainer.progress=false", "trainer.log_interval=1", "logger=none"]  # fmt: skip


def train_command(
    run_dir: Path, data_dir: Path, overrides: list[str], ranks: int = 1, caps: bool = True
) -> list[str]:
    args = [
        f"hydra.run.dir={run_dir}",
        f"data.path={data_dir}",
        *(DEMO_CAPS if caps else []),
        *TINY,
        *overrides,
    ]
    if ranks == 1:
        return [sys.executable, "-m", "train", *args]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]
    return [*torchrun, "-m", "train", *args]


def run_train(
    run_dir: Path, data_dir: Path, *overrides: str, ranks: int = 1, caps: bool = True
) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1" if ranks > 1 else os.environ.get("OMP_NUM_THREADS", "2")}
    command = train_command(run_dir, data_dir, list(overrides), ranks, caps)
    return subprocess.run(command, capture_output=True, text=True, env=env)


def losses(run_dir: Path) -> dict[int, float]:
    """step -> training loss; for a resumed run the last record of each step wins."""
    out = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            out[record["step"]] = record["loss"]
    return out


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
