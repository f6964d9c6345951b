"""The training loop shared by every architecture.

One optimizer step consumes `global_batch_tokens` tokens, whatever the world size: each rank takes
its slice of the global batch (`train.data.TrainBatches`) in micro-batches and accumulates
gradients. Losses are normalised by the counted labels of the whole step (every token on prepared
text; only the answer positions on a synthetic task, whose other labels are -100), so gradients do
not depend on how the batch is split. The loss is cross-entropy plus PaLM's z-loss `z * logsumexp(logits)^2`, computed by
the model's fused chunked head + loss (`models.ops.linear_cross_entropy`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from omegaconf import MISSING, OmegaConf
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from tqdm import tqdm

from models import build_model, save_pretrained
from models.config import ModelConfig, TrainingContext
from models.errors import UserError
from models.ops.linear_cross_entropy import IGNORE_INDEX
from models.summary import summarize
from train.callbacks import build_callbacks, callback_configs
from train.checkpoint import checkpoint_dirs, load_checkpoint, save_checkpoint
from train.config import TrainConfig
from train.data.config import PrepareConfig
from train.data.loader import (
    TokenSequences,
    TrainBatches,
    check_tokenizer_compatible,
    check_vocab_not_oversized,
    validation_batches,
)
from train.data.synthetic.batches import SyntheticBatches, SyntheticSequences, synthetic_validation_batches
from train.distributed import World, all_reduce_mean, all_reduce_sum, barrier, broadcast_object, parallelize
from train.metrics import MetricsLogger, mfu, peak_flops, peak_memory_gb
from train.recipe import build_optimizer, build_scheduler

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: a checkpoint was saved on SIGTERM/SIGUSR1; requeue the job


class Preempted(Exception):
    """Raised after a signal-triggered checkpoint; the entry point exits with PREEMPTED_EXIT_CODE."""


def plan_steps(cfg: TrainConfig, world: World) -> tuple[int, int, int]:
    """(global batch in sequences, micro-batches per rank per step, max steps); checks divisibility."""
    t = cfg.trainer
    if t.global_batch_tokens % t.seq_len:
        raise UserError(
            f"trainer.global_batch_tokens={t.global_batch_tokens} is not a multiple of seq_len={t.seq_len}; "
            "make the batch a whole number of sequences."
        )
    sequences = t.global_batch_tokens // t.seq_len
    per_step = t.micro_batch_size * world.world_size
    if sequences % per_step:
        raise UserError(
            f"the global batch of {sequences} sequences does not split into micro-batches of "
            f"{t.micro_batch_size} on {world.world_size} rank(s); make global_batch_tokens / seq_len a "
            f"multiple of micro_batch_size x world size ({per_step})."
        )
    if (t.max_steps is None) == (t.max_tokens is None):
        raise UserError("set exactly one of trainer.max_steps and trainer.max_tokens.")
    max_steps = t.max_steps if t.max_steps is not None else math.ceil(t.max_tokens / t.global_batch_tokens)
    if max_steps < 1:
        raise UserError(f"the run has {max_steps} steps; raise trainer.max_steps or trainer.max_tokens.")
    return sequences, sequences // per_step, max_steps


def prepare_data(cfg: TrainConfig, world: World) -> Path:
    """Build (or reuse) the prepared dataset on rank 0; every rank gets its path."""
    path = None
    if world.is_main:
        from train.data.build_dataset import build_dataset

        path = build_dataset(PrepareConfig(data=cfg.data, progress=cfg.trainer.progress))
    barrier(world)
    return Path(broadcast_object(str(path) if path else None, world))


def batch_fingerprint(batches: TrainBatches, step: int) -> str:
    """sha256 of the token ids of global batch `step`: equal across runs that saw the same data."""
    tokens = batches.rows_batch(step, 0, batches.global_batch_size)["input_ids"].numpy()
    return hashlib.sha256(tokens.tobytes()).hexdigest()


def run_record(cfg: TrainConfig) -> dict:
    """The run's config as plain data for the metrics log; the model through `ModelConfig.to_dict`,
    since its typed mixers are not OmegaConf's composed `MixerEntry`s."""
    rest = OmegaConf.to_container(
        OmegaConf.structured(dataclasses.replace(cfg, model=MISSING)), enum_to_str=True
    )
    return rest | {"model": cfg.model.to_dict()}


