"""The training recipe shared by every architecture: AdamW parameter groups and LR schedules.

Weight decay skips norms, biases and embeddings by default (OLMo 2/3 and the study's 1B ladder
decay neither embeddings nor norms); every schedule starts with a linear warmup from zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from models.choices import Choice


class ScheduleName(Choice):
    cosine = "cosine"
    wsd = "wsd"
    linear = "linear"
    constant = "constant"


@dataclass
class OptimConfig:
    """AdamW (Loshchilov & Hutter, 2019)."""

    lr: float = 4e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    weight_decay: float = 0.1
    decay_norms_and_biases: bool = False
    decay_embeddings: bool = False


@dataclass
class ScheduleConfig:
    """LR multiplier over steps: warmup, then `name`'s shape down to `min_lr_ratio` x lr.

    `wsd` (warmup-stable-decay) holds the peak until the last `decay_fraction` of training, then
    decays linearly; the other shapes decay over all post-warmup steps.
    """

    name: ScheduleName = ScheduleName.cosine
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    decay_fraction: float = 0.2  # wsd only

    def __post_init__(self) -> None:
        self.name = ScheduleName.parse(self.name, "schedule.name")


def parameter_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    """Two AdamW groups: decayed matrices, and the undecayed rest (norms, biases, embeddings)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_embedding = name.startswith("embed.")
        is_norm_or_bias = param.ndim < 2 or name.endswith(".bias")
        skip = (is_embedding and not cfg.decay_embeddings) or (
            is_norm_or_bias and not cfg.decay_norms_and_biases
        )
        (no_decay if skip else decay).append(param)
    return [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW over `parameter_groups`, with torch's fused kernels where the device has them."""
    return torch.optim.AdamW(parameter_groups(model, cfg), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def lr_multiplier(step: int, cfg: ScheduleConfig, max_steps: int) -> float:
    """The LR multiplier at `step` (0-based) of `max_steps`; a pure function, so resume is exact."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.name == "constant":
        return 1.0
    if cfg.name == "wsd":
        decay_steps = max(1, round(cfg.decay_fraction * max_steps))
        start = max(cfg.warmup_steps, max_steps - decay_steps)
        if step < start:
            return 1.0
        progress = min(1.0, (step - start) / max(1, max_steps - start))
        return 1.0 - (1.0 - cfg.min_lr_ratio) * progress
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, max_steps - cfg.warmup_steps))
    if cfg.name == "linear":
        return 1.0 - (1.0 - cfg.min_lr_ratio) * progress
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, max_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR over `lr_multiplier`; its state_dict carries the step for resume."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_multiplier(step, cfg, max_steps))
