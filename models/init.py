"""Weight initialisation helpers: truncated normal at +-3 std, the Olmo 2/3 default."""

from __future__ import annotations

from torch import nn


def init_linear(layer: nn.Linear, std: float) -> None:
    """Truncated normal weights (cut at 3 std), zero bias."""
    nn.init.trunc_normal_(layer.weight, mean=0.0, std=std, a=-3 * std, b=3 * std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
