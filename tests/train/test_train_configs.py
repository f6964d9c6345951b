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


def test_experiment_recipe_matches_the_documented_1b_setup() -> None:
    cfg = compose_train(["experiment=olmo_1b_comparison", "model=rnn_1b"])
    assert cfg.model.name == "rnn_1b" and cfg.trainer.global_batch_tokens == 4 * 1024 * 1024
    assert cfg.trainer.seq_len == 8192 and cfg.schedule.name == "wsd" and cfg.trainer.z_loss == 1e-5
    assert plan_steps(cfg, World(0, 8, 0, None))[1] == 64  # 512 sequences over 8 ranks: 64 micro-batches


def test_typos_fail_at_compose_time() -> None:
    with pytest.raises(Exception, match="trainer.sequence_len"):
        compose_train(["trainer.sequence_len=5"])


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
