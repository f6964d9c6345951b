"""experiment=probe_mqar trains on the numbers of pairs the mqar probe tests; sweep=mqar_zoology's grid."""

from __future__ import annotations

import itertools

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from eval.probes.mqar import Settings
from models import build_model
from models.config import CONF_DIR
from train.config import register_configs
from train.data.synthetic import IGNORE, build_task
from train.data.synthetic.batches import SyntheticBatches, SyntheticSequences

register_configs()


def compose_train(overrides: list[str], hydra_config: bool = False):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            "train", overrides=["output_dir=/tmp/unused", *overrides], return_hydra_config=hydra_config
        )


def test_every_tested_pair_count_but_the_largest_is_in_the_first_training_batch() -> None:
    cfg = OmegaConf.to_object(compose_train(["experiment=probe_mqar"]))
    mqar = cfg.data.synthetic.mqar
    tested = OmegaConf.load(CONF_DIR / "probes" / "mqar.yaml")["pairs"]
    assert list(tested) == Settings().pairs
    trained = [p for p in tested if mqar.pairs_min <= p <= mqar.pairs_max]
    assert trained == tested[:-1], "the default probe tests one P beyond training: length generalisation"
    task = build_task("mqar", mqar)
    dataset = SyntheticSequences(task, mqar, cfg.trainer.seq_len, seed=cfg.trainer.seed)
    per_step = cfg.trainer.global_batch_tokens // cfg.trainer.seq_len
    labels = SyntheticBatches(dataset, per_step, seed=cfg.trainer.seed).batch(0)["labels"].numpy()
    pairs_in_batch = set((labels != IGNORE).sum(axis=1).tolist())  # one query per pair
    assert set(trained) <= pairs_in_batch and max(pairs_in_batch) <= mqar.pairs_max


def test_the_zoology_sweep_is_three_architectures_by_three_widths_by_three_lrs() -> None:
    cfg = compose_train(["experiment=probe_mqar", "sweep=mqar_zoology"], hydra_config=True)
    grid = {key: str(values).split(",") for key, values in cfg.hydra.sweeper.params.items()}
    assert {key: len(values) for key, values in grid.items()} == {
        "model": 3,
        "model.d_model": 3,
        "optim.lr": 3,
    }
    subdirs = set()
    for architecture in grid["model"]:
        job = compose_train(["experiment=probe_mqar", "sweep=mqar_zoology", f"model={architecture}"], True)
        assert job.model.name == architecture and job.data.synthetic.task == "mqar"
        for d_model, lr in itertools.product(grid["model.d_model"], grid["optim.lr"]):
            job.model.d_model, job.optim.lr = int(d_model), float(lr)
            build_model(OmegaConf.to_object(job.model), device="meta")  # every width builds
            subdirs.add(OmegaConf.to_container(job.hydra.sweep, resolve=True)["subdir"])
    assert len(subdirs) == 27, "each point of the grid trains into its own directory"


def test_the_zoology_sweep_stops_solved_runs_and_probe_mqar_alone_does_not() -> None:
    sweep = OmegaConf.to_object(compose_train(["experiment=probe_mqar", "sweep=mqar_zoology"]))
    alone = OmegaConf.to_object(compose_train(["experiment=probe_mqar"]))
    assert sweep.trainer.stop_at_val_loss == 0.01 and sweep.trainer.eval_interval == 100
    assert alone.trainer.stop_at_val_loss is None and alone.trainer.max_steps == sweep.trainer.max_steps
