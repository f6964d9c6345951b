"""Public gated linear attention ops: `simple_gla` (scalar decay, Mamba-2's SSD) and `gla` (per-key decay).

Both run S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T, o_t = scale S_t^T q_t per head. Tensor layout,
argument names and semantics follow fla's `chunk_simple_gla` and `chunk_gla`, so a model switches
between our PyTorch path (CPU, exact reference) and fla's Triton kernels (CUDA) without changes.
Mamba-2's SSD is `simple_gla` with q = C, k = B, v = dt * x, g = dt * A and scale = 1.
"""

from __future__ import annotations

import functools
import importlib

import torch

from models.ops.chunk_layout import (
    check_backend,
    check_initial_state,
    check_packing,
    run_chunked,
    run_per_sequence,
)
from models.ops.gla_chunk import chunk_gla_core, chunk_simple_gla_core
from models.ops.gla_recurrent import recurrent_gla_core
from models.packing import Packing

BACKENDS = ("auto", "torch", "torch_recurrent", "fla")
CHUNK_SIZE = 64
SUB_CHUNK = 16  # GLA's secondary chunk (see models.ops.gla_chunk); CHUNK_SIZE must be a multiple


@functools.cache
def fla_kernels_available(module: str) -> bool:
    """True when fla's Triton kernels in `fla.ops.<module>` import (needs triton, hence CUDA machines)."""
    try:
        importlib.import_module(f"fla.ops.{module}")
    except Exception:
        return False
    return True


def _check_args(
    q, k, v, g, g_shape: str, initial_state, cu_seqlens, packing, backend
) -> tuple[int, ...] | None:
    """Raise ValueError naming the offending value and the fix; shapes follow fla's [B, T, H, ...] layout.

    Returns the host boundaries of packed sequences: a `Packing`'s own (no device sync), else those of
    a raw `cu_seqlens` (its one `.tolist()`), else None.
    """
    check_backend(backend, BACKENDS, q)
    if q.dim() != 4 or k.shape != q.shape:
        raise ValueError(
            f"q {tuple(q.shape)} and k {tuple(k.shape)} must both be [B, T, H, K]; reshape them to that layout."
        )
    b, t, h, k_dim = q.shape
    if v.dim() != 4 or v.shape[:3] != (b, t, h):
        raise ValueError(f"v {tuple(v.shape)} must be [B={b}, T={t}, H={h}, V]; reshape it to match q.")
    expected = (b, t, h) if g_shape == "[B, T, H]" else (b, t, h, k_dim)
    if tuple(g.shape) != expected:
        raise ValueError(
            f"g {tuple(g.shape)} must be {g_shape}={expected}; pass one log decay per head and step."
        )
    if cu_seqlens is not None and packing is not None:
        raise ValueError("pass cu_seqlens or packing, not both; packing already holds cu_seqlens.")
    if packing is not None and (b != 1 or packing.position.shape[0] != t):
        raise ValueError(
            f"packing covers {packing.position.shape[0]} tokens, not [1, T={t}]; flatten [B, T]."
        )
    bounds = packing.bounds if packing is not None else check_packing(cu_seqlens, b, t)
    check_initial_state(initial_state, b if bounds is None else len(bounds) - 1, h, k_dim, v.shape[-1])
    return bounds


def _run(name, q, k, v, g, scale, initial_state, output_final_state, cu_seqlens, packing, bounds, backend):
    """Shared dispatch of both ops; `name` is the fla module ("simple_gla" or "gla")."""
    if scale is None:
        scale = q.shape[-1] ** -0.5
    if backend == "auto":
        backend = "fla" if q.is_cuda and fla_kernels_available(name) else "torch"
    if backend == "fla":  # imported here so CPU code paths never import triton
        fla_ops = importlib.import_module(f"fla.ops.{name}")
        fla_fn = fla_ops.chunk_simple_gla if name == "simple_gla" else fla_ops.chunk_gla
        return fla_fn(
            q,
            k,
            v,
            g,
            scale=scale,
            initial_state=initial_state,
            output_final_state=output_final_state,
            cu_seqlens=cu_seqlens if packing is None else packing.cu_seqlens,
        )
    out_dtype = q.dtype
    compute = torch.float64 if out_dtype == torch.float64 else torch.float32
    q, k, v, g = (x.to(compute) for x in (q, k, v, g))
    q = q * scale
    h0 = None if initial_state is None else initial_state.to(compute)
    if backend == "torch":
        core = (
            chunk_simple_gla_core
            if name == "simple_gla"
            else functools.partial(chunk_gla_core, sub_chunk=SUB_CHUNK)
        )
        layout = packing.chunks if packing is not None and packing.chunks.size == CHUNK_SIZE else None
        o, final_state = run_chunked(core, [q, k, v, g], h0, bounds, CHUNK_SIZE, layout)
    else:
        g = g.unsqueeze(-1) if name == "simple_gla" else g  # broadcast a scalar decay over K
        o, final_state = run_per_sequence(recurrent_gla_core, [q, k, v, g], h0, bounds)
    return o.to(out_dtype), (final_state if output_final_state else None)


def simple_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    *,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.LongTensor | None = None,
    packing: Packing | None = None,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gated linear attention with one scalar decay per head and step (fla's `chunk_simple_gla`).

    S_t = exp(g_t) S_{t-1} + k_t v_t^T, o_t = scale S_t^T q_t: Mamba-2's SSD (Dao & Gu, 2024).

    Args:
        q, k: [B, T, H, K]. v: [B, T, H, V]. g: [B, T, H] log decay (<= 0).
        scale: query scale, default K ** -0.5 (Mamba-2 uses 1).
        initial_state: [N, H, K, V] state per sequence (N = B, or the number of packed sequences).
        output_final_state: also return the state after the last token of each sequence.
        cu_seqlens: [N+1] cumulative lengths of sequences packed into B == 1; the state restarts from
            initial_state[n] (or zero) at each sequence start.
        packing: instead of cu_seqlens, the forward's precomputed `models.packing.Packing` (its host
            boundaries and chunk maps are reused, so no layer syncs with the device).
        backend: "torch" (chunked, exact), "torch_recurrent" (per token reference), "fla" (CUDA Triton),
            or "auto" (fla on CUDA when its kernels import, else torch).

    Returns:
        o [B, T, H, V] in q's dtype and the final state [N, H, K, V] in fp32, or None.
    """
    bounds = _check_args(q, k, v, g, "[B, T, H]", initial_state, cu_seqlens, packing, backend)
    return _run(
        "simple_gla",
        q,
        k,
        v,
        g,
        scale,
        initial_state,
        output_final_state,
        cu_seqlens,
        packing,
        bounds,
        backend,
    )


def gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    *,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.LongTensor | None = None,
    packing: Packing | None = None,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gated linear attention with a decay per key dimension (fla's `chunk_gla`; Yang et al., 2024).

    S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T, o_t = scale S_t^T q_t. The torch path is exact under
    strong decays (secondary chunking, no exp of a positive number; see `models.ops.gla_chunk`).

    Args:
        q, k: [B, T, H, K]. v: [B, T, H, V]. g: [B, T, H, K] log decay (<= 0).
        scale, initial_state, output_final_state, cu_seqlens, packing, backend: as for `simple_gla`.

    Returns:
        o [B, T, H, V] in q's dtype and the final state [N, H, K, V] in fp32, or None.
    """
    bounds = _check_args(q, k, v, g, "[B, T, H, K]", initial_state, cu_seqlens, packing, backend)
    return _run(
        "gla", q, k, v, g, scale, initial_state, output_final_state, cu_seqlens, packing, bounds, backend
    )
