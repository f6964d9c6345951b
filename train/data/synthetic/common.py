"""What every synthetic task shares: the per-example random stream and the task interface.

A task turns one random stream into one example of `seq_len` positions: `input_ids` [T] and
`labels` [T], where `labels[t]` is the answer the model must give at position t, or `IGNORE` (-100,
the loss's ignore index) where nothing is asked. Inputs and labels are laid out directly (a label is
not the next input), each task in its own small vocabulary; no tokenizer is involved.

Example `index` of split `split` under `seed` is a pure function of the three
(`numpy.random.default_rng([split id, seed, index])`, PCG64 seeded by SeedSequence, stable across
numpy versions), so the train, validation and test examples never share a stream, and any example
can be rebuilt without generating the ones before it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from models.errors import UserError

IGNORE = -100
SPLITS = {"train": 0, "validation": 1, "test": 2}


def example_rng(split: str, seed: int, index: int) -> np.random.Generator:
    """The random stream of example `index` of `split` under `seed`."""
    if split not in SPLITS:
        raise UserError(f"split {split!r} is not one of {', '.join(SPLITS)}.")
    return np.random.default_rng([SPLITS[split], seed & 0xFFFFFFFF, index])


class Task(ABC):
    """A synthetic task: a vocabulary, the symbols that can be answers, and an example generator."""

    name: str
    vocab_size: int
    answer_ids: np.ndarray  # [A] token ids an answer can take: a probe's margin is taken over them

    @abstractmethod
    def example(self, rng: np.random.Generator, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids [seq_len], labels [seq_len]) drawn from `rng`; labels IGNORE where nothing is asked."""

    @abstractmethod
    def reference(self, input_ids: np.ndarray) -> np.ndarray:
        """The answer each position's prefix determines, read from `input_ids` [T] alone, [T] (IGNORE
        where nothing is asked). Independent of `example`: tests and the probes' oracle check it."""

    def check_seq_len(self, seq_len: int) -> None:
        """ValueError when `seq_len` cannot hold an example (tasks with a minimum override this)."""
        if seq_len < 1:
            raise UserError(f"seq_len {seq_len} must be positive.")

    def describe(self) -> str:
        return f"{self.name}: vocab {self.vocab_size}, {len(self.answer_ids)} answer symbols"

    def generate(self, split: str, seed: int, indices: np.ndarray, seq_len: int) -> dict[str, np.ndarray]:
        """Examples `indices` of `split` under `seed`: `input_ids` and `labels`, int64 [N, seq_len]."""
        self.check_seq_len(seq_len)
        inputs = np.empty((len(indices), seq_len), dtype=np.int64)
        labels = np.empty((len(indices), seq_len), dtype=np.int64)
        for row, index in enumerate(np.asarray(indices).tolist()):
            inputs[row], labels[row] = self.example(example_rng(split, seed, index), seq_len)
        return {"input_ids": inputs, "labels": labels}
