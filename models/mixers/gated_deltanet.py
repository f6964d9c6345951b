"""Gated DeltaNet (Yang, Kautz & Hatamizadeh, 2024, "Gated Delta Networks"), as in Olmo Hybrid.

The layer keeps a matrix memory S [K, V] per head, updated by the gated delta rule
`S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T` and read as `o_t = S_t^T q_t`.
q, k and v pass through a short causal depthwise convolution + SiLU; q and k are L2-normalised;
the decay is Mamba-2's `g = -exp(A_log) * softplus(a + dt_bias)` and the write strength
`beta = sigmoid(b)`, doubled when negative eigenvalues are allowed (Grazzi et al., 2024) so the
transition `I - beta k k^T` can flip sign. The output passes RMSNorm, a SiLU gate, and a projection.

Shapes: B batch, T time, D model width, H q/k heads, HV value heads (a multiple of H), K key
head width, V value head width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.errors import UserError
from models.init import init_linear
from models.mixers.base import DecayInit, LinearAttentionConfig
from models.norms import GatedRMSNorm
from models.ops import gated_delta_rule, short_conv
from models.packing import CHUNK_SIZE, Packing  # the kernels' chunk length, for the FLOP count


@dataclass
class DeltaRuleConfig(LinearAttentionConfig):
    """The fields every delta-rule mixer shares (Gated DeltaNet, DeltaNet): value heads, conv, beta range."""

    n_v_heads: int | None = None  # grouped value heads (several v heads share one q/k head); default: n_heads
    conv_size: int = 4
    allow_neg_eigval: bool = True  # beta in (0, 2) instead of (0, 1)

    def derived_defaults(self, d_model: int, n_heads: int) -> dict:
        resolved = super().derived_defaults(d_model, n_heads)
        return resolved | {"n_v_heads": self.n_v_heads or resolved["n_heads"]}

    def validate(self, d_model: int) -> None:
        super().validate(d_model)
        if self.n_v_heads < 1 or self.n_v_heads % self.n_heads:
            raise UserError(f"n_v_heads={self.n_v_heads} must be a multiple of n_heads={self.n_heads}.")
        if self.conv_size < 1:
            raise UserError(f"conv_size={self.conv_size} must be positive.")


@dataclass
class GatedDeltaNetConfig(DecayInit, DeltaRuleConfig):
    """Gated DeltaNet's fields: the delta-rule heads, value heads, conv, beta range and decay init."""

    type = "gated_deltanet"


