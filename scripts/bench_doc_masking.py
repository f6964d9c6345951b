"""Training-step time with and without document masking (`trainer.doc_masking`), ours only.

    python scripts/bench_doc_masking.py [--seq-len 2048] [--batch 2] [--repeats 5] [--mean-doc 256]
        [--models tiny_hybrid tiny_transformer] [--compile]

One full training step (forward, fused loss, backward, AdamW) on a fixed random batch whose rows
are packed documents of exponentially distributed length (mean `--mean-doc` tokens, seeded), once
with `doc_ids` and once without, interleaved within each repeat so machine load hits both alike.
Prints the medians and the doc-masking overhead. To compare two versions of the model code on the
same machine, run this file with PYTHONPATH pointing at each tree in turn (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import models
from models import build_model, load_model_config


def packed_doc_ids(batch: int, seq_len: int, mean_doc: float) -> torch.Tensor:
    """[B, T] document number of each token: rows cut into exponential-length documents."""
    generator = torch.Generator().manual_seed(2)
    rows = []
    for _ in range(batch):
        lengths = torch.empty(seq_len).exponential_(1 / mean_doc, generator=generator).long() + 1
        ends = lengths.cumsum(0)  # document k covers [ends[k-1], ends[k])
        rows.append(torch.searchsorted(ends, torch.arange(seq_len), right=True))
    return torch.stack(rows)


def bench(name: str, seq_len: int, batch: int, repeats: int, mean_doc: float, compile: bool) -> dict:
    """Median step seconds without and with doc_ids, and the number of documents in the batch."""
    cfg = load_model_config(name)
    torch.manual_seed(0)
    model = build_model(cfg)
    if compile:  # what trainer.compile=true does: compile each block
        for block in model.blocks:
            block.compile()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, cfg.vocab_size, (batch, seq_len + 1), generator=gen)
    x, y = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
    doc_ids = packed_doc_ids(batch, seq_len, mean_doc)

    def step(ids: torch.Tensor | None) -> float:
        start = time.perf_counter()
        (model(x, doc_ids=ids, labels=y)[0] / y.numel()).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    variants = {"plain": None, "doc_masking": doc_ids}
    for ids in variants.values():  # warm-up: allocator, AdamW state, compilation
        step(ids)
        step(ids)
    times = {key: [] for key in variants}
    for _ in range(repeats):
        for key, ids in variants.items():
            times[key].append(step(ids))
    n_docs = int((doc_ids[:, 1:] != doc_ids[:, :-1]).sum()) + batch
    return {key: statistics.median(values) for key, values in times.items()} | {"docs": n_docs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny_hybrid", "tiny_transformer"])
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mean-doc", type=float, default=256.0)
    parser.add_argument("--compile", action="store_true", help="compile each block (trainer.compile)")
    args = parser.parse_args()
    print(f"models from {models.__file__}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"batch {args.batch} x seq {args.seq_len}, median of {args.repeats}"
        + (", compiled" if args.compile else "")
    )
    print(f"{'model':<18} {'docs':>5} {'plain ms':>9} {'doc masking ms':>15} {'overhead':>9}")
    for name in args.models:
        r = bench(name, args.seq_len, args.batch, args.repeats, args.mean_doc, args.compile)
        overhead = r["doc_masking"] / r["plain"] - 1
        print(
            f"{name:<18} {r['docs']:>5} {r['plain'] * 1e3:>9.1f} {r['doc_masking'] * 1e3:>15.1f} {overhead:>9.1%}"
        )


if __name__ == "__main__":
    main()
