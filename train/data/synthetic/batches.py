"""Synthetic examples as trainer batches, with the interface of `train.data.loader.TrainBatches`.

Global batch i is examples [i*B, (i+1)*B) of the train split under the seed (examples are i.i.d.,
so no shuffling is needed): a pure function of (task config, seed, i), and rank r of W takes rows
[r*B/W, (r+1)*B/W), so every world size sees the same batch. Validation examples come from the
validation split: another stream, never a training example.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import numpy as np
import torch
from omegaconf import OmegaConf

from models.errors import UserError
from train.data.loader import StepBatches
from train.data.synthetic.common import Task


class SyntheticSequences:
    """The sequence space of one task, split and seed: `gather(ids)` builds examples `ids`."""

    def __init__(self, task: Task, task_cfg, seq_len: int, seed: int, split: str = "train") -> None:
        task.check_seq_len(seq_len)
        self.task, self.seq_len, self.seed, self.split = task, seq_len, seed, split
        self.config = OmegaConf.to_container(OmegaConf.structured(task_cfg))

    @property
    def fingerprint(self) -> str:
        """Identifies the examples: task, its knobs, split, seed and seq_len."""
        content = [self.task.name, self.config, self.split, self.seed, self.seq_len]
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    def gather(self, ids: np.ndarray) -> dict[str, torch.Tensor]:
        """Examples `ids`: `input_ids`, `labels` (int64) and `doc_ids` (int32, one document per row), [N, T]."""
        out = self.task.generate(self.split, self.seed, ids, self.seq_len)
        return {
            "input_ids": torch.from_numpy(out["input_ids"]),
            "labels": torch.from_numpy(out["labels"]),
            "doc_ids": torch.zeros(len(ids), self.seq_len, dtype=torch.int32),
        }


class SyntheticBatches(StepBatches):
    """Deterministic, resumable training batches of a synthetic task for one rank."""

    def __init__(
        self,
        dataset: SyntheticSequences,
        global_batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if global_batch_size % world_size:
            raise UserError(
                f"global batch size {global_batch_size} does not split over {world_size} ranks; "
                "make it a multiple of the world size."
            )
        self.dataset, self.global_batch_size, self.seed = dataset, global_batch_size, seed
        self.rank, self.world_size, self.step = rank, world_size, 0

    def global_sequence_ids(self, step: int) -> np.ndarray:
        """Example indices of global batch `step`, [global_batch_size]; the same on every rank."""
        return np.arange(step * self.global_batch_size, (step + 1) * self.global_batch_size)


def synthetic_validation_batches(
    task: Task, task_cfg, seq_len: int, batch_size: int, seed: int
) -> Iterator[dict[str, torch.Tensor]]:
    """Held-out examples (the validation split under `seed`) in batches of `batch_size`, without end."""
    dataset = SyntheticSequences(task, task_cfg, seq_len, seed, split="validation")
    start = 0
    while True:
        yield dataset.gather(np.arange(start, start + batch_size))
        start += batch_size
