"""The deterministic sampler: global sample k -> sequence id, a pure function of (key, weights, k).

Nothing here knows about models, ranks or batch sizes: batch i of size B is samples [i*B, (i+1)*B),
and rank r of W takes a contiguous slice of it, so every architecture and every world size sees
the same tokens in the same order, and resuming at step i needs no replay.

- Without weights, all sequences form one pool: epoch e is a seeded permutation of the pool, so
  every sequence is seen once per epoch and each epoch is shuffled differently (indices only: the
  data stays where it is).
- With weights, each source is a pool with its own epochs. Samples are laid out in blocks of
  `BLOCK`: a block holds a fixed count per pool (weights apportioned by largest remainder) in a
  seeded order, so the mixture holds exactly at every block and the j-th draw of a pool, and hence
  any sample, has a closed form.
"""

from __future__ import annotations

import numpy as np

from models.errors import UserError
from train.data.hashing import key64, permutation

BLOCK = 1 << 16


def apportion(weights: list[float], total: int) -> np.ndarray:
    """Integer counts summing to `total`, proportional to `weights` (largest remainder)."""
    w = np.asarray(weights, dtype=np.float64)
    exact = w / w.sum() * total
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


class Sampler:
    """Maps global sample indices to sequence ids drawn from pools of consecutive ids."""

    def __init__(self, pool_sizes: list[int], weights: list[float] | None, key: str):
        assert len(pool_sizes) == (1 if weights is None else len(weights)), "one pool unless weighted"
        if min(pool_sizes) == 0:
            raise UserError(
                "a source has no complete sequence of seq_len + 1 tokens; drop it or shorten seq_len."
            )
        self.sizes = np.asarray(pool_sizes, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)])
        self.key = key
        self.counts = apportion(weights, BLOCK) if weights is not None else None
        if self.counts is not None and np.any(self.counts == 0):
            raise UserError(f"a source weight is below 1/{BLOCK} of the total; raise it or drop the source.")
        self._perms: dict[tuple[int, int], np.ndarray] = {}
        self._blocks: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _perm(self, pool: int, epoch: int) -> np.ndarray:
        """The seeded permutation of pool `pool` for `epoch` (a few kept: batches rarely straddle more)."""
        if (pool, epoch) not in self._perms:
            if len(self._perms) >= 2 * len(self.sizes) + 2:
                self._perms.pop(next(iter(self._perms)))
            self._perms[pool, epoch] = permutation(
                int(self.sizes[pool]), key64(self.key, "pool", pool, epoch)
            )
        return self._perms[pool, epoch]

    def _block(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        """(pool of each slot, rank of the slot among its pool's slots) for one mixture block."""
        if block not in self._blocks:
            if len(self._blocks) >= 4:
                self._blocks.pop(next(iter(self._blocks)))
            layout = np.repeat(np.arange(len(self.counts)), self.counts)[
                permutation(BLOCK, key64(self.key, "block", block))
            ]
            order = np.argsort(layout, kind="stable")
            starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
            rank = np.empty(BLOCK, dtype=np.int64)
            rank[order] = np.arange(BLOCK) - starts[layout[order]]
            self._blocks[block] = (layout, rank)
        return self._blocks[block]

    def _draws(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(pool, draw number within the pool) of samples [start, stop)."""
        k = np.arange(start, stop, dtype=np.int64)
        if self.counts is None:
            return np.zeros_like(k), k
        pools, draws = np.empty_like(k), np.empty_like(k)
        blocks = k // BLOCK
        for block in np.unique(blocks):
            sel = blocks == block
            layout, rank = self._block(int(block))
            slots = k[sel] % BLOCK
            pools[sel] = layout[slots]
            draws[sel] = block * self.counts[layout[slots]] + rank[slots]
        return pools, draws

    def sequence_ids(self, start: int, stop: int) -> np.ndarray:
        """Sequence ids (into the concatenated pools) of global samples [start, stop)."""
        pools, draws = self._draws(start, stop)
        sizes = self.sizes[pools]
        epochs, within = draws // sizes, draws % sizes
        ids = np.empty_like(draws)
        for pool, epoch in set(zip(pools.tolist(), epochs.tolist(), strict=True)):
            sel = (pools == pool) & (epochs == epoch)
            ids[sel] = self.offsets[pool] + self._perm(pool, epoch)[within[sel]]
        return ids
