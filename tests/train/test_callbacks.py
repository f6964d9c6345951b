"""Trainer callbacks: config expansion, instantiation errors, the hooks in a real run, and the rule
that the training half never imports eval."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from train_helpers import records, run_train

from train.callbacks import (
    FILTERED_LOSS_TARGET,
    INDUCTION_TARGET,
    Callback,
    build_callbacks,
    callback_configs,
)
from train.config import TrainerConfig

ROOT = Path(__file__).parents[2]


class Recorder(Callback):
    """Appends each hook call to a JSON-lines file and reports the step at every evaluation."""

    def __init__(self, path: str):
        self.path = Path(path)

    def _write(self, hook: str, step: int) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"hook": hook, "step": step}) + "\n")

    def on_fit_start(self, trainer) -> None:
        self._write("start", trainer.step)

    def on_evaluate(self, trainer) -> dict[str, float]:
        self._write("evaluate", trainer.step)
        return {"recorder/step": float(trainer.step)}

    def on_fit_end(self, trainer) -> None:
        self._write("end", trainer.step)


def test_shortcuts_expand_to_string_targets() -> None:
    trainer = TrainerConfig(callbacks=[{"_target_": "x.Y", "a": 1}], filtered_eval=["all", "content"],
                            filtered_eval_window=64, phase_threshold=2.0)  # fmt: skip
    assert callback_configs(trainer) == [
        {"_target_": "x.Y", "a": 1},
        {"_target_": FILTERED_LOSS_TARGET, "filters": ["all", "content"], "window": 64, "stride": None},
        {"_target_": INDUCTION_TARGET, "threshold": 2.0},
    ]
    assert callback_configs(TrainerConfig(induction_eval=False)) == []


def test_the_induction_callback_is_added_once() -> None:
    mine = {"_target_": INDUCTION_TARGET, "count": 4}
    assert callback_configs(TrainerConfig(callbacks=[mine])) == [mine]


def test_bad_callback_configs_are_one_line_errors(tmp_path) -> None:
    built = build_callbacks([{"_target_": "test_callbacks.Recorder", "path": str(tmp_path / "log")}])
    assert isinstance(built[0], Recorder)
    for config, message in [
        ({"path": "x"}, "has no _target_"),
        ({"_target_": "collections.OrderedDict"}, "lacks on_fit_start/on_evaluate/on_fit_end"),
        ({"_target_": "no_such_module.Callback"}, "check the _target_"),
    ]:
        with pytest.raises(ValueError, match=message) as error:
            build_callbacks([config])
        assert "\n" not in str(error.value)


def test_the_trainer_calls_every_hook(tmp_path, demo_data, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}:{Path(__file__).parent}")
    run, log = tmp_path / "run", tmp_path / "hooks.jsonl"
    target = f"{{_target_:test_callbacks.Recorder,path:'{log}'}}"
    done = run_train(run, demo_data, "trainer.max_steps=2", "trainer.eval_interval=1",
                     "trainer.checkpoint_interval=0", f"trainer.callbacks=[{target}]")  # fmt: skip
    assert done.returncode == 0, done.stderr
    hooks = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(h["hook"], h["step"]) for h in hooks] == [("start", 0), ("evaluate", 1), ("evaluate", 2),
                                                       ("evaluate", 2), ("end", 2)]  # fmt: skip
    assert [r["recorder/step"] for r in records(run) if "recorder/step" in r] == [1.0, 2.0, 2.0]
    # the default induction callback: logged beside it, and phase.json written at the end
    induction = [r for r in records(run) if "val/induction" in r]
    assert [r["step"] for r in induction] == [1, 2, 2] and all(
        0 <= r["val/induction_acc"] <= 1 for r in induction
    )
    phase = json.loads((run / "phase.json").read_text())
    assert phase["step"] is None and phase["final_step"] == 2 and phase["threshold"] == 1.0  # untrained
    assert "induction: no phase change" in done.stdout


def test_the_training_half_never_imports_eval() -> None:
    offenders = []
    for path in (ROOT / "train").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [
                f"{path.relative_to(ROOT)}: {n}" for n in names if n == "eval" or n.startswith("eval.")
            ]
    assert not offenders
