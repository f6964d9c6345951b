"""Training parity: our models against transformers' Olmo 3 / Olmo Hybrid trained the same way.

    python scripts/bench_hf_parity.py [--models tiny_transformer tiny_hybrid] [--steps 500]
        [--batch 8] [--seq-len 256] [--experiment demo] [--data data/demo | --random-tokens]
        [--learners ours hf ours-logits llama-style pre-norm theta-10k] [--seed 0]

For each model config: build ours, export it with `models.hf` and load it as `Olmo3ForCausalLM` /
`OlmoHybridForCausalLM` (SDPA attention; transformers' pure-torch Gated DeltaNet on CPU), so both
start from the same weights. Both then take the same batches (the trainer's `TrainBatches` of the
prepared corpus, or seeded repeated random blocks) under the recipe of `experiment=NAME` (its AdamW groups,
learning-rate schedule, z-loss and gradient clipping, from `train.recipe`), in lockstep. With
`--learners`, two more can join them (or train alone: the runs are deterministic, so `ours` of one
command equals `ours` of another with the same arguments): `ours-logits`, our model with the loss
taken from full logits as HF's is (the same function, rounded differently: how far two runs drift
apart from float rounding alone, the yardstick for ours - HF), and `llama-style`, ours with
Llama-style attention settings (pre-norm, RoPE theta 10k; `pre-norm` and `theta-10k` change one
of the two), all from the same initial weights. Prints each one's training loss (mean of
the last 10% of steps) and validation cross-entropy at the end, their differences to HF's (else to
ours), and the largest per-step |training-loss difference| ours - HF, which stays ~0 while both
compute the same function.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from transformers import AutoModelForCausalLM

from models import build_model, load_model_config, save_pretrained
from models.config import CONF_DIR
from models.errors import exit_on_user_error
from models.hf import export_hf
from train.config import TrainConfig, register_configs
from train.data.loader import TokenSequences, TrainBatches, validation_batches
from train.recipe import build_scheduler, parameter_groups

# Our model with other attention settings (model-config overrides): Llama's, and each half of it.
VARIANTS = {
    "llama-style": ["norm_placement=pre", "mixers.attn.rope_theta=10000"],
    "pre-norm": ["norm_placement=pre"],
    "theta-10k": ["mixers.attn.rope_theta=10000"],
}
LEARNERS = ("ours", "hf", "ours-logits", *VARIANTS)
HF_EMBEDDING = "model.embed_tokens."
BLOCK, BLOCK_VOCAB = 16, 64  # --random-tokens: rows repeat a random 16-id block of ids < 64


def recipe(experiment: str, model: str) -> TrainConfig:
    """The composed training config of `python -m train experiment=EXPERIMENT model=MODEL`."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", [f"experiment={experiment}", f"model={model}", "output_dir=unused"])
    return OmegaConf.to_object(cfg)


