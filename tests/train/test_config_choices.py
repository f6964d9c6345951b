"""Closed-set config fields are `Choice` enums: checked at compose time, spelt and saved as plain strings."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from eval.config import CorpusType, ScoreConfig, ScoreDtype
from eval.config import register_configs as register_eval_configs
from models import build_model, load_model_config, load_pretrained_config, save_pretrained
from models.choices import Choice
from models.config import CONF_DIR, ModelConfig
from models.errors import UserError
from models.mixers.base import GdnBackend, NormPlacement
from models.ops.gated_delta_rule import BACKENDS
from train.config import LoggerName, Precision, TrainConfig, TrainDevice, WandbMode, register_configs
from train.data.config import ShardDtype, SourceConfig, SourceType, TokenizerKind
from train.recipe import ScheduleName

register_configs()
register_eval_configs()
CHOICES = [NormPlacement, GdnBackend, Precision, TrainDevice, LoggerName, WandbMode, ScheduleName,
           SourceType, TokenizerKind, ShardDtype, CorpusType, ScoreDtype]  # fmt: skip
ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("choice", CHOICES, ids=lambda c: c.__name__)
def test_members_are_spelt_as_their_values_and_act_as_strings(choice: type[Choice]) -> None:
    for member in choice:
        assert member.name == member.value == str(member) == f"{member}" and member == member.value
        assert {member.value: 1}[member] == 1 and yaml.safe_load(yaml.safe_dump(str(member))) == member.value


def test_gdn_backend_choice_matches_the_kernel_backends() -> None:
    assert set(GdnBackend.values()) == set(BACKENDS)


def test_composed_configs_hold_members_and_save_plain_strings(tmp_path) -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["output_dir=/tmp/unused", "model=tiny_hybrid", "data=demo",
                                          "model.mixers.gdn.backend=torch", "logger=none", "schedule=wsd",
                                          "trainer.precision=bf16"])  # fmt: skip
    train: TrainConfig = OmegaConf.to_object(cfg)
    assert train.model.mixers["gdn"].backend is GdnBackend.torch and train.logger.name is LoggerName.none
    assert train.schedule.name is ScheduleName.wsd and train.data.sources["prose"].type is SourceType.demo
    assert train.model.mixers["gdn"].type == "gated_deltanet" and train.trainer.precision == "bf16"
    save_pretrained(build_model(train.model), tmp_path / "m")
    saved = yaml.safe_load((tmp_path / "m" / "config.yaml").read_text())
    assert saved["mixers"]["gdn"]["backend"] == "torch" and type(saved["norm_placement"]) is str
    assert load_pretrained_config(tmp_path / "m") == train.model
    run_config = yaml.safe_load(OmegaConf.to_yaml(cfg))  # what Hydra writes to .hydra/config.yaml
    assert (
        run_config["logger"]["name"] == "none" and run_config["model"]["mixers"]["gdn"]["backend"] == "torch"
    )


@pytest.mark.parametrize(
    ("entry", "overrides", "listing"),
    [
        (
            "train",
            ["logger.name=wandbb"],
            "logger.name=wandbb is not a valid value; the closest valid values are wandb",
        ),
        (
            "train",
            ["model=tiny_hybrid", "model.mixers.gdn.backend=torh"],
            "backend=torh is not a valid value; the closest valid values are torch",
        ),
        (
            "train",
            ["trainer.precision=fp8"],
            "trainer.precision=fp8 is not a valid value; the closest valid values are",
        ),
        (
            "train",
            ["schedule.name=cosin"],
            "schedule.name=cosin is not a valid value; the closest valid values are cosine",
        ),
        (
            "train.prepare",
            ["data=demo", "data.sources.prose.type=tokenz"],
            "type=tokenz is not a valid value; the closest valid values are tokens",
        ),
        (
            "eval",
            ["models=[a]", "corpus=demo", "score.dtype=fp16"],
            "score.dtype=fp16 is not a valid value; the closest valid values are",
        ),
    ],
)
def test_a_typo_fails_at_compose_time_naming_the_closest_values(tmp_path, entry, overrides, listing) -> None:
    data = tmp_path / "data"
    args = [sys.executable, "-m", entry, f"hydra.run.dir={tmp_path / 'run'}", f"data.path={data}", *overrides]
    if entry == "eval":
        args.remove(f"data.path={data}")
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1 and listing in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not data.exists()


def test_configs_built_in_python_are_checked_too() -> None:
    with pytest.raises(UserError, match="type='mamba' is not a mixer kind; did you mean 'mamba2'"):
        ModelConfig(mixers={"m": {"type": "mamba"}}, pattern=["m"], n_layers=1)
    with pytest.raises(UserError, match="norm_placement='middle'"):
        dataclasses.replace(load_model_config("tiny_hybrid"), norm_placement="middle")
    with pytest.raises(UserError, match="has type 'nope'"):
        SourceConfig(type="nope")
    with pytest.raises(UserError, match="score.dtype='fp16' is unknown; use one of auto, float32, bfloat16"):
        ScoreConfig(dtype="fp16")


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1"])
def test_score_device_accepts_its_forms(device: str) -> None:
    assert ScoreConfig(device=device).device == device


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:x", "cuda0"])
def test_score_device_rejects_other_forms_at_compose_time(device: str) -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=["models=[a]", "corpus=demo", f"score.device={device}"])
    with pytest.raises(UserError, match="is not a device; use auto, cpu, cuda or cuda:N"):
        OmegaConf.to_object(cfg)


def test_trainer_resume_is_auto_never_or_a_directory(tmp_path) -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["output_dir=/tmp/unused", "trainer.resume=nevr"])
        good = compose("train", overrides=["output_dir=/tmp/unused", f"trainer.resume={tmp_path}"])
    with pytest.raises(UserError, match="trainer.resume='nevr' is not a directory; use auto, never"):
        OmegaConf.to_object(cfg)
    assert OmegaConf.to_object(good).trainer.resume == str(tmp_path)
