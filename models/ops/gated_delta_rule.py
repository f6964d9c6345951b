"""Public gated delta rule op: argument checks, layout handling and backend dispatch.

The gated delta rule (Yang et al. 2024, "Gated Delta Networks: Improving Mamba2 with Delta Rule") is
the recurrence S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T, o_t = scale S_t^T q_t.
Tensor layout, argument names and semantics follow fla's `chunk_gated_delta_rule`, so a model can
switch between our PyTorch path (CPU, reference) and fla's Triton kernels (CUDA) without changes.
"""

from __future__ import annotations

import functools

import torch

from models.ops.chunk_layout import (
    check_backend,
    check_initial_state,
    check_packing,
    run_chunked,
    run_per_sequence,
)
from models.ops.gdn_chunk import chunk_gated_delta_rule_core
from models.ops.gdn_recurrent import recurrent_gated_delta_rule_core

BACKENDS = ("auto", "torch", "torch_recurrent", "fla")
CHUNK_SIZE = 64


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


def _check_args(q, k, v, g, beta, initial_state, cu_seqlens, backend) -> None:
    """Raise ValueError naming the offending value and the fix; shapes follow fla's [B, T, H, ...] layout."""
    check_backend(backend, BACKENDS, q)
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
    n_seq = check_packing(cu_seqlens, b, t)
    check_initial_state(initial_state, n_seq, hv, k_dim, v.shape[-1])


def _torch_chunk(q, k, v, g, beta, initial_state, cu_seqlens):
    """Chunked PyTorch backend on prepared fp32 inputs; returns o [B, T, HV, V] and states [N, HV, K, V]."""
    return run_chunked(chunk_gated_delta_rule_core, [q, k, v, g, beta], initial_state, cu_seqlens, CHUNK_SIZE)


def _torch_recurrent(q, k, v, g, beta, initial_state, cu_seqlens):
    """Token-by-token backend; packed sequences are run one after another from their own state."""
    return run_per_sequence(recurrent_gated_delta_rule_core, [q, k, v, g, beta], initial_state, cu_seqlens)


def _fla(q, k, v, g, beta, scale, initial_state, output_final_state, cu_seqlens, use_qk_l2norm):
    """fla's Triton chunk kernel; imported here so CPU code paths never import triton."""
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule

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
        cu_seqlens=cu_seqlens,
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
            initial_state[n] (or zero) at each sequence start.
        use_qk_l2norm: L2-normalise q and k over K (eps 1e-6 inside the rsqrt) before use.
        backend: "torch" (chunked, exact), "torch_recurrent" (per token reference), "fla" (CUDA Triton),
            or "auto" (fla on CUDA when its kernels import, else torch).

    Returns:
        o [B, T, HV, V] in q's dtype and the final state [N, HV, K, V] in fp32, or None.
    """
    _check_args(q, k, v, g, beta, initial_state, cu_seqlens, backend)
    if scale is None:
        scale = q.shape[-1] ** -0.5
    if backend == "auto":
        backend = "fla" if q.is_cuda and fla_kernels_available() else "torch"
    if backend == "fla":
        return _fla(q, k, v, g, beta, scale, initial_state, output_final_state, cu_seqlens, use_qk_l2norm)

    out_dtype = q.dtype
    compute = torch.float64 if out_dtype == torch.float64 else torch.float32
    q, k, v, g, beta = (x.to(compute) for x in (q, k, v, g, beta))
    q, k = (_l2norm(q, scale), _l2norm(k)) if use_qk_l2norm else (q * scale, k)
    groups = v.shape[2] // q.shape[2]
    if groups > 1:
        q, k = q.repeat_interleave(groups, dim=2), k.repeat_interleave(groups, dim=2)
    h0 = None if initial_state is None else initial_state.to(compute)
    run = _torch_chunk if backend == "torch" else _torch_recurrent
    o, final_state = run(q, k, v, g, beta, h0, cu_seqlens)
    return o.to(out_dtype), (final_state if output_final_state else None)
