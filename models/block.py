"""One residual block: a sequence mixer then a SwiGLU MLP, with a selectable norm placement."""

from __future__ import annotations

import torch
from torch import nn

from models.mlp import SwiGLU
from models.norms import RMSNorm
from models.packing import Packing


class Block(nn.Module):
    """`x + mixer(.)` then `x + mlp(.)`; every layer of every architecture is this class.

    `placement="pre"`: `x + f(norm(x))` (GPT-2/Llama; Olmo Hybrid's Gated DeltaNet layers).
    `placement="post"`: Olmo 2/3's reordered post-norm `x + norm(f(x))`, which keeps the residual
    stream unnormalised and bounds each update.
    """

    def __init__(self, mixer: nn.Module, mlp: SwiGLU, d_model: int, norm_eps: float, placement: str) -> None:
        super().__init__()
        self.placement = placement
        self.mixer = mixer
        self.mlp = mlp
        self.mixer_norm = RMSNorm(d_model, norm_eps)
        self.mlp_norm = RMSNorm(d_model, norm_eps)

    def reset_parameters(self, std: float, out_std: float) -> None:
        self.mixer.reset_parameters(std, out_std)
        self.mlp.reset_parameters(std, out_std)
        self.mixer_norm.reset_parameters()
        self.mlp_norm.reset_parameters()

    def forward(self, x: torch.Tensor, packing: Packing | None = None) -> torch.Tensor:
        if self.placement == "pre":
            x = x + self.mixer(self.mixer_norm(x), packing=packing)
            return x + self.mlp(self.mlp_norm(x))
        x = x + self.mixer_norm(self.mixer(x, packing=packing))
        return x + self.mlp_norm(self.mlp(x))
