"""`python -m train [overrides]`: train one model (or, with `-m`, a Hydra sweep of them).

Thin Hydra entry: compose `conf/train.yaml` (schema `train.config.TrainConfig`), start this rank
(torchrun sets RANK/WORLD_SIZE; under `srun` they come from SLURM's variables), run the trainer.
Exit codes: 0 done; 1 a user error (one line on stderr); 75 preempted by SIGTERM/SIGUSR1 after
saving a checkpoint (requeue to resume).
Under torchrun or srun only rank 0 lets Hydra write its output directory and logs.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from models.config_errors import one_line_config_errors
from models.errors import exit_on_user_error
from train.config import register_configs
from train.distributed import close_world, init_world, launch_rank

register_configs()
if launch_rank() > 0:  # every rank composes; only rank 0 writes .hydra/ and logs
    sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=none", "hydra/hydra_logging=none"]


@one_line_config_errors
@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from train.trainer import PREEMPTED_EXIT_CODE, Preempted, Trainer

    with exit_on_user_error():
        world = init_world(cfg.trainer.device)
        try:
            Trainer(OmegaConf.to_object(cfg), world).fit()
        except Preempted:
            sys.exit(PREEMPTED_EXIT_CODE)
        finally:
            close_world(world)


if __name__ == "__main__":
    main()
