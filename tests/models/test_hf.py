"""Hugging Face interop: logit parity with transformers' Olmo 3 and Olmo Hybrid, both directions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import Olmo3Config, Olmo3ForCausalLM, OlmoHybridConfig, OlmoHybridForCausalLM

from models import build_model, load_model_config, load_pretrained, save_pretrained
from models.hf import export_hf, hf_to_model_config, import_hf
from models.hf.weights import hf_to_zoo_state
from models.pretrained import CONFIG_FILE, WEIGHTS_FILE

VOCAB = 101
COMMON = {"vocab_size": VOCAB, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 4,
          "num_attention_heads": 4, "max_position_embeddings": 512, "pad_token_id": 0, "eos_token_id": 1}  # fmt: skip
YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32, "beta_fast": 32,
        "beta_slow": 1, "attention_factor": 1.1}  # fmt: skip
NOPE = {"rope_type": "default", "rope_theta": None}  # how transformers spells "no RoPE"
HF_CASES = {
    "olmo3-swa-gqa-yarn": (Olmo3ForCausalLM, Olmo3Config(**COMMON, num_key_value_heads=2, sliding_window=6, rope_scaling=YARN)),
    "olmo3-full-tied": (Olmo3ForCausalLM, Olmo3Config(**COMMON, layer_types=["full_attention"] * 4, tie_word_embeddings=True)),
    "hybrid-rope-gva": (OlmoHybridForCausalLM, OlmoHybridConfig(**COMMON, linear_num_key_heads=2, linear_num_value_heads=4,
                                                                 linear_key_head_dim=16, linear_value_head_dim=24)),
    "hybrid-nope-posneg": (OlmoHybridForCausalLM, OlmoHybridConfig(**COMMON, rope_parameters=NOPE, linear_allow_neg_eigval=False,
                                                                   layer_types=["linear_attention", "full_attention"] * 2)),
}  # fmt: skip


def random_hf(cls, config):
    torch.manual_seed(0)
    model = cls(config).eval()
    with torch.no_grad():  # non-trivial norms, so a swapped norm would show
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.2 * torch.randn_like(p))
    return model


def tokens(T: int = 70) -> torch.Tensor:
    return torch.randint(2, VOCAB, (2, T), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("case", HF_CASES)
def test_import_matches_transformers_logits(tmp_path, case: str) -> None:
    cls, config = HF_CASES[case]
    hf = random_hf(cls, config)
    hf.save_pretrained(tmp_path / "hf")
    import_hf(tmp_path / "hf", tmp_path / "zoo")
    zoo = load_pretrained(tmp_path / "zoo").eval()
    uses_rope = [m.rope for m in zoo.cfg.layer_mixers() if m.type == "attention"]
    assert all(uses_rope) == (case != "hybrid-nope-posneg") and len(set(uses_rope)) == 1
    x = tokens()
    with torch.no_grad():
        diff = (hf(x).logits - zoo(x)).abs().max().item()
    assert diff <= 1e-4


@pytest.mark.parametrize("case", HF_CASES)
def test_export_loads_in_transformers_with_equal_logits(tmp_path, case: str) -> None:
    cls, config = HF_CASES[case]
    zoo_cfg = hf_to_model_config(config.to_dict())
    torch.manual_seed(3)
    zoo = build_model(zoo_cfg).eval()
    with torch.no_grad():
        for name, p in zoo.named_parameters():
            if "norm" in name:
                p.add_(0.2 * torch.randn_like(p))
    save_pretrained(zoo, str(tmp_path / "zoo"))
    export_hf(tmp_path / "zoo", tmp_path / "hf")
    hf = cls.from_pretrained(tmp_path / "hf").eval()
    assert type(hf) is cls
    x = tokens()
    with torch.no_grad():
        diff = (hf(x).logits - zoo(x)).abs().max().item()
    assert diff <= 1e-4


def test_in_memory_state_dict_names_are_accepted() -> None:
    cls, config = HF_CASES["hybrid-rope-gva"]
    hf = random_hf(cls, config)
    cfg = hf_to_model_config(config.to_dict())
    zoo = build_model(cfg).eval()
    zoo.load_state_dict(hf_to_zoo_state(cfg, hf.state_dict()))
    x = tokens(33)
    with torch.no_grad():
        assert (hf(x).logits - zoo(x)).abs().max().item() <= 1e-4


def resolved(cfg) -> tuple:
    top = (cfg.vocab_size, cfg.d_model, cfg.n_layers, cfg.mlp_hidden, cfg.norm_eps, cfg.tie_embeddings,
           cfg.eos_token_id, cfg.pad_token_id)  # fmt: skip
    return top, cfg.layer_mixers()


def test_released_7b_configs_match_our_yaml() -> None:
    """Our 7B YAMLs resolve to the same layers as the released HF configs (values from the hub cards)."""
    hybrid = OlmoHybridConfig(rope_parameters=NOPE)  # transformers' defaults are the released 7B
    assert resolved(hf_to_model_config(hybrid.to_dict())) == resolved(load_model_config("olmo_hybrid_7b"))
    olmo3 = Olmo3Config(
        vocab_size=100278, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=32, rms_norm_eps=1e-6, sliding_window=4096, max_position_embeddings=65536,
        pad_token_id=100277, eos_token_id=100257, rope_theta=500000,
        rope_scaling={"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 8192,
                      "beta_fast": 32, "beta_slow": 1, "attention_factor": 1.2079441541679836},
    )  # fmt: skip
    assert resolved(hf_to_model_config(olmo3.to_dict())) == resolved(load_model_config("olmo3_7b"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_type": "llama"}, "model_type 'llama' is not supported"),
        ({"attention_bias": True}, "attention_bias"),
        ({"hidden_act": "gelu"}, "only silu"),
        (
            {"rope_parameters": {"rope_type": "linear", "rope_theta": 1e4, "factor": 2.0}},
            "rope_type 'linear'",
        ),
    ],
)
def test_unsupported_hf_features_fail_clearly(change: dict, message: str) -> None:
    hf = Olmo3Config(**COMMON).to_dict() | change
    with pytest.raises(ValueError, match=message):
        hf_to_model_config(hf)


def test_pure_recurrent_and_unrepresentable_models_refuse_export(tmp_path) -> None:
    save_pretrained(build_model(load_model_config("tiny_rnn")), str(tmp_path / "rnn"))
    with pytest.raises(ValueError, match="at least one attention layer"):
        export_hf(tmp_path / "rnn", tmp_path / "hf")
    save_pretrained(
        build_model(load_model_config("tiny_transformer", ["norm_placement=pre"])), str(tmp_path / "pre")
    )
    with pytest.raises(ValueError, match="post-norm"):
        export_hf(tmp_path / "pre", tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


@pytest.mark.parametrize("name", ["tiny_mamba2", "tiny_gla", "tiny_deltanet"])
def test_new_mixers_refuse_export_naming_the_mixer(tmp_path, name: str) -> None:
    mixer = name.removeprefix("tiny_")
    cfg = load_model_config(
        name, [f"pattern=[{mixer},attn]", "mixers.attn.type=attention"]
    )  # even in a hybrid
    save_pretrained(build_model(cfg), str(tmp_path / "zoo"))
    done = subprocess.run(
        [sys.executable, "-m", "models.hf", "export", str(tmp_path / "zoo"), str(tmp_path / "hf")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1 and not (tmp_path / "hf").exists()
    assert f"mixer '{mixer}' has type '{mixer}', which no transformers class represents" in done.stderr
    assert done.stderr.count("\n") == 1


def test_cli_round_trip_and_error_exit(tmp_path) -> None:
    cls, config = HF_CASES["hybrid-rope-gva"]
    random_hf(cls, config).save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "tokenizer.json").write_text("{}")
    run = [sys.executable, "-m", "models.hf"]
    done = subprocess.run(
        [*run, "import", str(tmp_path / "hf"), str(tmp_path / "zoo")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "zoo" / "tokenizer.json").exists()
    done = subprocess.run(
        [*run, "export", str(tmp_path / "zoo"), str(tmp_path / "hf2")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "hf2" / "config.json").read_text())["model_type"] == "olmo_hybrid"
    done = subprocess.run(
        [*run, "import", str(tmp_path / "nothing"), str(tmp_path / "x")], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "config.json" in done.stderr


def broken_pretrained(path: Path, keep_config: bool) -> Path:
    """A pretrained dir whose weights are 100 zero bytes and whose config.yaml lacks keys (unless kept)."""
    save_pretrained(build_model(load_model_config("tiny_transformer")), path)
    if not keep_config:
        (path / CONFIG_FILE).write_text("name: tiny_transformer\nd_model: 64\n")
    (path / WEIGHTS_FILE).write_bytes(bytes(100))
    return path


@pytest.mark.parametrize(
    ("case", "named"),
    [("json", "config.json"), ("config", CONFIG_FILE), ("weights", WEIGHTS_FILE)],
)
def test_cli_errors_name_the_broken_file(tmp_path, case: str, named: str) -> None:
    if case == "json":
        (tmp_path / "hf").mkdir()
        (tmp_path / "hf" / "config.json").write_text('{"model_type": "olmo3",')
        args = ["import", str(tmp_path / "hf"), str(tmp_path / "out")]
    else:
        zoo = broken_pretrained(tmp_path / "zoo", keep_config=case == "weights")
        args = ["export", str(zoo), str(tmp_path / "out")]
    done = subprocess.run([sys.executable, "-m", "models.hf", *args], capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert str(tmp_path) in lines[0] and named in lines[0]
    assert ("not valid JSON" if case == "json" else "incomplete or corrupt") in lines[0]
    assert not (tmp_path / "out").exists()
