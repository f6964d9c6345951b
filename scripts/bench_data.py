"""Data pipeline throughput: `train.prepare` against bare `Tokenizer.encode_batch`, and the loader.

    .venv/bin/python scripts/bench_data.py [--workers 2] [--repeats 5] [--mb 16]

Preparation: the same text (the interpreter's standard library as JSON lines on disk), the same
tokenizer and the same number of tokenizer threads, in one process, alternating the two so load
changes hit both. Raw is one `encode_batch` call over all documents already in memory; prepare is
the whole `build_dataset` (read, encode, split, write shards, hash and verify). Loader: random
training batches from the prepared memmaps (page cache warm), as `TrainBatches.batch` returns them.
Medians over repeats are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def corpus(directory: Path, megabytes: float) -> list[str]:
    """Standard-library modules (sorted, up to `megabytes`), written as one JSON-lines file."""
    texts, size = [], 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if text:
            texts.append(text)
            size += len(text.encode())
        if size >= megabytes * 1e6:
            break
    with open(directory / "corpus.jsonl", "w") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mb", type=float, default=16.0, help="megabytes of text to tokenize")
    args = parser.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(args.workers)  # before the first parallel encode

    from omegaconf import OmegaConf
    from tokenizers import Tokenizer

    from train.data.build_dataset import build_dataset
    from train.data.config import DataConfig, PrepareConfig, SourceConfig, TokenizerConfig
    from train.data.loader import TokenSequences, TrainBatches
    from train.data.tokenizer import train_bpe

    tmp = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        texts = corpus(tmp, args.mb)
        megabytes = sum(len(t.encode()) for t in texts) / 1e6
        train_bpe(TokenizerConfig(vocab_size=8192), iter(texts[::4])).save(str(tmp / "tokenizer.json"))
        tok = Tokenizer.from_file(str(tmp / "tokenizer.json"))
        data = DataConfig(
            name="bench",
            path=str(tmp / "prepared"),
            sources={"code": SourceConfig(paths=[str(tmp / "corpus.jsonl")], domain="python")},
            tokenizer=TokenizerConfig(kind="file", path=str(tmp / "tokenizer.json")),
        )
        cfg = OmegaConf.to_object(OmegaConf.structured(PrepareConfig(data=data, progress=False)))

        raw, prep, tokens = [], [], 0
        for _ in range(args.repeats):
            start = time.perf_counter()
            encodings = tok.encode_batch(texts, add_special_tokens=False)
            raw.append(megabytes / (time.perf_counter() - start))
            tokens = sum(len(e.ids) for e in encodings)
            shutil.rmtree(tmp / "prepared", ignore_errors=True)
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                build_dataset(cfg)
            prep.append(megabytes / (time.perf_counter() - start))
        raw_mbs, prep_mbs = statistics.median(raw), statistics.median(prep)
        print(f"text: {megabytes:.1f} MB, {len(texts)} documents, {tokens:,d} tokens, {args.workers} threads")
        tokens_per_mb = tokens / megabytes / 1e6
        print(
            f"raw encode_batch   : {raw_mbs:6.2f} MB/s = {raw_mbs * tokens_per_mb:5.2f} M tokens/s (median)"
        )
        print(
            f"train.prepare      : {prep_mbs:6.2f} MB/s = {prep_mbs * tokens_per_mb:5.2f} M tokens/s "
            f"= {prep_mbs / raw_mbs:.2f}x raw"
        )

        for seq_len, batch in ((2048, 8), (512, 32), (8192, 4)):
            loader = TrainBatches(TokenSequences(tmp / "prepared", seq_len), batch, seed=0)
            rates = []
            for rep in range(args.repeats):
                start, tokens, step = time.perf_counter(), 0, rep * 1000
                while time.perf_counter() - start < 1.0:
                    tokens += loader.batch(step)["input_ids"].numel()
                    step += 1
                rates.append(tokens / (time.perf_counter() - start) / 1e6)
            print(f"loader T={seq_len:5d} B={batch:3d}: {statistics.median(rates):7.1f} M tokens/s (median)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
