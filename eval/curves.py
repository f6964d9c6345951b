"""Over training snapshots: the induction score and the paired gap per filter against step.

`python -m eval models=[...] corpus=... +curves.tf=[runs/tf/snapshots/step_*] +curves.rnn=[...]`
scores every snapshot (`trainer.snapshots=true`); beside each run's filtered loss per step
(`curves.png`) it measures

- the snapshot's induction score (`eval.induction`: the first `INDUCTION_COUNT` sequences of
  `INDUCTION_LENGTH` tokens, seed 0, after the separator; the in-loop `val/induction` batch is the
  first 8 of them when seq_len >= 129), plotted per run against step (`induction_curves.png`);
- for every pair of runs (earlier minus later in `curves`), at every step both have, the paired gap
  per filter with its 95% document-bootstrap CI (`eval.compare.paired_gaps`), plotted against step
  under the induction scores on a shared step axis (`gap_curves.png`): a gap on a copy filter that
  changes sign when one run's induction score crosses 1 nat is the crossover the study describes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer

from eval import compare
from eval.induction import induction_score, induction_sequences
from eval.score import LoadedModel
from train.data.tokenizer import special_token_ids

INDUCTION_LENGTH = 64
INDUCTION_COUNT = 16


def snapshot_induction(
    model: LoadedModel, tokenizer: Tokenizer, prefix_id: int, device: torch.device
) -> dict:
    """{score, second_acc} of one snapshot on the fixed curve sequences."""
    ids = induction_sequences(tokenizer.get_vocab_size(), special_token_ids(tokenizer), INDUCTION_LENGTH,
                              INDUCTION_COUNT, 0, prefix_id)  # fmt: skip
    result = induction_score(model.forward, ids, device=device)
    return {"score": result["score"], "second_acc": result["second_acc"]}


def gap_curves(
    table: pd.DataFrame,
    masks: dict[str, np.ndarray],
    losses: dict[tuple[str, int], np.ndarray],
    runs: list[str],
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """model_a, model_b, step, filter, gap, ci_low, ci_high, tokens, documents: per pair of runs
    (earlier minus later) at each step both were scored; `losses[(run, step)]` is per table row."""
    frames = []
    for a, b in compare.pairs(runs):
        for step in sorted({s for r, s in losses if r == a} & {s for r, s in losses if r == b}):
            pair = pd.DataFrame({"doc_id": table["doc_id"].to_numpy(), compare.loss_column(a): losses[(a, step)],
                                 compare.loss_column(b): losses[(b, step)]})  # fmt: skip
            frames.append(compare.paired_gaps(pair, masks, [a, b], n_boot, seed).assign(step=step))
    if not frames:
        return pd.DataFrame()
    gaps = pd.concat(frames, ignore_index=True)
    return gaps[
        ["model_a", "model_b", "step", *[c for c in gaps.columns if c not in ("model_a", "model_b", "step")]]
    ]
