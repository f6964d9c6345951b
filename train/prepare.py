"""`python -m train.prepare data=NAME [overrides]`: tokenize a corpus into token shards + manifest.

Thin Hydra entry: composes `conf/prepare.yaml` (schema `train.data.config.PrepareConfig`) and calls
`train.data.build_dataset.build_dataset`. The dataset goes to `data.path`, Hydra's own logs to its run
dir. A user error ends the run with one line on stderr and exit status 1; nothing half-written stays.
"""

from __future__ import annotations

import os

import hydra
from omegaconf import DictConfig, OmegaConf

from models.errors import exit_on_user_error
from train.data.config import PrepareConfig, register_configs

register_configs()


@hydra.main(config_path="../conf", config_name="prepare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    prepare_cfg: PrepareConfig = OmegaConf.to_object(cfg)
    # Rayon reads this once, when the tokenizer first runs in parallel: before any encoding.
    os.environ["RAYON_NUM_THREADS"] = str(prepare_cfg.num_workers)
    from train.data.build_dataset import build_dataset

    with exit_on_user_error():
        build_dataset(prepare_cfg)


if __name__ == "__main__":
    main()
