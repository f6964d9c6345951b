"""Bracket and tag closure: open a bracket, tag or environment, filler, then score its closer.

    "Here is the note (" + d tokens of filler  ->  ")" vs "]", "}", "</section>", "\\end{itemize}"

The filler is plain prose with no bracket, tag or backslash, so the only open delimiter is the
intro's. Every closer is a candidate (chance 1/5); multi-token closers are scored by the sum of
their tokens' log-probs, which handicaps them against one-token closers: compare models per opener
(`variant`), not openers with each other. The study (Ai2 2026) reports this favours the transformer
at every distance.
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

PAIRS = [
    ("(", ")"),
    ("[", "]"),
    ("{", "}"),
    ("<section>", "</section>"),
    ("\\begin{itemize}", "\\end{itemize}"),
]
LEADS = ["Here is the note", "The text reads", "As written", "The draft says", "From the record"]
VOCABULARY = {"section", "itemize", "begin"}


@dataclass
class Settings(ScoredSettings):
    pass


def generate(rng: np.random.Generator, settings: Settings) -> Template:
    which = int(rng.integers(len(PAIRS)))
    opener = PAIRS[which][0]
    return Template(
        intro=f"{rng.choice(LEADS)} {opener}",
        query="",
        candidates=[closer for _, closer in PAIRS],
        answer=which,
        variant=opener,
    )


def evaluate(
    model: LoadedModel,
    settings: Settings,
    tokenizer: Tokenizer | None,
    device: torch.device,
    dtype: torch.dtype,
) -> pd.DataFrame:
    """Margin of the right closer over the wrong ones, per example and distance."""
    return evaluate_scored("closure", generate, VOCABULARY, model, settings, tokenizer, device)
