"""Training-step speed: our models against transformers' Olmo 3 / Olmo Hybrid with the same weights.

    python scripts/bench_train.py [--seq-len 512] [--batch 8] [--repeats 7] [--models tiny_transformer tiny_hybrid]

For each config: build ours, export it with `models.hf` and load it as `Olmo3ForCausalLM` /
`OlmoHybridForCausalLM` (SDPA attention, transformers' pure-torch Gated DeltaNet on CPU), then time
one full training step (forward, loss, backward, AdamW step) on the same batch, each library's own
way: ours `model(x, labels=y)` (the fused chunked head + cross-entropy the trainer uses), HF's
`model(input_ids=x, labels=y, shift_labels=y).loss` (its `ForCausalLMLoss`). A third variant,
"ours, logits", runs our model through HF's route (full logits, then `F.cross_entropy`) to separate
what the fused loss buys from what the layers do. The variants are interleaved within each repeat
so machine load hits them alike. Prints median step times, the ratio ours/HF (target <= 0.8),
tokens/s, and our training FLOP/s (FLOPs per token from `models.summary`) as a fraction of this
machine's fp32 matmul peak measured in the same run; then the head + loss alone, fused vs plain.
The allocator matters (docs/benchmarks.md): try `MALLOC_MMAP_THRESHOLD_=4294967296
MALLOC_TRIM_THRESHOLD_=4294967296 python scripts/bench_train.py` for one that recycles large blocks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from models import build_model, load_model_config, save_pretrained
from models.errors import exit_on_user_error
from models.hf import export_hf
from models.ops.linear_cross_entropy import linear_cross_entropy
from models.summary import summarize
from train.metrics import measured_matmul_flops


def training_step(loss: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
    loss().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def timed(step: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def bench_model(name: str, seq_len: int, batch: int, repeats: int, workdir: Path, compile: bool) -> dict:
    cfg = load_model_config(name)
    torch.manual_seed(0)
    ours = build_model(cfg)
    save_pretrained(ours, workdir / name)
    if compile:  # what trainer.compile=true does: compile each block
        for block in ours.blocks:
            block.compile()
    export_hf(workdir / name, workdir / f"{name}-hf")
    peer = AutoModelForCausalLM.from_pretrained(workdir / f"{name}-hf", attn_implementation="sdpa")
    tokens = torch.randint(
        0, cfg.vocab_size, (batch, seq_len + 1), generator=torch.Generator().manual_seed(1)
    )
    x, y = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
    with torch.no_grad():
        diff = (ours(x) - peer(x).logits).abs().max().item()
        loss_diff = abs(
            ours(x, labels=y)[0].item() / y.numel() - peer(input_ids=x, labels=y, shift_labels=y).loss.item()
        )
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-4)
    opt_peer = torch.optim.AdamW(peer.parameters(), lr=1e-4)
    runs = {
        "ours": lambda: training_step(lambda: ours(x, labels=y)[0] / y.numel(), opt_ours),
        "ours_logits": lambda: training_step(lambda: F.cross_entropy(ours(x).flatten(0, 1), y.flatten()), opt_ours),
        "hf": lambda: training_step(lambda: peer(input_ids=x, labels=y, shift_labels=y).loss, opt_peer),
    }  # fmt: skip
    for run in runs.values():  # warm-up: allocator, AdamW state, compilation
        run()
        run()
    times = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            times[key].append(timed(run))
    medians = {key: statistics.median(values) for key, values in times.items()}
    flops = summarize(cfg, seq_len)["flops_per_token"] * batch * seq_len / medians["ours"]
    return {"model": name + (" (compiled)" if compile else ""), "ours_s": medians["ours"], "hf_s": medians["hf"],
            "ours_logits_s": medians["ours_logits"], "ratio": medians["ours"] / medians["hf"],
            "tokens_per_s": batch * seq_len / medians["ours"], "flops_per_s": flops, "logit_diff": diff,
            "loss_diff": loss_diff}  # fmt: skip


def bench_loss(tokens: int, d_model: int, vocab: int, repeats: int) -> tuple[float, float]:
    """Median fwd + bwd seconds of the head + loss alone: (fused chunked, plain full-logits)."""
    hidden = torch.randn(tokens, d_model, requires_grad=True)
    weight = (torch.randn(vocab, d_model) * 0.05).requires_grad_()
    labels = torch.randint(0, vocab, (tokens,))
    runs = {
        "fused": lambda: linear_cross_entropy(hidden, weight, labels)[0].backward(),
        "plain": lambda: F.cross_entropy(hidden @ weight.T, labels, reduction="sum").backward(),
    }
    times = {key: [] for key in runs}
    for _ in range(repeats + 2):
        for key, run in runs.items():
            times[key].append(timed(run))
    return statistics.median(times["fused"][2:]), statistics.median(times["plain"][2:])


def allocator() -> str:
    """What serves large allocations: it decides what full-logits losses pay (docs/benchmarks.md)."""
    tuned = {
        k: os.environ[k]
        for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "LD_PRELOAD")
        if k in os.environ
    }
    return ", ".join(f"{k}={v}" for k, v in tuned.items()) or "glibc malloc, default thresholds"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny_transformer", "tiny_hybrid"])
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--compile", action="store_true", help="also time ours with compiled blocks (trainer.compile)"
    )
    args = parser.parse_args()
    peak = measured_matmul_flops(size=1024, seconds=1.0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; fp32 matmul peak {peak / 1e9:.1f} GFLOP/s"
    )
    print(f"allocator: {allocator()}")
    print(
        f"batch {args.batch} x seq {args.seq_len}, median of {args.repeats} (forward + loss + backward + AdamW)"
    )
    print(f"{'model':<29} {'ours ms':>9} {'HF ms':>9} {'ours/HF':>8} {'ours, logits ms':>16} {'tokens/s':>9} "
          f"{'of peak':>8} {'logit diff':>11} {'loss diff':>10}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, compile in [
            (m, c) for m in args.models for c in ([False, True] if args.compile else [False])
        ]:
            r = bench_model(name, args.seq_len, args.batch, args.repeats, Path(tmp), compile)
            print(f"{r['model']:<29} {r['ours_s'] * 1e3:>9.1f} {r['hf_s'] * 1e3:>9.1f} {r['ratio']:>8.2f} "
                  f"{r['ours_logits_s'] * 1e3:>16.1f} {r['tokens_per_s']:>9.0f} {r['flops_per_s'] / peak:>8.1%} "
                  f"{r['logit_diff']:>11.1e} {r['loss_diff']:>10.1e}")  # fmt: skip
    cfg = load_model_config(args.models[0])
    fused, plain = bench_loss(args.batch * args.seq_len, cfg.d_model, cfg.vocab_size, args.repeats)
    print(f"head + loss alone, {args.batch * args.seq_len} x {cfg.d_model} -> {cfg.vocab_size}, fwd + bwd: "
          f"fused {fused * 1e3:.1f} ms, plain {plain * 1e3:.1f} ms ({fused / plain:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    with exit_on_user_error():
        main()
