"""The induction score: how much better a model predicts a random token sequence the second time it sees it.

    ids = induction_sequences(vocab_size=50280, special_ids={0, 1}, length=128, count=64, seed=0,
                              separator=0)        # [64, 1 + 2 * 128]: sep, x_1..x_L, x_1..x_L
    induction_score(model, ids)   # {"score": 3.1, "first_loss": 10.8, "second_loss": 7.7, "second_acc": 0.41}

Each sequence is L token ids drawn uniformly (with replacement) from the vocabulary minus the
special ids, shown twice after the separator. Nothing in the first copy is predictable, so its loss
is near log(V) for every model; on the second copy a model that looks up where the current token
occurred before and copies what followed it (an induction head, Olsson et al. 2022) predicts
every token. Both copies are scored on their tokens 2..L (the same L - 1 positions in each: a
copy's first token cannot be inferred from what precedes it), and

    score = mean loss on the first copy - mean loss on the second copy   (nats)

is about 0 before a model acquires in-context copying and several nats after; `second_acc` is the
top-1 accuracy on the second copy. Sequences are a pure function of (vocab, special ids, L, count,
seed, separator), so every model with the same tokenizer sees the same ones. The probe
`probes=[induction]` (`eval.probes.induction`), the in-loop `val/induction` (`eval.inloop_induction`)
and phase detection (`eval.phase`) all use these two functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from eval.score import row_losses
from models.errors import UserError
from train.data.tokenizer import non_special_ids

ForwardFn = Callable[[torch.Tensor], torch.Tensor]  # input_ids [B, T] -> logits [B, T, V]


def induction_sequences(
    vocab_size: int,
    special_ids: Iterable[int],
    length: int,
    count: int,
    seed: int = 0,
    separator: int | None = None,
) -> np.ndarray:
    """`count` sequences `[separator] x_1..x_L x_1..x_L`, int64 [count, 2L (+ 1 with a separator)].

    The x are uniform over ids 0..vocab_size-1 except `special_ids`; sequence i comes from
    `default_rng([seed, length, i])`, so it does not depend on `count`.
    """
    if length < 2:
        raise UserError(
            f"induction length {length} must be at least 2 tokens (copies are scored after their first)."
        )
    if count < 1:
        raise UserError(f"induction count {count} must be at least 1 sequence.")
    allowed = non_special_ids(vocab_size, special_ids)
    if len(allowed) < 2:
        raise UserError(
            f"a vocabulary of {vocab_size} ids leaves {len(allowed)} non-special ids; need at least 2."
        )
    rows = []
    for i in range(count):
        copy = allowed[np.random.default_rng([seed, length, i]).integers(0, len(allowed), size=length)]
        prefix = [] if separator is None else [separator]
        rows.append(np.concatenate([prefix, copy, copy]).astype(np.int64))
    return np.stack(rows)


@torch.no_grad()
def sequence_scores(
    forward: ForwardFn, sequences: np.ndarray, batch_size: int = 8, device: torch.device | str = "cpu"
) -> dict[str, np.ndarray]:
    """Per sequence [N]: `first_loss`, `second_loss` (mean nats over tokens 2..L of each copy),
    `second_acc` (top-1 accuracy over the same second-copy tokens) and `score` (first - second)."""
    if batch_size < 1:
        raise UserError(f"batch_size {batch_size} must be a positive number of sequences.")
    n, width = sequences.shape
    length, offset = width // 2, width % 2  # offset 1: a separator precedes the first copy
    # Input position p predicts token p + 1: tokens 2..L of the first copy are predicted at
    # offset .. offset + L - 2, those of the second copy L positions later.
    first = np.arange(offset, offset + length - 1)
    second = first + length
    positions = torch.from_numpy(np.concatenate([first, second]))
    out = {key: np.zeros(n) for key in ("first_loss", "second_loss", "second_acc")}
    for start in range(0, n, batch_size):
        ids = torch.from_numpy(sequences[start : start + batch_size]).to(device)
        logits = forward(ids)[:, positions.to(ids.device)]  # [B, 2(L-1), V]
        targets = ids[:, positions.to(ids.device) + 1]  # [B, 2(L-1)]
        losses = row_losses(logits.flatten(0, 1), targets.flatten()).view(targets.shape).double().cpu()
        hits = (logits.argmax(-1) == targets).double().cpu()
        rows = slice(start, start + len(ids))
        out["first_loss"][rows] = losses[:, : length - 1].mean(1).numpy()
        out["second_loss"][rows] = losses[:, length - 1 :].mean(1).numpy()
        out["second_acc"][rows] = hits[:, length - 1 :].mean(1).numpy()
    out["score"] = out["first_loss"] - out["second_loss"]
    return out


def induction_score(
    forward: ForwardFn, sequences: np.ndarray, batch_size: int = 8, device: torch.device | str = "cpu"
) -> dict[str, float]:
    """Means over the sequences: `score` (first - second, nats), `first_loss`, `second_loss`, `second_acc`."""
    per_sequence = sequence_scores(forward, sequences, batch_size, device)
    return {key: float(values.mean()) for key, values in per_sequence.items()}
