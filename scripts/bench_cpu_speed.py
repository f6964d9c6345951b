"""Training steps per second of the tiny models on a CPU: eager vs `trainer.compile=true`, 1 vs 2 threads.

    python scripts/bench_cpu_speed.py [--models tiny_transformer tiny_hybrid tiny_rnn] [--repeats 5]
        [--seq-len 256] [--batch 32] [--micro-batch 16] [--threads 1 2] [--set d_model=64 ...]

One step is what the trainer does (`train.trainer.Trainer.train_step` without the data loader): the
batch split into micro-batches, `model(x, labels=y, z_weight)` (fused head + loss), backward, clip,
AdamW. The eager and the compiled copy (each block compiled, as `train.distributed.parallelize`)
start from the same weights; every variant (compile x threads) runs once per repeat, interleaved,
so machine load hits them alike. Prints the median steps/s of each variant and its ratio to eager
at the first thread count.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from models import build_model, load_model_config
from train.recipe import OptimConfig, build_optimizer


def step_function(model: torch.nn.Module, tokens: torch.Tensor, micro_batch: int) -> Callable[[], None]:
    """One optimizer step over `tokens` ([batch, seq + 1]) in micro-batches, as the trainer's."""
    optimizer = build_optimizer(model, OptimConfig(lr=1e-3))
    x, y = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    def step() -> None:
        for rows in torch.split(torch.arange(len(x)), micro_batch):
            loss, _ = model(x[rows], labels=y[rows], z_weight=1e-5)
            (loss / y.numel()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def bench(name: str, args: argparse.Namespace) -> dict[str, float]:
    """Median steps/s of each (compile, threads) variant of model `name`."""
    cfg = load_model_config(name, args.set)
    torch.manual_seed(0)
    eager = build_model(cfg)
    compiled = build_model(cfg)
    compiled.load_state_dict(eager.state_dict())
    for block in compiled.blocks:
        block.compile()
    tokens = torch.randint(
        0, cfg.vocab_size, (args.batch, args.seq_len + 1), generator=torch.Generator().manual_seed(1)
    )
    steps = {
        "eager": step_function(eager, tokens, args.micro_batch),
        "compiled": step_function(compiled, tokens, args.micro_batch),
    }
    variants = [(kind, threads) for threads in args.threads for kind in steps]
    for kind, threads in variants:  # warm-up: compilation, allocator, AdamW state
        torch.set_num_threads(threads)
        steps[kind]()
        steps[kind]()
    times: dict[tuple[str, int], list[float]] = {variant: [] for variant in variants}
    for _ in range(args.repeats):
        for kind, threads in variants:
            torch.set_num_threads(threads)
            start = time.perf_counter()
            steps[kind]()
            times[(kind, threads)].append(time.perf_counter() - start)
    return {f"{kind}, {threads} thread(s)": 1 / statistics.median(t) for (kind, threads), t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny_transformer", "tiny_hybrid", "tiny_rnn"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32, help="sequences per optimizer step")
    parser.add_argument("--micro-batch", type=int, default=16)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="model config overrides, e.g. experiment=cpu_study's d_model=64 mlp_hidden=256 vocab_size=384")  # fmt: skip
    args = parser.parse_args()
    print(f"torch {torch.__version__}; batch {args.batch} x seq {args.seq_len} (micro {args.micro_batch}), "
          f"median of {args.repeats} interleaved repeats; model overrides {args.set or 'none'}")  # fmt: skip
    for name in args.models:
        rates = bench(name, args)
        baseline = next(iter(rates.values()))
        for variant, rate in rates.items():
            print(f"{name:<18} {variant:<24} {rate:6.3f} steps/s  {rate / baseline:5.2f}x")


if __name__ == "__main__":
    main()
