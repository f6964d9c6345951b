"""Entity tracking: people bound to objects, filler, then one object is asked about.

    "Alice has the key, Omar has the coin, and Bruno has the map." + d tokens of filler +
    " Who has the coin? The coin is with"  ->  " Omar" vs " Alice", " Bruno"

The binding is fixed by the intro; the object is named in the query, its holder is not. Holders,
objects and the queried object are drawn per example (chance: 1 / `n_entities`). The study (Ai2
2026) reports this favours the hybrid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer

from eval.probes.render import Template
from eval.probes.scored import ScoredSettings, evaluate_scored
from eval.score import LoadedModel
from models.errors import UserError

NAMES = [
    "Alice",
    "Omar",
    "Bruno",
    "Carla",
    "Ivan",
    "Nadia",
    "Felix",
    "Greta",
    "Hugo",
    "Lena",
    "Marco",
    "Tara",
]
OBJECTS = ["key", "coin", "map", "ring", "lamp", "cup", "hat", "bell", "kite", "shell", "stone", "ticket",
           "watch", "glove", "candle", "drum"]  # fmt: skip
VOCABULARY = {*NAMES, *OBJECTS, *(o + "s" for o in OBJECTS)}


@dataclass
class Settings(ScoredSettings):
    n_entities: int = 3  # people (and objects) per example: the candidates


def generate(rng: np.random.Generator, settings: Settings) -> Template:
    n = settings.n_entities
    if not 2 <= n <= min(len(NAMES), len(OBJECTS)):
        raise UserError(f"n_entities {n} must be between 2 and {min(len(NAMES), len(OBJECTS))}.")
    names = [str(x) for x in rng.choice(NAMES, n, replace=False)]
    objects = [str(x) for x in rng.choice(OBJECTS, n, replace=False)]
    pairs = [f"{p} has the {o}" for p, o in zip(names, objects)]
    intro = (", ".join(pairs[:-1]) + f", and {pairs[-1]}.") if n > 2 else f"{pairs[0]} and {pairs[1]}."
    asked = int(rng.integers(n))
    return Template(
        intro=intro,
        query=f" Who has the {objects[asked]}? The {objects[asked]} is with",
        candidates=[" " + p for p in names],
        answer=asked,
        variant=f"position {asked + 1}",
    )


def evaluate(
    model: LoadedModel,
    settings: Settings,
    tokenizer: Tokenizer | None,
    device: torch.device,
    dtype: torch.dtype,
) -> pd.DataFrame:
    """Margin of the object's holder over the other people, per example and distance."""
    return evaluate_scored("entity", generate, VOCABULARY, model, settings, tokenizer, device)
