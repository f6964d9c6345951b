"""Chunked gated linear attention in plain PyTorch: scalar decay (simple GLA / SSD) and per-key decay (GLA).

Both recurrences are linear in the state, S_t = diag(a_t) S_{t-1} + k_t v_t^T with a_t = exp(g_t)
(a scalar per head for simple GLA, a vector over K for GLA), so the chunkwise form is the one of
Yang et al. 2024 ("Gated Linear Attention Transformers with Hardware-Efficient Training"): inside a
chunk of C tokens a causal decayed attention, across chunks one K x V state per head carried by a
short scan. With gamma the cumulative log decay from the chunk start (gamma <= 0, decreasing):

    o_i = (q_i * e^{gamma_i}) S_in + sum_{j <= i} <q_i, k_j * e^{gamma_i - gamma_j}> v_j
    S_out = diag(e^{gamma_C}) S_in + sum_j (k_j * e^{gamma_C - gamma_j}) v_j^T

Every exponent is <= 0, so no term can overflow. The per-key intra-chunk scores cannot be factored as
(q e^gamma)(k e^-gamma)^T without e^{-gamma} overflowing under strong decay (fp32 overflows once a
chunk's log decay passes -88), so GLA uses fla's secondary chunking: within sub-chunks of c tokens the
pairwise decays e^{gamma_i - gamma_j} are formed explicitly ([c, c, K], masked before exp); between
sub-chunks both factors are taken relative to the boundary r just before the query's sub-chunk,
<q_i e^{gamma_i - gamma_r}, k_j e^{gamma_r - gamma_j}>, whose exponents are both <= 0. Secondary
chunking rather than full log-space: the explicit [C, C, K] tensor would cost C/c times the memory.

Layout: chunk-major [N, Z, C, ...] (see `models.ops.chunk_layout`); q already scaled. The batched
parts are differentiated by autograd; the inter-chunk scan, the only sequential part (elementwise per
chunk: the K x V contributions are batched before it), has a hand-written reverse scan.
"""

from __future__ import annotations

import torch

Segments = tuple[tuple[int, int], ...]


class _StateScan(torch.autograd.Function):
    """S <- chunk_decay * S + contrib over the chunks of each segment, with a hand-written reverse scan.

    forward(contrib [N, Z, K, V], chunk_decay [N, Z, K or 1, 1], initial_state [S, Z, K, V] or None,
    segments) -> (state entering every chunk [N, Z, K, V], each segment's final state [S, Z, K, V]).
    Autograd through the loop would record 2 nodes per chunk; the reverse scan is one pass.
    """

    @staticmethod
    def forward(ctx, contrib, chunk_decay, initial_state, segments: Segments):
        entering = torch.empty_like(contrib)  # [N, Z, K, V]
        finals = contrib.new_empty(len(segments), *contrib.shape[1:])  # [S, Z, K, V]
        for seg, (start, stop) in enumerate(segments):
            if initial_state is None:
                entering[start].zero_()
            else:
                entering[start].copy_(initial_state[seg])
            for i in range(start, stop):
                nxt = entering[i + 1] if i + 1 < stop else finals[seg]
                torch.addcmul(contrib[i], chunk_decay[i], entering[i], out=nxt)
        ctx.save_for_backward(chunk_decay, entering)
        ctx.segments, ctx.has_initial_state = segments, initial_state is not None
        ctx.set_materialize_grads(False)
        return entering, finals

    @staticmethod
    def backward(ctx, d_entering, d_finals):
        chunk_decay, entering = ctx.saved_tensors
        d_contrib = torch.empty_like(entering)  # gradient of the state leaving each chunk
        d_initial = entering.new_empty(len(ctx.segments), *entering.shape[1:])
        for seg in range(len(ctx.segments) - 1, -1, -1):
            start, stop = ctx.segments[seg]
            d_state = entering.new_zeros(entering.shape[1:]) if d_finals is None else d_finals[seg]
            for i in range(stop - 1, start - 1, -1):
                d_contrib[i] = d_state
                d_state = d_state * chunk_decay[i]
                if d_entering is not None:
                    d_state = d_state + d_entering[i]
            d_initial[seg] = d_state
        d_decay = (d_contrib * entering).sum(-1, keepdim=True)  # [N, Z, K, 1]
        if chunk_decay.shape[-2] == 1:
            d_decay = d_decay.sum(-2, keepdim=True)  # a scalar decay per head
        return d_contrib, d_decay, d_initial if ctx.has_initial_state else None, None


