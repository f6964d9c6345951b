"""Sources -> tokenizer -> split -> shards + manifest: the work behind `python -m train.prepare`.

Re-running with the same inputs (config, input files' sizes and mtimes, tokenizer file) reuses the
prepared directory; different inputs never replace it unless `overwrite=true`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from tokenizers import Tokenizer
from tqdm import tqdm

from models.atomic import atomic_directory
from models.errors import UserError
from train.data.config import DataConfig, PrepareConfig
from train.data.demo_corpus import DemoUnavailable
from train.data.manifest import FORMAT, Manifest, Shard, verify_shards
from train.data.shards import ShardWriter
from train.data.sources import TextSource
from train.data.split import run_length, validation_mask
from train.data.token_files import TokenFileSource
from train.data.tokenizer import (
    TokenizerInfo,
    describe,
    encode_documents,
    file_sha256,
    install_tokenizer,
    tokenizer_input,
)

Source = TextSource | TokenFileSource
# Part of the input fingerprint: bump it when a code change alters what the same inputs produce.
RECIPE_VERSION = 1


def open_sources(data: DataConfig) -> dict[str, Source]:
    """Open every configured source; optional demo parts missing on this machine are skipped with a notice."""
    weights = [s.weight for s in data.sources.values()]
    if any(w is None for w in weights) and any(w is not None for w in weights):
        raise UserError("set a weight on every source of data.sources or on none (none: sample by size).")
    sources: dict[str, Source] = {}
    for name, cfg in data.sources.items():
        try:
            sources[name] = TokenFileSource(name, cfg) if cfg.type == "tokens" else TextSource(name, cfg)
        except DemoUnavailable as notice:
            print(f"notice: skipping demo source '{name}': {notice}", file=sys.stderr)
    if not sources:
        raise UserError("the corpus is empty: data.sources has no usable source; add at least one.")
    if data.tokenizer.kind == "train" and any(isinstance(s, TokenFileSource) for s in sources.values()):
        raise UserError(
            "token-file sources need the tokenizer they were made with; set data.tokenizer.kind=file or hf."
        )
    return sources


def input_fingerprint(data: DataConfig, sources: dict[str, Source]) -> str:
    """sha256 of everything the output depends on: config (less its path), input files, tokenizer file."""
    config = OmegaConf.to_container(OmegaConf.structured(data), resolve=True)
    config.pop("path")
    config.pop("synthetic")  # always None here; popped so fingerprints predating the field still match
    given = tokenizer_input(data.tokenizer)
    content = {
        "format": FORMAT,
        "recipe": RECIPE_VERSION,
        "config": config,
        "inputs": {name: src.inputs() for name, src in sources.items()},
        "tokenizer": file_sha256(given) if given else None,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def training_texts(data: DataConfig, sources: dict[str, Source]) -> Iterator[str]:
    """Training-split documents of every text source, an equal byte budget per source."""
    budget = data.tokenizer.train_bytes // len(sources)
    for name, src in sources.items():
        used = 0
        for index, text in enumerate(src.documents()):
            if validation_mask(np.array([index]), data.validation_fraction, data.split_seed, name)[0]:
                continue
            yield text
            used += len(text)
            if used >= budget:
                break


def text_batches(
    src: TextSource, tok: Tokenizer, eos_id: int, dtype: str, batch_bytes: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Encoded (flat, lengths) batches of a text source; the tokenizer's threads do the encoding."""
    batch, size = [], 0
    for text in src.documents():
        batch.append(text)
        size += len(text)
        if size >= batch_bytes:
            yield encode_documents(tok, batch, eos_id, dtype)
            batch, size = [], 0
    if batch:
        yield encode_documents(tok, batch, eos_id, dtype)


