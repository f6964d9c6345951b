"""Metrics out of the loop: always a local `metrics.jsonl`, optionally Weights & Biases (rank 0 only).

Nothing depends on syncing: wandb runs offline by default (`WANDB_MODE=offline` semantics) and
`metrics.jsonl` holds every logged value, one JSON object per line, flushed as it is written.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import torch

from train.config import LoggerConfig

# Dense bf16 peak per GPU (TFLOP/s x 1e12), for MFU; others: set trainer.peak_flops.
KNOWN_PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12}


class MetricsLogger:
    """Append metrics to `metrics.jsonl` and mirror them to wandb when configured."""

    def __init__(self, run_dir: Path, cfg: LoggerConfig, run_name: str, config: dict, enabled: bool) -> None:
        self.enabled = enabled
        self.file = None
        self.wandb = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self.file = (run_dir / "metrics.jsonl").open("a", encoding="utf-8")
        if cfg.name == "wandb":
            import wandb

            self.wandb = wandb.init(
                project=cfg.project, entity=cfg.entity, group=cfg.group, tags=list(cfg.tags), name=run_name,
                mode=str(cfg.mode), dir=str(run_dir), config=config, resume="allow", id=_wandb_id(run_dir),
            )  # fmt: skip

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3), **metrics}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)

    def close(self) -> None:
        """Flush and finish; called in a `finally` so a crashed run still closes its wandb run."""
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


def _wandb_id(run_dir: Path) -> str:
    """A stable wandb id per run dir, so a resumed run continues the same wandb run."""
    id_file = run_dir / "wandb_id.txt"
    if not id_file.exists():
        id_file.write_text(uuid.uuid4().hex[:12])
    return id_file.read_text().strip()


def measured_matmul_flops(size: int = 1024, seconds: float = 0.5) -> float:
    """This CPU's fp32 matmul FLOP/s, measured now (the MFU denominator on CPUs).

    The fastest of the [size, size] matmuls run within `seconds`: a peak is the best the machine
    reaches, and on a shared machine a burst of load would drag an average below what the model
    being measured sees a moment later (ratios above 100% of "peak" were seen with the average).
    """
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm up
    fastest, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        tick = time.perf_counter()
        a @ b
        fastest = min(fastest, time.perf_counter() - tick)
    return 2 * size**3 / fastest


def peak_flops(device: torch.device, override: float | None) -> float | None:
    """Peak FLOP/s of one device: the override, a known GPU's bf16 peak, or a CPU measurement."""
    if override:
        return override
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return next((v for k, v in KNOWN_PEAK_FLOPS.items() if k in name), None)
    return measured_matmul_flops()


def peak_memory_gb(device: torch.device) -> float:
    """Peak memory of this process: CUDA allocator peak, or the CPU resident-set high-water mark."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
