"""A recipe never trains on data it was not made for without a word.

The 1B comparison needs a real dataset (`data: ???` in the experiment: composing without `data=`
fails), and the trainer refuses a model whose vocabulary is more than 4x the data's (a 100k-vocab
model on the 8192-id demo corpus) unless `trainer.allow_vocab_mismatch=true`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from train_helpers import DEMO_CAPS, TINY

from models.config import CONF_DIR
from models.errors import UserError
from train.config import TrainConfig, register_configs
from train.data.manifest import check_vocab_not_oversized
from train.distributed import World
from train.trainer import Trainer


def compose_train(overrides: list[str], run_dir: Path = Path("unused")) -> TrainConfig:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return OmegaConf.to_object(compose("train", overrides=[*overrides, f"output_dir={run_dir}"]))


def trainer_for(run_dir: Path, *overrides: str) -> Trainer:
    return Trainer(compose_train(list(overrides), run_dir), World(0, 1, 0, torch.device("cpu")))


def test_the_1b_recipe_does_not_compose_without_a_dataset() -> None:
    with pytest.raises(ConfigCompositionException, match="You must specify 'data'"):
        compose_train(["experiment=olmo_1b_comparison"])
    assert (
        compose_train(["experiment=olmo_1b_comparison", "data=olmo_tokens_example"]).data.name
        == "olmo_tokens"
    )


def test_a_vocab_over_4x_the_datas_is_refused_naming_the_switch() -> None:
    with pytest.raises(
        UserError, match=r"model.vocab_size=100352 is 12x .*trainer.allow_vocab_mismatch=true"
    ):
        check_vocab_not_oversized(100352, 8192, "demo")
    check_vocab_not_oversized(100352, 100278, "dolma2")  # a padded vocabulary
    check_vocab_not_oversized(4 * 8192, 8192, "demo")  # the bound itself


def test_the_trainer_refuses_an_oversized_vocab_unless_told(tmp_path: Path) -> None:
    """Parity has 2 ids; tiny_transformer has 8192 unless the experiment's vocab_size=2 is kept."""
    run = ["experiment=probe_parity", "debug=default", "model=tiny_transformer", "model.vocab_size=8192"]
    with pytest.raises(UserError, match="allow_vocab_mismatch"):
        trainer_for(tmp_path / "refused", *run)
    trainer = trainer_for(tmp_path / "allowed", *run, "trainer.allow_vocab_mismatch=true")
    assert trainer.model.head.out_features == 8192


@pytest.mark.slow
def test_a_100k_vocab_model_is_refused_on_the_demo_corpus(tmp_path: Path, demo_data: Path) -> None:
    """The 1B recipe's vocabulary (100352) on the demo corpus's BPE (at most 8192 ids)."""
    overrides = ["experiment=olmo_1b_comparison", "data=demo", "model=hybrid_60m", f"data.path={demo_data}",
                 *DEMO_CAPS, *TINY, "trainer.max_steps=1", "trainer.max_tokens=null", "trainer.compile=false"]  # fmt: skip
    with pytest.raises(UserError, match=r"model.vocab_size=100352 is \d+x .*\(demo\).*allow_vocab_mismatch"):
        trainer_for(tmp_path, *overrides)
