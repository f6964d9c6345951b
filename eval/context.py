"""How each model was trained, and the scoring settings that follow from it: window, stride, dtype.

A zoo pretrained dir's `config.yaml` records its training context (`model.training`: seq_len,
precision, steps, tokens; `models.config.TrainingContext`); Hugging Face dirs and checkpoints saved
before that field existed record none. Eval scores a model the way it was trained:

- `score.window` (null) is the models' training seq_len, capped at `MAX_DEFAULT_WINDOW`; the
  smallest when they differ; `MAX_DEFAULT_WINDOW` when none is known. A longer explicit window is
  allowed, and `past_trained_fraction` says which share of the targets it puts at input positions
  the model never trained on.
- `score.dtype=auto` is the training precision (fp32 -> float32, bf16 -> bfloat16); when unknown,
  bf16 on CUDA and fp32 on CPU.

`python -m eval` (eval.pipeline) and the in-loop filtered loss (eval.inloop) both resolve W and S
with `scoring_window`, so the two read one definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer

from eval.score import Windows, default_stride, model_kind
from models.config import TrainingContext
from models.errors import UserError
from models.pretrained import load_pretrained_config

MAX_DEFAULT_WINDOW = 2048  # the default window never exceeds this, however long the training context
PRECISION_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass
class ModelContext:
    """What eval needs to know of a model before loading its weights."""

    path: Path
    vocab_size: int
    training: TrainingContext


def model_context(path: Path) -> ModelContext:
    """Vocabulary size and training context of a zoo or Hugging Face dir, read without loading weights."""
    if model_kind(path) == "zoo":
        cfg = load_pretrained_config(path)
        return ModelContext(path, int(cfg.vocab_size), cfg.training)
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True).get_text_config()
    except (OSError, ValueError) as error:  # unreadable JSON, an unknown model_type
        first = str(error).strip().splitlines()[0]
        raise UserError(
            f"model {str(path)!r}: its config.json cannot be read ({first}); check the directory."
        ) from None
    return ModelContext(path, int(config.vocab_size), TrainingContext())


def check_vocab(context: ModelContext, tokenizer: Tokenizer) -> None:
    """UserError when the model has fewer output ids than the tokenizer (checked before any scoring)."""
    if context.vocab_size < tokenizer.get_vocab_size():
        raise UserError(
            f"model {str(context.path)!r} has {context.vocab_size} output ids but the tokenizer has "
            f"{tokenizer.get_vocab_size()}; use the tokenizer the model was trained with."
        )


def scoring_window(
    window: int | None, stride: int | None, trained: Sequence[TrainingContext], names: Sequence[str]
) -> tuple[int, int, list[str]]:
    """(W, S, notes): the explicit `window`, or the models' training seq_len (see the module docstring).

    `names[i]` labels `trained[i]` in the notes; a bad stride is a UserError (`default_stride`).
    """
    known = {name: t.seq_len for name, t in zip(names, trained) if t.seq_len}
    notes = []
    if window is None:
        if not known:
            window = MAX_DEFAULT_WINDOW
            notes.append(f"no model records its training seq_len; scoring with windows of {window} tokens.")
        else:
            window = min(min(known.values()), MAX_DEFAULT_WINDOW)
            if len(set(known.values())) > 1:
                lengths = ", ".join(f"{name} {length}" for name, length in known.items())
                notes.append(
                    f"the models trained at different seq_len ({lengths}); scoring at the smallest, {window}."
                )
            if len(known) < len(names):
                notes.append(
                    f"only {', '.join(known)} record a training seq_len; windows of {window} follow it."
                )
    return window, default_stride(window, stride), notes


def past_trained_fraction(window_pos: np.ndarray, training: TrainingContext) -> float | None:
    """Share of targets predicted at an input position >= the training seq_len (never trained on).

    A target at `window_pos` p is predicted from p + 1 inputs (the separator or its context's first
    token, then the document up to it); training only asked for predictions at positions 0..seq_len-1.
    None when the training seq_len is unknown.
    """
    if not training.seq_len:
        return None
    return float(np.mean(np.asarray(window_pos) >= training.seq_len)) if len(window_pos) else 0.0


def scoring_summary(
    names: Sequence[str], contexts: Sequence[ModelContext], dtypes: Sequence[torch.dtype], windows: Windows
) -> pd.DataFrame:
    """Per model: window, stride and dtype it is scored with, its training context, and the share of
    targets past the trained length."""
    window_pos = windows.window_pos
    return pd.DataFrame({
        "model": list(names),
        "window": windows.window,
        "stride": windows.stride,
        "dtype": [str(d).removeprefix("torch.") for d in dtypes],
        "trained_seq_len": [c.training.seq_len for c in contexts],
        "trained_precision": [c.training.precision for c in contexts],
        "past_trained": [past_trained_fraction(window_pos, c.training) for c in contexts],
    })  # fmt: skip


def past_trained_notes(scoring: pd.DataFrame, window: int) -> list[str]:
    """One report note per model whose scored targets lie past its training seq_len."""
    return [
        f"{row.past_trained:.1%} of {row.model}'s scored targets lie at positions past its training "
        f"seq_len {row.trained_seq_len} (windows of {window}); those measure length extrapolation."
        for row in scoring.itertuples()
        if row.past_trained is not None and row.past_trained > 0
    ]


def scoring_device(setting: str) -> torch.device:
    """`score.device` as a device; UserError when it names a GPU this machine does not have."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise UserError(
                f"score.device={setting} but this machine has {count} CUDA device(s); use score.device=cpu or auto."
            )
    return device


def scoring_dtype(setting: str, device: torch.device, training: TrainingContext) -> torch.dtype:
    """`score.dtype`, or for `auto` the training precision (unknown: bf16 on CUDA, fp32 on CPU)."""
    if setting != "auto":
        return getattr(torch, setting)
    if training.precision in PRECISION_DTYPES:
        return PRECISION_DTYPES[training.precision]
    return torch.bfloat16 if device.type == "cuda" else torch.float32
