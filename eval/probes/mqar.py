"""Trained probe `mqar`: recall against the number of key-value pairs (Zoology, Arora et al. 2023).

Tests a model trained with `experiment=probe_mqar` on examples with exactly P pairs for each P in
`pairs`, past the recurrent state's key capacity (a Gated DeltaNet head of key width K stores at
most K keys exactly). One row per query; `difficulty` = P.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch

from eval.probes.trained import evaluate_setting
from eval.score import LoadedModel
from train.data.synthetic.mqar import MQAR, MQARConfig


@dataclass
class Settings:
    """Test settings; `keys`/`values` must be the training task's (`conf/data/probe_mqar.yaml`)."""

    pairs: list[int] = field(default_factory=lambda: [4, 8, 12, 16, 20])
    seq_len: int = 64  # the training length of experiment=probe_mqar; >= 3 * max(pairs)
    examples: int = 100  # test sequences per setting (each holds P queries)
    seed: int = 0
    batch_size: int = 64
    keys: int = MQARConfig.keys
    values: int = MQARConfig.values


def evaluate(
    model: LoadedModel, settings: Settings, tokenizer=None, device: torch.device | str = "cpu", dtype=None
) -> pd.DataFrame:
    """One row per query of `settings.examples` sequences for each number of pairs."""
    frames = []
    for pairs in settings.pairs:
        task = MQAR(MQARConfig(keys=settings.keys, values=settings.values, pairs_min=pairs, pairs_max=pairs))
        frames.append(
            evaluate_setting(model, task, "mqar", f"pairs={pairs}", pairs, settings.seq_len,
                             settings.examples, settings.seed, settings.batch_size, torch.device(device))
        )  # fmt: skip
    return pd.concat(frames, ignore_index=True)
