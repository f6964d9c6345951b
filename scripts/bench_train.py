"""Training-step speed: our models against transformers' Olmo 3 / Olmo Hybrid with the same weights.

    python scripts/bench_train.py [--seq-len 512] [--batch 8] [--repeats 7] [--models tiny_transformer tiny_hybrid]

For each config: build ours, export it with `models.hf` and load it as `Olmo3ForCausalLM` /
`OlmoHybridForCausalLM` (SDPA attention, transformers' pure-torch Gated DeltaNet on CPU), then time
one full training step (forward, cross-entropy, backward, AdamW step) on the same batch, the two
models interleaved within each repeat so machine load hits both alike. Prints median step times, the
ratio ours/HF (target <= 0.8), tokens/s, and our training FLOP/s (FLOPs per token from
`models.summary`) as a fraction of this machine's fp32 matmul peak measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from models import build_model, load_model_config
from models.hf import export_hf
from models.summary import summarize
from train.metrics import measured_matmul_flops


def training_step(
    forward: Callable[[torch.Tensor], torch.Tensor], optimizer: torch.optim.Optimizer, x, y
) -> None:
    logits = forward(x)
    F.cross_entropy(logits.flatten(0, 1).float(), y.flatten()).backward()
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
    ours.save_pretrained(str(workdir / name))
    if compile:  # what trainer.compile=true does: compile each block
        for block in ours.blocks:
            block.compile()
    export_hf(workdir / name, workdir / f"{name}-hf")
    peer = AutoModelForCausalLM.from_pretrained(workdir / f"{name}-hf", attn_implementation="sdpa")
    tokens = torch.randint(
        0, cfg.vocab_size, (batch, seq_len + 1), generator=torch.Generator().manual_seed(1)
    )
    x, y = tokens[:, :-1], tokens[:, 1:]
    with torch.no_grad():
        diff = (ours(x) - peer(x).logits).abs().max().item()
    runs = {
        "ours": (lambda: training_step(ours, opt_ours, x, y)),
        "hf": (lambda: training_step(lambda t: peer(t).logits, opt_peer, x, y)),
    }
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-4)
    opt_peer = torch.optim.AdamW(peer.parameters(), lr=1e-4)
    for run in runs.values():  # warm-up: allocator, AdamW state, compilation
        run()
        run()
    times = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            times[key].append(timed(run))
    medians = {key: statistics.median(values) for key, values in times.items()}
    flops = summarize(cfg, seq_len)["flops_per_token"] * batch * seq_len / medians["ours"]
    return {"model": name + (" (compiled)" if compile else ""), "ours_s": medians["ours"], "hf_s": medians["hf"], "ratio": medians["ours"] / medians["hf"],
            "tokens_per_s": batch * seq_len / medians["ours"], "flops_per_s": flops, "logit_diff": diff}  # fmt: skip


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
    print(f"batch {args.batch} x seq {args.seq_len}, median of {args.repeats} (forward + backward + AdamW)")
    print(
        f"{'model':<29} {'ours ms':>9} {'HF ms':>9} {'ours/HF':>8} {'tokens/s':>9} {'of peak':>8} {'logit diff':>11}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, compile in [
            (m, c) for m in args.models for c in ([False, True] if args.compile else [False])
        ]:
            r = bench_model(name, args.seq_len, args.batch, args.repeats, Path(tmp), compile)
            print(f"{r['model']:<29} {r['ours_s'] * 1e3:>9.1f} {r['hf_s'] * 1e3:>9.1f} {r['ratio']:>8.2f} "
                  f"{r['tokens_per_s']:>9.0f} {r['flops_per_s'] / peak:>8.1%} {r['logit_diff']:>11.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
