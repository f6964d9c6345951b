"""Token-by-token gated linear attention: the slow, obviously correct reference for the chunked forms.

Recurrence per head (Yang et al. 2024, "Gated Linear Attention Transformers"; Mamba-2's SSD when the
decay is one scalar per head):
    S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T
    o_t = S_t^T q_t
"""

from __future__ import annotations

import torch


def recurrent_gla_core(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, initial_state: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the recurrence over equal-length sequences, differentiable by autograd.

    q, k: [B, T, H, K] (q already scaled), v: [B, T, H, V], g: [B, T, H, K] or [B, T, H, 1] (scalar
    decay broadcast over K), initial_state: [B, H, K, V] or None. Returns o [B, T, H, V] and the
    final state [B, H, K, V].
    """
    b, t, h, k_dim = k.shape
    state = initial_state if initial_state is not None else v.new_zeros(b, h, k_dim, v.shape[-1])
    outputs = []
    for i in range(t):
        state = state * g[:, i].exp().unsqueeze(-1) + k[:, i].unsqueeze(-1) * v[:, i].unsqueeze(-2)
        outputs.append(torch.einsum("bhkv,bhk->bhv", state, q[:, i]))
    o = torch.stack(outputs, dim=1) if outputs else v.new_zeros(v.shape)  # [B, T, H, V]
    return o, state
