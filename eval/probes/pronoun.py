"""Pronoun memory: two people introduced with roles and pronouns, filler, then one role is referred to.

    "Anna works as a doctor, and she lives near the river. John works as a pilot, and he lives by
    the sea." + d tokens of filler + " Later that day, the pilot said that"  ->  " he" vs " she"

The right pronoun is fixed by the intro alone (the queried role's person); the name is not
repeated, so the model must carry role -> person -> pronoun across the filler. Genders, roles, the
order of introduction and the queried role are drawn per example, so a model that always prefers
one pronoun scores 50%. The study (Ai2 2026) reports this favours the hybrid.
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

ROLES = ["doctor", "pilot", "teacher", "lawyer", "farmer", "baker", "singer", "painter", "nurse",
         "engineer", "driver", "writer", "chef", "banker", "sailor", "dancer"]  # fmt: skip
NAMES = {
    "she": ["Anna", "Maria", "Emma", "Sarah", "Laura", "Julia", "Clara", "Helen", "Alice", "Rose"],
    "he": ["John", "David", "Peter", "Mark", "Paul", "James", "Thomas", "Daniel", "Henry", "Robert"],
}
PLACES = ["near the river", "by the sea", "in the old town", "next to the park", "on a farm", "above a shop"]
PRONOUNS = ["she", "he", "her", "him", "his", "hers", "herself", "himself"]
VOCABULARY = {*ROLES, *(r + "s" for r in ROLES), *NAMES["she"], *NAMES["he"], *PRONOUNS}
CANDIDATES = [" she", " he"]


@dataclass
class Settings(ScoredSettings):
    pass


def generate(rng: np.random.Generator, settings: Settings) -> Template:
    roles = rng.choice(ROLES, 2, replace=False)
    genders = ["she", "he"] if rng.random() < 0.5 else ["he", "she"]
    names = [str(rng.choice(NAMES[g])) for g in genders]
    places = rng.choice(PLACES, 2, replace=False)
    intro = " ".join(
        f"{n} works as a {r}, and {g} lives {p}." for n, r, g, p in zip(names, roles, genders, places)
    )
    asked = int(rng.integers(2))
    return Template(
        intro=intro,
        query=f" Later that day, the {roles[asked]} said that",
        candidates=CANDIDATES,
        answer=CANDIDATES.index(" " + genders[asked]),
        variant=genders[asked],
    )


def evaluate(
    model: LoadedModel,
    settings: Settings,
    tokenizer: Tokenizer | None,
    device: torch.device,
    dtype: torch.dtype,
) -> pd.DataFrame:
    """Margin of the right pronoun over the other, per example and distance."""
    return evaluate_scored("pronoun", generate, VOCABULARY, model, settings, tokenizer, device)
