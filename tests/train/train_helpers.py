"""Running `python -m train` / `torchrun` in subprocesses on a small demo corpus, and reading metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# ~120 kB of each domain; half the (few) documents held out, so every domain has validation text
DEMO_CAPS = [f"data.sources.{s}.max_bytes=120000" for s in ("prose", "books", "python", "html", "latex")]
DEMO_CAPS.append("data.validation_fraction=0.5")
TINY = [
    "trainer.global_batch_tokens=1024",
    "trainer.seq_len=64",
    "trainer.micro_batch_size=4",
    "trainer.precision=fp32",
    "trainer.progress=false",
    "trainer.log_interval=1",
    "logger=none",
]


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


def run_train_as_slurm_tasks(
    run_dir: Path, data_dir: Path, *overrides: str, tasks: int = 2, port: int = 29517
) -> subprocess.CompletedProcess:
    """`python -m train` started the way `srun --ntasks=N` starts it: N processes with SLURM's
    variables (and no RANK), so `train.distributed` must build the world from them."""
    command = train_command(run_dir, data_dir, list(overrides))
    slurm = {
        "SLURM_JOB_ID": "4242",
        "SLURM_NTASKS": str(tasks),
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_NODEID": "0",
        "SLURM_JOB_NODELIST": "localhost",
        "MASTER_PORT": str(port),
        "OMP_NUM_THREADS": "1",
    }
    base = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    processes = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**base, **slurm, "SLURM_PROCID": str(i), "SLURM_LOCALID": str(i)},
        )
        for i in range(tasks)
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    code = max(abs(p.returncode) for p in processes)
    return subprocess.CompletedProcess(
        command, code, "".join(o for o, _ in outputs), "".join(e for _, e in outputs)
    )


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
