"""Every YAML in conf/ composes into a valid TrainConfig; one CLI multirun smoke-runs the experiments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from train_helpers import DEMO_CAPS, TINY

from models import build_model
from models.config import CONF_DIR
from models.errors import UserError
from train.config import TrainConfig, register_configs
from train.distributed import World
from train.recipe import lr_multiplier
from train.trainer import plan_steps

register_configs()


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def compose_train(overrides: list[str]) -> TrainConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["output_dir=/tmp/unused", *overrides])
    return OmegaConf.to_object(cfg)


CASES = [f"{group}={name}" for group in ("model", "data", "optim", "schedule", "trainer", "logger", "launcher",
                                         "paths", "sweep", "experiment", "debug") for name in options(group)]  # fmt: skip


# Options that leave a group to the command line (`data: ???`) and what each case adds for it.
COMPLETIONS = {"experiment=olmo_1b_comparison": ["data=olmo_tokens_example"]}


@pytest.mark.parametrize("override", CASES)
def test_every_option_composes_and_validates(override: str) -> None:
    cfg = compose_train([override, *COMPLETIONS.get(override, [])])
    assert isinstance(cfg, TrainConfig)
    plan_steps(cfg, World(0, 1, 0, None))
    build_model(cfg.model, device="meta")
    assert 0 < lr_multiplier(cfg.schedule.warmup_steps, cfg.schedule, 10_000) <= 1


# docs/training.md's "The 1B comparison recipe", phrase by phrase, and the config value each states.
DOCUMENTED_1B_RECIPE = [
    ("AdamW (0.9, 0.95)", lambda c: tuple(c.optim.betas), (0.9, 0.95)),
    ("lr 4e-4", lambda c: c.optim.lr, 4e-4),
    ("weight decay 0.033 without embeddings", lambda c: (c.optim.weight_decay, c.optim.decay_embeddings), (0.033, False)),
    ("z-loss 1e-5", lambda c: c.trainer.z_loss, 1e-5),
    ("grad clip 1.0", lambda c: c.trainer.grad_clip, 1.0),
    ("WSD with 2000 warmup steps", lambda c: (str(c.schedule.name), c.schedule.warmup_steps), ("wsd", 2000)),
    ("sequence length 8192", lambda c: c.trainer.seq_len, 8192),
    ("512 × 8192 ≈ 4.2M-token batches", lambda c: c.trainer.global_batch_tokens, 512 * 8192),
    ("bf16", lambda c: str(c.trainer.precision), "bf16"),
    ("activation checkpointing and compile on", lambda c: (c.trainer.activation_checkpointing, c.trainer.compile), (True, True)),
    ("The token budget (60B)", lambda c: (c.trainer.max_tokens, c.trainer.max_steps), (60_000_000_000, None)),
]  # fmt: skip


@pytest.mark.parametrize("model", ["transformer_swa_1b", "hybrid_1b", "rnn_1b"])
def test_experiment_recipe_matches_the_documented_1b_setup(model: str) -> None:
    """Every value docs/training.md states for the recipe is in the doc and in the composed config."""
    text = (CONF_DIR.parent / "docs" / "training.md").read_text()
    section = text[text.index("## The 1B comparison recipe") :]
    cfg = compose_train(["experiment=olmo_1b_comparison", f"model={model}", "data=local_example"])
    for phrase, value, documented in DOCUMENTED_1B_RECIPE:
        assert phrase in " ".join(section.split()), phrase
        assert value(cfg) == documented, phrase
    assert cfg.model.name == model
    assert plan_steps(cfg, World(0, 8, 0, None))[1] == 64  # 512 sequences over 8 ranks: 64 micro-batches


def test_typos_fail_at_compose_time() -> None:
    with pytest.raises(Exception, match="trainer.sequence_len"):
        compose_train(["trainer.sequence_len=5"])


@pytest.mark.parametrize(("model", "mixers"), [("tiny_transformer", {"attn"}), ("tiny_hybrid", {"gdn", "attn"}),
                                               ("tiny_rnn", {"gdn"})])  # fmt: skip
def test_probe_mqar_tunes_the_gdn_decay_only_where_the_model_has_gdn(model: str, mixers: set[str]) -> None:
    cfg = compose_train(["experiment=probe_mqar", f"model={model}"]).model
    assert cfg.mixers.keys() == mixers  # no phantom mixer
    assert [m.a_log_max for m in cfg.mixers.values() if m.type == "gated_deltanet"] == [0.01] * (
        "gdn" in mixers
    )


def test_a_field_foreign_to_the_mixer_kind_fails_before_anything_runs() -> None:
    with pytest.raises(UserError, match="mixer 'attn': attention has no field 'conv_size'") as error:
        compose_train(["model=tiny_transformer", "model.mixers.attn.conv_size=8"])
    assert "\n" not in str(error.value)


def test_the_cli_reports_a_foreign_mixer_field_in_one_error_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "train", "model=tiny_transformer", "model.mixers.attn.conv_size=8", "debug=default",
         f"hydra.run.dir={tmp_path / 'run'}", f"data.path={tmp_path / 'data'}"],
        capture_output=True, text=True, cwd=CONF_DIR.parent,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: mixer 'attn'"), (
        done.stderr
    )
    assert "conv_size" in lines[0] and not (tmp_path / "data").exists()


def test_the_cli_adds_a_mixer_from_its_kinds_file() -> None:
    added = ["+model/mixer@model.mixers.attn=attention", "model.mixers.attn.norm_placement=post"]
    cfg = compose_train(["model=tiny_mamba2", "model.pattern=[mamba2,mamba2,mamba2,attn]", *added]).model
    assert [(m.type, m.norm_placement) for m in cfg.layer_mixers()] == [("mamba2", "pre")] * 3 + [
        ("attention", "post")
    ]


@pytest.mark.parametrize("kind", options("model/mixer"))
def test_every_mixer_kind_file_adds_that_kind(kind: str) -> None:
    added = ["model.pattern=[gdn,gdn,gdn,new]", f"+model/mixer@model.mixers.new={kind}"]
    assert compose_train(["model=tiny_hybrid", "~model.mixers.attn", *added]).model.mixers["new"].type == kind


@pytest.mark.slow
def test_cli_multirun_over_the_experiment_with_tiny_models(tmp_path: Path, demo_data: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "train", "-m", "experiment=olmo_1b_comparison", "data=demo", "debug=default",
         "sweep=architectures", f"data.path={demo_data}", *DEMO_CAPS, *TINY,
         f"hydra.sweep.dir={tmp_path}"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert runs == ["0-tiny_transformer", "1-tiny_hybrid", "2-tiny_rnn"]
    for run in runs:
        assert (tmp_path / run / "final" / "model.safetensors").is_file()
        assert (tmp_path / run / "metrics.jsonl").is_file()
