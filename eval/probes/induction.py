"""In-context copying: a random token sequence shown twice; how much better is the second copy predicted?

    <|endoftext|> x_1 ... x_L x_1 ... x_L      (x uniform over the tokenizer's non-special ids)

One row per sequence and length L (`eval.induction`): `margin` is the sequence's induction score,
the mean loss on its first copy minus that on its second (tokens 2..L of each, nats), and
`correct` says that most of its second copy was predicted top-1; `first_loss`, `second_loss` and
`second_acc` (top-1 accuracy on the second copy) are kept beside them. The sequences depend only
on the settings and the tokenizer, so every model with that tokenizer sees the same ones, and those
of L = 64 with 8 examples and seed 0 are exactly the in-loop `val/induction` batch of a run with
seq_len >= 129 on the same tokenizer. The report adds a table of the score and the second-copy
accuracy per model and L (`eval.probes.report.induction_stats`), which `eval.copying` reads for
models without training metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer

from eval.induction import induction_sequences, sequence_scores
from eval.probes import COLUMNS
from eval.probes.render import separator_id
from eval.probes.scoring import context_limit
from eval.score import LoadedModel
from models.errors import UserError
from train.data.tokenizer import special_token_ids

EXTRA = ["first_loss", "second_loss", "second_acc"]


@dataclass
class Settings:
    """conf/probes/induction.yaml."""

    lengths: list[int] = field(default_factory=lambda: [32, 128, 512])  # tokens per copy
    n_examples: int = 50  # sequences per length
    seed: int = 0
    batch_size: int = 4  # sequences per forward
    prefix_token: str = "<|endoftext|>"  # the separator before the first copy


def sequences(settings: Settings, tokenizer: Tokenizer, length: int) -> np.ndarray:
    """The [n_examples, 1 + 2 * length] sequences of one length (the same for every model)."""
    sep = separator_id(tokenizer, settings.prefix_token)
    vocab = tokenizer.get_vocab_size()
    return induction_sequences(
        vocab, special_token_ids(tokenizer), length, settings.n_examples, settings.seed, sep
    )


def evaluate(
    model: LoadedModel,
    settings: Settings,
    tokenizer: Tokenizer | None,
    device: torch.device,
    dtype: torch.dtype,
) -> pd.DataFrame:
    """One row per sequence and length: COLUMNS plus first_loss, second_loss, second_acc."""
    if tokenizer is None:
        raise UserError("probe 'induction' draws token ids from the models' tokenizer; pass tokenizer=.")
    if not settings.lengths or any(n < 2 for n in settings.lengths):
        raise UserError(f"induction lengths {settings.lengths} must be a non-empty list of lengths >= 2.")
    limit, notes, rows = context_limit(model), [], []
    for length in settings.lengths:
        if limit is not None and 2 * length + 1 > limit:
            notes.append(f"induction L={length} skipped for {model.name}: {2 * length + 1} tokens exceed its "
                         f"max_position_embeddings {limit}.")  # fmt: skip
            continue
        scores = sequence_scores(
            model.forward, sequences(settings, tokenizer, length), settings.batch_size, device
        )
        for i in range(settings.n_examples):
            rows.append({
                "probe": "induction", "setting": f"L={length}", "difficulty": length, "example": i,
                "correct": bool(scores["second_acc"][i] > 0.5), "margin": float(scores["score"][i]),
                "target_loss": float(scores["second_loss"][i]),
                **{key: float(scores[key][i]) for key in EXTRA},
            })  # fmt: skip
    frame = pd.DataFrame(rows, columns=[*COLUMNS, *EXTRA])
    frame.attrs["notes"] = notes
    return frame
