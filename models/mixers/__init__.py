"""Sequence mixers, one per file: each module class carries its config dataclass (`config_class`),
and the registry below picks both by the config's required `type`."""

from __future__ import annotations

from torch import nn

from models.mixers.attention import Attention, AttentionConfig
from models.mixers.base import MixerConfig
from models.mixers.deltanet import DeltaNet, DeltaNetConfig
from models.mixers.gated_deltanet import GatedDeltaNet, GatedDeltaNetConfig
from models.mixers.gla import GatedLinearAttention, GLAConfig
from models.mixers.mamba2 import Mamba2, Mamba2Config

MIXERS: dict[str, type[nn.Module]] = {
    cls.config_class.type: cls for cls in (Attention, GatedDeltaNet, DeltaNet, GatedLinearAttention, Mamba2)
}
MIXER_CONFIGS: dict[str, type[MixerConfig]] = {kind: cls.config_class for kind, cls in MIXERS.items()}


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
    "MIXER_CONFIGS",
    "Attention",
    "AttentionConfig",
    "DeltaNet",
    "DeltaNetConfig",
    "GLAConfig",
    "GatedDeltaNet",
    "GatedDeltaNetConfig",
    "GatedLinearAttention",
    "Mamba2",
    "Mamba2Config",
    "MixerConfig",
    "build_mixer",
    "mixer_flops_per_token",
    "mixer_params",
]
