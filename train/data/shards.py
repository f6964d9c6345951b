"""Writing token shards in OLMo-core's numpy token-file layout.

A shard is OLMo-core's numpy token-file layout: a flat file of little-endian unsigned ids (uint16
or uint32), no header (despite the `.npy` name: read it with `np.memmap`, not `np.load`), whole
documents each followed by EOS. Everything is written into a hidden staging directory beside the
target (`models.atomic.atomic_directory`) and renamed into place at the end, so a failed or
interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from train.data.manifest import Shard


class ShardWriter:
    """One (split, source) stream of whole documents, cut into shards of at most `max_tokens`."""

    def __init__(self, root: Path, split: str, source: str, domain: str, dtype: str, max_tokens: int):
        self.root, self.split, self.source, self.domain = root, split, source, domain
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.max_tokens = max_tokens
        self.shards: list[Shard] = []
        self._file = None

    def _open(self) -> None:
        name = f"{self.split}/{self.source}-{len(self.shards):05d}.npy"
        (self.root / self.split).mkdir(exist_ok=True)
        self._file = open(self.root / name, "wb")  # noqa: SIM115 - stays open across add() calls
        self._hash = hashlib.sha256()
        self._shard = Shard(name, self.split, self.source, self.domain, 0, 0, "")

    def _close_shard(self) -> None:
        self._file.close()
        self._file = None
        self._shard.sha256 = self._hash.hexdigest()
        self.shards.append(self._shard)

    def add(self, flat: np.ndarray, lengths: np.ndarray) -> None:
        """Append documents: `flat` holds them back to back (EOS included), `lengths` their sizes."""
        ends = np.cumsum(lengths)
        done_docs, done_tokens = 0, 0
        while done_docs < len(lengths):
            if self._file is None:
                self._open()
            room = self.max_tokens - self._shard.tokens
            # Documents that fit in this shard; at least one, so an oversized document gets its own.
            fit = int(np.searchsorted(ends, done_tokens + room, side="right")) - done_docs
            if fit <= 0 and self._shard.tokens > 0:
                self._close_shard()
                continue
            fit = max(fit, 1)
            end = int(ends[done_docs + fit - 1])
            data = flat[done_tokens:end].astype(self.dtype, copy=False).tobytes()
            self._file.write(data)
            self._hash.update(data)
            self._shard.tokens += end - done_tokens
            self._shard.documents += fit
            done_docs, done_tokens = done_docs + fit, end
            if self._shard.tokens >= self.max_tokens:
                self._close_shard()

    def close(self) -> list[Shard]:
        if self._file is not None:
            self._close_shard()
        return self.shards
