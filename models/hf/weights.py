"""Rename and reshape weights between transformers' Olmo 3 / Olmo Hybrid and the zoo's `LM`.

Zoo names: `embed`, `blocks.{i}.mixer.*`, `blocks.{i}.mlp.*`, `blocks.{i}.mixer_norm`,
`blocks.{i}.mlp_norm`, `norm`, `head`. The zoo's Gated DeltaNet fuses q/k/v into `qkv_proj` (one
matmul feeding one convolution) and stores the depthwise conv kernel as [channels, width].

Olmo Hybrid checkpoints on disk (as released, and as `save_pretrained` writes them) rename, in every
layer, `input_layernorm` to `attention_layer_norm` and `post_attention_layernorm` to
`feedforward_layer_norm`, and keep separate `q/k/v_conv1d` kernels; transformers converts them on
load. We write that on-disk form and read either form.
"""

from __future__ import annotations

import torch

from models.config import ModelConfig
from models.errors import UserError

_MLP = ("gate_proj", "up_proj", "down_proj")
_ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm")
_GDN_SAME = {
    "a_proj": "a_proj",
    "b_proj": "b_proj",
    "g_proj": "gate_proj",
    "o_proj": "o_proj",
    "o_norm": "o_norm",
}


def _is_hybrid(cfg: ModelConfig) -> bool:
    return any(m.type == "gated_deltanet" for m in cfg.layer_mixers())


def _layer_names(cfg: ModelConfig, i: int, kind: str) -> dict[str, str]:
    """HF (on-disk) name -> zoo name for every simple (one-to-one) tensor of layer `i`."""
    hf, zoo = f"model.layers.{i}", f"blocks.{i}"
    names = {f"{hf}.mlp.{p}.weight": f"{zoo}.mlp.{p}.weight" for p in _MLP}
    if kind == "attention":
        names |= {f"{hf}.self_attn.{p}.weight": f"{zoo}.mixer.{p}.weight" for p in _ATTENTION}
        after_attention = "feedforward_layer_norm" if _is_hybrid(cfg) else "post_attention_layernorm"
        names[f"{hf}.{after_attention}.weight"] = f"{zoo}.mixer_norm.weight"
        names[f"{hf}.post_feedforward_layernorm.weight"] = f"{zoo}.mlp_norm.weight"
    else:
        names |= {f"{hf}.linear_attn.{a}.weight": f"{zoo}.mixer.{b}.weight" for a, b in _GDN_SAME.items()}
        names[f"{hf}.linear_attn.A_log"] = f"{zoo}.mixer.A_log"
        names[f"{hf}.linear_attn.dt_bias"] = f"{zoo}.mixer.dt_bias"
        names[f"{hf}.attention_layer_norm.weight"] = f"{zoo}.mixer_norm.weight"
        names[f"{hf}.feedforward_layer_norm.weight"] = f"{zoo}.mlp_norm.weight"
    return names


def _global_names(cfg: ModelConfig) -> dict[str, str]:
    names = {"model.embed_tokens.weight": "embed.weight", "model.norm.weight": "norm.weight"}
    if not cfg.tie_embeddings:
        names["lm_head.weight"] = "head.weight"
    return names


_IN_MEMORY_HYBRID_NAMES = {
    "input_layernorm": "attention_layer_norm",
    "post_attention_layernorm": "feedforward_layer_norm",
}


def _on_disk_form(cfg: ModelConfig, hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rewrite transformers' in-memory Olmo Hybrid names (norms, fused conv1d) to the on-disk ones."""
    if not _is_hybrid(cfg):
        return hf_state
    hf_state = dict(hf_state)
    for i, m in enumerate(cfg.layer_mixers()):
        prefix = f"model.layers.{i}"
        for memory_name, disk_name in _IN_MEMORY_HYBRID_NAMES.items():
            if f"{prefix}.{memory_name}.weight" in hf_state:
                hf_state[f"{prefix}.{disk_name}.weight"] = hf_state.pop(f"{prefix}.{memory_name}.weight")
        if m.type != "gated_deltanet":
            continue
        fused = hf_state.pop(f"{prefix}.linear_attn.conv1d.weight", None)
        if fused is not None:
            key_width, value_width = m.n_heads * m.head_k_dim, m.n_v_heads * m.head_v_dim
            for part, kernel in zip("qkv", fused.split([key_width, key_width, value_width])):
                hf_state[f"{prefix}.linear_attn.{part}_conv1d.weight"] = kernel
    return hf_state


def hf_to_zoo_state(cfg: ModelConfig, hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The zoo state dict for `cfg` from an HF state dict; every HF tensor must be used."""
    hf_state = _on_disk_form(cfg, hf_state)
    state, used = {}, set()
    for i, m in enumerate(cfg.layer_mixers()):
        for hf_name, zoo_name in _layer_names(cfg, i, m.type).items():
            state[zoo_name] = hf_state[hf_name]
            used.add(hf_name)
        if m.type == "gated_deltanet":
            prefix = f"model.layers.{i}.linear_attn"
            projections = [f"{prefix}.{p}_proj.weight" for p in "qkv"]
            kernels = [f"{prefix}.{p}_conv1d.weight" for p in "qkv"]
            state[f"blocks.{i}.mixer.qkv_proj.weight"] = torch.cat([hf_state[p] for p in projections])
            state[f"blocks.{i}.mixer.conv_weight"] = torch.cat([hf_state[p] for p in kernels]).squeeze(1)
            used |= {*projections, *kernels}
    for hf_name, zoo_name in _global_names(cfg).items():
        state[zoo_name] = hf_state[hf_name]
        used.add(hf_name)
    if cfg.tie_embeddings:
        used.add("lm_head.weight")
    leftover = sorted(set(hf_state) - used)
    if leftover:
        raise UserError(
            f"the HF checkpoint has tensors the zoo cannot place: {leftover[:5]}; unsupported feature."
        )
    return state


def zoo_to_hf_state(cfg: ModelConfig, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The HF state dict (Olmo3ForCausalLM / OlmoHybridForCausalLM names) for a zoo state dict."""
    hf_state = {}
    for i, m in enumerate(cfg.layer_mixers()):
        for hf_name, zoo_name in _layer_names(cfg, i, m.type).items():
            hf_state[hf_name] = state[zoo_name]
        if m.type == "gated_deltanet":
            prefix = f"model.layers.{i}.linear_attn"
            key_width, value_width = m.n_heads * m.head_k_dim, m.n_v_heads * m.head_v_dim
            widths = [key_width, key_width, value_width]
            projections = state[f"blocks.{i}.mixer.qkv_proj.weight"].split(widths)
            kernels = state[f"blocks.{i}.mixer.conv_weight"].unsqueeze(1).split(widths)
            for part, projection, kernel in zip("qkv", projections, kernels):
                hf_state[f"{prefix}.{part}_proj.weight"] = projection
                hf_state[f"{prefix}.{part}_conv1d.weight"] = kernel
    for hf_name, zoo_name in _global_names(cfg).items():
        hf_state[hf_name] = state[zoo_name]
    return {name: tensor.contiguous() for name, tensor in hf_state.items()}