class Trainer:
    """Builds model, optimizer, data and logger from a `TrainConfig`, then runs `fit()`."""

    def __init__(self, cfg: TrainConfig, world: World) -> None:
        self.cfg, self.world, t = cfg, world, cfg.trainer
        self.run_dir = Path(cfg.output_dir)
        self.global_sequences, self.accumulation, self.max_steps = plan_steps(cfg, world)
        if t.deterministic:
            torch.use_deterministic_algorithms(True)
        self.data_path, self.batches = self._open_data()
        torch.manual_seed(t.seed)
        model = build_model(cfg.model, device=world.device)
        self.bf16 = t.precision == "bf16"
        self.model = parallelize(
            model, world, bf16=self.bf16, compile=t.compile, checkpointing=t.activation_checkpointing
        )
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule, self.max_steps)
        self.step, self.tokens_seen = 0, 0
        self.flops_per_token = summarize(cfg.model, t.seq_len)["flops_per_token"]
        self.peak_flops = peak_flops(world.device, t.peak_flops, announce=world.is_main)
        self.signal_received: int | None = None
        self.callbacks = build_callbacks(callback_configs(t))
        self.logger = MetricsLogger(
            self.run_dir,
            cfg.logger,
            cfg.run_name,
            run_record(cfg),
            world.is_main,
        )

    def _open_data(self) -> tuple[Path | None, TrainBatches | SyntheticBatches]:
        """(prepared dataset path or None, this rank's training batches): shards or a synthetic task."""
        cfg, world, t = self.cfg, self.world, self.cfg.trainer
        synthetic = cfg.data.synthetic
        if synthetic is None:
            path = prepare_data(cfg, world)
            dataset = TokenSequences(path, t.seq_len)
            check_tokenizer_compatible(dataset.manifest, cfg.model.vocab_size)
            if not t.allow_vocab_mismatch:
                check_vocab_not_oversized(cfg.model.vocab_size, dataset.manifest.vocab_size, cfg.data.name)
            return path, TrainBatches(
                dataset, self.global_sequences, t.seed, world.rank, world.world_size, repeats=t.repeat_spans
            )
        task = synthetic.build()
        if cfg.model.vocab_size < task.vocab_size:
            raise UserError(
                f"model.vocab_size={cfg.model.vocab_size} is smaller than the {task.name} task's vocabulary "
                f"({task.vocab_size}); set model.vocab_size={task.vocab_size}."
            )
        if not t.allow_vocab_mismatch:
            check_vocab_not_oversized(cfg.model.vocab_size, task.vocab_size, cfg.data.name)
        if t.filtered_eval:
            raise UserError("trainer.filtered_eval needs prepared text data; clear it for a synthetic task.")
        if t.repeat_spans.fraction > 0:
            raise UserError(
                "trainer.repeat_spans needs prepared text data; set its fraction to 0 for a synthetic task."
            )
        dataset = SyntheticSequences(task, synthetic.section(), t.seq_len, t.seed)
        return None, SyntheticBatches(dataset, self.global_sequences, t.seed, world.rank, world.world_size)

    def _validation_batches(self):
        t, synthetic = self.cfg.trainer, self.cfg.data.synthetic
        if synthetic is None:
            return validation_batches(self.data_path, t.seq_len, t.micro_batch_size)
        return synthetic_validation_batches(
            synthetic.build(), synthetic.section(), t.seq_len, t.micro_batch_size, synthetic.validation_seed
        )

    # --- checkpoints ---------------------------------------------------------------------------
    @property
    def checkpoint_root(self) -> Path:
        return self.run_dir / "checkpoints"

    def maybe_resume(self) -> None:
        resume = self.cfg.trainer.resume
        if resume == "never":
            return
        path = (
            Path(resume) if resume != "auto" else next(reversed(checkpoint_dirs(self.checkpoint_root)), None)
        )
        if path is None:
            return
        state = load_checkpoint(path, self.model, self.optimizer, self.world)
        self.scheduler.load_state_dict(state["scheduler"])
        self.batches.load_state_dict(state["data"])
        self.step, self.tokens_seen = state["step"], state["tokens_seen"]
        self.logger.log({"event": "resumed", "checkpoint": str(path)}, self.step)

    def save(self) -> Path:
        loop_state = {
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "scheduler": self.scheduler.state_dict(),
            "data": self.batches.state_dict(),
        }
        path = save_checkpoint(
            self.checkpoint_root,
            self.step,
            self.model,
            self.optimizer,
            loop_state,
            self.world,
            self.cfg.trainer.keep_last,
        )
        if self.cfg.trainer.snapshots:  # for eval's filtered-loss curves over training
            self.export(self.run_dir / "snapshots" / path.name)
        return path

    def export(self, out: Path) -> Path:
        """The current weights in the pretrained format (`models.pretrained`), with the data's tokenizer."""
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_model_state_dict(self.model, options=options)
        if self.world.is_main:
            plain = build_model(self.training_context_config(), device="cpu")
            plain.load_state_dict(state)
            tokenizer = None if self.data_path is None else self.data_path / "tokenizer.json"
            save_pretrained(plain, out, tokenizer_file=tokenizer)
        barrier(self.world)
        return out

    def training_context_config(self) -> ModelConfig:
        """The model config with how its weights were trained (sequence length, precision, steps)."""
        t = self.cfg.trainer
        context = TrainingContext(
            seq_len=t.seq_len, precision=str(t.precision), steps=self.step, tokens=self.tokens_seen
        )
        return dataclasses.replace(self.cfg.model, training=context)

    # --- the loop ------------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame) -> None:
        self.signal_received = signum

    def _autocast(self):
        # FSDP2 casts parameters itself; a single rank uses autocast for bf16 compute.
        if self.bf16 and not self.world.distributed:
            return torch.autocast(self.world.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def train_step(self) -> dict[str, float]:
        """One optimizer step over this rank's slice of global batch `self.step`."""
        t = self.cfg.trainer
        batch = {k: v.to(self.world.device) for k, v in self.batches.batch(self.step).items()}
        # This rank's share of the step's counted labels: the global count over the world size, so
        # the mean over ranks of each rank's loss / share is the global sum over the global count.
        counted = all_reduce_sum((batch["labels"] != IGNORE_INDEX).sum(), self.world).item()
        tokens_per_rank = max(counted, 1) / self.world.world_size
        ce_total = torch.zeros((), device=self.world.device)
        z_total = torch.zeros((), device=self.world.device)
        for micro in range(self.accumulation):
            rows = slice(micro * t.micro_batch_size, (micro + 1) * t.micro_batch_size)
            doc_ids = batch["doc_ids"][rows] if t.doc_masking else None
            if self.world.distributed:
                self.model.set_requires_gradient_sync(micro == self.accumulation - 1)
            with self._autocast():
                loss, z = self.model(batch["input_ids"][rows], doc_ids=doc_ids, labels=batch["labels"][rows],
                                     z_weight=t.z_loss)  # fmt: skip
            (loss / tokens_per_rank).backward()
            ce_total += loss.detach() - z
            z_total += z
        grad_norm = self._clip_gradients()
        loss = all_reduce_mean(ce_total / tokens_per_rank, self.world).item()
        z_loss = all_reduce_mean(z_total / tokens_per_rank, self.world).item()
        if t.crash_on_nan:
            self._refuse_non_finite(loss, grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens_seen += t.global_batch_tokens
        return {"loss": loss, "z_loss": z_loss, "grad_norm": grad_norm}

    def _refuse_non_finite(self, loss: float, grad_norm: float) -> None:
        """Stop before a non-finite loss or gradient reaches the weights, a checkpoint or `final/`.

        Both values are reduced over the ranks, so every rank stops at the same step.
        """
        if math.isfinite(loss) and math.isfinite(grad_norm):
            return
        raise UserError(
            f"loss is {loss} at step {self.step + 1} with gradient norm {grad_norm}; the step was not applied "
            "and nothing of it was saved (the newest checkpoint is the last good one): lower optim.lr or raise "
            "schedule.warmup_steps."
        )

    def _clip_gradients(self) -> float:
        max_norm = self.cfg.trainer.grad_clip or float("inf")
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        if hasattr(norm, "full_tensor"):  # a DTensor under FSDP2
            norm = norm.full_tensor()
        return float(norm)

    def evaluate(self) -> dict[str, float]:
        """`val/packed_loss` (training-style packed rows), plus every callback's metrics."""
        metrics = {"val/packed_loss": self.validate()}
        for callback in self.callbacks:
            metrics |= callback.on_evaluate(self)
        return metrics

    @torch.no_grad()
    def validate(self) -> float:
        """Mean cross-entropy over the first `eval_batches` validation batches (every rank: all of them).

        The rows are packed like training rows (documents concatenated, `seq_len` tokens each, document
        masking as in training), so this is the training objective on held-out data.
        """
        t = self.cfg.trainer
        self.model.eval()
        ce, count = 0.0, 0
        for _, batch in zip(range(t.eval_batches), self._validation_batches()):
            batch = {k: v.to(self.world.device) for k, v in batch.items()}
            doc_ids = batch["doc_ids"] if t.doc_masking else None
            with self._autocast():
                ce += self.model(batch["input_ids"], doc_ids=doc_ids, labels=batch["labels"])[0].item()
            count += int((batch["labels"] != IGNORE_INDEX).sum())
        self.model.train()
        return ce / max(count, 1)

    def _converged(self, val_loss: float) -> bool:
        """Whether `trainer.stop_at_val_loss` ends the run here (logged as an `early_stop` event)."""
        limit = self.cfg.trainer.stop_at_val_loss
        if limit is None or not val_loss <= limit:
            return False
        self.logger.log(
            {"event": "early_stop", "val/packed_loss": val_loss, "stop_at_val_loss": limit}, self.step
        )
        return True

    def fit(self) -> None:
        """Train to `max_steps` (resuming if asked) and export; the logger (and wandb) always closes."""
        try:
            self._fit()
        finally:
            self.logger.close()

    def _fit(self) -> None:
        t, world = self.cfg.trainer, self.world
        for signum in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(signum, self._on_signal)
        self.maybe_resume()
        for callback in self.callbacks:
            callback.on_fit_start(self)
        if self.step == 0:
            self.logger.log({"event": "start", "first_batch_sha256": batch_fingerprint(self.batches, 0),
                             "flops_per_token": self.flops_per_token, "max_steps": self.max_steps,
                             "world_size": world.world_size}, 0)  # fmt: skip
        bar = tqdm(total=self.max_steps, initial=self.step, disable=not (t.progress and world.is_main),
                   desc=self.cfg.run_name, dynamic_ncols=True, file=sys.stderr)  # fmt: skip
        window_start, window_steps = time.perf_counter(), 0
        self.model.train()
        while self.step < self.max_steps:
            metrics = self.train_step()
            window_steps += 1
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.3f}")
            if self.step % t.log_interval == 0 or self.step == self.max_steps:
                elapsed = time.perf_counter() - window_start
                tokens_per_s = window_steps * t.global_batch_tokens / elapsed
                metrics |= {"lr": self.scheduler.get_last_lr()[0], "tokens_seen": self.tokens_seen,
                            "tokens_per_s": tokens_per_s, "peak_memory_gb": peak_memory_gb(world.device)}  # fmt: skip
                metrics["mfu"] = mfu(tokens_per_s, world.world_size, self.flops_per_token, self.peak_flops)
                self.logger.log(metrics, self.step)
                window_start, window_steps = time.perf_counter(), 0
            if t.eval_interval and self.step % t.eval_interval == 0:
                evaluation = self.evaluate()
                self.logger.log(evaluation, self.step)
                if self._converged(evaluation["val/packed_loss"]):
                    break
            stop = broadcast_object(self.signal_received, world) is not None
            if stop or (t.checkpoint_interval and self.step % t.checkpoint_interval == 0):
                self.save()
            if stop:
                bar.close()
                self.logger.log({"event": "preempted", "signal": self.signal_received}, self.step)
                raise Preempted
        bar.close()
        self.logger.log({**self.evaluate(), "event": "end"}, self.step)
        final = self.export(self.run_dir / "final")
        self.logger.log({"event": "exported", "path": str(final)}, self.step)
        for callback in self.callbacks:
            callback.on_fit_end(self)
