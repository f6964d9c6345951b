"""The MQAR sweep's aggregation (eval.probes.mqar_sweep): best lr per width, table and width plot."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from eval.probes.mqar_sweep import best_lr, main
from models import build_model, load_model_config, save_pretrained
from models.config import TrainingContext


def scores(rows: list[tuple[str, int, float, int, bool, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["architecture", "d_model", "lr", "pairs", "trained", "accuracy"])
    return frame.assign(steps=100, run="r", n=10)


def test_best_lr_is_chosen_on_trained_pairs_per_architecture_and_width() -> None:
    frame = scores([
        # at width 32 lr 1e-3 is better where trained, though worse on the length-generalisation P
        ("rnn", 32, 1e-3, 8, True, 0.9), ("rnn", 32, 1e-3, 20, False, 0.1),
        ("rnn", 32, 3e-3, 8, True, 0.5), ("rnn", 32, 3e-3, 20, False, 0.9),
        # at width 64 the other lr wins
        ("rnn", 64, 1e-3, 8, True, 0.2), ("rnn", 64, 1e-3, 20, False, 0.1),
        ("rnn", 64, 3e-3, 8, True, 0.7), ("rnn", 64, 3e-3, 20, False, 0.3),
        ("transformer", 32, 3e-3, 8, True, 1.0), ("transformer", 32, 3e-3, 20, False, 1.0),
    ])  # fmt: skip
    best = best_lr(frame)
    chosen = best.drop_duplicates(["architecture", "d_model"]).set_index(["architecture", "d_model"])["lr"]
    assert chosen.to_dict() == {("rnn", 32): 1e-3, ("rnn", 64): 3e-3, ("transformer", 32): 3e-3}
    assert len(best) == 6  # every P of each chosen run


def fake_run(
    sweep: Path,
    architecture: str,
    d_model: int,
    lr: float,
    finished: bool = True,
    stopped_at: int | None = None,
) -> None:
    """A sweep job directory: the Hydra config the aggregation reads and a random model in final/
    (trained `stopped_at` of its 7 steps when given: `trainer.stop_at_val_loss` ended it early)."""
    run = sweep / f"{architecture}-d{d_model}-lr{lr}"
    (run / ".hydra").mkdir(parents=True)
    cfg = {
        "model": {"name": architecture, "d_model": d_model},
        "optim": {"lr": lr},
        "trainer": {"max_steps": 7},
        "data": {"synthetic": {"task": "mqar", "mqar": {"pairs_min": 4, "pairs_max": 8}}},
    }
    OmegaConf.save(OmegaConf.create(cfg), run / ".hydra" / "config.yaml")
    if finished:
        model_cfg = load_model_config(architecture, [f"d_model={d_model}", "n_layers=1", "vocab_size=257"])
        if stopped_at is not None:
            context = TrainingContext(seq_len=64, precision="fp32", steps=stopped_at, tokens=64 * stopped_at)
            model_cfg = dataclasses.replace(model_cfg, training=context)
        torch.manual_seed(d_model)
        save_pretrained(build_model(model_cfg), run / "final")


def test_the_tool_reports_a_sweep_with_its_unfinished_runs(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    for architecture in ("tiny_transformer", "tiny_rnn"):
        for d_model in (32, 64):
            fake_run(sweep, architecture, d_model, 1e-3, stopped_at=3 if d_model == 64 else None)
    fake_run(sweep, "tiny_rnn", 64, 3e-3, finished=False)
    main([str(sweep), "--examples", "2"])
    out = sweep / "report"
    assert f"report: {out / 'report.md'}" in capsys.readouterr().out
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 4 * 5 and set(runs["pairs"]) == {4, 8, 12, 16, 20}
    assert runs.groupby("d_model")["steps"].unique().map(list).to_dict() == {32: [7], 64: [3]}
    assert runs.groupby("pairs")["trained"].first().to_dict() == {
        4: True,
        8: True,
        12: False,
        16: False,
        20: False,
    }
    report = (out / "report.md").read_text()
    assert "P=12 (length gen.)" in report and "P=8 |" in report and "P=8 (length gen.)" not in report
    assert "Unfinished (no final/): tiny_rnn-d64-lr0.003." in report
    assert (out / "plots" / "mqar_width.png").stat().st_size > 0


def test_a_directory_without_mqar_runs_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code == 1
