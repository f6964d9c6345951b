"""Document boundaries inside packed training sequences, computed once per forward for every mixer.

`LM.forward` turns `doc_ids` [B, T] into one frozen `Packing` and hands the same object to every
block; each mixer takes `forward(x, packing=None)`. All host work (the one device -> host copy of
the boundaries, the chunk index maps, the attention masks) happens here, outside compiled blocks,
so no layer syncs with the device or breaks a `torch.compile` graph to rediscover the documents.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

CHUNK_SIZE = 64  # the chunk length of the gated delta rule kernels (ours and fla's) and fla's conv


def cu_seqlens_from_doc_ids(doc_ids: torch.Tensor) -> torch.Tensor:
    """Cumulative segment lengths [N + 1] for the batch flattened to one row of B*T tokens.

    A segment starts at every row start and wherever `doc_ids` [B, T] changes along a row, so
    recurrent state and convolutions never carry over from one document (or row) to the next.
    """
    B, T = doc_ids.shape
    starts = torch.ones_like(doc_ids, dtype=torch.bool)
    starts[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
    offsets = starts.flatten().nonzero().squeeze(1)
    total = torch.tensor([B * T], device=doc_ids.device, dtype=offsets.dtype)
    return torch.cat([offsets, total])


@dataclass(frozen=True, eq=False)
class PackedChunks:
    """Index maps between packed tokens and per-sequence chunk-padded slots of `size` tokens.

    gather [S*size]: token feeding each slot (T, one past the end, for padding); scatter [T]: slot
    of each token; segments: the (start, stop) chunk range of each sequence, every sequence getting
    at least one chunk so an empty one still passes its state through; chunk_indices [n, 2]: fla's
    varlen layout, (sequence, chunk within the sequence) per chunk.
    """

    size: int
    gather: torch.Tensor
    scatter: torch.Tensor
    segments: tuple[tuple[int, int], ...]
    chunk_indices: torch.Tensor


def packed_chunks(bounds: tuple[int, ...], size: int, device: torch.device | str = "cpu") -> PackedChunks:
    """Build the `PackedChunks` of sequences with cumulative lengths `bounds` (python ints, on the host)."""
    total = bounds[-1]
    lengths = [e - s for s, e in itertools.pairwise(bounds)]
    n_chunks = [max(1, -(-n // size)) for n in lengths]
    gather = torch.full((sum(n_chunks) * size,), total, dtype=torch.long)
    scatter = torch.empty(total, dtype=torch.long)
    segments, first = [], 0
    for (s, e), n in zip(itertools.pairwise(bounds), n_chunks):
        gather[first * size : first * size + e - s] = torch.arange(s, e)
        scatter[s:e] = torch.arange(first * size, first * size + e - s)
        segments.append((first, first + n))
        first += n
    fla_index = [(seq, c) for seq, n in enumerate(lengths) for c in range(-(-n // size))]
    chunk_indices = torch.tensor(fla_index, dtype=torch.long).view(-1, 2)
    return PackedChunks(
        size, gather.to(device), scatter.to(device), tuple(segments), chunk_indices.to(device)
    )


def causal_mask(seq_len: int, window: int | None, device: torch.device | str) -> torch.Tensor:
    """Boolean mask [T, T], True where query i may attend to key j: j <= i, and i - window < j if given."""
    i = torch.arange(seq_len, device=device)[:, None]
    j = torch.arange(seq_len, device=device)[None, :]
    allowed = j <= i
    return allowed if window is None else allowed & (j > i - window)


def document_mask(doc_ids: torch.Tensor, window: int | None) -> torch.Tensor:
    """Boolean mask [B, 1, T, T]: `causal_mask` and doc_ids[b, i] == doc_ids[b, j] (same document)."""
    allowed = causal_mask(doc_ids.shape[1], window, doc_ids.device)[None, None]
    return allowed & (doc_ids[:, None, :, None] == doc_ids[:, None, None, :])


@functools.cache
def flex_attention_available() -> bool:
    """True when `flex_attention` can compile here (it needs triton, hence a CUDA machine)."""
    try:
        import triton  # noqa: F401
        from torch.nn.attention.flex_attention import create_block_mask  # noqa: F401
    except Exception:
        return False
    return True


def document_block_mask(doc_ids: torch.Tensor, window: int | None):
    """flex_attention `BlockMask` of the same rule as `document_mask`, skipping fully masked blocks."""
    from torch.nn.attention.flex_attention import create_block_mask

    def allowed(b, h, q_idx, kv_idx):
        keep = (kv_idx <= q_idx) & (doc_ids[b, q_idx] == doc_ids[b, kv_idx])
        return keep if window is None else keep & (q_idx - kv_idx < window)

    B, T = doc_ids.shape
    return create_block_mask(allowed, B, None, T, T, device=doc_ids.device)


@dataclass(frozen=True, eq=False)
class Packing:
    """The document layout of one packed batch, shared by every layer of one forward.

    Interface (every mixer): `forward(x [B, T, D], packing: Packing | None = None)`; None means
    each row is one sequence. Build it with `Packing.from_doc_ids`; read, never modify, its fields:

    - doc_ids [B, T]: document number of each token.
    - cu_seqlens [N + 1] int64 on the device, cu_seqlens_cpu on the host, bounds as python ints:
      segment boundaries of the batch flattened to one row of B*T tokens (a segment is a document
      piece within one row); recurrent mixers reshape to [1, B*T, ...] and reset state at each.
    - max_seqlen: the longest segment.
    - position [B*T] int64: offset of each token from its segment start (convolutions).
    - chunks: `PackedChunks` for chunk size `CHUNK_SIZE` (our torch kernel and fla's `chunk_indices`).
    - masks: window -> SDPA boolean mask [B, 1, T, T] (CPU path), one per distinct window;
      block_masks: window -> flex_attention `BlockMask` (CUDA path). Use `attention_mask(window)`.
    """

    doc_ids: torch.Tensor
    cu_seqlens: torch.Tensor
    cu_seqlens_cpu: torch.Tensor
    bounds: tuple[int, ...]
    max_seqlen: int
    position: torch.Tensor
    chunks: PackedChunks
    masks: Mapping[int | None, torch.Tensor]
    block_masks: Mapping[int | None, object]

    @classmethod
    def from_doc_ids(
        cls, doc_ids: torch.Tensor, windows: Iterable[int | None] = (), flex: bool | None = None
    ) -> Packing:
        """Compute the layout of `doc_ids` [B, T] and one attention mask per distinct window in `windows`.

        `flex` picks flex_attention block masks over SDPA boolean masks; by default flex on CUDA
        when it is available. This is the only place that copies the boundaries to the host.
        """
        cu_seqlens_cpu = cu_seqlens_from_doc_ids(doc_ids.cpu())  # the one device -> host copy
        cu_seqlens = cu_seqlens_cpu.to(doc_ids.device)
        bounds = tuple(cu_seqlens_cpu.tolist())
        lengths = cu_seqlens_cpu.diff()
        starts = torch.repeat_interleave(cu_seqlens_cpu[:-1], lengths)
        position = (torch.arange(bounds[-1]) - starts).to(doc_ids.device)
        if flex is None:
            flex = doc_ids.is_cuda and flex_attention_available()
        distinct = list(dict.fromkeys(windows))
        build = document_block_mask if flex else document_mask
        built = {window: build(doc_ids, window) for window in distinct}
        return cls(
            doc_ids=doc_ids,
            cu_seqlens=cu_seqlens,
            cu_seqlens_cpu=cu_seqlens_cpu,
            bounds=bounds,
            max_seqlen=int(lengths.max()),
            position=position,
            chunks=packed_chunks(bounds, CHUNK_SIZE, doc_ids.device),
            masks={} if flex else built,
            block_masks=built if flex else {},
        )

    def attention_mask(self, window: int | None) -> torch.Tensor:
        """The SDPA mask [B, 1, T, T] of `window`: the shared one, or built now if none was prepared."""
        mask = self.masks.get(window)
        return document_mask(self.doc_ids, window) if mask is None else mask