def hf_parameter_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    """`train.recipe.parameter_groups` for an HF model: its embedding is `model.embed_tokens`."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        is_embedding = name.startswith(HF_EMBEDDING) and not cfg.optim.decay_embeddings
        is_norm_or_bias = param.ndim < 2 and not cfg.optim.decay_norms_and_biases
        (no_decay if is_embedding or is_norm_or_bias else decay).append(param)
    return [
        {"params": decay, "weight_decay": cfg.optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def ours_loss(model: torch.nn.Module, z_weight: float) -> Callable:
    """Summed (ce + z-loss, ce) of our model through its fused head + loss, as the trainer computes it."""

    def loss(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        total, z = model(x, labels=y, z_weight=z_weight)
        return total, total.detach() - z

    return loss


def logits_loss(logits_of: Callable[[torch.Tensor], torch.Tensor], z_weight: float) -> Callable:
    """The same summed (ce + z-loss, ce) from full logits (HF's route: other rounding, same function)."""

    def loss(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = logits_of(x).float()
        ce = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum")
        z = z_weight * logits.logsumexp(-1).square().sum()
        return ce + z, ce.detach()

    return loss


class Learner:
    """One model with its optimizer, schedule and loss, stepped like `train.trainer.Trainer.train_step`."""

    def __init__(
        self, model: torch.nn.Module, groups: list[dict], loss: Callable, cfg: TrainConfig, steps: int
    ):
        self.model, self.loss, self.clip = model.train(), loss, cfg.trainer.grad_clip or float("inf")
        self.optimizer = torch.optim.AdamW(
            groups, lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), eps=cfg.optim.eps
        )
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule, steps)
        self.losses: list[float] = []

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        total, ce = self.loss(x, y)
        (total / y.numel()).backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.losses.append(ce.item() / y.numel())

    @torch.no_grad()
    def validation_ce(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
        self.model.eval()
        ce = sum(self.loss(x, y)[1].item() for x, y in batches) / sum(y.numel() for _, y in batches)
        self.model.train()
        return ce


def repeated_blocks(
    batch: int, seq_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, labels): a random block of `BLOCK` ids below `BLOCK_VOCAB`, repeated along each row.

    Learnable within a few steps (unigrams, then copying), so every layer's weights move and a
    difference between the two implementations shows in the loss, unlike uniform random tokens.
    """
    blocks = torch.randint(0, BLOCK_VOCAB, (batch, BLOCK), generator=generator)
    tokens = blocks.repeat(1, seq_len // BLOCK + 1)[:, : seq_len + 1]
    return tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()


def training_batches(args: argparse.Namespace, vocab: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(input_ids, labels) of each step: the trainer's batches of `--data`, or seeded random tokens."""
    if args.random_tokens:
        generator = torch.Generator().manual_seed(args.seed)
        while True:
            yield repeated_blocks(args.batch, args.seq_len, generator)
    batches = TrainBatches(TokenSequences(args.data, args.seq_len), args.batch, seed=args.seed)
    for step in range(args.steps):
        batch = batches.batch(step)
        yield batch["input_ids"], batch["labels"]


def held_out(args: argparse.Namespace, vocab: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The validation batches both models are scored on at the end."""
    if args.random_tokens:
        return [repeated_blocks(args.batch, args.seq_len, torch.Generator().manual_seed(1))]
    rows = validation_batches(args.data, args.seq_len, args.batch)
    return [(b["input_ids"], b["labels"]) for _, b in zip(range(args.eval_batches), rows)]


def learners(name: str, cfg: TrainConfig, args: argparse.Namespace, workdir: Path) -> dict[str, Learner]:
    """The `--learners` of: ours, transformers' (same weights), ours rounded differently, `VARIANTS`."""
    torch.manual_seed(args.seed)
    ours = build_model(cfg.model)
    save_pretrained(ours, workdir / name)
    export_hf(workdir / name, workdir / f"{name}-hf")
    peer = AutoModelForCausalLM.from_pretrained(workdir / f"{name}-hf", attn_implementation="sdpa")
    z, steps = cfg.trainer.z_loss, args.steps

    def same_weights(model_cfg) -> torch.nn.Module:
        model = build_model(model_cfg)
        model.load_state_dict(ours.state_dict())
        return model

    def variant(overrides: list[str]) -> Learner:
        model = same_weights(load_model_config(name, overrides))
        return Learner(model, parameter_groups(model, cfg.optim), ours_loss(model, z), cfg, steps)

    twin = same_weights(cfg.model)
    build = {
        "ours": lambda: Learner(ours, parameter_groups(ours, cfg.optim), ours_loss(ours, z), cfg, steps),
        "hf": lambda: Learner(peer, hf_parameter_groups(peer, cfg), logits_loss(lambda x: peer(input_ids=x).logits, z), cfg, steps),
        "ours-logits": lambda: Learner(twin, parameter_groups(twin, cfg.optim), logits_loss(twin, z), cfg, steps),
        **{key: (lambda overrides=overrides: variant(overrides)) for key, overrides in VARIANTS.items()},
    }  # fmt: skip
    return {key: build[key]() for key in args.learners}


def run(name: str, args: argparse.Namespace, workdir: Path) -> None:
    cfg = recipe(args.experiment, name)
    runs = learners(name, cfg, args, workdir)
    for step, (x, y) in zip(range(args.steps), training_batches(args, cfg.model.vocab_size)):
        for learner in runs.values():
            learner.step(x, y)
        if args.log_interval and (step + 1) % args.log_interval == 0:
            print(
                f"  {name} step {step + 1}: " + ", ".join(f"{k} {r.losses[-1]:.4f}" for k, r in runs.items()),
                flush=True,
            )
    tail = max(1, args.steps // 10)
    held = held_out(args, cfg.model.vocab_size)
    train = {k: statistics.fmean(r.losses[-tail:]) for k, r in runs.items()}
    val = {k: r.validation_ce(held) for k, r in runs.items()}
    print(f"{name} (experiment={args.experiment} recipe, lr {cfg.optim.lr}, {args.steps} steps of "
          f"{args.batch} x {args.seq_len}):")  # fmt: skip
    for key in runs:
        print(f"  {key:<12} train loss (last {tail}) {train[key]:.4f}   validation ce {val[key]:.4f}")
    base = next((k for k in ("hf", "ours") if k in runs), None)
    for key in [k for k in runs if base and k != base]:
        print(
            f"  {key} - {base}: train {train[key] - train[base]:+.4f}, validation {val[key] - val[base]:+.4f}"
        )
    if {"ours", "hf"} <= runs.keys():
        step_diff = max(abs(a - b) for a, b in zip(runs["ours"].losses, runs["hf"].losses))
        print(f"  max per-step |train loss ours - hf|: {step_diff:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny_transformer", "tiny_hybrid"])
    parser.add_argument("--experiment", default="demo", help="conf/experiment/NAME.yaml gives the recipe")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch", type=int, default=8, help="sequences per step")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--data", type=Path, default=Path("data/demo"), help="a prepared corpus")
    parser.add_argument(
        "--random-tokens", action="store_true", help="seeded repeated random blocks instead of --data"
    )
    parser.add_argument("--eval-batches", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="initial weights and batch order")
    parser.add_argument("--learners", nargs="+", choices=LEARNERS, default=["ours", "hf"])
    parser.add_argument("--log-interval", type=int, default=50)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            run(name, args, Path(tmp))


if __name__ == "__main__":
    with exit_on_user_error():
        main()
