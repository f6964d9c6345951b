"""Trained probe `parity`: the parity of a whole bit string against its length (Grazzi et al. 2025).

Tests a model trained with `experiment=probe_parity` (running parity of 64 bits) on longer strings:
one row per string, scored at its last position (the parity of every bit); `difficulty` = length.
A linear RNN gets long strings right only if its transition can flip sign (`allow_neg_eigval`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch

from eval.probes.trained import evaluate_lengths
from eval.score import LoadedModel
from train.data.synthetic.parity import Parity, ParityConfig


@dataclass
class Settings:
    """Test lengths (training: 64) and sampling; `p_one` must be the training task's."""

    lengths: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256, 512])
    examples: int = 200  # strings per length
    seed: int = 0
    batch_size: int = 50
    p_one: float = ParityConfig.p_one


def evaluate(
    model: LoadedModel, settings: Settings, tokenizer=None, device: torch.device | str = "cpu", dtype=None
) -> pd.DataFrame:
    """One row per test string for each length."""
    return evaluate_lengths(model, Parity(ParityConfig(p_one=settings.p_one)), "parity", settings, device)
