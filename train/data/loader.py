"""Loading prepared token shards: packed fixed-length sequences and deterministic batches.

- `TokenSequences(path, seq_len, split)`: the shards of one split as memmaps, cut into sequences of
  `seq_len + 1` tokens with stride `seq_len` (inputs and targets shift by one; every token is a
  target once). Sequences pack across documents but never across shards (OLMo-core does the same).
- `TrainBatches(dataset, global_batch_size, seed, rank, world_size)`: global batch i is a pure
  function of (dataset fingerprint, seed, i) via `train.data.sampler.Sampler`; rank r of W gets rows
  [r*B/W, (r+1)*B/W). `state_dict()` / `load_state_dict()` resume exactly. With
  `repeats=RepeatSpans(...)` some rows carry a verbatim repeat of their own text
  (`train.data.repeats`), pasted the same way on every rank.
- `validation_batches(...)`: every validation sequence once, in order, optionally per domain.
- Batches are dicts of `input_ids` [B, T], `labels` [B, T] (int64) and `doc_ids` [B, T] (int32):
  the index of each input token's document within its row (it increments after every EOS), so
  attention and Gated DeltaNet can stay inside a document; `cu_seqlens_from_doc_ids` flattens
  them to `cu_seqlens`. Labels are not masked at EOS: the last token of a document predicts the
  next document's first token, as in OLMo-core; mask `input_ids == eos_id` if that is unwanted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from models.errors import UserError
from models.packing import cu_seqlens_from_doc_ids
from train.data.manifest import Manifest, check_tokenizer_compatible, check_vocab_not_oversized, verify_shards
from train.data.repeats import RepeatSpans, paste_repeats
from train.data.sampler import Sampler
from train.data.tokenizer import non_special_ids, special_token_ids

__all__ = [
    "Manifest",
    "TokenSequences",
    "TrainBatches",
    "check_tokenizer_compatible",
    "check_vocab_not_oversized",
    "cu_seqlens_from_doc_ids",
    "validation_batches",
]


class TokenSequences:
    """Sequences of `seq_len + 1` tokens from one split of a prepared dataset directory."""

    def __init__(
        self,
        path: str | Path,
        seq_len: int,
        split: str = "train",
        sources: list[str] | None = None,
        domains: list[str] | None = None,
        verify: bool = False,
    ):
        if seq_len < 1:
            raise UserError(f"seq_len {seq_len} must be positive.")
        self.path, self.seq_len, self.split = Path(path), seq_len, split
        self.manifest = Manifest.load(self.path)
        verify_shards(self.path, self.manifest, full=verify)
        self.shards = self.manifest.select(split, sources, domains)
        dtype = np.dtype(self.manifest.dtype).newbyteorder("<")
        self.tokens = [np.memmap(self.path / s.file, dtype=dtype, mode="r") for s in self.shards]
        counts = np.array([(s.tokens - 1) // seq_len for s in self.shards], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(counts)])
        self.eos_id = self.manifest.eos_id
        # Sequence ids are grouped by source (shards are listed source by source): one id range each.
        self.source_names = list(dict.fromkeys(s.source for s in self.shards))
        assert [s.source for s in self.shards] == sorted(
            (s.source for s in self.shards), key=self.source_names.index
        )
        self.source_sizes = [
            int(counts[[s.source == n for s in self.shards]].sum()) for n in self.source_names
        ]
        if len(self) == 0:
            raise UserError(
                f"the {split} split of {self.path} has no sequence of {seq_len + 1} tokens; shorten seq_len."
            )

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def fingerprint(self) -> str:
        """Identifies the sequence space: the data, the split, the selected shards and seq_len."""
        content = [self.manifest.fingerprint, self.split, self.seq_len, [s.file for s in self.shards]]
        return hashlib.sha256(json.dumps(content).encode()).hexdigest()

    def drawable_ids(self) -> np.ndarray:
        """The ids of the dataset's tokenizer that are not special tokens (what random draws use)."""
        tokenizer = Tokenizer.from_file(str(self.path / self.manifest.tokenizer["file"]))
        return non_special_ids(tokenizer.get_vocab_size(), special_token_ids(tokenizer))

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The token rows of sequences `ids`, [len(ids), seq_len + 1] int64."""
        T = self.seq_len
        tokens = np.empty((len(ids), T + 1), dtype=np.int64)
        shard_of = np.searchsorted(self.starts, ids, side="right") - 1
        for row, (seq, shard) in enumerate(zip(ids.tolist(), shard_of.tolist(), strict=True)):
            offset = (seq - int(self.starts[shard])) * T
            tokens[row] = self.tokens[shard][offset : offset + T + 1]
        return tokens

    def gather(self, ids: np.ndarray) -> dict[str, torch.Tensor]:
        """The batch of sequences `ids`: `input_ids`, `labels` and `doc_ids`, each [len(ids), seq_len]."""
        return batch_from_rows(self.rows(ids), self.eos_id)


def batch_from_rows(tokens: np.ndarray, eos_id: int) -> dict[str, torch.Tensor]:
    """`input_ids`, `labels` and `doc_ids` ([n, T]) of token rows [n, T + 1]."""
    T = tokens.shape[1] - 1
    doc_ids = np.zeros((len(tokens), T), dtype=np.int32)
    np.cumsum(tokens[:, : T - 1] == eos_id, axis=1, out=doc_ids[:, 1:])
    return {
        "input_ids": torch.from_numpy(tokens[:, :T].copy()),
        "labels": torch.from_numpy(tokens[:, 1:].copy()),
        "doc_ids": torch.from_numpy(doc_ids),
    }


class StepBatches:
    """Global batch `step` is a pure function of the data, the seed and `step`; each rank takes its
    contiguous slice, so any world size sees the same global batches and resume is exact.

    Subclasses set `dataset` (with `gather(ids)` and `fingerprint`), `global_batch_size`, `seed`,
    `rank`, `world_size`, `step` and define `global_sequence_ids(step)`.
    """

    def global_sequence_ids(self, step: int) -> np.ndarray:
        raise NotImplementedError

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        """This rank's contiguous slice of global batch `step`."""
        local = self.global_batch_size // self.world_size
        return self.rows_batch(step, self.rank * local, (self.rank + 1) * local)

    def rows_batch(self, step: int, start: int, stop: int) -> dict[str, torch.Tensor]:
        """Rows [start, stop) of global batch `step` (the whole batch: 0, global_batch_size)."""
        return self.dataset.gather(self.global_sequence_ids(step)[start:stop])

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            batch = self.batch(self.step)
            self.step += 1
            yield batch

    def state_dict(self) -> dict:
        return {"step": self.step, "seed": self.seed, "fingerprint": self.dataset.fingerprint}

    def load_state_dict(self, state: dict) -> None:
        """Continue at `state['step']`; refuses a state saved with another dataset (or task) or seed."""
        if state["fingerprint"] != self.dataset.fingerprint or state["seed"] != self.seed:
            raise UserError(
                "the checkpoint's data state comes from other data, seq_len or seed; "
                "resume with the data and seed it was trained with."
            )
        self.step = int(state["step"])