class GatedDeltaNet(nn.Module):
    """The Gated DeltaNet sequence mixer; see the module docstring for the recurrence."""

    config_class = GatedDeltaNetConfig

    def __init__(self, cfg: GatedDeltaNetConfig, d_model: int, norm_eps: float) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_heads, self.n_v_heads = cfg.n_heads, cfg.n_v_heads
        self.head_k_dim, self.head_v_dim = cfg.head_k_dim, cfg.head_v_dim
        key_width, value_width = self.n_heads * self.head_k_dim, self.n_v_heads * self.head_v_dim
        self.split = (key_width, key_width, value_width)
        self.qkv_proj = nn.Linear(d_model, sum(self.split), bias=False)
        self.conv_weight = nn.Parameter(torch.empty(sum(self.split), cfg.conv_size))  # depthwise
        self.a_proj = nn.Linear(d_model, self.n_v_heads, bias=False)
        self.b_proj = nn.Linear(d_model, self.n_v_heads, bias=False)
        self.A_log = nn.Parameter(torch.empty(self.n_v_heads))
        self.dt_bias = nn.Parameter(torch.empty(self.n_v_heads))
        self.gate_proj = nn.Linear(d_model, value_width, bias=False)
        self.o_norm = GatedRMSNorm(self.head_v_dim, cfg.gate_norm_eps)
        self.o_proj = nn.Linear(value_width, d_model, bias=False)

    @torch.no_grad()
    def reset_parameters(self, std: float, out_std: float) -> None:
        for proj in (self.qkv_proj, self.a_proj, self.b_proj, self.gate_proj):
            init_linear(proj, std)
        init_linear(self.o_proj, out_std)
        bound = 1.0 / math.sqrt(self.cfg.conv_size)  # nn.Conv1d's default for a depthwise kernel
        nn.init.uniform_(self.conv_weight, -bound, bound)
        cfg = self.cfg
        self.A_log.copy_(torch.empty_like(self.A_log).uniform_(cfg.a_log_min, cfg.a_log_max).log())
        log_dt = torch.empty_like(self.dt_bias).uniform_(math.log(cfg.dt_min), math.log(cfg.dt_max))
        dt = log_dt.exp().clamp(min=cfg.dt_floor)
        self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus
        self.o_norm.reset_parameters()

    def forward(self, x: torch.Tensor, packing: Packing | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        qkv = self.qkv_proj(x)  # [B, T, 2*H*K + HV*V]
        beta = self.b_proj(x).sigmoid()  # [B, T, HV]
        if self.cfg.allow_neg_eigval:
            beta = beta * 2.0
        g = -self.A_log.float().exp() * F.softplus(self.a_proj(x).float() + self.dt_bias)  # [B, T, HV]
        if packing is not None:  # documents become packed sequences of one long row
            qkv, beta, g = (t.reshape(1, B * T, *t.shape[2:]) for t in (qkv, beta, g))
        backend = self.cfg.backend
        conv_backend = "torch" if backend.startswith("torch") else backend  # the conv has one torch path
        qkv = short_conv(qkv, self.conv_weight, activation="silu", packing=packing, backend=conv_backend)
        q, k, v = qkv.split(self.split, dim=-1)
        rows, length = qkv.shape[:2]
        q = q.reshape(rows, length, self.n_heads, self.head_k_dim)
        k = k.reshape(rows, length, self.n_heads, self.head_k_dim)
        v = v.reshape(rows, length, self.n_v_heads, self.head_v_dim)
        o, _ = gated_delta_rule(q, k, v, g, beta, use_qk_l2norm=True, packing=packing, backend=backend)
        o = o.reshape(B, T, self.n_v_heads, self.head_v_dim)
        gate = self.gate_proj(x).view(B, T, self.n_v_heads, self.head_v_dim)
        return self.o_proj(self.o_norm(o, gate).reshape(B, T, -1))

    @staticmethod
    def _matmul_params(cfg: GatedDeltaNetConfig, d_model: int) -> int:
        key_width, value_width = cfg.n_heads * cfg.head_k_dim, cfg.n_v_heads * cfg.head_v_dim
        return (
            d_model * (2 * key_width + value_width) + 2 * d_model * cfg.n_v_heads + 2 * d_model * value_width
        )

    @staticmethod
    def num_params(cfg: GatedDeltaNetConfig, d_model: int) -> int:
        conv_width = 2 * cfg.n_heads * cfg.head_k_dim + cfg.n_v_heads * cfg.head_v_dim
        extras = conv_width * cfg.conv_size + 2 * cfg.n_v_heads + cfg.head_v_dim  # conv, A_log, dt, norm
        return GatedDeltaNet._matmul_params(cfg, d_model) + extras

    @staticmethod
    def flops_per_token(cfg: GatedDeltaNetConfig, d_model: int, seq_len: int) -> int:
        """Training FLOPs per token (forward + backward = 3 x forward, 2 FLOPs per multiply-add).

        Projections: 6 x weights. Convolution: 2 W FLOPs per channel. The chunked recurrence per
        value head and token, with chunk C: intra-chunk k k^T and q k^T (2 x 2CK), the triangular
        solve for both right-hand sides (C(K + V)), the intra-chunk read (2CV), and the inter-chunk
        state read, correction and update (3 x 2KV). Independent of seq_len: linear in time.
        """
        K, V, C = cfg.head_k_dim, cfg.head_v_dim, CHUNK_SIZE
        conv_width = 2 * cfg.n_heads * K + cfg.n_v_heads * V
        recurrence = cfg.n_v_heads * (4 * C * K + C * (K + V) + 2 * C * V + 6 * K * V)
        return 6 * GatedDeltaNet._matmul_params(cfg, d_model) + 3 * (
            2 * cfg.conv_size * conv_width + recurrence
        )
