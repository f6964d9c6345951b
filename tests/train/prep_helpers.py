"""Tiny synthetic corpora and a helper that prepares them, for the data-pipeline tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

from omegaconf import OmegaConf

from train.data.build_dataset import build_dataset
from train.data.config import DataConfig, PrepareConfig, SourceConfig, TokenizerConfig

WORDS = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "he",
    "she",
    "it",
    "that",
    "for",
    "on",
    "with",
    "as",
    "his",
    "her",
    "at",
    "by",
    "river",
    "stone",
    "light",
]


def make_docs(n: int, seed: int, prefix: str = "") -> list[str]:
    """`n` distinct short documents of random words (with some non-ASCII so bytes matter)."""
    rng = random.Random(seed)
    return [
        f"{prefix}{i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 60))) + " café\n"
        for i in range(n)
    ]


def write_jsonl(path: Path, docs: list[str], field: str = "text") -> Path:
    path.write_text("".join(json.dumps({field: d, "id": i}) + "\n" for i, d in enumerate(docs)))
    return path


def prepare(
    tmp_path: Path, sources: dict[str, dict], out: str = "ds", vocab_size: int = 300, **data_kw
) -> Path:
    """Prepare `sources` into tmp_path/out with a small trained tokenizer; returns the directory."""
    data = DataConfig(
        name=out,
        path=str(tmp_path / out),
        sources={name: SourceConfig(**spec) for name, spec in sources.items()},
        tokenizer=data_kw.pop("tokenizer", TokenizerConfig(vocab_size=vocab_size)),
        **data_kw,
    )
    cfg = PrepareConfig(data=data, progress=False)
    # Round-trip through OmegaConf as Hydra would, so the structured-config types are exercised.
    return build_dataset(OmegaConf.to_object(OmegaConf.structured(cfg)))