class TrainBatches(StepBatches):
    """Deterministic, resumable training batches for one rank; iterate from `step` onwards."""

    def __init__(
        self,
        dataset: TokenSequences,
        global_batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        weights: dict[str, float] | None = None,
        repeats: RepeatSpans | None = None,
    ):
        if global_batch_size % world_size:
            raise UserError(
                f"global batch size {global_batch_size} does not split over {world_size} ranks; "
                "make it a multiple of the world size."
            )
        if not 0 <= rank < world_size:
            raise UserError(f"rank {rank} is outside world size {world_size}.")
        self.dataset, self.global_batch_size, self.seed = dataset, global_batch_size, seed
        self.rank, self.world_size, self.step = rank, world_size, 0
        if repeats is not None:
            repeats.check(dataset.seq_len)
        self.repeats = repeats if repeats is not None and repeats.fraction > 0 else None
        self.random_ids = dataset.drawable_ids() if self.repeats and self.repeats.source == "random" else None
        self.weights = weights if weights is not None else self._manifest_weights()
        if self.weights is None:
            sizes, weight_list = [len(dataset)], None
        else:
            missing = set(dataset.source_names) - set(self.weights)
            if missing:
                raise UserError(
                    f"no mixture weight for sources {sorted(missing)}; give every source a weight."
                )
            sizes, weight_list = dataset.source_sizes, [float(self.weights[n]) for n in dataset.source_names]
        key = [
            seed & 0xFFFFFFFF,
            *np.frombuffer(bytes.fromhex(dataset.fingerprint)[:16], dtype=np.uint32).tolist(),
        ]
        self.sampler = Sampler(sizes, weight_list, key)

    def _manifest_weights(self) -> dict[str, float] | None:
        weights = {n: self.dataset.manifest.sources[n]["weight"] for n in self.dataset.source_names}
        return None if any(w is None for w in weights.values()) else weights

    def global_sequence_ids(self, step: int) -> np.ndarray:
        """Sequence ids of global batch `step`, [global_batch_size]; the same on every rank."""
        B = self.global_batch_size
        return self.sampler.sequence_ids(step * B, (step + 1) * B)

    def rows_batch(self, step: int, start: int, stop: int) -> dict[str, torch.Tensor]:
        """Rows [start, stop) of global batch `step`, with `repeats` pasted when they are on."""
        if self.repeats is None:
            return super().rows_batch(step, start, stop)
        rows = self.dataset.rows(self.global_sequence_ids(step)[start:stop])
        rows = paste_repeats(
            rows, self.repeats, self.seed, step, start, self.global_batch_size, self.random_ids
        )
        return batch_from_rows(rows, self.dataset.eos_id)

    def state_dict(self) -> dict:
        """The step, seed and data fingerprint, plus the repeat settings when they are on."""
        state = super().state_dict()
        if self.repeats is not None:
            state["repeats"] = dataclasses.asdict(self.repeats)
        return state

    def load_state_dict(self, state: dict) -> None:
        """As `StepBatches.load_state_dict`, and refuses a state saved with other repeat settings."""
        mine = dataclasses.asdict(self.repeats) if self.repeats is not None else None
        if state.get("repeats") != mine:
            raise UserError(
                f"the checkpoint was trained with trainer.repeat_spans={state.get('repeats')}, this run has "
                f"{mine}; resume with the settings it was trained with."
            )
        super().load_state_dict(state)


def validation_batches(
    path: str | Path, seq_len: int, batch_size: int, domains: list[str] | None = None
) -> Iterator[dict[str, torch.Tensor]]:
    """Every validation sequence (of the given domains) once, in order; the last batch may be short."""
    dataset = TokenSequences(path, seq_len, split="validation", domains=domains)
    for start in range(0, len(dataset), batch_size):
        yield dataset.gather(np.arange(start, min(start + batch_size, len(dataset))))
