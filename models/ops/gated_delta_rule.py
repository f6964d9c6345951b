"""Public gated delta rule op: argument checks, layout handling and backend dispatch.

The gated delta rule (Yang et al. 2024, "Gated Delta Networks: Improving Mamba2 with Delta Rule") is
the recurrence S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T, o_t = scale S_t^T q_t.
Tensor layout, argument names and semantics follow fla's `chunk_gated_delta_rule`, so a model can
switch between our PyTorch path (CPU, reference) and fla's Triton kernels (CUDA) without changes.
"""

from __future__ import annotations

import functools
import itertools

import torch

from models.errors import UserError
from models.ops.chunk_layout import dense_from_chunks, dense_to_chunks, packed_from_chunks, packed_to_chunks
from models.ops.gdn_chunk import chunk_gated_delta_rule_core
from models.ops.gdn_recurrent import recurrent_gated_delta_rule_core
from models.packing import CHUNK_SIZE, Packing, packed_chunks

BACKENDS = ("auto", "torch", "torch_recurrent", "fla")


@functools.cache
def fla_kernels_available() -> bool:
    """True when fla's Triton gated delta rule kernels import (needs triton, hence CUDA machines)."""
    try:
        import fla.ops.gated_delta_rule  # noqa: F401
    except Exception:
        return False
    return True


