"""Training never keeps poisoned weights: a non-finite loss or gradient stops the run before the update.

A callback poisons one step from the outside, through forward hooks on the model's blocks: either
the gradient only (the loss stays finite, so only the gradient norm can tell) or the loss. The
run must stop with a `UserError` at that step, the weights must be those from before it, the newest
checkpoint must be the last good one, and no `final/` may be written. Also through `torchrun`
with 2 FSDP2 ranks, whose gradient norm is a DTensor.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from train_helpers import losses, run_train

from models.config import CONF_DIR
from models.errors import UserError
from train.callbacks import Callback
from train.checkpoint import checkpoint_dirs
from train.config import register_configs
from train.distributed import World
from train.trainer import Trainer

POISONED_STEP = 1  # 0-based, as trainer.step counts: the second step, whose checkpoint would be step_2
RUN = ["experiment=probe_parity", "debug=default", "model=tiny_transformer", "trainer.max_steps=2",
       "trainer.checkpoint_interval=1", "trainer.keep_last=3", "trainer.eval_batches=1"]  # fmt: skip


class PoisonStep(Callback):
    """At optimizer step `step`, make every gradient (`what=gradient`) or the loss (`what=loss`) NaN.

    `weights_before` holds the model's weights as that step's forward saw them (on one rank).
    """

    def __init__(self, step: int, what: str = "gradient") -> None:
        self.step, self.what = step, what
        self.weights_before: dict[str, torch.Tensor] | None = None

    def on_fit_start(self, trainer) -> None:
        self.trainer = trainer
        trainer.model.blocks[0].register_forward_hook(self._first_block)
        trainer.model.blocks[-1].register_forward_hook(self._last_block)

    def _poisoning(self, output: torch.Tensor) -> bool:
        return self.trainer.step == self.step and output.requires_grad  # not validation (no_grad)

    def _first_block(self, module, inputs, output: torch.Tensor) -> None:
        # One rank only: FSDP2's state_dict() in mid-forward would reshard the parameters.
        if self._poisoning(output) and self.weights_before is None and not self.trainer.world.distributed:
            self.weights_before = {k: v.detach().clone() for k, v in self.trainer.model.state_dict().items()}
        if self._poisoning(output) and self.what == "gradient":
            output.register_hook(lambda grad: grad * float("nan"))

    def _last_block(self, module, inputs, output: torch.Tensor) -> torch.Tensor:
        return output * float("nan") if self._poisoning(output) and self.what == "loss" else output


def trainer_for(run_dir: Path, *overrides: str) -> Trainer:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*RUN, f"output_dir={run_dir}", *overrides])
    return Trainer(OmegaConf.to_object(cfg), World(0, 1, 0, torch.device("cpu")))


@pytest.mark.parametrize("what", ["gradient", "loss"])
def test_a_non_finite_step_is_never_applied_saved_or_exported(tmp_path: Path, what: str) -> None:
    trainer = trainer_for(tmp_path)
    poison = PoisonStep(POISONED_STEP, what)
    trainer.callbacks.append(poison)
    with pytest.raises(UserError, match="at step 2 with gradient norm"):
        trainer.fit()
    assert poison.weights_before is not None
    weights = trainer.model.state_dict()
    assert all(torch.equal(weights[k], v) for k, v in poison.weights_before.items())
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert [p.name for p in checkpoint_dirs(tmp_path / "checkpoints")] == ["step_000001"]
    assert not (tmp_path / "final").exists()


def test_crash_on_nan_false_trains_on(tmp_path: Path) -> None:
    """The switch still works: the run ends and exports (with the weights the user chose to keep)."""
    trainer = trainer_for(tmp_path, "trainer.crash_on_nan=false")
    trainer.callbacks.append(PoisonStep(POISONED_STEP))
    trainer.fit()
    assert (tmp_path / "final" / "model.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.distributed
def test_two_fsdp_ranks_stop_together_on_a_non_finite_gradient(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", f"{CONF_DIR.parent}:{Path(__file__).parent}")
    poison = f"trainer.callbacks=[{{_target_:test_nonfinite.PoisonStep,step:{POISONED_STEP}}}]"
    run = tmp_path / "run"
    done = run_train(
        run, tmp_path / "unused", *RUN, "trainer.micro_batch_size=2", poison, ranks=2, caps=False
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode != 0 and errors, done.stderr[-3000:]
    assert all("at step 2 with gradient norm nan; the step was not applied" in line for line in errors)
    assert [p.name for p in checkpoint_dirs(run / "checkpoints")] == ["step_000001"]
    assert not (run / "final").exists()
    assert list(losses(run)) == [1]  # step 2 was never logged as trained
