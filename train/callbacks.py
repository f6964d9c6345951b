"""Callbacks: how code outside the training half (in-loop evaluation, probes, ...) joins the loop.

The trainer calls, on every callback of `trainer.callbacks` (instantiated with Hydra from their
`_target_`, the Lightning / OLMo-core convention), in list order:

- `on_fit_start(trainer)` once before the first step (also after a resume), e.g. to build a fixed
  validation set from `trainer.data_path`;
- `on_evaluate(trainer) -> dict[str, float]` at every evaluation (every `eval_interval` steps and
  at the end); the returned metrics are logged with `val/packed_loss` at `trainer.step`;
- `on_fit_end(trainer)` once after the final evaluation and export.

Every rank calls every hook (an FSDP forward needs all ranks). `Callback` is a runtime-checkable
protocol: subclass it to inherit no-op hooks, or define the three methods on any class (eval does,
so that eval never imports the training half, and the training half never imports eval).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from hydra.errors import InstantiationException
from hydra.utils import instantiate

from models.errors import UserError
from train.config import TrainerConfig

FILTERED_LOSS_TARGET = "eval.inloop.FilteredLossCallback"  # string targets: not imports of eval
INDUCTION_TARGET = "eval.inloop_induction.InductionCallback"


@runtime_checkable
class Callback(Protocol):
    """Hooks the trainer calls; each receives the `Trainer` (model, step, data_path, cfg, world)."""

    def on_fit_start(self, trainer: Any) -> None:
        """Before the first step."""

    def on_evaluate(self, trainer: Any) -> dict[str, float]:
        """Metrics to log at an evaluation."""
        return {}

    def on_fit_end(self, trainer: Any) -> None:
        """After the final evaluation and export."""


def callback_configs(trainer: TrainerConfig) -> list[dict[str, Any]]:
    """`trainer.callbacks`, plus the callbacks its shortcuts add: the filtered losses of
    `trainer.filtered_eval`, and the induction score unless `trainer.induction_eval` is false (or
    `trainer.callbacks` already names it)."""
    configs = [dict(c) for c in trainer.callbacks]
    if trainer.filtered_eval:
        configs.append({"_target_": FILTERED_LOSS_TARGET, "filters": list(trainer.filtered_eval),
                        "window": trainer.filtered_eval_window, "stride": trainer.filtered_eval_stride,
                        **({"corpus": trainer.filtered_eval_corpus} if trainer.filtered_eval_corpus else {})})  # fmt: skip
    if trainer.induction_eval and all(c.get("_target_") != INDUCTION_TARGET for c in configs):
        configs.append({"_target_": INDUCTION_TARGET, "threshold": trainer.phase_threshold})
    return configs


def build_callbacks(configs: Sequence[Mapping[str, Any]]) -> list[Callback]:
    """Instantiate each config (a mapping with `_target_`); UserError for one that is not a callback."""
    built = []
    for config in configs:
        if "_target_" not in config:
            raise UserError(
                f"trainer.callbacks entry {dict(config)} has no _target_; name the callback's class."
            )
        try:
            callback = instantiate(config, _convert_="all")
        except InstantiationException as error:
            first = str(error).strip().splitlines()[0]
            raise UserError(f"trainer.callbacks: {first}; check the _target_ and its arguments.") from None
        if not isinstance(callback, Callback):
            raise UserError(
                f"trainer.callbacks: {config['_target_']} lacks on_fit_start/on_evaluate/on_fit_end; "
                "implement the train.callbacks.Callback hooks."
            )
        built.append(callback)
    return built
