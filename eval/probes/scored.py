"""What the four scored probes share: their settings, building their examples, scoring a model.

A scored probe module (`pronoun`, `entity`, `closure`, `copy`) defines `Settings` (extending
`ScoredSettings`), `VOCABULARY` (the words its templates use; the filler never contains them) and
`generate(rng, settings) -> Template`, and its `evaluate` calls `evaluate_scored`. Example i uses the
same template at every distance (only the filler changes), from `np.random.default_rng([seed, i])`.
Examples depend only on the settings and the tokenizer, so they are built once per run and reused
for every model.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer

from eval.annotate import tokenizer_hash
from eval.probes import COLUMNS
from eval.probes.filler import DEFAULT_FILLER, FillerPool, filler_texts, prose_sentences
from eval.probes.render import Example, Template, render, separator_id
from eval.probes.scoring import candidate_logprobs, context_limit, longest_input
from eval.score import LoadedModel
from models.errors import UserError

DISTANCES = [32, 64, 128, 256, 512, 1024]
Generator = Callable[[np.random.Generator, "ScoredSettings"], Template]


@dataclass
class ScoredSettings:
    """Knobs every scored probe has (conf/probes/<name>.yaml)."""

    distances: list[int] = field(default_factory=lambda: list(DISTANCES))  # filler tokens
    n_examples: int = 100  # per distance
    seed: int = 0
    filler: str = DEFAULT_FILLER  # demo source, prepared dataset dir, or .txt/.jsonl/.parquet files
    filler_split: str = "validation"  # a prepared dataset's held-out split
    filler_domains: list[str] | None = None  # only these domains of a prepared dataset (null: all)
    batch_size: int = 8  # sequences per forward
    prefix_token: str = "<|endoftext|>"  # precedes every example, as every document in eval.score


_CACHE: dict[str, list[Example]] = {}  # a run builds each probe once, whatever the number of models


def build_examples(
    name: str, generate: Generator, vocabulary: set[str], settings: ScoredSettings, tokenizer: Tokenizer
) -> list[Example]:
    """Every example of probe `name`, distance by distance (cached per settings and tokenizer)."""
    _check(settings)
    key = json.dumps([name, dataclasses.asdict(settings), tokenizer_hash(tokenizer)], sort_keys=True)
    if key not in _CACHE:
        sep = separator_id(tokenizer, settings.prefix_token)
        texts = filler_texts(settings.filler, settings.filler_split, settings.filler_domains)
        pool = FillerPool(prose_sentences(texts, {w.lower() for w in vocabulary}), tokenizer)
        templates = [
            generate(np.random.default_rng([settings.seed, i]), settings) for i in range(settings.n_examples)
        ]
        examples = [
            render(t, i, d, pool, tokenizer, sep, settings.seed)
            for d in settings.distances
            for i, t in enumerate(templates)
        ]
        _CACHE[key] = examples
    return _CACHE[key]


def evaluate_scored(
    name: str,
    generate: Generator,
    vocabulary: set[str],
    model: LoadedModel,
    settings: ScoredSettings,
    tokenizer: Tokenizer | None,
    device: torch.device,
) -> pd.DataFrame:
    """One row per example (COLUMNS plus variant, answer, prediction, tokens); distances longer than
    the model's context are skipped, with a note in `frame.attrs["notes"]`."""
    if tokenizer is None:
        raise UserError(f"probe {name!r} scores text and needs the models' tokenizer; pass tokenizer=.")
    examples = build_examples(name, generate, vocabulary, settings, tokenizer)
    limit, notes, kept = context_limit(model), [], []
    for d in settings.distances:
        group = [e for e in examples if e.difficulty == d]
        longest = longest_input([(e.prefix, e.candidates) for e in group])
        if limit is not None and longest > limit:
            notes.append(f"{name} d={d} skipped for {model.name}: inputs of {longest} tokens exceed its "
                         f"max_position_embeddings {limit}.")  # fmt: skip
        else:
            kept += group
    items = [(e.prefix, e.candidates) for e in kept]
    logps = candidate_logprobs(
        model.forward, items, settings.batch_size, device, pad_id=int(kept[0].prefix[0]) if kept else 0
    )
    rows = []
    for e, logp in zip(kept, logps):
        right = logp[e.answer]
        margin = right - np.max(np.delete(logp, e.answer))
        rows.append({
            "probe": name, "setting": e.setting, "difficulty": e.difficulty, "example": e.example,
            "correct": bool(margin > 0), "margin": float(margin), "target_loss": float(-right),
            "variant": e.variant, "answer": e.answer, "prediction": int(np.argmax(logp)),
            "tokens": len(e.prefix) - 1,
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=[*COLUMNS, "variant", "answer", "prediction", "tokens"])
    frame.attrs["notes"] = notes
    return frame


def _check(settings: ScoredSettings) -> None:
    if settings.n_examples < 1:
        raise UserError(f"n_examples {settings.n_examples} must be at least 1.")
    if not settings.distances or any(d < 1 for d in settings.distances):
        raise UserError(f"distances {settings.distances} must be a non-empty list of positive token counts.")
