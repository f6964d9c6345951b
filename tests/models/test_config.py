"""Model configs: validation errors, layer mixes, and every shipped YAML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from models import build_model, load_model_config, load_pretrained_config, save_pretrained
from models.config import available_model_configs
from models.errors import UserError
from models.summary import summarize

ALL_CONFIGS = available_model_configs()


def test_shipped_configs_are_all_found() -> None:
    expected = {
        f"{arch}_{size}"
        for arch in ("transformer", "transformer_swa", "hybrid", "rnn", "mamba2", "gla", "deltanet")
        for size in ("60m", "150m", "300m", "600m", "1b")
    }
    expected |= {
        "tiny_transformer",
        "tiny_transformer_swa",
        "tiny_hybrid",
        "tiny_rnn",
        "olmo3_7b",
        "olmo_hybrid_7b",
    }
    expected |= {"tiny_mamba2", "tiny_gla", "tiny_deltanet"}
    assert expected <= set(ALL_CONFIGS)


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_every_config_builds_on_meta_and_matches_summary(name: str) -> None:
    cfg = load_model_config(name)
    model = build_model(cfg, device="meta")
    built = sum(p.numel() for p in model.parameters())
    summary = summarize(cfg)
    assert summary["params"]["total"] == built
    embeddings = model.embed.weight.numel() + (0 if cfg.tie_embeddings else model.head.weight.numel())
    assert summary["params"]["non_embedding"] == built - embeddings
    assert len(summary["layers"]) == cfg.n_layers == len(model.blocks)


def documented_non_embedding_counts() -> dict[str, int]:
    """`| name_1b | 1,073,874,944 | ...` rows of docs/models.md's matched-1B tables."""
    text = (Path(__file__).parents[2] / "docs" / "models.md").read_text()
    return {
        name: int(count.replace(",", ""))
        for name, count in re.findall(r"^\| (\w+_1b) \| ([\d,]+) \|", text, re.M)
    }


def test_1b_configs_match_in_non_embedding_parameters() -> None:
    """The figures docs/models.md and README state: the exact counts of its tables, the three study
    models within 0.12% of each other, and mamba2/gla/deltanet within 0.1% of transformer_1b."""
    names = ("transformer_1b", "hybrid_1b", "rnn_1b", "mamba2_1b", "gla_1b", "deltanet_1b")
    counts = {n: summarize(load_model_config(n))["params"]["non_embedding"] for n in names}
    assert documented_non_embedding_counts() == counts
    study = [counts[n] for n in names[:3]]
    assert max(study) / min(study) - 1 < 0.0012, counts
    assert all(abs(counts[n] / counts["transformer_1b"] - 1) < 0.001 for n in names[3:]), counts


def test_1b_configs_share_everything_but_the_mixers() -> None:
    cfgs = [load_model_config(n) for n in ("transformer_1b", "hybrid_1b", "rnn_1b")]
    shared = [(c.d_model, c.n_layers, c.n_heads, c.mlp_hidden, c.vocab_size) for c in cfgs]
    assert shared == [(2048, 16, 16, 8192, 100352)] * 3
    assert cfgs[1].layer_mixer_names() == ["gdn", "gdn", "gdn", "attn"] * 4
    assert set(cfgs[2].layer_mixer_names()) == {"gdn"}


@pytest.mark.parametrize("size", ["60m", "150m", "300m", "600m", "1b"])
def test_swa_transformers_are_olmo3_groups_with_the_transformers_parameters(size: str) -> None:
    """3 sliding-window (4096) : 1 full attention per group of four, as Olmo 3; same parameters as
    `transformer_<size>`; the hybrid's GDN layers sit exactly where the sliding-window layers are."""
    swa, full = load_model_config(f"transformer_swa_{size}"), load_model_config(f"transformer_{size}")
    groups = swa.n_layers // 4
    windows = [swa.mixers[name].window for name in swa.layer_mixer_names()]
    assert swa.n_layers % 4 == 0 and windows == [4096, 4096, 4096, None] * groups
    assert summarize(swa)["params"] == summarize(full)["params"]
    hybrid = load_model_config(f"hybrid_{size}")
    types = [hybrid.mixers[name].type for name in hybrid.layer_mixer_names()]
    assert types == ["gated_deltanet" if w else "attention" for w in windows]
    olmo3 = load_model_config("olmo3_7b")
    assert [olmo3.mixers[name].window for name in olmo3.layer_mixer_names()][:4] == windows[:4]


def test_tiny_swa_window_is_shorter_than_the_demo_sequence() -> None:
    from omegaconf import OmegaConf

    cfg = load_model_config("tiny_transformer_swa")
    windows = [cfg.mixers[name].window for name in cfg.layer_mixer_names()]
    demo = Path(__file__).resolve().parents[2] / "conf" / "experiment" / "demo.yaml"
    demo_seq_len = OmegaConf.load(demo).trainer.seq_len
    assert windows == [128, 128, 128, None] and demo_seq_len > 128
    assert summarize(cfg)["params"] == summarize(load_model_config("tiny_transformer"))["params"]


