"""Scoring shared by the trained probes (`mqar`, `parity`, `s5`): a model's answers on test examples.

A trained probe generates test examples of its task (`train.data.synthetic`, the `test` split: a
stream no training or validation example came from) at harder settings than training's (more
pairs, longer strings), runs the model once per batch, and scores every asked position: `margin` =
log p(correct) - max log p(any other answer symbol of the task), `correct` = margin > 0,
`target_loss` = -log p(correct). Log-probabilities are over the model's whole vocabulary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from eval.probes import COLUMNS
from eval.score import LoadedModel
from models.errors import UserError
from train.data.synthetic.common import IGNORE, Task

# position selector: labels [N, T] -> boolean mask [N, T] of the positions a probe scores
Selector = Callable[[np.ndarray], np.ndarray]


def every_answer(labels: np.ndarray) -> np.ndarray:
    return labels != IGNORE


def last_position(labels: np.ndarray) -> np.ndarray:
    mask = np.zeros(labels.shape, dtype=bool)
    mask[:, -1] = labels[:, -1] != IGNORE
    return mask


POSITIVE_SETTINGS = ("examples", "batch_size")  # a trained probe's counts: 0 would score nothing


def check_settings(probe: str, settings) -> None:
    """UserError for a trained probe's setting that would score nothing: a zero count or an empty list."""
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if field.name in POSITIVE_SETTINGS and value < 1:
            raise UserError(f"probes.{probe}.{field.name}={value} must be at least 1; set a positive number.")
        if isinstance(value, list) and not value:
            raise UserError(f"probes.{probe}.{field.name} is empty; list at least one value to test.")


def score_answers(
    logits: torch.Tensor, labels: np.ndarray, mask: np.ndarray, answer_ids: np.ndarray
) -> dict[str, np.ndarray]:
    """Per selected position (row-major order): `row`, `position`, `margin`, `target_loss`.

    `logits` [N, T, V]; `labels` [N, T] (the correct answer ids); `mask` [N, T] the positions to
    score; `answer_ids` [A] the task's answer symbols, the correct one among them.
    """
    rows, positions = np.nonzero(mask)
    picked = logits[torch.from_numpy(rows), torch.from_numpy(positions)].float()  # [M, V]
    logp = torch.log_softmax(picked, dim=-1)
    target = torch.from_numpy(labels[rows, positions]).to(logp.device)  # [M]
    correct_lp = logp.gather(1, target[:, None])[:, 0]  # [M]
    answers = torch.from_numpy(np.asarray(answer_ids)).to(logp.device)
    others = logp[:, answers].masked_fill(answers[None, :] == target[:, None], -torch.inf)  # [M, A]
    margin = correct_lp - others.max(dim=1).values
    return {
        "row": rows,
        "position": positions,
        "margin": margin.cpu().double().numpy(),
        "target_loss": (-correct_lp).cpu().double().numpy(),
    }


def check_vocab(model: LoadedModel, task: Task, probe: str) -> None:
    """ValueError unless the model was built for this task's vocabulary."""
    if model.vocab_size != task.vocab_size:
        raise UserError(
            f"model {model.name!r} has vocab {model.vocab_size} but the {probe} probe's vocabulary has "
            f"{task.vocab_size} symbols; probe a model trained with experiment=probe_{probe} (same task knobs)."
        )


@torch.no_grad()
def evaluate_setting(
    model: LoadedModel,
    task: Task,
    probe: str,
    setting: str,
    difficulty: float,
    seq_len: int,
    examples: int,
    seed: int,
    batch_size: int,
    device: torch.device,
    select: Selector = every_answer,
) -> pd.DataFrame:
    """Rows (`COLUMNS` + `sequence`, `position`) for `examples` test examples of one setting.

    `example` numbers the scored answers of the setting (unique within it, stable across models, so paired
    comparisons line up); `sequence` is the test example they come from.
    """
    check_vocab(model, task, probe)
    parts = []
    for start in range(0, examples, batch_size):
        indices = np.arange(start, min(start + batch_size, examples))
        batch = task.generate("test", seed, indices, seq_len)
        logits = model.forward(torch.from_numpy(batch["input_ids"]).to(device))  # [N, T, V]
        scored = score_answers(logits, batch["labels"], select(batch["labels"]), task.answer_ids)
        parts.append(pd.DataFrame({"sequence": indices[scored.pop("row")], **scored}))
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(0, "example", np.arange(len(frame)))
    frame["probe"], frame["setting"], frame["difficulty"] = probe, setting, float(difficulty)
    frame["correct"] = frame["margin"] > 0
    return frame[[*COLUMNS, "sequence", "position"]]


def evaluate_lengths(model: LoadedModel, task: Task, probe: str, settings, device) -> pd.DataFrame:
    """One row per test sequence at each of `settings.lengths`, scored at its last position
    (parity, s5: the answer after every element of the sequence)."""
    frames = [
        evaluate_setting(model, task, probe, f"len={length}", length, length, settings.examples,
                         settings.seed, settings.batch_size, torch.device(device), last_position)
        for length in settings.lengths
    ]  # fmt: skip
    return pd.concat(frames, ignore_index=True)
