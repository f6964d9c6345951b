"""Token-by-token gated delta rule: the slow, obviously correct reference the chunked form is tested against.

Recurrence per value head (Yang et al. 2024, "Gated Delta Networks"):
    S_t = exp(g_t) S_{t-1}
    S_t = S_t + beta_t k_t (v_t - S_t^T k_t)^T
    o_t = S_t^T q_t
which equals S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T.
"""

from __future__ import annotations

import torch


def recurrent_gated_delta_rule_core(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    initial_state: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the recurrence over one batch of equal-length sequences, differentiable by autograd.

    q, k: [B, T, H, K] (q already scaled, heads already expanded to match v), v: [B, T, H, V],
    g, beta: [B, T, H], initial_state: [B, H, K, V] or None. Returns o [B, T, H, V] and the final
    state [B, H, K, V], both in the compute dtype of the inputs.
    """
    b, t, h, k_dim = k.shape
    state = initial_state if initial_state is not None else v.new_zeros(b, h, k_dim, v.shape[-1])
    outputs = []
    for i in range(t):
        state = state * g[:, i].exp()[..., None, None]  # [B, H, K, V]
        k_i = k[:, i]  # [B, H, K]
        delta = (v[:, i] - torch.einsum("bhkv,bhk->bhv", state, k_i)) * beta[:, i, :, None]  # [B, H, V]
        state = state + k_i.unsqueeze(-1) * delta.unsqueeze(-2)
        outputs.append(torch.einsum("bhkv,bhk->bhv", state, q[:, i]))
    o = torch.stack(outputs, dim=1) if outputs else v.new_zeros(v.shape)  # [B, T, H, V]
    return o, state
