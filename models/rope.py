"""Rotary position embeddings (Su et al., 2021) in the half-split layout of Llama/Olmo, with the
optional YaRN frequency scaling (Peng et al., 2023) that Olmo 3 applies to its full-attention layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class YarnConfig:
    """YaRN RoPE scaling (Peng et al., 2023), as Olmo 3 uses on its full-attention layers."""

    factor: float = 8.0
    original_max_len: int = 8192
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    attention_factor: float | None = None  # default: 0.1 * ln(factor) + 1


def rope_inv_freq(head_dim: int, theta: float, yarn: YarnConfig | None = None) -> tuple[torch.Tensor, float]:
    """Inverse frequencies [head_dim/2] and the cos/sin scale (1 without YaRN).

    YaRN interpolates the low frequencies by `factor`, keeps the high ones, and blends linearly
    between the dimensions that complete `beta_fast` and `beta_slow` rotations over the original
    context; cos and sin are scaled by `attention_factor` (default 0.1 ln(factor) + 1).
    """
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
    inv_freq = 1.0 / theta**exponents
    if yarn is None:
        return inv_freq, 1.0

    def dim_for(rotations: float) -> float:  # the dimension that turns `rotations` times
        return head_dim * math.log(yarn.original_max_len / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    low = max(math.floor(dim_for(yarn.beta_fast)), 0)
    high = min(math.ceil(dim_for(yarn.beta_slow)), head_dim - 1)
    ramp = ((torch.arange(head_dim // 2, dtype=torch.float32) - low) / max(high - low, 1e-3)).clamp(0, 1)
    keep = 1 - ramp  # 1: extrapolate (high frequency), 0: interpolate
    inv_freq = inv_freq / yarn.factor * (1 - keep) + inv_freq * keep
    scale = yarn.attention_factor
    if scale is None:
        scale = 0.1 * math.log(yarn.factor) + 1.0 if yarn.factor > 1 else 1.0
    return inv_freq, scale


def rope_angles(
    positions: torch.Tensor, head_dim: int, theta: float, yarn: YarnConfig | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin for `positions` [T], fp32, shaped [T, head_dim]."""
    inv_freq, scale = rope_inv_freq(head_dim, theta, yarn)
    freqs = positions.float()[:, None] * inv_freq.to(positions.device)  # [T, head_dim/2]
    freqs = torch.cat((freqs, freqs), dim=-1)
    return freqs.cos() * scale, freqs.sin() * scale


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate `x` [B, T, H, Dh] by angles [T, Dh]; computed in fp32, cast back."""
    cos, sin = cos[:, None], sin[:, None]  # broadcast over heads
    x32 = x.float()
    half = x32.shape[-1] // 2
    rotated = torch.cat((-x32[..., half:], x32[..., :half]), dim=-1)
    return (x32 * cos + rotated * sin).to(x.dtype)
