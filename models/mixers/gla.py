"""Gated Linear Attention (Yang, Wang, Shen, Panda & Kim, 2024, "Gated Linear Attention Transformers
with Hardware-Efficient Training"), as fla's `GatedLinearAttention` layer with its defaults.

Per head, a matrix memory S [K, V] with a data-dependent forget gate per key dimension:

    S_t = diag(alpha_t) S_{t-1} + k_t v_t^T,   o_t = S_t^T q_t / sqrt(K)

where `log alpha_t = logsigmoid(W_2 W_1 x_t + b) / tau` comes from a low-rank projection (rank 16)
and the normaliser tau = 16 keeps the decays close to 1 at initialisation. The output is per-head
`RMSNorm(o) * silu(gate_proj(x))` (or RMSNorm alone without the output gate) and an out-projection.

Shapes: B batch, T time, D model width, H heads, K key head width, V value head width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.errors import UserError
from models.init import init_linear
from models.mixers.base import LinearAttentionConfig
from models.norms import GatedRMSNorm, RMSNorm
from models.ops import gla
from models.packing import Packing

CHUNK_SIZE = 64  # the chunk length of the torch and fla kernels, used for the FLOP count


@dataclass
class GLAConfig(LinearAttentionConfig):
    """GLA's fields: the linear-attention heads (one value head per q/k head), the low-rank forget
    gate and the optional output gate."""

    type = "gla"
    output_gate: bool = True  # o = RMSNorm(o) * silu(gate_proj(x)) per head; else RMSNorm(o) alone
    gate_low_rank_dim: int = 16  # forget gate log a = logsigmoid(W2 W1 x + b) / gate_logit_normalizer
    gate_logit_normalizer: float = 16.0

    def validate(self, d_model: int) -> None:
        super().validate(d_model)
        if self.gate_low_rank_dim < 1 or self.gate_logit_normalizer <= 0:
            raise UserError(
                f"gate_low_rank_dim={self.gate_low_rank_dim} and gate_logit_normalizer="
                f"{self.gate_logit_normalizer} must both be positive."
            )


class GatedLinearAttention(nn.Module):
    """The GLA sequence mixer; see the module docstring for the recurrence."""

    config_class = GLAConfig

    def __init__(self, cfg: GLAConfig, d_model: int, norm_eps: float) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_heads, self.head_k_dim, self.head_v_dim = cfg.n_heads, cfg.head_k_dim, cfg.head_v_dim
        key_width, value_width = self.n_heads * self.head_k_dim, self.n_heads * self.head_v_dim
        self.split = (key_width, key_width, value_width)
        self.qkv_proj = nn.Linear(d_model, sum(self.split), bias=False)
        self.gk_down = nn.Linear(d_model, cfg.gate_low_rank_dim, bias=False)  # low-rank forget gate
        self.gk_up = nn.Linear(cfg.gate_low_rank_dim, key_width, bias=True)
        self.gate_proj = nn.Linear(d_model, value_width, bias=False) if cfg.output_gate else None
        norm = GatedRMSNorm if cfg.output_gate else RMSNorm
        self.o_norm = norm(self.head_v_dim, cfg.gate_norm_eps)
        self.o_proj = nn.Linear(value_width, d_model, bias=False)

    @torch.no_grad()
    def reset_parameters(self, std: float, out_std: float) -> None:
        for proj in (self.qkv_proj, self.gk_down, self.gk_up, self.gate_proj):
            if proj is not None:
                init_linear(proj, std)
        init_linear(self.o_proj, out_std)
        self.o_norm.reset_parameters()

    def forward(self, x: torch.Tensor, packing: Packing | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        H, K, V = self.n_heads, self.head_k_dim, self.head_v_dim
        q, k, v = self.qkv_proj(x).split(self.split, dim=-1)
        g = F.logsigmoid(self.gk_up(self.gk_down(x)).float()) / self.cfg.gate_logit_normalizer  # [B, T, H*K]
        q, k, g = (t.reshape(B, T, H, K) for t in (q, k, g))
        v = v.reshape(B, T, H, V)
        if packing is not None:  # documents become packed sequences of one long row
            q, k, v, g = (t.reshape(1, B * T, *t.shape[2:]) for t in (q, k, v, g))
        o, _ = gla(q, k, v, g, packing=packing, backend=self.cfg.backend)
        o = o.reshape(B, T, H, V)
        o = self.o_norm(o) if self.gate_proj is None else self.o_norm(o, self.gate_proj(x).view(B, T, H, V))
        return self.o_proj(o.reshape(B, T, H * V))

    @staticmethod
    def _matmul_params(cfg: GLAConfig, d_model: int) -> int:
        key_width, value_width = cfg.n_heads * cfg.head_k_dim, cfg.n_heads * cfg.head_v_dim
        gate = d_model * value_width if cfg.output_gate else 0
        low_rank = cfg.gate_low_rank_dim * (d_model + key_width)
        return d_model * (2 * key_width + value_width) + low_rank + gate + value_width * d_model

    @staticmethod
    def num_params(cfg: GLAConfig, d_model: int) -> int:
        key_width = cfg.n_heads * cfg.head_k_dim
        return (
            GatedLinearAttention._matmul_params(cfg, d_model) + key_width + cfg.head_v_dim
        )  # gate bias, norm

    @staticmethod
    def flops_per_token(cfg: GLAConfig, d_model: int, seq_len: int) -> int:
        """Training FLOPs per token (forward + backward = 3 x forward, 2 FLOPs per multiply-add).

        Projections: 6 x weights. The chunked recurrence per head and token, chunk C: intra-chunk
        decayed q k^T scores (2CK) and read (2CV), the inter-chunk state read (2KV) and update (2KV);
        the elementwise decay factors are not counted. Independent of seq_len: linear in time.
        """
        K, V, C = cfg.head_k_dim, cfg.head_v_dim, CHUNK_SIZE
        recurrence = cfg.n_heads * (2 * C * K + 2 * C * V + 4 * K * V)
        return 6 * GatedLinearAttention._matmul_params(cfg, d_model) + 3 * recurrence
