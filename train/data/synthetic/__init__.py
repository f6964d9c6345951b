"""Synthetic tasks with their own small vocabularies, generated from the seed (no files, no tokenizer).

`data=probe_<task>` trains on them through the normal data path (`train.data.synthetic.batches`):
labels are -100 outside answer positions, so only answers count in the loss. The trained probes of
`eval.probes` test the same tasks at harder settings. One module per task:

- `mqar`: multi-query associative recall (Zoology, Arora et al. 2023);
- `parity`: running parity of a bit string (Grazzi et al. 2025);
- `s5`: running product of permutations of 5 elements.
"""

from __future__ import annotations

from models.errors import UserError
from train.data.synthetic.common import IGNORE, SPLITS, Task, example_rng
from train.data.synthetic.mqar import MQAR, MQARConfig
from train.data.synthetic.parity import Parity, ParityConfig
from train.data.synthetic.s5 import S5, S5Config

TASKS: dict[str, type[Task]] = {"mqar": MQAR, "parity": Parity, "s5": S5}

__all__ = [
    "IGNORE",
    "SPLITS",
    "TASKS",
    "MQARConfig",
    "ParityConfig",
    "S5Config",
    "Task",
    "build_task",
    "example_rng",
]


def build_task(name: str, cfg) -> Task:
    """Task `name` built from its config section (`MQARConfig`, `ParityConfig`, `S5Config`)."""
    if name not in TASKS:
        raise UserError(f"unknown synthetic task {name!r}: use one of {', '.join(TASKS)}.")
    return TASKS[name](cfg)
