"""Trained probe `s5`: the product of a sequence of permutations of 5 elements, against its length.

Tests a model trained with `experiment=probe_s5` (running products of 32 permutations) on longer
sequences: one row per sequence, scored at its last position (the product of all of them, one of
120 symbols); `difficulty` = length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch

from eval.probes.trained import evaluate_lengths
from eval.score import LoadedModel
from train.data.synthetic.s5 import S5, S5Config


@dataclass
class Settings:
    """Test lengths (training: 32) and sampling; `n` must be the training task's."""

    lengths: list[int] = field(default_factory=lambda: [8, 16, 32, 64, 128])
    examples: int = 200  # sequences per length
    seed: int = 0
    batch_size: int = 50
    n: int = S5Config.n


def evaluate(
    model: LoadedModel, settings: Settings, tokenizer=None, device: torch.device | str = "cpu", dtype=None
) -> pd.DataFrame:
    """One row per test sequence for each length."""
    return evaluate_lengths(model, S5(S5Config(n=settings.n)), "s5", settings, device)
