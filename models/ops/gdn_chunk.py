"""Chunked gated delta rule in plain PyTorch, with a hand-derived backward pass.

Implements the chunkwise-parallel form of the gated delta rule from Yang et al. 2024, "Gated Delta
Networks: Improving Mamba2 with Delta Rule", which extends the WY/UT representation of DeltaNet's
chunkwise algorithm (Yang et al. 2024, "Parallelizing Linear Transformers with the Delta Rule over
Sequence Length") with a scalar log decay. See docs/kernels.md for the derivation.

Everything here works on a chunk-major layout: a leading chunk axis N (so chunk i is one contiguous
block), a flattened batch*head axis Z, then the C positions of the chunk. Inputs are already
normalised, scaled, head-expanded and padded; `models.ops.gated_delta_rule` does that.

The sequential part over chunks only carries the K x V state; every other product is batched over
all chunks at once before or after the scan. Autograd never sees the Python loop: the backward pass
is a reverse scan that recomputes nothing and accumulates the state gradient chunk by chunk.
"""

from __future__ import annotations

import torch

Segments = tuple[tuple[int, int], ...]


def _forward_scan(
    u: torch.Tensor,
    w: torch.Tensor,
    k_to_end: torch.Tensor,
    chunk_decay: torch.Tensor,
    initial_state: torch.Tensor | None,
    segments: Segments,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the inter-chunk recurrence; return the state entering each chunk, the corrected values, finals.

    Per chunk: v_new = u - w @ S and S <- decay * S + k_to_end^T @ v_new. Each segment (one sequence)
    starts from its own initial state, so packed sequences never see each other's state.
    """
    n_chunks, z, _, v_dim = u.shape
    k_dim = w.shape[-1]
    states = u.new_empty(n_chunks, z, k_dim, v_dim)  # [N, Z, K, V] state entering each chunk
    v_new = u.clone()  # [N, Z, C, V]
    finals = u.new_empty(len(segments), z, k_dim, v_dim)  # [S, Z, K, V]
    k_to_end_t = k_to_end.transpose(-1, -2)  # [N, Z, K, C]
    for seg, (start, stop) in enumerate(segments):
        if initial_state is None:
            states[start].zero_()
        else:
            states[start].copy_(initial_state[seg])
        for i in range(start, stop):
            v_new[i].baddbmm_(w[i], states[i], alpha=-1.0)
            nxt = states[i + 1] if i + 1 < stop else finals[seg]
            torch.mul(states[i], chunk_decay[i], out=nxt).baddbmm_(k_to_end_t[i], v_new[i])
    return states, v_new, finals


def _backward_scan(
    d_v_new: torch.Tensor,
    d_entering: torch.Tensor,
    w: torch.Tensor,
    k_to_end: torch.Tensor,
    chunk_decay: torch.Tensor,
    d_finals: torch.Tensor | None,
    segments: Segments,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reverse scan for the state gradient; completes d_v_new in place.

    On entry d_v_new holds P^T dO and d_entering[i] holds (q e^gamma)^T dO of chunk i, the parts that
    do not depend on later chunks. On exit d_v_new is the full gradient of v_new. Returns the full
    gradient of the state leaving each chunk and of each segment's initial state.
    """
    z, k_dim, v_dim = d_entering.shape[1:]
    d_leaving = torch.empty_like(d_entering)  # [N, Z, K, V]
    d_initial = d_entering.new_empty(len(segments), z, k_dim, v_dim)  # [S, Z, K, V]
    w_t = w.transpose(-1, -2)  # [N, Z, K, C]
    for seg in range(len(segments) - 1, -1, -1):
        start, stop = segments[seg]
        if d_finals is None:
            d_leaving[stop - 1].zero_()
        else:
            d_leaving[stop - 1].copy_(d_finals[seg])
        for i in range(stop - 1, start - 1, -1):
            d_out = d_leaving[i]
            d_v_new[i].baddbmm_(k_to_end[i], d_out)
            d_in = d_leaving[i - 1] if i > start else d_initial[seg]
            torch.addcmul(d_entering[i], d_out, chunk_decay[i], out=d_in).baddbmm_(
                w_t[i], d_v_new[i], alpha=-1.0
            )
    return d_leaving, d_initial


class ChunkGatedDeltaRule(torch.autograd.Function):
    """Chunked gated delta rule (Yang et al. 2024, Gated Delta Networks; DeltaNet chunkwise WY form).

    forward(q, k, v, g, beta, initial_state, segments) -> (o, final_states)
      q, k: [N, Z, C, K] (q already scaled), v: [N, Z, C, V], g, beta: [N, Z, C],
      initial_state: [S, Z, K, V] or None, segments: S (start, stop) chunk ranges covering 0..N.
      o: [N, Z, C, V], final_states: [S, Z, K, V].
    """

    @staticmethod
    def forward(ctx, q, k, v, g, beta, initial_state, segments: Segments):
        c = q.shape[-2]
        causal = torch.ones(c, c, dtype=torch.bool, device=q.device).tril()
        gamma = g.cumsum(-1)  # [N, Z, C] log decay from the chunk start
        gamma_last = gamma[..., -1:]  # [N, Z, 1]
        # decay[i, j] = exp(gamma_i - gamma_j) for j <= i, exactly 0 above the diagonal (no exp of +inf)
        decay = (gamma.unsqueeze(-1) - gamma.unsqueeze(-2)).masked_fill_(~causal, float("-inf")).exp_()
        k_t = k.transpose(-1, -2)  # [N, Z, K, C]
        k_beta = k * beta.unsqueeze(-1)  # [N, Z, C, K]
        attn = (q @ k_t).mul_(decay)  # [N, Z, C, C] intra-chunk causal attention
        a = (k_beta @ k_t).mul_(decay).tril_(-1)  # [N, Z, C, C] strictly lower part of the UT system
        # T = (I + A)^{-1}; u = T (beta v) and w = T (beta e^gamma k) are the WY/UT factors
        eye = torch.eye(c, dtype=q.dtype, device=q.device).expand_as(a)
        t_inv = torch.linalg.solve_triangular(a, eye, upper=False, unitriangular=True)  # [N, Z, C, C]
        exp_gamma = gamma.exp()  # [N, Z, C]
        u = t_inv @ (v * beta.unsqueeze(-1))  # [N, Z, C, V]
        w = t_inv @ (k_beta * exp_gamma.unsqueeze(-1))  # [N, Z, C, K]
        q_decayed = q * exp_gamma.unsqueeze(-1)  # [N, Z, C, K] reads the entering state
        to_end = (gamma_last - gamma).exp()  # [N, Z, C]
        k_to_end = k * to_end.unsqueeze(-1)  # [N, Z, C, K] writes into the leaving state
        chunk_decay = gamma_last.exp().unsqueeze(-1)  # [N, Z, 1, 1]

        states, v_new, finals = _forward_scan(u, w, k_to_end, chunk_decay, initial_state, segments)
        o = torch.matmul(q_decayed, states).add_(attn @ v_new)  # [N, Z, C, V]

        ctx.save_for_backward(
            q,
            k,
            v,
            beta,
            k_beta,
            exp_gamma,
            to_end,
            decay,
            attn,
            a,
            t_inv,
            w,
            k_to_end,
            q_decayed,
            chunk_decay,
        )
        ctx.states, ctx.v_new = states, v_new
        ctx.segments = segments
        ctx.has_initial_state = initial_state is not None
        ctx.set_materialize_grads(False)
        return o, finals

    @staticmethod
    def backward(ctx, d_o, d_finals):
        (
            q,
            k,
            v,
            beta,
            k_beta,
            exp_gamma,
            to_end,
            decay,
            attn,
            a,
            t_inv,
            w,
            k_to_end,
            q_decayed,
            chunk_decay,
        ) = ctx.saved_tensors
        states, v_new = ctx.states, ctx.v_new
        # contiguous once here: the incoming gradient is often a strided or expanded view
        d_o = torch.zeros_like(v_new) if d_o is None else d_o.contiguous()

        # Inter-chunk part: reverse scan for the state gradient.
        d_v_new = attn.transpose(-1, -2) @ d_o  # [N, Z, C, V]
        d_states = q_decayed.transpose(-1, -2) @ d_o  # [N, Z, K, V]
        d_leaving, d_initial = _backward_scan(
            d_v_new, d_states, w, k_to_end, chunk_decay, d_finals, ctx.segments
        )
        states_t = states.transpose(-1, -2)  # [N, Z, V, K]
        d_q_decayed = d_o @ states_t  # [N, Z, C, K]
        d_k_to_end = v_new @ d_leaving.transpose(-1, -2)  # [N, Z, C, K]
        d_chunk_decay = (states * d_leaving).sum((-2, -1))  # [N, Z]
        d_attn = d_o @ v_new.transpose(-1, -2)  # [N, Z, C, C]

        # Through T = (I + A)^{-1}: d rhs = T^T d(u, w), dA = -(d rhs)(u, w)^T. Since d_w = -d_v_new S^T,
        # d rhs_k = -(d rhs_v) S^T and dA = -(d rhs_v)(u - w S)^T = -(d rhs_v) v_new^T (strictly lower).
        d_rhs_v = t_inv.transpose(-1, -2) @ d_v_new  # [N, Z, C, V]
        d_rhs_k = (d_rhs_v @ states_t).neg_()  # [N, Z, C, K]
        d_a = (d_rhs_v @ v_new.transpose(-1, -2)).tril_(-1).neg_()  # [N, Z, C, C]

        # Through scores * decay: gradients of the scores and of the log decay gamma.
        pair = (d_attn * attn).addcmul_(d_a, a)  # [N, Z, C, C]
        d_gamma = pair.sum(-1) - pair.sum(-2)  # [N, Z, C]
        d_attn.mul_(decay)  # now d(q k^T), zero above the diagonal
        d_a.mul_(decay)  # now d((beta k) k^T)
        d_q = (d_attn @ k).addcmul_(d_q_decayed, exp_gamma.unsqueeze(-1))  # [N, Z, C, K]
        d_k_beta = (d_a @ k).addcmul_(d_rhs_k, exp_gamma.unsqueeze(-1))  # [N, Z, C, K]
        d_k = (d_attn.transpose(-1, -2) @ q).add_(d_a.transpose(-1, -2) @ k_beta)  # [N, Z, C, K]
        d_k.addcmul_(d_k_beta, beta.unsqueeze(-1)).addcmul_(d_k_to_end, to_end.unsqueeze(-1))
        d_v = d_rhs_v * beta.unsqueeze(-1)
        d_beta = (d_rhs_v * v).sum(-1) + (d_k_beta * k).sum(-1)  # [N, Z, C]

        d_gamma += exp_gamma * (d_rhs_k * k_beta).sum(-1) + (d_q_decayed * q_decayed).sum(-1)
        to_end_part = (d_k_to_end * k_to_end).sum(-1)  # [N, Z, C]
        d_gamma -= to_end_part
        d_gamma[..., -1] += to_end_part.sum(-1) + d_chunk_decay * chunk_decay[..., 0, 0]
        # gamma = cumsum(g) -> dg is the reverse cumulative sum of d_gamma
        d_g = d_gamma.flip(-1).cumsum(-1).flip(-1)
        return d_q, d_k, d_v, d_g, d_beta, d_initial if ctx.has_initial_state else None, None


def chunk_gated_delta_rule_core(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    initial_state: torch.Tensor | None,
    segments: Segments,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply ChunkGatedDeltaRule on chunk-major inputs; see the class docstring for shapes."""
    return ChunkGatedDeltaRule.apply(q, k, v, g, beta, initial_state, segments)
