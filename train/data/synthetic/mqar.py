"""Multi-query associative recall (MQAR; Arora et al. 2023, "Zoology").

An example of T positions: P key-value pairs `k_1 v_1 ... k_P v_P` (distinct keys), then a query
region of T - 2P positions holding every key once, in random order, at random positions, with
filler (id 0) between them. At a query position the answer is that key's value. A model must store
the P pairs as it reads them: a recurrent model's recall is bounded by its state size, attention's
is not. Vocabulary: 0 filler, keys 1..`keys`, values `keys`+1..`keys`+`values`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.errors import UserError
from train.data.synthetic.common import IGNORE, Task

FILLER = 0


@dataclass
class MQARConfig:
    """Knobs of MQAR: key and value vocabularies, and the range pairs are drawn from per example."""

    keys: int = 128
    values: int = 128
    pairs_min: int = 4  # P uniform in [pairs_min, pairs_max] per example
    pairs_max: int = 32


class MQAR(Task):
    """MQAR examples; see the module docstring for the layout."""

    name = "mqar"

    def __init__(self, cfg: MQARConfig) -> None:
        if not 1 <= cfg.pairs_min <= cfg.pairs_max:
            raise UserError(
                f"mqar pairs range [{cfg.pairs_min}, {cfg.pairs_max}] is empty; use 1 <= pairs_min <= pairs_max."
            )
        if cfg.pairs_max > cfg.keys or cfg.values < 2:
            raise UserError(
                f"mqar needs pairs_max ({cfg.pairs_max}) <= keys ({cfg.keys}) and at least 2 values; "
                "raise data.synthetic.mqar.keys/values."
            )
        self.cfg = cfg
        self.vocab_size = 1 + cfg.keys + cfg.values
        self.answer_ids = np.arange(1 + cfg.keys, self.vocab_size)

    def check_seq_len(self, seq_len: int) -> None:
        if seq_len < 3 * self.cfg.pairs_max:
            raise UserError(
                f"mqar with up to {self.cfg.pairs_max} pairs needs seq_len >= {3 * self.cfg.pairs_max} "
                f"(2 per pair, 1 per query), got {seq_len}; raise trainer.seq_len or lower pairs_max."
            )

    def example(self, rng: np.random.Generator, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.cfg
        pairs = int(rng.integers(cfg.pairs_min, cfg.pairs_max + 1))
        keys = 1 + rng.choice(cfg.keys, size=pairs, replace=False)
        values = 1 + cfg.keys + rng.integers(0, cfg.values, size=pairs)
        inputs = np.full(seq_len, FILLER, dtype=np.int64)
        labels = np.full(seq_len, IGNORE, dtype=np.int64)
        inputs[0 : 2 * pairs : 2], inputs[1 : 2 * pairs : 2] = keys, values
        order = rng.permutation(pairs)
        positions = 2 * pairs + np.sort(rng.choice(seq_len - 2 * pairs, size=pairs, replace=False))
        inputs[positions], labels[positions] = keys[order], values[order]
        return inputs, labels

    def reference(self, input_ids: np.ndarray) -> np.ndarray:
        """A key seen again after the pairs is a query; its answer is the value that followed it."""
        answers = np.full(len(input_ids), IGNORE, dtype=np.int64)
        bound: dict[int, int] = {}
        pos = 0
        while (
            pos + 1 < len(input_ids) and 1 <= input_ids[pos] <= self.cfg.keys and input_ids[pos] not in bound
        ):
            bound[int(input_ids[pos])] = int(input_ids[pos + 1])
            pos += 2
        for t in range(pos, len(input_ids)):
            if int(input_ids[t]) in bound:
                answers[t] = bound[int(input_ids[t])]
        return answers
