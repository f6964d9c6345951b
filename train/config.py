"""Typed configuration of `python -m train`, registered with Hydra so YAML and overrides are checked.

Groups (`conf/`): model (`models.config.ModelConfig`), data (`train.data.config.DataConfig`), optim,
schedule (`train.recipe`), trainer, logger, paths, plus experiment / launcher / sweep / debug files
that only override keys of these (or of `hydra`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from models.choices import Choice
from models.config import ModelConfig
from models.errors import UserError
from train.data.config import DataConfig
from train.data.repeats import RepeatSpans
from train.recipe import OptimConfig, ScheduleConfig


class Precision(Choice):
    bf16 = "bf16"  # FSDP2 mixed precision / autocast
    fp32 = "fp32"  # exact and deterministic


class TrainDevice(Choice):
    auto = "auto"  # cuda when available, else cpu
    cpu = "cpu"
    cuda = "cuda"


class LoggerName(Choice):
    none = "none"
    wandb = "wandb"


class WandbMode(Choice):
    online = "online"
    offline = "offline"
    disabled = "disabled"


RESUME_KEYWORDS = ("auto", "never")


@dataclass
class TrainerConfig:
    """The loop: batch geometry, length, stability knobs, intervals, and parallelism options."""

    global_batch_tokens: int = 4 * 1024 * 1024  # tokens per optimizer step, whatever the world size
    seq_len: int = 8192
    micro_batch_size: int = 1  # sequences per rank per forward/backward
    max_steps: int | None = None  # stop after this many steps...
    max_tokens: int | None = None  # ...or this many tokens (exactly one of the two)
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping
    z_loss: float = 1e-5  # weight of logsumexp(logits)^2 (PaLM); 0 disables it
    precision: Precision = Precision.bf16
    seed: int = 0  # model init and the data order
    doc_masking: bool = False  # keep attention and recurrence inside each document
    log_interval: int = 10
    eval_interval: int = 0  # validation loss every N steps (0: only at the end)
    eval_batches: int = 8  # validation batches per evaluation
    # Converged: stop at the first evaluation whose val/packed_loss is at or below this (then the final
    # evaluation and export as at max_steps); null: always run to max_steps. For tasks whose loss can
    # reach ~0 (MQAR's answers): a solved run's remaining steps teach nothing (sweep=mqar_zoology).
    stop_at_val_loss: float | None = None
    # Objects called at fit start, every evaluation and fit end (train.callbacks.Callback), each a
    # mapping with a Hydra `_target_` and its arguments.
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    # Shortcut: filtered validation losses at every evaluation, e.g. [all, content, function,
    # "content & no_copy"], adds eval.inloop.FilteredLossCallback(filters, corpus, window, stride), which
    # resolves documents, W and S as `python -m eval corpus=... score.window=... score.stride=...` does.
    filtered_eval: list[str] = field(default_factory=list)
    filtered_eval_corpus: str | None = (
        None  # a conf/corpus name (e.g. demo); null: this data's validation split
    )
    filtered_eval_window: int | None = None  # null: seq_len (at most 2048), as python -m eval
    filtered_eval_stride: int | None = None  # null: window // 2, as python -m eval
    # The induction score (val/induction, val/induction_acc) at every evaluation, and phase.json at
    # the end: the first step it reached phase_threshold nats (eval.inloop_induction.InductionCallback).
    induction_eval: bool = True
    phase_threshold: float = 1.0
    checkpoint_interval: int = 500  # 0: no intermediate checkpoints
    keep_last: int = 2  # checkpoints kept on disk
    snapshots: bool = False  # also write each checkpoint as snapshots/step_N/ in the pretrained format
    resume: str = "auto"  # auto: newest complete checkpoint in the run dir; never; or a checkpoint path
    compile: bool = False  # torch.compile each block
    activation_checkpointing: bool = False  # recompute each block in backward
    deterministic: bool = False  # torch deterministic algorithms (CPU/fp32 runs are then bit-exact)
    device: TrainDevice = TrainDevice.auto
    peak_flops: float | None = None  # per device, for MFU; default: known GPUs, measured on CPU
    progress: bool = True
    # Train a model whose vocabulary is more than 4x the data's (train.data.manifest.check_vocab_not_oversized).
    allow_vocab_mismatch: bool = False
    # Paste a verbatim repeat of a span of each row's own text into this share of training rows
    # (train.data.repeats): more tokens on which copying pays; fraction 0 (default) trains on the data as is.
    repeat_spans: RepeatSpans = field(default_factory=RepeatSpans)
    # Stop (exit 1) when a step's loss or gradient norm is not finite, before it updates the weights.
    crash_on_nan: bool = True

    def __post_init__(self) -> None:
        """Check `resume`'s form when the config is built, before any data is prepared."""
        if self.resume not in RESUME_KEYWORDS and not Path(self.resume).is_dir():
            raise UserError(
                f"trainer.resume={self.resume!r} is not a directory; use auto, never or a checkpoints/step_N path."
            )


@dataclass
class LoggerConfig:
    """Where metrics go besides the always-written `metrics.jsonl`: nothing, or Weights & Biases."""

    name: LoggerName = LoggerName.none
    project: str = "hybridzoo"
    entity: str | None = None
    mode: WandbMode = WandbMode.offline
    group: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class PathsConfig:
    """Roots of the run directories (Hydra's run and sweep dirs are built from them)."""

    runs: str = "runs"
    multirun: str = "multirun"


@dataclass
class TrainConfig:
    """Everything one run needs; `run_name` and `output_dir` default from Hydra's job."""

    model: ModelConfig = MISSING
    data: DataConfig = MISSING
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    run_name: str = "${model.name}"
    output_dir: str = "${hydra:runtime.output_dir}"


def register_configs() -> None:
    """Register the schemas (`train_schema` for `conf/train.yaml`, and the data schemas)."""
    from train.data.config import register_configs as register_data_configs

    register_data_configs()
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
