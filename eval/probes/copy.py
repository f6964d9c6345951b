"""Copying: a list of words, filler, the list's first words again; score the rest of the list.

    "The code words are: maple, harbor, violet, copper, lantern, meadow." + d tokens of filler +
    " Once more, the code words are: maple, harbor, violet,"  ->  " copper, lantern, meadow." vs the
    other orders of those three words

The distractors are the other orders of the same continuation words, so every candidate holds the
same tokens and only copying the order wins (chance 1 / k! for k continuation words, at most 1/6
with the default 3 of 6 shown). Induction-style copying is where attention is known to be strong.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer

from eval.probes.render import Template
from eval.probes.scored import ScoredSettings, evaluate_scored
from eval.score import LoadedModel
from models.errors import UserError

WORDS = ["maple", "harbor", "violet", "copper", "lantern", "meadow", "falcon", "pebble", "orchid", "canyon",
         "velvet", "saddle", "glacier", "thimble", "walnut", "beacon", "juniper", "marble", "quiver", "tundra",
         "cobalt", "parsley", "ember", "lagoon"]  # fmt: skip
VOCABULARY = {*WORDS, "code"}
MAX_CANDIDATES = 6


@dataclass
class Settings(ScoredSettings):
    span_words: int = 6  # words in the list
    shown_words: int = 3  # words repeated after the filler; the rest is the continuation


def generate(rng: np.random.Generator, settings: Settings) -> Template:
    n, shown = settings.span_words, settings.shown_words
    if not 1 <= shown <= n - 2 or n > len(WORDS):
        raise UserError(
            f"span_words {n} / shown_words {shown}: need 1 <= shown <= span - 2 and span <= {len(WORDS)}."
        )
    span = [str(w) for w in rng.choice(WORDS, n, replace=False)]
    rest = span[shown:]
    orders = [list(p) for p in itertools.permutations(rest) if list(p) != rest]
    picked = rng.choice(len(orders), min(MAX_CANDIDATES - 1, len(orders)), replace=False)
    candidates = [rest, *(orders[i] for i in picked)]
    position = int(rng.integers(len(candidates)))
    candidates.insert(position, candidates.pop(0))
    return Template(
        intro=f"The code words are: {', '.join(span)}.",
        query=f" Once more, the code words are: {', '.join(span[:shown])},",
        candidates=[" " + ", ".join(c) + "." for c in candidates],
        answer=position,
        variant=f"{len(rest)} words",
    )


def evaluate(
    model: LoadedModel,
    settings: Settings,
    tokenizer: Tokenizer | None,
    device: torch.device,
    dtype: torch.dtype,
) -> pd.DataFrame:
    """Margin of the list's true continuation over its other orders, per example and distance."""
    return evaluate_scored("copy", generate, VOCABULARY, model, settings, tokenizer, device)
