"""`python -m train.prepare data=NAME [overrides]`: tokenize a corpus into token shards + manifest.

Thin Hydra entry: composes `conf/prepare.yaml` (schema `train.data.config.PrepareConfig`) and calls
`train.data.build_dataset.build_dataset`. A synthetic data config (`data=probe_mqar`) needs no files: it is
checked and one example is shown. The dataset goes to `data.path`, Hydra's own logs to its run
dir. A user error ends the run with one line on stderr and exit status 1; nothing half-written stays.
"""

from __future__ import annotations

import os

import hydra
from omegaconf import DictConfig, OmegaConf

from models.config_errors import one_line_config_errors
from models.errors import exit_on_user_error
from train.data.config import PrepareConfig, register_configs
from train.data.synthetic.describe import describe_synthetic

register_configs()


@one_line_config_errors
@hydra.main(config_path="../conf", config_name="prepare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    prepare_cfg: PrepareConfig = OmegaConf.to_object(cfg)
    # Rayon reads this once, when the tokenizer first runs in parallel: before any encoding.
    os.environ["RAYON_NUM_THREADS"] = str(prepare_cfg.num_workers)
    from train.data.build_dataset import build_dataset

    with exit_on_user_error():
        if prepare_cfg.data.synthetic is not None:  # generated from the seed at training time
            print(describe_synthetic(prepare_cfg.data))
            return
        build_dataset(prepare_cfg)


if __name__ == "__main__":
    main()
