"""DeltaNet (Yang, Wang, Zhang, Shen & Kim, 2024, "Parallelizing Linear Transformers with the Delta
Rule over Sequence Length"), as fla's `DeltaNet` layer: Gated DeltaNet without the decay.

Per head a matrix memory S [K, V] updated by the delta rule, which writes the correction between the
new value and what the memory already returns for that key:

    S_t = (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,   o_t = S_t^T q_t / sqrt(K)

computed by `gated_delta_rule` with g = 0 (no new kernel). q, k and v pass a short causal depthwise
convolution + SiLU, q and k are L2-normalised, `beta = sigmoid(b_proj(x))` in (0, 1), doubled to
(0, 2) when negative eigenvalues are allowed (Grazzi et al., 2024). The output is per-head
`RMSNorm(o) * silu(gate_proj(x))` (or RMSNorm alone without the output gate) and an out-projection.

Shapes: B batch, T time, D model width, H q/k heads, HV value heads (a multiple of H), K key head
width, V value head width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from models.init import init_linear
from models.mixers.gated_deltanet import DeltaRuleConfig
from models.norms import GatedRMSNorm, RMSNorm
from models.ops import gated_delta_rule, short_conv
from models.packing import Packing

CHUNK_SIZE = 64  # the chunk length of the torch and fla kernels, used for the FLOP count


@dataclass
class DeltaNetConfig(DeltaRuleConfig):
    """DeltaNet's fields: Gated DeltaNet's without the decay init, plus the optional output gate."""

    type = "deltanet"
    output_gate: bool = True  # o = RMSNorm(o) * silu(gate_proj(x)) per head; else RMSNorm(o) alone


class DeltaNet(nn.Module):
    """The DeltaNet sequence mixer; see the module docstring for the recurrence."""

    config_class = DeltaNetConfig

    def __init__(self, cfg: DeltaNetConfig, d_model: int, norm_eps: float) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_heads, self.n_v_heads = cfg.n_heads, cfg.n_v_heads
        self.head_k_dim, self.head_v_dim = cfg.head_k_dim, cfg.head_v_dim
        key_width, value_width = self.n_heads * self.head_k_dim, self.n_v_heads * self.head_v_dim
        self.split = (key_width, key_width, value_width)
        self.qkv_proj = nn.Linear(d_model, sum(self.split), bias=False)
        self.conv_weight = nn.Parameter(torch.empty(sum(self.split), cfg.conv_size))  # depthwise
        self.b_proj = nn.Linear(d_model, self.n_v_heads, bias=False)
        self.gate_proj = nn.Linear(d_model, value_width, bias=False) if cfg.output_gate else None
        norm = GatedRMSNorm if cfg.output_gate else RMSNorm
        self.o_norm = norm(self.head_v_dim, cfg.gate_norm_eps)
        self.o_proj = nn.Linear(value_width, d_model, bias=False)

    @torch.no_grad()
    def reset_parameters(self, std: float, out_std: float) -> None:
        for proj in (self.qkv_proj, self.b_proj, self.gate_proj):
            if proj is not None:
                init_linear(proj, std)
        init_linear(self.o_proj, out_std)
        bound = 1.0 / math.sqrt(self.cfg.conv_size)  # nn.Conv1d's default for a depthwise kernel
        nn.init.uniform_(self.conv_weight, -bound, bound)
        self.o_norm.reset_parameters()

    def forward(self, x: torch.Tensor, packing: Packing | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        qkv = self.qkv_proj(x)  # [B, T, 2*H*K + HV*V]
        beta = self.b_proj(x).float().sigmoid()  # [B, T, HV]
        if self.cfg.allow_neg_eigval:
            beta = beta * 2.0
        g = beta.new_zeros(beta.shape)  # no decay: the delta rule alone
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
        if self.gate_proj is None:
            o = self.o_norm(o)
        else:
            o = self.o_norm(o, self.gate_proj(x).view(B, T, self.n_v_heads, self.head_v_dim))
        return self.o_proj(o.reshape(B, T, -1))

    @staticmethod
    def _matmul_params(cfg: DeltaNetConfig, d_model: int) -> int:
        key_width, value_width = cfg.n_heads * cfg.head_k_dim, cfg.n_v_heads * cfg.head_v_dim
        gate = d_model * value_width if cfg.output_gate else 0
        return (
            d_model * (2 * key_width + value_width) + d_model * cfg.n_v_heads + gate + value_width * d_model
        )

    @staticmethod
    def num_params(cfg: DeltaNetConfig, d_model: int) -> int:
        conv_width = 2 * cfg.n_heads * cfg.head_k_dim + cfg.n_v_heads * cfg.head_v_dim
        return (
            DeltaNet._matmul_params(cfg, d_model) + conv_width * cfg.conv_size + cfg.head_v_dim
        )  # conv, norm

    @staticmethod
    def flops_per_token(cfg: DeltaNetConfig, d_model: int, seq_len: int) -> int:
        """Training FLOPs per token (forward + backward = 3 x forward, 2 FLOPs per multiply-add).

        As Gated DeltaNet's count (the decay costs nothing measurable): projections 6 x weights,
        convolution 2 W per channel, and per value head and token with chunk C the intra-chunk k k^T
        and q k^T (2 x 2CK), the triangular solve (C(K + V)), the intra-chunk read (2CV) and the
        inter-chunk state read, correction and update (3 x 2KV). Linear in time.
        """
        K, V, C = cfg.head_k_dim, cfg.head_v_dim, CHUNK_SIZE
        conv_width = 2 * cfg.n_heads * K + cfg.n_v_heads * V
        recurrence = cfg.n_v_heads * (4 * C * K + C * (K + V) + 2 * C * V + 6 * K * V)
        return 6 * DeltaNet._matmul_params(cfg, d_model) + 3 * (2 * cfg.conv_size * conv_width + recurrence)
