"""Sequence-mixing kernels with a pure PyTorch path for CPU and fla's Triton kernels on CUDA."""

from models.ops.gated_delta_rule import gated_delta_rule
from models.ops.gated_linear_attention import gla, simple_gla
from models.ops.short_conv import short_conv

__all__ = ["gated_delta_rule", "gla", "short_conv", "simple_gla"]
