"""Training throughput of the real trainer: tokens/s per device, MFU and peak memory, per model.

    python scripts/bench_throughput.py [--models transformer_1b hybrid_1b rnn_1b] [--seq-len 4096]
        [--micro-batch 2] [--accumulation 4] [--steps 30] [--warmup 10] [--json PATH] [-- EXTRA_TRAIN_OVERRIDES...]

Meant for a GPU (defaults: bf16, per-block torch.compile; add `trainer.activation_checkpointing=true`
after `--` when memory runs short); `--cpu-smoke` runs the same path with the tiny models on a CPU.
Each model trains for `--steps` optimizer steps through `python -m train` itself (same data loader,
fused loss, FSDP2 wrapping, optimizer and logging as a real run) on a synthetic corpus of uniformly
random token ids at the model's vocabulary, written once as OLMo-style token files and prepared with
`train.prepare` like any other source. Figures are medians over the logged steps after `--warmup`
(compilation and allocator warm-up excluded), read back from each run's `metrics.jsonl`: tokens/s
per device, MFU (the trainer's: FLOPs per token from `models.summary`, which counts Gated DeltaNet's
own FLOPs, over the device's bf16 peak), peak memory. The last column is each model's tokens/s over
the first model's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from tokenizers.models import WordLevel

from models import load_model_config
from models.errors import UserError, exit_on_user_error

EOS = "<|endoftext|>"


def write_synthetic_corpus(root: Path, vocab_size: int, tokens: int, seed: int = 0) -> list[str]:
    """Random-token documents (512-8192 ids, EOS-terminated) as uint32 token files + a tokenizer.

    Returns the `data=...` overrides that prepare and train on it.
    """
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab_size - 1, size=tokens, dtype=np.uint32)  # the last id is EOS
    ends = np.cumsum(rng.integers(512, 8192, size=tokens // 512))
    ids[ends[ends < tokens]] = vocab_size - 1
    (root / "tokens").mkdir(parents=True, exist_ok=True)
    ids.tofile(root / "tokens" / "part-0.npy")
    vocab = {f"t{i}": i for i in range(vocab_size - 1)} | {EOS: vocab_size - 1}
    Tokenizer(WordLevel(vocab, unk_token="t0")).save(str(root / "tokenizer.json"))
    return [
        "data=olmo_tokens_example",
        f"data.name=synthetic{vocab_size}",
        f"data.path={root / 'prepared'}",
        f"data.sources.dolma.paths=[{root / 'tokens' / '*.npy'}]",
        f"data.tokenizer.path={root / 'tokenizer.json'}",
        "data.validation_fraction=0.01",
    ]


def run_training(model: str, data: list[str], args: argparse.Namespace, out: Path) -> list[dict]:
    """Train `model` for `args.steps` steps through `python -m train`; return its per-step metrics."""
    tokens_per_step = args.micro_batch * args.seq_len * args.accumulation
    overrides = [
        f"model={model}", *data, f"output_dir={out}", f"hydra.run.dir={out}/hydra", "logger=none",
        f"trainer.seq_len={args.seq_len}", f"trainer.micro_batch_size={args.micro_batch}",
        f"trainer.global_batch_tokens={tokens_per_step}", f"trainer.max_steps={args.steps}",
        f"trainer.precision={args.precision}", f"trainer.compile={args.compile}", "trainer.log_interval=1",
        "trainer.eval_interval=0", "trainer.eval_batches=1", "trainer.checkpoint_interval=0",
        "trainer.resume=never", "trainer.progress=false", *args.overrides,
    ]  # fmt: skip
    subprocess.run([sys.executable, "-m", "train", *overrides], check=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "tokens_per_s" in r and r["step"] > args.warmup]


def summarize_run(model: str, steps: list[dict]) -> dict:
    if not steps:
        raise UserError(f"{model}: no logged steps after warm-up; raise --steps above --warmup.")
    median = lambda key: statistics.median(r[key] for r in steps if r.get(key) is not None)  # noqa: E731
    return {"model": model, "tokens_per_s": median("tokens_per_s"),
            "mfu": median("mfu") if any(r.get("mfu") is not None for r in steps) else float("nan"),
            "peak_memory_gb": max(r["peak_memory_gb"] for r in steps), "steps": len(steps)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["transformer_1b", "hybrid_1b", "rnn_1b"])
    parser.add_argument("--seq-len", type=int, default=4096)
    parser.add_argument("--micro-batch", type=int, default=2)
    parser.add_argument("--accumulation", type=int, default=4)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    parser.add_argument("--compile", default="true", choices=["true", "false"])
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="tiny models, short sequences, fp32, no compile: checks the path on a CPU")  # fmt: skip
    parser.add_argument("--workdir", type=Path, help="keep the corpus and runs here (default: a temp dir)")
    parser.add_argument(
        "--json", type=Path, help="also write the results here (the device check's step format)"
    )
    parser.add_argument("overrides", nargs="*", help="extra `python -m train` overrides, after `--`")
    args = parser.parse_args()
    if args.cpu_smoke:
        if args.models == parser.get_default("models"):
            args.models = ["tiny_transformer", "tiny_hybrid", "tiny_rnn"]
        args.seq_len, args.micro_batch, args.accumulation = 128, 2, 2
        args.steps, args.warmup, args.precision, args.compile = 4, 1, "fp32", "false"
    vocab_of = {m: load_model_config(m).vocab_size for m in args.models}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        tokens = max(2 * (args.steps + 2) * args.micro_batch * args.seq_len * args.accumulation, 1_000_000)
        data = {v: write_synthetic_corpus(root / f"corpus{v}", v, tokens) for v in set(vocab_of.values())}
        results = [
            summarize_run(m, run_training(m, data[vocab_of[m]], args, root / "runs" / m)) for m in args.models
        ]
    print(f"seq {args.seq_len}, micro-batch {args.micro_batch} x {args.accumulation} accumulation, "
          f"{args.precision}, compile={args.compile}; medians of steps {args.warmup + 1}..{args.steps}")  # fmt: skip
    print(f"{'model':<18} {'tokens/s/dev':>13} {'MFU':>7} {'peak GB':>8} {'vs first':>9}")
    for r in results:
        print(f"{r['model']:<18} {r['tokens_per_s']:>13,.0f} {r['mfu']:>7.1%} {r['peak_memory_gb']:>8.1f} "
              f"{r['tokens_per_s'] / results[0]['tokens_per_s']:>9.2f}")  # fmt: skip
    if args.json:
        write_json(args.json, results)


def write_json(path: Path, results: list[dict]) -> None:
    """`{"passed", "headline", "rows"}` (scripts/gpu_check/result.py's format), temp file then rename."""
    headline = "; ".join(f"{r['model']} {r['tokens_per_s']:,.0f} tokens/s, MFU {r['mfu']:.1%}, "
                         f"{r['peak_memory_gb']:.1f} GB" for r in results)  # fmt: skip
    rows = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in results]
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"passed": True, "headline": headline, "rows": rows}, indent=1))
    partial.replace(path)


if __name__ == "__main__":
    with exit_on_user_error():
        main()
