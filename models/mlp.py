"""The SwiGLU feed-forward layer shared by every block."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.init import init_linear


class SwiGLU(nn.Module):
    """`down(silu(gate(x)) * up(x))` (Shazeer, 2020), no biases."""

    def __init__(self, d_model: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(d_model, hidden, bias=False)
        self.up_proj = nn.Linear(d_model, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, d_model, bias=False)

    def reset_parameters(self, std: float, out_std: float) -> None:
        init_linear(self.gate_proj, std)
        init_linear(self.up_proj, std)
        init_linear(self.down_proj, out_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, D] -> [B, T, D]
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    @staticmethod
    def num_params(d_model: int, hidden: int) -> int:
        return 3 * d_model * hidden

    @staticmethod
    def flops_per_token(d_model: int, hidden: int) -> int:
        """Training FLOPs (forward + backward = 3 x forward, 2 FLOPs per multiply-add)."""
        return 6 * SwiGLU.num_params(d_model, hidden)
