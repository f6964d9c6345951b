"""Probes: controlled examples that show *why* architectures differ, one module per family.

`python -m eval models=[...] probes=[pronoun,entity,...]` runs them. Each family is one module named
in `PROBES`; a module defines

- `Settings`: a dataclass of its knobs with defaults (distances, number of examples, seed, test
  settings), filled from `conf/probes/<name>.yaml` (`# @package probes.<name>`) and the command line;
- `evaluate(model: eval.score.LoadedModel, settings: Settings, tokenizer, device, dtype) -> DataFrame`
  with one row per example and the `COLUMNS` below (`tokenizer` is None for trained probes, which
  have their own small vocabulary).

Scored probes (`pronoun`, `entity`, `closure`, `copy`) render templated text and score any LM with
eval's tokenizer rules; `induction` scores any LM on random token ids of its tokenizer shown twice
(`eval.induction`); trained probes (`mqar`, `parity`, `s5`) test models trained on the synthetic
data source of the same name (`train.data.synthetic`), on test settings that may exceed training's.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from models.errors import UserError

PROBES: dict[str, str] = {
    "pronoun": "eval.probes.pronoun",
    "entity": "eval.probes.entity",
    "closure": "eval.probes.closure",
    "copy": "eval.probes.copy",
    "induction": "eval.probes.induction",
    "mqar": "eval.probes.mqar",
    "parity": "eval.probes.parity",
    "s5": "eval.probes.s5",
}

SCORED = ("pronoun", "entity", "closure", "copy")  # templated text, scored with the models' tokenizer
TOKENIZED = (*SCORED, "induction")  # take the models' tokenizer; the others take None

# One row per example. `setting`: a label of the condition ("d=128", "pairs=16", "len=256");
# `difficulty`: its number (distance in tokens, number of pairs, test length); `margin`: log p(correct)
# minus the largest log p(distractor) (sums over an answer's tokens); `correct`: margin > 0;
# `target_loss`: -log p(correct answer), nats.
COLUMNS = ["probe", "setting", "difficulty", "example", "correct", "margin", "target_loss"]


def probe_module(name: str) -> ModuleType:
    """The module implementing probe `name`; ValueError naming the known probes otherwise."""
    if name not in PROBES:
        raise UserError(f"unknown probe {name!r}: use one of {', '.join(PROBES)}.")
    return importlib.import_module(PROBES[name])
