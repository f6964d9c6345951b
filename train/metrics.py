"""Metrics out of the loop: always a local `metrics.jsonl`, optionally Weights & Biases (rank 0 only).

Nothing depends on syncing: wandb runs offline by default (`WANDB_MODE=offline` semantics) and
`metrics.jsonl` holds every logged value, one JSON object per line, flushed as it is written.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import torch

from train.config import LoggerConfig

# Dense (no 2:4 sparsity) bf16 tensor-core peak FLOP/s of one GPU, from NVIDIA's datasheets, keyed
# by the exact `torch.cuda.get_device_name()`: the SXM, PCIe and NVL forms of one chip differ in
# clocks and power, so a substring ("H100") would credit a PCIe card with the SXM figure. A name not
# listed logs `mfu: null` (set trainer.peak_flops for it).
KNOWN_PEAK_FLOPS = {
    "NVIDIA H100 80GB HBM3": 989e12,  # H100 SXM5
    "NVIDIA H100 PCIe": 756e12,
    "NVIDIA H100 NVL": 835e12,
    "NVIDIA H200": 989e12,  # H200 SXM
    "NVIDIA H200 NVL": 835e12,
    "NVIDIA A100-SXM4-40GB": 312e12,
    "NVIDIA A100-SXM4-80GB": 312e12,
    "NVIDIA A100-PCIE-40GB": 312e12,
    "NVIDIA A100 80GB PCIe": 312e12,
    "NVIDIA B200": 2250e12,  # HGX B200 (1000 W)
    "NVIDIA L40S": 362e12,
    "NVIDIA L40": 181e12,
    "NVIDIA L4": 121e12,
    "NVIDIA A10": 125e12,
}
_unknown_noticed: set[str] = set()


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
            self.wandb.log({k: v for k, v in metrics.items() if v is not None}, step=step)

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


def gpu_peak_flops(name: str, announce: bool = True) -> float | None:
    """The bf16 dense peak of the GPU called exactly `name`; None, with one notice per name, if unknown."""
    peak = KNOWN_PEAK_FLOPS.get(name)
    if peak is None and announce and name not in _unknown_noticed:
        _unknown_noticed.add(name)
        print(
            f"notice: no bf16 peak known for GPU {name!r}, so mfu is logged as null; "
            "set trainer.peak_flops=<FLOP/s of one device> to get it.",
            file=sys.stderr,
        )
    return peak


def peak_flops(device: torch.device, override: float | None, announce: bool = True) -> float | None:
    """Peak FLOP/s of one device: the override, a known GPU's bf16 peak (None if unknown), or a CPU
    measurement. `announce` prints the unknown-GPU notice (the main rank only, in the trainer)."""
    if override:
        return override
    if device.type == "cuda":
        return gpu_peak_flops(torch.cuda.get_device_name(device), announce)
    return measured_matmul_flops()


def mfu(tokens_per_s: float, world_size: int, flops_per_token: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation of one device; None (logged as null) when the device's peak is unknown."""
    return tokens_per_s / world_size * flops_per_token / peak if peak else None


def peak_memory_gb(device: torch.device) -> float:
    """Peak memory of this process: CUDA allocator peak, or the CPU resident-set high-water mark."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