def write_source(
    name: str,
    src: Source,
    data: DataConfig,
    root: Path,
    tok: Tokenizer,
    info: TokenizerInfo,
    dtype: str,
    cfg: PrepareConfig,
) -> tuple[list[Shard], dict]:
    """Encode, split and write one source; returns its shards and its manifest entry."""
    domain = src.cfg.domain
    writers = {
        s: ShardWriter(root, s, name, domain, dtype, data.max_shard_tokens) for s in ("train", "validation")
    }
    with tqdm(
        desc=f"{name:>14s}", unit="tok", unit_scale=True, disable=not cfg.progress, file=sys.stderr
    ) as bar:
        if isinstance(src, TokenFileSource):
            batches = src.batches(info.eos_id, info.vocab_size)
        else:
            batches = text_batches(src, tok, info.eos_id, dtype, cfg.batch_bytes)
        first = 0
        for flat, lengths in batches:
            is_val = validation_mask(
                np.arange(first, first + len(lengths)), data.validation_fraction, data.split_seed, name
            )
            token_is_val = np.repeat(is_val, lengths)
            writers["validation"].add(flat[token_is_val], lengths[is_val])
            writers["train"].add(flat[~token_is_val], lengths[~is_val])
            first += len(lengths)
            bar.update(len(flat))
    if src.stats.documents == 0:
        raise UserError(
            f"source '{name}' has no documents ({src.stats.empty_documents} empty); check its inputs."
        )
    shards = {s: w.close() for s, w in writers.items()}
    entry = {
        "type": src.cfg.type,
        "domain": domain,
        "weight": src.cfg.weight,
        "spec": OmegaConf.to_container(OmegaConf.structured(src.cfg), resolve=True),
        "stats": src.stats.as_dict() | {"unterminated_documents": getattr(src, "unterminated_documents", 0)},
    }
    for split, split_shards in shards.items():
        entry[split] = {
            "documents": sum(s.documents for s in split_shards),
            "tokens": sum(s.tokens for s in split_shards),
        }
    if entry["validation"]["documents"] == 0 and data.validation_fraction > 0:
        print(
            f"notice: source '{name}' has no validation documents; raise data.validation_fraction.",
            file=sys.stderr,
        )
    return shards["train"] + shards["validation"], entry


def build_dataset(cfg: PrepareConfig) -> Path:
    """Prepare `cfg.data` into `cfg.data.path` (or reuse it) and return that path."""
    if cfg.data.synthetic is not None or cfg.data.path is None:
        raise UserError(
            f"data={cfg.data.name} is synthetic or has no data.path: nothing to prepare into a directory."
        )
    data, out = cfg.data, Path(cfg.data.path)
    run_length(data.validation_fraction)  # fails early on a bad fraction
    sources = open_sources(data)
    fingerprint = input_fingerprint(data, sources)
    if out.exists() and any(out.iterdir()):
        if not (out / "manifest.json").exists():
            raise UserError(
                f"data.path {out} exists and is not a prepared dataset; remove it or choose another path."
            )
        existing = Manifest.load(out)
        if existing.input_fingerprint == fingerprint:
            verify_shards(out, existing)
            print(f"{out}: up to date ({existing.fingerprint[:12]}), reusing it.")
            return out
        if not cfg.overwrite:
            raise UserError(
                f"data.path {out} holds a dataset prepared from different inputs; "
                "pass overwrite=true to replace it, or choose another data.path."
            )
    start = time.perf_counter()
    with atomic_directory(out) as tmp:
        train_texts = training_texts(data, sources) if data.tokenizer.kind == "train" else None
        tok = install_tokenizer(data.tokenizer, tmp / "tokenizer.json", train_texts)
        info = describe(tok, tmp / "tokenizer.json", data.tokenizer)
        dtype = info.dtype(data.dtype)
        shards, entries = [], {}
        for name, src in sources.items():
            source_shards, entries[name] = write_source(name, src, data, tmp, tok, info, dtype, cfg)
            shards += source_shards
        manifest = Manifest(
            name=data.name,
            dtype=dtype,
            tokenizer={"file": "tokenizer.json", **asdict(info)},
            sources=entries,
            shards=shards,
            split={
                "seed": data.split_seed,
                "validation_fraction": data.validation_fraction,
                "run_length": run_length(data.validation_fraction),
            },
            input_fingerprint=fingerprint,
            created_with={"numpy": np.__version__, "tokenizers": _version("tokenizers")},
        )
        manifest.save(tmp)
        verify_shards(tmp, manifest, full=True)
    _summary(manifest, out, time.perf_counter() - start)
    return out


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _summary(manifest: Manifest, out: Path, seconds: float) -> None:
    print(f"{out}: {manifest.dtype}, vocab {manifest.vocab_size}, EOS {manifest.eos_id}, {seconds:.1f} s")
    for name, e in manifest.sources.items():
        bad = e["stats"]["invalid_utf8_replacements"]
        print(
            f"  {name:>14s} [{e['domain']}] train {e['train']['tokens']:>11,d} tokens / "
            f"{e['train']['documents']:,d} docs,"
            f" validation {e['validation']['tokens']:,d} / {e['validation']['documents']:,d}"
            + (f", {bad} invalid UTF-8 sequences replaced" if bad else "")
        )
