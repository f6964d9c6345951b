"""Trained probe `mqar`: recall against the number of key-value pairs (Zoology, Arora et al. 2023).

Tests a model trained with `experiment=probe_mqar` on examples with exactly P pairs for each P in
`pairs`. One row per query; `difficulty` = P. A recurrent model's failures at a P it was trained on
measure its state's capacity (a Gated DeltaNet head of key width K stores about K keys exactly);
at a P beyond the range it was trained on they also measure length generalisation, so every row
says which (`trained`: True inside the model's training range of P, False beyond it, None when the
range is unknown).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from omegaconf import OmegaConf

from eval.probes.trained import evaluate_setting
from eval.score import LoadedModel
from models.errors import UserError
from train.data.synthetic.mqar import MQAR, MQARConfig


@dataclass
class Settings:
    """Test settings; `keys`/`values` must be the training task's (`conf/data/probe_mqar.yaml`)."""

    pairs: list[int] = field(default_factory=lambda: [4, 8, 12, 16, 20])
    seq_len: int = 64  # the training length of experiment=probe_mqar; >= 3 * max(pairs)
    examples: int = 100  # test sequences per setting (each holds P queries)
    seed: int = 0
    batch_size: int = 64
    keys: int = MQARConfig.keys
    values: int = MQARConfig.values
    # [min, max] P the models were trained on; None reads each model's from its run's Hydra config
    trained_pairs: list[int] | None = None


def run_config_file(model_dir: Path) -> Path | None:
    """The Hydra config of the run that wrote `model_dir` (`<run>/final` or `<run>/snapshots/<step>`)."""
    for run_dir in (model_dir, model_dir.parent, model_dir.parent.parent):
        candidate = run_dir / ".hydra" / "config.yaml"
        if candidate.is_file():
            return candidate
    return None


def trained_range(model: LoadedModel, settings: Settings) -> tuple[int, int] | None:
    """The [min, max] number of pairs `model` was trained on: `settings.trained_pairs`, else its run's
    `data.synthetic.mqar.pairs_min/pairs_max`; None when neither says (e.g. a copied `final/`)."""
    if settings.trained_pairs is not None:
        if len(settings.trained_pairs) != 2 or settings.trained_pairs[0] > settings.trained_pairs[1]:
            raise UserError(
                f"probes.mqar.trained_pairs={settings.trained_pairs} is not a range; give [min, max], e.g. [4, 16]."
            )
        return int(settings.trained_pairs[0]), int(settings.trained_pairs[1])
    config_file = run_config_file(Path(model.path))
    run = OmegaConf.load(config_file) if config_file is not None else None
    if run is None or OmegaConf.select(run, "data.synthetic.task") != "mqar":
        return None
    return int(run.data.synthetic.mqar.pairs_min), int(run.data.synthetic.mqar.pairs_max)


def evaluate(
    model: LoadedModel, settings: Settings, tokenizer=None, device: torch.device | str = "cpu", dtype=None
) -> pd.DataFrame:
    """One row per query of `settings.examples` sequences for each number of pairs, with `trained`."""
    trained = trained_range(model, settings)
    frames = []
    for pairs in settings.pairs:
        task = MQAR(MQARConfig(keys=settings.keys, values=settings.values, pairs_min=pairs, pairs_max=pairs))
        frame = evaluate_setting(model, task, "mqar", f"pairs={pairs}", pairs, settings.seq_len,
                                 settings.examples, settings.seed, settings.batch_size, torch.device(device))  # fmt: skip
        frame["trained"] = None if trained is None else trained[0] <= pairs <= trained[1]
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    if trained is None:
        out.attrs["notes"] = [
            f"mqar: the range of pairs {model.name} was trained on is unknown (no run config next to "
            f"{model.path}); set probes.mqar.trained_pairs=[min,max] to split trained P from length generalisation."
        ]
    else:
        out.attrs["notes"] = [
            f"mqar: {model.name} was trained on {trained[0]}-{trained[1]} pairs; tests beyond that "
            "are length generalisation, not state capacity."
        ]
    return out
