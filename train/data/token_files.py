"""Existing token files (Dolma / OLMo-core layout) as a source: raw ids, EOS-separated documents.

The files are read as `np.memmap`s of `token_dtype` in chunks, cut into documents at every EOS and
re-written through the same split and shard writer as text, so a mixed dataset has one format. A
trailing run without EOS is kept as a last document (EOS appended) and counted.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from models.errors import UserError
from train.data.config import SourceConfig, SourceType
from train.data.sources import SourceStats, check_source, expand_paths, file_inputs

_CHUNK_TOKENS = 1 << 24


class TokenFileSource:
    """Documents of existing token files, as (flat ids with EOS, per-document lengths) batches."""

    def __init__(self, name: str, cfg: SourceConfig):
        check_source(name, cfg, (SourceType.tokens,))
        self.name, self.cfg = name, cfg
        if cfg.token_dtype not in ("uint8", "uint16", "uint32", "uint64"):
            raise UserError(
                f"source '{name}' has token_dtype={cfg.token_dtype}; set data.sources.{name}.token_dtype "
                "to the files' dtype (uint16 or uint32 for OLMo token files)."
            )
        self.dtype = np.dtype(cfg.token_dtype).newbyteorder("<")
        self.files = expand_paths(name, list(cfg.paths), None)
        for path in self.files:
            if path.stat().st_size % self.dtype.itemsize:
                raise UserError(
                    f"source '{name}': {path} has {path.stat().st_size} bytes, not a whole number of "
                    f"{cfg.token_dtype} tokens; check data.sources.{name}.token_dtype."
                )
        self.stats = SourceStats()
        self.unterminated_documents = 0

    def inputs(self) -> list:
        return file_inputs(self.files)

    def batches(self, eos_id: int, vocab_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(flat, lengths) batches of whole documents; ids are checked against the tokenizer's vocab."""
        self.stats, self.unterminated_documents = SourceStats(), 0
        cap_docs, cap_bytes = self.cfg.max_docs, self.cfg.max_bytes
        for path in self.files:
            tokens = np.memmap(path, dtype=self.dtype, mode="r")
            start = 0
            while start < len(tokens):
                chunk = np.asarray(tokens[start : start + _CHUNK_TOKENS])
                ends = np.flatnonzero(chunk == eos_id) + 1
                if start + len(chunk) == len(tokens) and (len(ends) == 0 or ends[-1] != len(chunk)):
                    self.unterminated_documents += 1
                    chunk = np.append(chunk, np.asarray(eos_id, dtype=chunk.dtype))
                    ends = np.append(ends, len(chunk))
                if len(ends) == 0:
                    raise UserError(
                        f"source '{self.name}': {path} has a document longer than {_CHUNK_TOKENS} tokens "
                        f"without EOS {eos_id}; check the tokenizer's eos_token."
                    )
                chunk = chunk[: ends[-1]]
                if chunk.max() >= vocab_size:
                    raise UserError(
                        f"source '{self.name}': {path} holds token id {int(chunk.max())}, "
                        f"but the tokenizer has "
                        f"{vocab_size} ids; use the tokenizer these files were made with."
                    )
                lengths = np.diff(ends, prepend=0)
                lengths, chunk = self._cap(lengths, chunk, cap_docs, cap_bytes)
                self.stats.documents += len(lengths)
                self.stats.bytes += chunk.nbytes
                yield chunk, lengths
                start += int(ends[-1])
                if len(lengths) == 0 or self._full(cap_docs, cap_bytes):
                    return

    def _full(self, cap_docs: int | None, cap_bytes: int | None) -> bool:
        return (cap_docs is not None and self.stats.documents >= cap_docs) or (
            cap_bytes is not None and self.stats.bytes >= cap_bytes
        )

    def _cap(self, lengths: np.ndarray, chunk: np.ndarray, cap_docs: int | None, cap_bytes: int | None):
        """Cut the batch at the caps (`max_bytes` counts token bytes here), keeping whole documents."""
        keep = len(lengths)
        if cap_docs is not None:
            keep = min(keep, cap_docs - self.stats.documents)
        if cap_bytes is not None:
            ends = np.cumsum(lengths) * chunk.itemsize + self.stats.bytes
            keep = min(keep, int(np.searchsorted(ends, cap_bytes, side="left")) + 1)
        return lengths[:keep], chunk[: int(lengths[:keep].sum())]
