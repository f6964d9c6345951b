"""Benchmark the eval pipeline: annotation throughput (with POS tagging, then from the cache) and the
overhead of scoring (forward + per-token cross-entropy + bookkeeping) over a bare forward pass of
the same windows. The scored tokens are those of the first `--windows` non-overlapping windows, so
runs with different `--stride` score the same tokens (stride W/2 feeds about twice the inputs).

    .venv/bin/python scripts/bench_eval.py [--dataset data/demo] [--tokens 100000] [--stride 256]

Corpus: the validation split of a prepared dataset (default data/demo; `python -m train.prepare
data=demo` makes it), else the interpreter's pydoc topics. Prints medians over `--repeats` runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from eval.annotate import annotate
from eval.config import CorpusConfig
from eval.corpus import load_corpus
from eval.score import bare_forward, make_windows, token_losses
from models import build_model, load_model_config
from models.errors import UserError, exit_on_user_error


def corpus(dataset: str, max_chars: int) -> tuple[list[str], list[str], str]:
    """Texts, domains and a tokenizer path: the dataset's validation split, else pydoc topics."""
    if (Path(dataset) / "manifest.json").is_file():
        c = load_corpus(CorpusConfig(name="bench", type="dataset", path=dataset, max_chars_per_doc=max_chars))
        return c.texts, c.domains, str(Path(dataset) / "tokenizer.json")
    raise UserError(f"{dataset} is not a prepared dataset; run `python -m train.prepare data=demo` first.")


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def cpu_seconds(fn) -> float:
    """CPU time of this process (all threads): steadier than wall time on a machine shared with other jobs."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="data/demo")
    parser.add_argument("--tokens", type=int, default=100_000, help="annotate about this many tokens")
    parser.add_argument("--n-process", type=int, default=2, help="spaCy worker processes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="tiny_transformer", help="a conf/model name")
    parser.add_argument("--model-overrides", nargs="*", default=[], help="e.g. vocab_size=8192")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--stride", type=int, default=None, help="window stride (default window // 2)")
    parser.add_argument("--windows", type=int, default=16, help="score the tokens of the first N windows")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    texts, domains, tokenizer = corpus(args.dataset, max_chars=20_000)
    chars = np.cumsum([len(t) for t in texts])
    keep = int(np.searchsorted(chars, args.tokens * 3.5)) + 1  # ~3.5 characters per token here
    texts, domains = texts[:keep], domains[:keep]
    annotate(texts[:1], tokenizer)  # load spaCy and the tokenizer once, outside the timings

    fresh = []
    for _ in range(args.repeats):
        seconds, table = timed(lambda: annotate(texts, tokenizer, domains, n_process=args.n_process))
        fresh.append(seconds)
    n = len(table)
    with tempfile.TemporaryDirectory() as cache:
        annotate(texts, tokenizer, domains, n_process=args.n_process, cache_dir=cache)
        cached = [timed(lambda: annotate(texts, tokenizer, domains, cache_dir=cache))[0] for _ in range(5)]
    print(f"annotation: {n} tokens, {len(texts)} documents, n_process={args.n_process}")
    print(
        f"  with POS tagging: median {statistics.median(fresh):.2f} s = {n / statistics.median(fresh):,.0f} tokens/s"
    )
    print(
        f"  cached re-run:    median {statistics.median(cached):.3f} s = {n / statistics.median(cached):,.0f} tokens/s"
    )

    model = build_model(load_model_config(args.model, args.model_overrides)).eval()
    token_id = table["token_id"].to_numpy()
    windows = make_windows(table["doc_id"], table["position"], token_id, args.window, 0, args.window)
    keep_rows = np.concatenate(windows.rows[: args.windows])  # the same tokens whatever the stride
    windows = make_windows(
        table["doc_id"].iloc[keep_rows],
        table["position"].iloc[keep_rows],
        token_id[keep_rows],
        args.window,
        0,
        args.stride,
    )
    token_id = token_id[keep_rows]
    cpu = torch.device("cpu")
    bare_forward(model, windows, token_id, 4, cpu)  # warm-up
    bare, scored = [], []
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits both alike
        bare.append(cpu_seconds(lambda: bare_forward(model, windows, token_id, 4, cpu)))
        scored.append(cpu_seconds(lambda: token_losses(model, windows, token_id, 4, cpu)))
    ratio = statistics.median(scored) / statistics.median(bare)
    print(f"scoring: {args.model} {' '.join(args.model_overrides)}, {len(token_id)} tokens in {len(windows.inputs)} "
          f"windows of <= {args.window} every {windows.stride}, fp32 CPU, process CPU seconds")  # fmt: skip
    print(f"  bare forward median {statistics.median(bare):.2f} s, scoring median {statistics.median(scored):.2f} s: "
          f"overhead {ratio:.3f}x")  # fmt: skip


if __name__ == "__main__":
    with exit_on_user_error():
        main()
