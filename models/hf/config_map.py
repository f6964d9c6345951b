"""Translate between transformers' Olmo 3 / Olmo Hybrid configs and `ModelConfig`.

Both directions refuse, with one sentence naming the feature, anything the other side cannot
represent exactly: a silent mismatch would corrupt every loss computed downstream.
"""

from __future__ import annotations

from typing import Any

from models.config import ModelConfig
from models.errors import UserError
from models.mixers import AttentionConfig, GatedDeltaNetConfig, MixerConfig
from models.rope import YarnConfig

OLMO3, OLMO_HYBRID = "olmo3", "olmo_hybrid"
HF_GDN_GATE_NORM_EPS = 1e-5  # transformers' OlmoHybridRMSNormGated eps is fixed (fla's default)

HF_MIXER_TYPES = ("attention", "gated_deltanet")  # Olmo 3 and Olmo Hybrid layers


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise UserError(message)


def _shortest_cycle(names: list[str]) -> list[str]:
    """The shortest prefix whose repetition gives `names` (the layer pattern)."""
    for length in range(1, len(names) + 1):
        if len(names) % length == 0 and names == names[:length] * (len(names) // length):
            return names[:length]
    raise AssertionError("unreachable: the whole list is always a cycle")


def _rope_params(hf: dict, layer_type: str) -> dict | None:
    """The RoPE parameters for one HF layer type (per-type dict, one shared dict, or legacy keys)."""
    params = hf.get("rope_parameters")
    if isinstance(params, dict) and layer_type in params:
        return params[layer_type]
    if params is None and hf.get("rope_theta") is not None:
        return {"rope_type": "default", "rope_theta": hf["rope_theta"], **(hf.get("rope_scaling") or {})}
    return params


def _rope_fields(hf: dict, layer_type: str) -> dict[str, Any]:
    params = _rope_params(hf, layer_type)
    if params is None or params.get("rope_theta") is None:
        return {"rope": False}
    kind = params.get("rope_type", "default")
    fields: dict[str, Any] = {"rope": True, "rope_theta": float(params["rope_theta"])}
    if kind == "yarn":
        _require(
            not params.get("mscale") and not params.get("mscale_all_dim") and params.get("truncate", True),
            "YaRN with mscale/mscale_all_dim or truncate=false is not supported; only Olmo 3's YaRN is.",
        )
        fields["yarn"] = YarnConfig(
            factor=float(params["factor"]),
            original_max_len=int(params["original_max_position_embeddings"]),
            beta_fast=float(params.get("beta_fast") or 32),
            beta_slow=float(params.get("beta_slow") or 1),
            attention_factor=params.get("attention_factor"),
        )
    else:
        _require(kind == "default", f"rope_type {kind!r} is not supported (only default and yarn).")
    return fields


def _common_checks(hf: dict) -> None:
    _require(
        hf.get("hidden_act", "silu") == "silu",
        f"hidden_act={hf.get('hidden_act')!r}: only silu is supported.",
    )
    _require(
        not hf.get("attention_bias", False), "attention_bias=true is not supported (no biases in the zoo)."
    )
    _require(not hf.get("mlp_bias", False), "mlp_bias=true is not supported (no biases in the zoo).")


def hf_to_model_config(hf: dict, name: str = "imported") -> ModelConfig:
    """A `ModelConfig` equal in function to the HF `config.json` dict `hf`."""
    model_type = hf.get("model_type")
    _require(
        model_type in (OLMO3, OLMO_HYBRID),
        f"model_type {model_type!r} is not supported: import Olmo 3 ({OLMO3}) or Olmo Hybrid ({OLMO_HYBRID}).",
    )
    _common_checks(hf)
    d_model, n_heads = hf["hidden_size"], hf["num_attention_heads"]
    attention = {
        "n_heads": n_heads,
        "n_kv_heads": hf.get("num_key_value_heads") or n_heads,
        "head_dim": hf.get("head_dim") or d_model // n_heads,
        "qk_norm": True,
        "norm_placement": "post",
    }
    layer_types = list(hf["layer_types"])
    mixers: dict[str, MixerConfig] = {}
    names = []
    for layer_type in layer_types:
        if layer_type == "full_attention":
            mixers["attn"] = AttentionConfig(**attention, **_rope_fields(hf, layer_type))
            names.append("attn")
        elif layer_type == "sliding_attention" and model_type == OLMO3:
            mixers["swa"] = AttentionConfig(
                **attention, window=hf["sliding_window"], **_rope_fields(hf, layer_type)
            )
            names.append("swa")
        elif layer_type == "linear_attention" and model_type == OLMO_HYBRID:
            mixers["gdn"] = GatedDeltaNetConfig(
                norm_placement="pre",
                n_heads=hf["linear_num_key_heads"],
                n_v_heads=hf["linear_num_value_heads"],
                head_k_dim=hf["linear_key_head_dim"],
                head_v_dim=hf["linear_value_head_dim"],
                conv_size=hf.get("linear_conv_kernel_dim", 4),
                allow_neg_eigval=hf.get("linear_allow_neg_eigval", True),
                gate_norm_eps=HF_GDN_GATE_NORM_EPS,
                a_log_min=hf.get("linear_a_log_min", 0.0),
                a_log_max=hf.get("linear_a_log_max", 16.0),
                dt_min=hf.get("linear_dt_min", 1e-3),
                dt_max=hf.get("linear_dt_max", 0.1),
                dt_floor=hf.get("linear_dt_init_floor", 1e-4),
            )
            names.append("gdn")
        else:
            raise UserError(f"layer type {layer_type!r} is not supported for model_type {model_type!r}.")
    return ModelConfig(
        name=name,
        vocab_size=hf["vocab_size"],
        d_model=d_model,
        n_layers=hf["num_hidden_layers"],
        n_heads=n_heads,
        mlp_hidden=hf["intermediate_size"],
        norm_eps=hf.get("rms_norm_eps", 1e-6),
        norm_placement="post",
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        init_std=hf.get("initializer_range", 0.02),
        mixers=mixers,
        pattern=_shortest_cycle(names),
        eos_token_id=hf.get("eos_token_id"),
        pad_token_id=hf.get("pad_token_id"),
    )


def _rope_dict(m: AttentionConfig) -> dict | None:
    if not m.rope:
        return None
    if m.yarn is None:
        return {"rope_type": "default", "rope_theta": m.rope_theta}
    return {
        "rope_type": "yarn",
        "rope_theta": m.rope_theta,
        "factor": m.yarn.factor,
        "original_max_position_embeddings": m.yarn.original_max_len,
        "beta_fast": m.yarn.beta_fast,
        "beta_slow": m.yarn.beta_slow,
        "attention_factor": m.yarn.attention_factor,
    }


def _check_attention(cfg: ModelConfig, m: AttentionConfig, name: str) -> None:
    _require(m.qk_norm, f"mixer {name!r}: transformers' Olmo attention always has QK-norm; set qk_norm=true.")
    _require(m.norm_placement == "post", f"mixer {name!r}: Olmo attention layers are post-norm.")
    _require(
        m.head_dim * m.n_heads == cfg.d_model and m.n_heads == cfg.n_heads,
        f"mixer {name!r}: HF Olmo attention needs n_heads={cfg.n_heads} and head_dim = d_model / n_heads.",
    )


def _base_hf_config(cfg: ModelConfig) -> dict[str, Any]:
    return {
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.mlp_hidden,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "rms_norm_eps": cfg.norm_eps,
        "tie_word_embeddings": cfg.tie_embeddings,
        "initializer_range": cfg.init_std,
        "eos_token_id": cfg.eos_token_id,
        "pad_token_id": cfg.pad_token_id,
        "hidden_act": "silu",
        "attention_bias": False,
    }


def model_config_to_hf(cfg: ModelConfig) -> tuple[str, dict[str, Any]]:
    """(model_type, config kwargs) for transformers' `Olmo3Config` or `OlmoHybridConfig`."""
    layers = list(zip(cfg.layer_mixer_names(), cfg.layer_mixers()))
    for name, m in layers:
        _require(
            m.type in HF_MIXER_TYPES,
            f"mixer {name!r} has type {m.type!r}, which no transformers class represents (HF export covers "
            f"{' and '.join(HF_MIXER_TYPES)}); evaluate this model in the zoo instead.",
        )
    kinds = {m.type for _, m in layers}
    if kinds == {"attention"}:
        return OLMO3, _olmo3_config(cfg, layers)
    _require(
        "attention" in kinds,
        "transformers' OlmoHybridForCausalLM needs at least one attention layer, so a pure Gated DeltaNet "
        "model cannot be exported; evaluate it in the zoo instead.",
    )
    return OLMO_HYBRID, _olmo_hybrid_config(cfg, layers)


def _olmo3_config(cfg: ModelConfig, layers: list[tuple[str, MixerConfig]]) -> dict[str, Any]:
    windows = {m.window for _, m in layers if m.window is not None}
    _require(len(windows) <= 1, f"Olmo 3 has one sliding window size; this model uses {sorted(windows)}.")
    layer_types, rope = [], {}
    for name, m in layers:
        _check_attention(cfg, m, name)
        _require(m.rope, f"mixer {name!r}: Olmo 3 always uses RoPE; set rope=true.")
        layer_type = "full_attention" if m.window is None else "sliding_attention"
        _require(
            rope.setdefault(layer_type, _rope_dict(m)) == _rope_dict(m),
            f"all {layer_type} layers must share RoPE settings for Olmo 3.",
        )
        layer_types.append(layer_type)
    kv_heads = {m.n_kv_heads for _, m in layers}
    _require(len(kv_heads) == 1, f"all Olmo 3 layers must share n_kv_heads; got {sorted(kv_heads)}.")
    for layer_type in ("full_attention", "sliding_attention"):
        rope.setdefault(layer_type, {"rope_type": "default", "rope_theta": 500_000.0})
    return {
        **_base_hf_config(cfg),
        "num_key_value_heads": kv_heads.pop(),
        "sliding_window": windows.pop() if windows else 4096,
        "layer_types": layer_types,
        "rope_parameters": rope,
    }


def _olmo_hybrid_config(cfg: ModelConfig, layers: list[tuple[str, MixerConfig]]) -> dict[str, Any]:
    gdn = {(m.n_heads, m.n_v_heads, m.head_k_dim, m.head_v_dim, m.conv_size, m.allow_neg_eigval,
            m.a_log_min, m.a_log_max, m.dt_min, m.dt_max, m.dt_floor) for _, m in layers if m.type != "attention"}  # fmt: skip
    _require(len(gdn) == 1, "all Gated DeltaNet layers must share their settings for Olmo Hybrid.")
    ropes, kv_heads, layer_types = set(), set(), []
    for name, m in layers:
        if m.type == "attention":
            _check_attention(cfg, m, name)
            _require(m.window is None, f"mixer {name!r}: Olmo Hybrid has no sliding-window attention.")
            _require(m.yarn is None, f"mixer {name!r}: Olmo Hybrid does not support YaRN.")
            ropes.add(m.rope_theta if m.rope else None)
            kv_heads.add(m.n_kv_heads)
            layer_types.append("full_attention")
        else:
            _require(m.norm_placement == "pre", f"mixer {name!r}: Olmo Hybrid's GDN layers are pre-norm.")
            _require(
                m.gate_norm_eps == HF_GDN_GATE_NORM_EPS,
                f"mixer {name!r}: transformers fixes the GDN output-norm eps at {HF_GDN_GATE_NORM_EPS}.",
            )
            layer_types.append("linear_attention")
    _require(len(ropes) == 1 and len(kv_heads) == 1, "all attention layers must share RoPE and n_kv_heads.")
    heads, v_heads, k_dim, v_dim, conv, neg, a_min, a_max, dt_min, dt_max, dt_floor = gdn.pop()
    theta = ropes.pop()
    return {
        **_base_hf_config(cfg),
        "num_key_value_heads": kv_heads.pop(),
        "layer_types": layer_types,
        # NoPE is a null theta: a null rope_parameters would reload as transformers' default theta.
        "rope_parameters": {"rope_type": "default", "rope_theta": theta},
        "linear_num_key_heads": heads,
        "linear_num_value_heads": v_heads,
        "linear_key_head_dim": k_dim,
        "linear_value_head_dim": v_dim,
        "linear_conv_kernel_dim": conv,
        "linear_allow_neg_eigval": neg,
        "linear_a_log_min": a_min,
        "linear_a_log_max": a_max,
        "linear_dt_min": dt_min,
        "linear_dt_max": dt_max,
        "linear_dt_init_floor": dt_floor,
    }
