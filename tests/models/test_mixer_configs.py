"""Per-kind mixer configs: a required type, no foreign fields, no unused mixers, per-kind defaults,
saved configs holding each kind's own fields, and checkpoints saved with the old flat config."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from models import build_model, load_model_config, load_pretrained, load_pretrained_config, save_pretrained
from models.errors import UserError
from models.mixers import MIXER_CONFIGS

# The one flat mixer config every checkpoint held before each kind had its own (written out by hand
# from the old `models.config.MixerConfig`, so this test does not depend on the code it checks).
OLD_FLAT_DEFAULTS = {
    "type": "attention", "n_heads": None, "norm_placement": None, "n_kv_heads": None, "head_dim": None,
    "window": None, "qk_norm": True, "rope": True, "rope_theta": 500000.0, "yarn": None, "head_k_dim": None,
    "head_v_dim": None, "n_v_heads": None, "conv_size": 4, "allow_neg_eigval": True, "gate_norm_eps": 1.0e-05,
    "a_log_min": 0.0, "a_log_max": 16.0, "dt_min": 0.001, "dt_max": 0.1, "dt_floor": 0.0001, "backend": "auto",
    "output_gate": True, "gate_low_rank_dim": 16, "gate_logit_normalizer": 16.0, "expand": 2.0,
    "state_size": 128, "ssm_head_dim": 64, "n_groups": 1, "conv_bias": True,
}  # fmt: skip


def own_keys(kind: str) -> set[str]:
    return {"type"} | {f.name for f in dataclasses.fields(MIXER_CONFIGS[kind])}


def one_line_error(overrides: list[str], model: str = "tiny_transformer") -> str:
    with pytest.raises(UserError) as error:
        load_model_config(model, overrides)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_a_field_foreign_to_the_kind_is_refused_naming_the_fields() -> None:
    message = one_line_error(["mixers.attn.conv_size=8"])
    assert "mixer 'attn'" in message and "no field 'conv_size'" in message
    assert "attention's fields are norm_placement, n_heads, n_kv_heads, head_dim, window" in message


def test_a_mixer_without_a_type_is_refused_not_made_attention() -> None:
    message = one_line_error(["mixers.gdn.a_log_max=0.01", "layer_overrides={0: gdn}"])
    assert "mixer 'gdn' has no type: set model.mixers.gdn.type to one of attention, gated_deltanet" in message


def test_a_named_mixer_used_by_no_layer_is_refused() -> None:
    message = one_line_error(["mixers.gdn.type=gated_deltanet"])
    assert message.startswith("mixer 'gdn' is used by no layer (pattern ['attn']")


def test_mixer_defaults_tune_every_mixer_of_one_kind_and_create_none() -> None:
    tuned = ["mixer_defaults.gated_deltanet.a_log_max=0.01"]
    hybrid = load_model_config("tiny_hybrid", [*tuned, "mixers.gdn.a_log_min=0.001"])
    assert (hybrid.mixers["gdn"].a_log_max, hybrid.mixers["gdn"].a_log_min) == (0.01, 0.001)
    assert load_model_config("tiny_transformer", tuned).mixers.keys() == {"attn"}
    explicit = load_model_config("tiny_rnn", [*tuned, "mixers.gdn.a_log_max=2.0"])
    assert explicit.mixers["gdn"].a_log_max == 2.0  # a mixer's own setting wins
    assert "did you mean 'a_log_max'" in one_line_error(["mixer_defaults.gated_deltanet.a_log_maks=1"])
    assert "'gdn' is not a mixer kind" in one_line_error(["mixer_defaults.gdn.a_log_max=1"])


def test_saved_configs_hold_only_each_kinds_own_fields(tmp_path: Path) -> None:
    for name in ("tiny_transformer", "tiny_hybrid", "tiny_mamba2", "tiny_gla", "tiny_deltanet"):
        cfg = load_model_config(name)
        save_pretrained(build_model(cfg, device="meta").to_empty(device="cpu"), tmp_path / name)
        saved = yaml.safe_load((tmp_path / name / "config.yaml").read_text())
        for entry in saved["mixers"].values():
            assert set(entry) == own_keys(entry["type"]), (name, entry)
        assert load_pretrained_config(tmp_path / name) == cfg
    transformer = yaml.safe_load((tmp_path / "tiny_transformer" / "config.yaml").read_text())
    assert not {"allow_neg_eigval", "state_size", "gate_low_rank_dim", "conv_size"} & set(
        transformer["mixers"]["attn"]
    )


def old_format_checkpoint(path: Path, **attn_fields) -> Path:
    """tiny_hybrid saved as before: every mixer lists every flat field; `attn` omits its type."""
    save_pretrained(build_model(load_model_config("tiny_hybrid")), path)
    data = yaml.safe_load((path / "config.yaml").read_text())
    for new_key in ("mixer_defaults", "training"):
        del data[new_key]
    data["mixers"] = {
        "gdn": OLD_FLAT_DEFAULTS | {"type": "gated_deltanet", "norm_placement": "pre"},
        "attn": {key: value for key, value in OLD_FLAT_DEFAULTS.items() if key != "type"} | attn_fields,
    }
    (path / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_old_format_checkpoints_load_with_their_foreign_defaults_dropped(tmp_path: Path) -> None:
    path = old_format_checkpoint(tmp_path / "old")
    cfg = load_pretrained_config(path)
    assert cfg == load_model_config("tiny_hybrid")
    assert load_pretrained(path).cfg == cfg
    resaved = cfg.to_dict()["mixers"]
    assert set(resaved["attn"]) == own_keys("attention") and set(resaved["gdn"]) == own_keys("gated_deltanet")


def test_old_format_foreign_fields_off_their_defaults_are_refused(tmp_path: Path) -> None:
    path = old_format_checkpoint(tmp_path / "old", conv_size=8)
    with pytest.raises(
        UserError, match=re.escape("mixer 'attn' is attention, which has no field 'conv_size'")
    ):
        load_pretrained_config(path)