def _l2norm(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """scale * x / sqrt(sum x^2 + 1e-6) over the last axis, the epsilon placement of fla and transformers."""
    return x * (torch.rsqrt((x * x).sum(-1, keepdim=True) + 1e-6) * scale)


def _check_args(q, k, v, g, beta, initial_state, cu_seqlens, packing, backend) -> tuple[int, ...] | None:
    """Raise ValueError naming the offending value and the fix; shapes follow fla's [B, T, H, ...] layout.

    Returns the host boundaries of a raw `cu_seqlens` (its one `.tolist()`), else None: a `Packing`
    was validated when it was built and is read here without touching its python ints.
    """
    if backend not in BACKENDS:
        raise UserError(f"backend={backend!r} is unknown; use one of {BACKENDS}.")
    if q.dim() != 4 or k.shape != q.shape:
        raise ValueError(
            f"q {tuple(q.shape)} and k {tuple(k.shape)} must both be [B, T, H, K]; reshape them to that layout."
        )
    b, t, h, k_dim = q.shape
    if v.dim() != 4 or v.shape[:2] != (b, t):
        raise ValueError(f"v {tuple(v.shape)} must be [B={b}, T={t}, HV, V]; reshape it to match q.")
    hv = v.shape[2]
    if hv % h != 0:
        raise ValueError(f"v has HV={hv} heads, not a multiple of H={h} q/k heads; use HV = H * groups.")
    for name, x in (("g", g), ("beta", beta)):
        if tuple(x.shape) != (b, t, hv):
            raise ValueError(f"{name} {tuple(x.shape)} must be [B, T, HV]=({b}, {t}, {hv}); reshape it.")
    if cu_seqlens is not None and packing is not None:
        raise ValueError("pass cu_seqlens or packing, not both; packing already holds cu_seqlens.")
    n_seq, bounds = b, None
    if (cu_seqlens is not None or packing is not None) and b != 1:
        raise ValueError(f"cu_seqlens needs packed inputs with B == 1, got B={b}; flatten the batch first.")
    if packing is not None:
        if packing.position.shape[0] != t:
            raise ValueError(f"packing covers {packing.position.shape[0]} tokens, not T={t}; flatten [B, T].")
        n_seq = packing.cu_seqlens.shape[0] - 1
    elif cu_seqlens is not None:
        if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2 or cu_seqlens.is_floating_point():
            raise ValueError(
                f"cu_seqlens {tuple(cu_seqlens.shape)} must be an integer tensor [N+1]; pass cumulative lengths."
            )
        bounds = tuple(cu_seqlens.tolist())
        if bounds[0] != 0 or bounds[-1] != t or any(x > y for x, y in itertools.pairwise(bounds)):
            raise ValueError(
                f"cu_seqlens {list(bounds)} must rise from 0 to T={t}; pass the cumulative sequence lengths."
            )
        n_seq = len(bounds) - 1
    if initial_state is not None and tuple(initial_state.shape) != (n_seq, hv, k_dim, v.shape[-1]):
        raise ValueError(
            f"initial_state {tuple(initial_state.shape)} must be [N, HV, K, V]=({n_seq}, {hv}, {k_dim}, "
            f"{v.shape[-1]}); pass one state per sequence."
        )
    if backend == "fla" and not q.is_cuda:
        raise UserError(f"backend='fla' needs CUDA tensors, got device {q.device}; use backend='torch'.")
    return bounds


def _torch_chunk(q, k, v, g, beta, initial_state):
    """Chunked PyTorch backend on prepared fp32 inputs; returns o [B, T, HV, V] and states [B, HV, K, V]."""
    b, t, hv = v.shape[:3]
    chunks = [dense_to_chunks(x, CHUNK_SIZE) for x in (q, k, v, g, beta)]
    h0 = None if initial_state is None else initial_state.reshape(1, b * hv, *initial_state.shape[2:])
    o, finals = chunk_gated_delta_rule_core(*chunks, h0, ((0, chunks[0].shape[0]),))
    return dense_from_chunks(o, b, t), finals.view(b, hv, *finals.shape[2:])


def _torch_recurrent(q, k, v, g, beta, initial_state, bounds: tuple[int, ...] | None):
    """Token-by-token backend; packed sequences are run one after another from their own state."""
    if bounds is None:
        return recurrent_gated_delta_rule_core(q, k, v, g, beta, initial_state)
    outputs, finals = [], []
    for n, (s, e) in enumerate(itertools.pairwise(bounds)):
        h0 = None if initial_state is None else initial_state[n : n + 1]
        o, state = recurrent_gated_delta_rule_core(
            q[:, s:e], k[:, s:e], v[:, s:e], g[:, s:e], beta[:, s:e], h0
        )
        outputs.append(o)
        finals.append(state)
    return torch.cat(outputs, dim=1), torch.cat(finals, dim=0)


@torch.compiler.disable
def _torch_packed(q, k, v, g, beta, initial_state, bounds, packing: Packing | None, recurrent: bool):
    """The torch backends on packed sequences [1, T, ...]; from `packing` when given, else `bounds`.

    Compiled graphs stop here (as at fla's kernel): the loop over sequences is python control flow
    that changes with every batch, and tracing it would specialise and recompile on each layout.
    """
    if recurrent:
        return _torch_recurrent(
            q, k, v, g, beta, initial_state, bounds if packing is None else packing.bounds
        )
    chunks = packed_chunks(bounds, CHUNK_SIZE, q.device) if packing is None else packing.chunks
    parts = [packed_to_chunks(x, chunks.gather, chunks.size) for x in (q, k, v, g, beta)]
    o, finals = chunk_gated_delta_rule_core(*parts, initial_state, chunks.segments)
    return packed_from_chunks(o, chunks.scatter), finals


def _fla(q, k, v, g, beta, scale, initial_state, output_final_state, cu_seqlens, packing, use_qk_l2norm):
    """fla's Triton chunk kernel; imported here so CPU code paths never import triton.

    With a `packing`, fla gets its host boundaries and chunk index too, so it never syncs to build them.
    """
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule

    varlen = {"cu_seqlens": cu_seqlens}
    if packing is not None:
        varlen = {
            "cu_seqlens": packing.cu_seqlens,
            "cu_seqlens_cpu": packing.cu_seqlens_cpu,
            "chunk_indices": packing.chunks.chunk_indices,
        }
    return chunk_gated_delta_rule(
        q,
        k,
        v,
        g,
        beta,
        scale=scale,
        initial_state=initial_state,
        output_final_state=output_final_state,
        use_qk_l2norm_in_kernel=use_qk_l2norm,
        **varlen,
    )


def gated_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    *,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.LongTensor | None = None,
    packing: Packing | None = None,
    use_qk_l2norm: bool = False,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gated delta rule attention (Yang et al. 2024, Gated Delta Networks), fla's argument conventions.

    Args:
        q, k: [B, T, H, K] queries and keys.
        v: [B, T, HV, V] values; HV = H * groups, q/k head i serves value heads i*groups..(i+1)*groups-1.
        g: [B, T, HV] log decay (<= 0). beta: [B, T, HV] write strength, typically in (0, 2).
        scale: query scale, default K ** -0.5.
        initial_state: [N, HV, K, V] state per sequence (N = B, or the number of packed sequences).
        output_final_state: also return the state after the last token of each sequence.
        cu_seqlens: [N+1] cumulative lengths of sequences packed into B == 1; the state is reset to
            initial_state[n] (or zero) at each sequence start. Validated with one host sync.
        packing: a `models.packing.Packing` instead of cu_seqlens: its precomputed boundaries and
            chunk maps, so nothing is synced or rebuilt per call (what the model's layers pass).
        use_qk_l2norm: L2-normalise q and k over K (eps 1e-6 inside the rsqrt) before use.
        backend: "torch" (chunked, exact), "torch_recurrent" (per token reference), "fla" (CUDA Triton),
            or "auto" (fla on CUDA when its kernels import, else torch).

    Returns:
        o [B, T, HV, V] in q's dtype and the final state [N, HV, K, V] in fp32, or None.
    """
    bounds = _check_args(q, k, v, g, beta, initial_state, cu_seqlens, packing, backend)
    if scale is None:
        scale = q.shape[-1] ** -0.5
    if backend == "auto":
        backend = "fla" if q.is_cuda and fla_kernels_available() else "torch"
    if backend == "fla":
        return _fla(
            q, k, v, g, beta, scale, initial_state, output_final_state, cu_seqlens, packing, use_qk_l2norm
        )

    out_dtype = q.dtype
    compute = torch.float64 if out_dtype == torch.float64 else torch.float32
    q, k, v, g, beta = (x.to(compute) for x in (q, k, v, g, beta))
    q, k = (_l2norm(q, scale), _l2norm(k)) if use_qk_l2norm else (q * scale, k)
    groups = v.shape[2] // q.shape[2]
    if groups > 1:
        q, k = q.repeat_interleave(groups, dim=2), k.repeat_interleave(groups, dim=2)
    h0 = None if initial_state is None else initial_state.to(compute)
    if bounds is None and packing is None:
        run = _torch_chunk if backend == "torch" else functools.partial(_torch_recurrent, bounds=None)
        o, final_state = run(q, k, v, g, beta, h0)
    else:
        o, final_state = _torch_packed(q, k, v, g, beta, h0, bounds, packing, backend == "torch_recurrent")
    return o.to(out_dtype), (final_state if output_final_state else None)
