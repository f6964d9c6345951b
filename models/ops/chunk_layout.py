"""Shared layout plumbing of the chunked linear-attention ops: argument checks and chunk-major views.

The chunked kernels (gated delta rule, simple GLA, GLA) all work on a chunk-major layout: a leading
chunk axis N, a flattened batch*head axis Z, then the C positions of the chunk. Dense batches
[B, T, H, *D] are zero-padded per row; packed batches (B == 1 with `cu_seqlens`) are padded per
sequence, so every sequence starts a fresh chunk and a "segment" (range of chunks) of its own.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from models.errors import UserError
from models.packing import packed_chunks


def check_backend(backend: str, backends: tuple[str, ...], x: torch.Tensor) -> None:
    """Raise ValueError for an unknown backend, or for fla on a CPU tensor."""
    if backend not in backends:
        raise UserError(f"backend={backend!r} is unknown; use one of {backends}.")
    if backend == "fla" and not x.is_cuda:
        raise UserError(f"backend='fla' needs CUDA tensors, got device {x.device}; use backend='torch'.")


def check_packing(cu_seqlens: torch.Tensor | None, b: int, t: int) -> tuple[int, ...] | None:
    """Validate `cu_seqlens` against a [B, T, ...] input; return its host boundaries (None: unpacked)."""
    if cu_seqlens is None:
        return None
    if b != 1:
        raise ValueError(f"cu_seqlens needs packed inputs with B == 1, got B={b}; flatten the batch first.")
    if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2 or cu_seqlens.is_floating_point():
        raise ValueError(
            f"cu_seqlens {tuple(cu_seqlens.shape)} must be an integer tensor [N+1]; pass cumulative lengths."
        )
    bounds = cu_seqlens.tolist()
    if bounds[0] != 0 or bounds[-1] != t or any(x > y for x, y in itertools.pairwise(bounds)):
        raise ValueError(
            f"cu_seqlens {bounds} must rise from 0 to T={t}; pass the cumulative sequence lengths."
        )
    return tuple(bounds)


def check_initial_state(
    initial_state: torch.Tensor | None, n_seq: int, h: int, k_dim: int, v_dim: int
) -> None:
    """Raise ValueError unless the initial state is None or [N, H, K, V]."""
    if initial_state is not None and tuple(initial_state.shape) != (n_seq, h, k_dim, v_dim):
        raise ValueError(
            f"initial_state {tuple(initial_state.shape)} must be [N, H, K, V]=({n_seq}, {h}, {k_dim}, "
            f"{v_dim}); pass one state per sequence."
        )


def dense_to_chunks(x: torch.Tensor, chunk: int) -> torch.Tensor:
    """[B, T, H, *D] -> [N, B*H, C, *D], zero-padding T up to a multiple of the chunk size."""
    b, t, h = x.shape[:3]
    n = max(1, -(-t // chunk))
    if n * chunk != t:
        x = F.pad(x, [0, 0] * (x.dim() - 2) + [0, n * chunk - t])
    x = x.view(b, n, chunk, h, *x.shape[3:])
    x = x.transpose(0, 1).transpose(2, 3)  # [N, B, H, C, *D]
    return x.reshape(n, b * h, chunk, *x.shape[4:]).contiguous()


def dense_from_chunks(o: torch.Tensor, b: int, t: int) -> torch.Tensor:
    """[N, B*H, C, V] -> [B, T, H, V], dropping the padding."""
    n, bh, c, v_dim = o.shape
    o = o.view(n, b, bh // b, c, v_dim).permute(1, 0, 3, 2, 4)  # [B, N, C, H, V]
    return o.reshape(b, n * c, bh // b, v_dim)[:, :t]


def packed_to_chunks(x: torch.Tensor, gather: torch.Tensor, chunk: int) -> torch.Tensor:
    """[1, T, H, *D] -> [N, H, C, *D]: each sequence padded on its own to whole chunks."""
    x = F.pad(x[0], [0, 0] * (x.dim() - 2) + [0, 1])  # [T+1, H, *D], last row is the zero pad
    x = x.index_select(0, gather).view(-1, chunk, *x.shape[1:])  # [N, C, H, *D]
    return x.transpose(1, 2).contiguous()


def packed_from_chunks(o: torch.Tensor, scatter: torch.Tensor) -> torch.Tensor:
    """[N, H, C, V] -> [1, T, H, V]."""
    n, h, c, v_dim = o.shape
    return o.transpose(1, 2).reshape(n * c, h, v_dim).index_select(0, scatter).unsqueeze(0)


def run_chunked(core, tensors: list[torch.Tensor], initial_state, bounds, chunk: int, layout=None):
    """Lay [B, T, H, *D] tensors out in chunks, apply `core(*chunks, h0, segments)`, lay o back out.

    `core` returns (o [N, Z, C, V], finals [S, Z, K, V]); this returns o [B, T, H, V] and the final
    state of every sequence [N_seq, H, K, V]. `bounds` (host ints) packs sequences into B == 1;
    `layout` is their precomputed `models.packing.PackedChunks` when the caller has one.
    """
    b, t, h = tensors[0].shape[:3]
    if bounds is None:
        chunks = [dense_to_chunks(x, chunk) for x in tensors]
        h0 = None if initial_state is None else initial_state.reshape(1, b * h, *initial_state.shape[2:])
        o, finals = core(*chunks, h0, ((0, chunks[0].shape[0]),))
        return dense_from_chunks(o, b, t), finals.view(b, h, *finals.shape[2:])
    layout = layout or packed_chunks(bounds, chunk, tensors[0].device)
    chunks = [packed_to_chunks(x, layout.gather, chunk) for x in tensors]
    o, finals = core(*chunks, initial_state, layout.segments)
    return packed_from_chunks(o, layout.scatter), finals


def run_per_sequence(core, tensors: list[torch.Tensor], initial_state, bounds):
    """Apply a token-by-token `core(*tensors, h0)` to each packed sequence from its own state."""
    if bounds is None:
        return core(*tensors, initial_state)
    outputs, finals = [], []
    for n, (s, e) in enumerate(itertools.pairwise(bounds)):
        h0 = None if initial_state is None else initial_state[n : n + 1]
        o, state = core(*(x[:, s:e] for x in tensors), h0)
        outputs.append(o)
        finals.append(state)
    return torch.cat(outputs, dim=1), torch.cat(finals, dim=0)