def _state_scan(
    contrib: torch.Tensor, chunk_decay: torch.Tensor, initial_state: torch.Tensor | None, segments: Segments
) -> tuple[torch.Tensor, torch.Tensor]:
    """The inter-chunk scan; see `_StateScan` for shapes."""
    return _StateScan.apply(contrib, chunk_decay, initial_state, segments)


def chunk_simple_gla_core(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    initial_state: torch.Tensor | None,
    segments: Segments,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scalar-decay chunked GLA. q, k: [N, Z, C, K], v: [N, Z, C, V], g: [N, Z, C] -> o, finals."""
    c = q.shape[-2]
    causal = torch.ones(c, c, dtype=torch.bool, device=q.device).tril()
    gamma = g.cumsum(-1)  # [N, Z, C]
    gamma_last = gamma[..., -1:]  # [N, Z, 1]
    decay = (gamma.unsqueeze(-1) - gamma.unsqueeze(-2)).masked_fill(~causal, float("-inf")).exp()
    attn = (q @ k.transpose(-1, -2)) * decay  # [N, Z, C, C]
    k_to_end = k * (gamma_last - gamma).exp().unsqueeze(-1)  # [N, Z, C, K]
    contrib = k_to_end.transpose(-1, -2) @ v  # [N, Z, K, V]
    chunk_decay = gamma_last.exp().unsqueeze(-1)  # [N, Z, 1, 1]
    entering, finals = _state_scan(contrib, chunk_decay, initial_state, segments)
    o = (q * gamma.exp().unsqueeze(-1)) @ entering + attn @ v  # [N, Z, C, V]
    return o, finals


def _gla_intra_scores(q: torch.Tensor, k: torch.Tensor, gamma: torch.Tensor, sub: int) -> torch.Tensor:
    """Causal per-key decayed scores sum_k q_ik k_jk e^{gamma_ik - gamma_jk} [N, Z, C, C], overflow-free."""
    n, z, c, k_dim = q.shape
    s = c // sub
    qs, ks, gs = (x.view(n, z, s, sub, k_dim) for x in (q, k, gamma))  # [N, Z, S, c, K]
    # Diagonal sub-chunk blocks: explicit pairwise decays, masked before the exp.
    causal = torch.ones(sub, sub, dtype=torch.bool, device=q.device).tril()
    pair = (gs.unsqueeze(-2) - gs.unsqueeze(-3)).masked_fill(~causal.unsqueeze(-1), float("-inf")).exp()
    diag = (qs.unsqueeze(-2) * ks.unsqueeze(-3) * pair).sum(-1)  # [N, Z, S, c, c]
    # Off-diagonal blocks (query sub-chunk a > key sub-chunk b), relative to the boundary before a.
    ref = torch.cat([gs.new_zeros(n, z, 1, k_dim), gs[:, :, :-1, -1]], dim=2)  # [N, Z, S, K]
    q_rel = qs * (gs - ref.unsqueeze(-2)).exp()  # [N, Z, S, c, K]
    before = torch.ones(s, s, dtype=torch.bool, device=q.device).tril(-1)  # [a, b]: b < a
    expo = ref[:, :, :, None, None] - gs[:, :, None]  # [N, Z, S_a, S_b, c, K]
    k_rel = ks.unsqueeze(2) * expo.masked_fill(~before[:, :, None, None], float("-inf")).exp()
    off = torch.einsum("nzaik,nzabjk->nzaibj", q_rel, k_rel)  # [N, Z, S, c, S, c]
    eye = torch.eye(s, dtype=q.dtype, device=q.device)[:, None, :, None]  # [S, 1, S, 1]
    return (off + diag.unsqueeze(-2) * eye).reshape(n, z, c, c)


def chunk_gla_core(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    initial_state: torch.Tensor | None,
    segments: Segments,
    sub_chunk: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-key-decay chunked GLA. q, k, g: [N, Z, C, K], v: [N, Z, C, V]; C a multiple of sub_chunk."""
    gamma = g.cumsum(-2)  # [N, Z, C, K]
    gamma_last = gamma[..., -1:, :]  # [N, Z, 1, K]
    attn = _gla_intra_scores(q, k, gamma, sub_chunk)  # [N, Z, C, C]
    k_to_end = k * (gamma_last - gamma).exp()  # [N, Z, C, K]
    contrib = k_to_end.transpose(-1, -2) @ v  # [N, Z, K, V]
    chunk_decay = gamma_last.exp().transpose(-1, -2)  # [N, Z, K, 1]
    entering, finals = _state_scan(contrib, chunk_decay, initial_state, segments)
    o = (q * gamma.exp()) @ entering + attn @ v  # [N, Z, C, V]
    return o, finals
