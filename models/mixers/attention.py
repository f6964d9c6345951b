"""Causal softmax attention: full or sliding-window, grouped-query, Olmo-style QK-norm, RoPE.

Shapes: B batch, T time, D model width, H query heads, G key/value heads, Dh head width.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.errors import UserError
from models.init import init_linear
from models.mixers.base import MixerConfig, check_heads
from models.norms import RMSNorm
from models.packing import Packing, causal_mask, document_mask
from models.rope import YarnConfig, apply_rope, rope_angles


@dataclass
class AttentionConfig(MixerConfig):
    """Softmax attention's fields; `None` ones are resolved from the model (`MixerConfig.resolve`)."""

    type = "attention"
    n_heads: int | None = None  # default: the model's n_heads
    n_kv_heads: int | None = None  # grouped-query attention; default: n_heads
    head_dim: int | None = None  # default: d_model // n_heads
    window: int | None = None  # sliding window: query i sees keys j with i - window < j <= i
    qk_norm: bool = True  # Olmo-style RMSNorm over the whole q and k projections
    rope: bool = True
    rope_theta: float = 500_000.0
    yarn: YarnConfig | None = None

    def derived_defaults(self, d_model: int, n_heads: int) -> dict:
        heads = self.n_heads or n_heads
        return {
            "n_heads": heads,
            "n_kv_heads": self.n_kv_heads or heads,
            "head_dim": self.head_dim or d_model // heads,
        }

    def validate(self, d_model: int) -> None:
        super().validate(d_model)
        check_heads(d_model, self.n_heads)
        if self.n_kv_heads < 1 or self.n_heads % self.n_kv_heads:
            raise UserError(f"n_kv_heads={self.n_kv_heads} must divide n_heads={self.n_heads}.")
        if self.rope and self.head_dim % 2:
            raise UserError(f"RoPE needs an even head_dim, got {self.head_dim}.")
        if self.window is not None and self.window < 1:
            raise UserError(f"window={self.window} must be positive, or null for full attention.")


def attention_mask(
    seq_len: int, window: int | None, doc_ids: torch.Tensor | None, device: torch.device
) -> torch.Tensor:
    """Boolean mask [B|1, 1, T, T], True where query i may attend to key j.

    Causal (j <= i), within `window` (i - window < j) when given, and within the same document
    when `doc_ids` [B, T] is given. The model builds the document masks once per forward in
    `Packing`; this per-call builder serves windows without documents and direct callers.
    """
    if doc_ids is not None:
        return document_mask(doc_ids, window)
    return causal_mask(seq_len, window, device)[None, None]


@functools.cache
def _compiled_flex_attention():
    """flex_attention compiled once (eager flex materialises the scores); nested in compiled blocks too."""
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


class Attention(nn.Module):
    """Multi-head causal attention (Vaswani et al., 2017) as used by Olmo 3.

    QK-norm (Olmo 2) normalises the whole q and k projections before splitting into heads; RoPE
    (Su et al., 2021) rotates q and k per head; grouped-query attention (Ainslie et al., 2023)
    shares each key/value head across H/G query heads. A sliding window restricts each query to
    the last `window` keys including itself (Olmo 3 uses 3 sliding-window layers : 1 full).
    """

    config_class = AttentionConfig

    def __init__(self, cfg: AttentionConfig, d_model: int, norm_eps: float) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.window, self.rope, self.rope_theta, self.yarn = cfg.window, cfg.rope, cfg.rope_theta, cfg.yarn
        q_width, kv_width = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        self.q_proj = nn.Linear(d_model, q_width, bias=False)
        self.k_proj = nn.Linear(d_model, kv_width, bias=False)
        self.v_proj = nn.Linear(d_model, kv_width, bias=False)
        self.o_proj = nn.Linear(q_width, d_model, bias=False)
        self.q_norm = RMSNorm(q_width, norm_eps) if cfg.qk_norm else None
        self.k_norm = RMSNorm(kv_width, norm_eps) if cfg.qk_norm else None

    def reset_parameters(self, std: float, out_std: float) -> None:
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            init_linear(proj, std)
        init_linear(self.o_proj, out_std)
        for norm in (self.q_norm, self.k_norm):
            if norm is not None:
                norm.reset_parameters()

    def forward(self, x: torch.Tensor, packing: Packing | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q = q.view(B, T, self.n_heads, self.head_dim)  # [B, T, H, Dh]
        k = k.view(B, T, self.n_kv_heads, self.head_dim)  # [B, T, G, Dh]
        v = v.view(B, T, self.n_kv_heads, self.head_dim)
        if self.rope:
            cos, sin = rope_angles(
                torch.arange(T, device=x.device), self.head_dim, self.rope_theta, self.yarn
            )
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H|G, T, Dh]
        grouped = self.n_kv_heads != self.n_heads
        if packing is not None and self.window in packing.block_masks:  # varlen path (CUDA)
            block_mask = packing.block_masks[self.window]
            out = _compiled_flex_attention()(q, k, v, block_mask=block_mask, enable_gqa=grouped)
        elif packing is not None:  # the mask shared by every layer of this window
            mask = packing.attention_mask(self.window)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=grouped)
        elif self.window is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=grouped)
        else:
            mask = attention_mask(T, self.window, None, x.device)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=grouped)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, -1))

    @staticmethod
    def num_params(cfg: AttentionConfig, d_model: int) -> int:
        q_width, kv_width = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
        norms = (q_width + kv_width) if cfg.qk_norm else 0
        return 2 * d_model * q_width + 2 * d_model * kv_width + norms

    @staticmethod
    def flops_per_token(cfg: AttentionConfig, d_model: int, seq_len: int) -> int:
        """Training FLOPs per token: 6 x projection weights + the score and value products.

        The attention term counts the full context length (or the window), not the causal half,
        matching the convention of PaLM, torchtitan and OLMo-core so MFU figures compare.
        """
        context = seq_len if cfg.window is None else min(cfg.window, seq_len)
        projections = 2 * d_model * cfg.n_heads * cfg.head_dim + 2 * d_model * cfg.n_kv_heads * cfg.head_dim
        return 6 * projections + 12 * cfg.n_heads * cfg.head_dim * context