def test_tiny_swa_equals_full_attention_inside_the_window_and_differs_beyond() -> None:
    """Same weights: the first 128 positions see everything either way; later ones see less."""
    swa = build_model(load_model_config("tiny_transformer_swa"))
    full = build_model(load_model_config("tiny_transformer"))
    full.load_state_dict(swa.state_dict())
    ids = torch.randint(0, 8192, (1, 200), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = swa(ids), full(ids)  # [1, 200, vocab]
    assert torch.allclose(a[:, :128], b[:, :128], atol=1e-5)
    assert (a[:, 128:] - b[:, 128:]).abs().amax(dim=-1).min() > 1e-4


@pytest.mark.parametrize("mixer", ["mamba2", "gla", "deltanet"])
def test_new_mixer_hybrids_are_a_pattern_plus_the_mixers_it_adds(mixer: str) -> None:
    added = ["mixers.gdn.type=gated_deltanet", "mixers.attn.type=attention"]
    cfg = load_model_config(f"{mixer}_1b", [f"pattern=[{mixer},{mixer},gdn,attn]", *added])
    assert (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.vocab_size) == (2048, 16, 16, 100352)
    types = [m.type for m in cfg.layer_mixers()][:4]
    assert types == [mixer, mixer, "gated_deltanet", "attention"]
    assert build_model(cfg, device="meta").blocks[3].mixer.__class__.__name__ == "Attention"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["pattern=[gdn,attn,attn]"], "does not divide n_layers=4"),
        (["pattern=[gdn,mamba]"], "unknown mixer name 'mamba'"),
        (["n_heads=5"], "n_heads=5 does not divide d_model=128"),
        (["mixers.attn.n_kv_heads=3"], "n_kv_heads=3 must divide"),
        (
            ["mixers.attn.type=mamba"],
            "mixer 'attn': type='mamba' is not a mixer kind; did you mean 'mamba2'",
        ),
        (["d_modell=64"], "Key 'd_modell' not in 'ModelConfig'"),
        (["norm_placement=middle"], "norm_placement: Invalid value 'middle', expected one of [pre, post]"),
        (["pattern=[]"], "pattern is empty"),
    ],
)
def test_bad_configs_name_the_value_and_the_fix(overrides: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_model_config("tiny_hybrid", overrides)


def test_unknown_name_points_to_conf_model_in_one_short_line() -> None:
    with pytest.raises(UserError, match="conf/model/") as error:
        load_model_config("no_such_model")
    assert len(str(error.value)) < 200 and "\n" not in str(error.value)
    with pytest.raises(UserError, match="did you mean 'tiny_hybrid'"):
        load_model_config("tiny_hybird")


def test_swapping_the_layer_mix_is_one_override() -> None:
    cfg = load_model_config("tiny_hybrid", ["pattern=[gdn,attn]"])
    assert cfg.layer_mixer_names() == ["gdn", "attn", "gdn", "attn"]
    assert [m.type for m in cfg.layer_mixers()] == ["gated_deltanet", "attention"] * 2


def test_layer_overrides_replace_single_layers() -> None:
    cfg = load_model_config(
        "tiny_transformer", ["mixers.gdn.type=gated_deltanet", "layer_overrides={0: gdn}"]
    )
    assert cfg.layer_mixer_names() == ["gdn", "attn", "attn", "attn"]
    with pytest.raises(ValueError, match="outside 0..3"):
        load_model_config("tiny_hybrid", ["layer_overrides={7: attn}"])


def test_gdn_defaults_match_attention_projection_parameters() -> None:
    cfg = load_model_config("hybrid_1b")
    gdn, attn = cfg.mixer_for("gdn"), cfg.mixer_for("attn")
    assert (gdn.n_heads, gdn.head_k_dim, gdn.head_v_dim) == (16, 64, 128)
    assert gdn.norm_placement == "pre" and attn.norm_placement == "post"


def test_yaml_path_and_pretrained_dir_load(tmp_path) -> None:
    cfg = load_model_config("tiny_rnn")
    model = build_model(cfg)
    save_pretrained(model, str(tmp_path / "m"))
    assert load_pretrained_config(tmp_path / "m") == cfg
    assert load_model_config(tmp_path / "m" / "config.yaml", ["n_layers=8"]).n_layers == 8
    with pytest.raises(ValueError, match="does not exist"):
        load_model_config(tmp_path / "missing.yaml")


def test_meta_build_allocates_nothing() -> None:
    model = build_model(load_model_config("olmo_hybrid_7b"), device="meta")
    assert all(p.device == torch.device("meta") for p in model.parameters())
