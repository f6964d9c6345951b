"""The language model: `embed -> [Block(mixer_i, mlp)] -> norm -> head`, built from a ModelConfig."""

from __future__ import annotations

import math

import torch
from torch import nn

from models.block import Block
from models.config import ModelConfig
from models.init import init_linear
from models.mixers import build_mixer
from models.mlp import SwiGLU
from models.norms import RMSNorm
from models.ops.linear_cross_entropy import linear_cross_entropy
from models.packing import Packing


class LM(nn.Module):
    """A decoder-only LM whose layers differ only in their sequence mixer (see `models.config`).

    `forward(input_ids [B, T], doc_ids=None) -> logits [B, T, vocab]`. With `doc_ids` [B, T],
    attention and recurrence are restricted to the current document of a packed sequence: the
    layout (`models.packing.Packing`) is computed once here and shared by every block. With
    `labels` [B, T] it returns the summed training loss instead, `(ce + z-loss, z-loss)`, through the
    fused chunked head + cross-entropy of `models.ops.linear_cross_entropy`, which never holds the
    [B, T, vocab] logits (the loss goes through `forward` so FSDP's hooks gather the head).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(
            Block(
                build_mixer(mixer_cfg, cfg.d_model, cfg.norm_eps),
                SwiGLU(cfg.d_model, cfg.mlp_hidden),
                cfg.d_model,
                cfg.norm_eps,
                mixer_cfg.norm_placement,
            )
            for mixer_cfg in cfg.layer_mixers()
        )
        self.attention_windows = tuple(
            dict.fromkeys(m.window for m in cfg.layer_mixers() if m.type == "attention")
        )  # one shared document mask per distinct window
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.tie_weights()

    def tie_weights(self) -> None:
        """Share the embedding matrix with the head when configured (again after `to_empty`)."""
        if self.cfg.tie_embeddings:
            self.head.weight = self.embed.weight

    @torch.no_grad()
    def init_weights(self) -> None:
        """Olmo-style init: truncated normal `init_std` everywhere, output projections of each
        block scaled by 1/sqrt(2 n_layers) (GPT-2) so the residual stream does not grow with depth.
        """
        std = self.cfg.init_std
        out_std = std / math.sqrt(2 * self.cfg.n_layers)
        nn.init.trunc_normal_(self.embed.weight, std=std, a=-3 * std, b=3 * std)
        for block in self.blocks:
            block.reset_parameters(std, out_std)
        self.norm.reset_parameters()
        if not self.cfg.tie_embeddings:
            init_linear(self.head, std)

    def forward(
        self,
        input_ids: torch.Tensor,
        doc_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        z_weight: float = 0.0,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.embed(input_ids)  # [B, T, D]
        packing = None if doc_ids is None else Packing.from_doc_ids(doc_ids, self.attention_windows)
        for block in self.blocks:
            x = block(x, packing=packing)
        hidden = self.norm(x)
        if labels is None:
            return self.head(hidden)  # [B, T, vocab]
        device = hidden.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
        return linear_cross_entropy(hidden, self.head.weight, labels, z_weight, compute_dtype=dtype)


def build_model(cfg: ModelConfig, device: torch.device | str | None = None) -> LM:
    """Build and initialise an `LM`. On the `meta` device nothing is allocated or initialised."""
    with torch.device(device or "cpu"):
        model = LM(cfg)
    if torch.device(device or "cpu").type != "meta":
        model.init_weights()
    return model
