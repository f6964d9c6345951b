"""Sequence mixers, one per file, chosen by `MixerConfig.type`."""

from __future__ import annotations

from torch import nn

from models.config import MixerConfig
from models.mixers.attention import Attention
from models.mixers.deltanet import DeltaNet
from models.mixers.gated_deltanet import GatedDeltaNet
from models.mixers.gla import GatedLinearAttention
from models.mixers.mamba2 import Mamba2

MIXERS: dict[str, type[nn.Module]] = {
    "attention": Attention,
    "gated_deltanet": GatedDeltaNet,
    "deltanet": DeltaNet,
    "gla": GatedLinearAttention,
    "mamba2": Mamba2,
}


def build_mixer(cfg: MixerConfig, d_model: int, norm_eps: float) -> nn.Module:
    """Instantiate the mixer class registered for `cfg.type` (configs are validated upstream)."""
    return MIXERS[cfg.type](cfg, d_model, norm_eps)


def mixer_params(cfg: MixerConfig, d_model: int) -> int:
    """Analytic parameter count of one mixer (tests check it against built modules)."""
    return MIXERS[cfg.type].num_params(cfg, d_model)


def mixer_flops_per_token(cfg: MixerConfig, d_model: int, seq_len: int) -> int:
    """Training FLOPs per token of one mixer at context length `seq_len`."""
    return MIXERS[cfg.type].flops_per_token(cfg, d_model, seq_len)


__all__ = [
    "MIXERS",
    "Attention",
    "DeltaNet",
    "GatedDeltaNet",
    "GatedLinearAttention",
    "Mamba2",
    "build_mixer",
    "mixer_flops_per_token",
    "mixer_params",
]
