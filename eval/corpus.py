"""Evaluation corpora as texts with domains: a prepared dataset's split, or text sources.

- `type: dataset` reads a prepared dataset directory (docs/data.md): the shards of one split
  (default `validation`, per domain) are raw little-endian ids with one EOS after each document;
  each document is decoded with the dataset's own tokenizer.json (byte-level BPE decodes to the
  exact text) so the models' tokenizer can re-tokenize it.
- `type: sources` reads `sources` exactly like `python -m train.prepare` does (the same
  `SourceConfig`: `local` .txt/.jsonl/.parquet files, `hf` datasets from the local HF cache,
  `demo`), each tagged with its domain.

`max_docs_per_domain` and `max_chars_per_doc` bound the corpus (documents in source order, cut at
a character count) for quick runs.

`scoring_corpus` is the one place a corpus definition becomes documents, W and S: `python -m eval`
(eval.pipeline) and the in-loop filtered loss (eval.inloop) both call it, so the same corpus name,
window and stride give the same scored tokens. `named_corpus` reads `conf/corpus/<name>.yaml` outside
a Hydra run (the in-loop callback's `corpus=`); `dataset_corpus` is a prepared dataset's split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from tokenizers import Tokenizer

from eval.config import CorpusConfig, CorpusType
from eval.context import scoring_window
from models.config import CONF_DIR, TrainingContext
from models.errors import UserError

CORPUS_DIR = CONF_DIR / "corpus"  # what `python -m eval corpus=NAME` reads


@dataclass
class Corpus:
    texts: list[str]
    domains: list[str]


@dataclass
class ScoringCorpus:
    """A corpus's documents with the window W and stride S they are scored in."""

    corpus: Corpus
    window: int
    stride: int
    notes: list[str]  # how W was chosen, when it was not given


def scoring_corpus(
    cfg: CorpusConfig,
    window: int | None,
    stride: int | None,
    trained: Sequence[TrainingContext],
    names: Sequence[str],
) -> ScoringCorpus:
    """Documents of `cfg` and (W, S) from `eval.context.scoring_window` (a bad stride fails before loading)."""
    window, stride, notes = scoring_window(window, stride, trained, names)
    return ScoringCorpus(load_corpus(cfg), window, stride, notes)


def named_corpus(name: str) -> CorpusConfig:
    """`conf/corpus/<name>.yaml` as `python -m eval corpus=<name>` composes it; UserError if absent or bad."""
    file = CORPUS_DIR / f"{name}.yaml"
    if not file.is_file():
        known = ", ".join(sorted(p.stem for p in CORPUS_DIR.glob("*.yaml")))
        raise UserError(f"corpus {name!r} is not in conf/corpus/; use one of {known}.")
    values = OmegaConf.load(file)
    values.pop("defaults", None)
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(CorpusConfig), values))
    except OmegaConfBaseException as error:
        raise UserError(f"conf/corpus/{name}.yaml: {str(error).splitlines()[0]}; fix the file.") from None


def dataset_corpus(
    path: str | Path,
    split: str = "validation",
    max_docs_per_domain: int | None = 8,
    max_chars_per_doc: int | None = 20000,
) -> CorpusConfig:
    """A prepared dataset's split as a corpus (by default a small one: 8 documents per domain, 20000 chars)."""
    return CorpusConfig(name=Path(path).name, type=CorpusType.dataset, path=str(path), split=split,
                        max_docs_per_domain=max_docs_per_domain, max_chars_per_doc=max_chars_per_doc)  # fmt: skip


def load_corpus(cfg: CorpusConfig) -> Corpus:
    """The documents of `cfg`, capped per domain and per document; UserError when nothing is left."""
    pairs = _dataset_documents(cfg) if cfg.type == "dataset" else _source_documents(cfg)
    texts, domains, per_domain = [], [], {}
    for text, domain in pairs:
        if cfg.max_docs_per_domain is not None and per_domain.get(domain, 0) >= cfg.max_docs_per_domain:
            continue
        text = text[: cfg.max_chars_per_doc] if cfg.max_chars_per_doc else text
        if text.strip():
            texts.append(text)
            domains.append(domain)
            per_domain[domain] = per_domain.get(domain, 0) + 1
    if not texts:
        raise UserError(
            f"corpus {cfg.name!r} holds no non-empty document; check corpus.path / corpus.sources."
        )
    return Corpus(texts, domains)


def _dataset_documents(cfg: CorpusConfig):
    from train.data.manifest import Manifest, verify_shards

    if not cfg.path:
        raise UserError("corpus.type=dataset needs corpus.path, a prepared dataset directory.")
    path = Path(cfg.path)
    manifest = Manifest.load(path)
    verify_shards(path, manifest)
    tokenizer = Tokenizer.from_file(str(path / manifest.tokenizer["file"]))
    dtype = np.dtype(manifest.dtype).newbyteorder("<")
    for shard in manifest.select(cfg.split, domains=list(cfg.domains) if cfg.domains else None):
        tokens = np.memmap(path / shard.file, dtype=dtype, mode="r")
        ends = np.flatnonzero(tokens == manifest.eos_id)
        starts = np.r_[0, ends[:-1] + 1]
        for a, b in zip(starts.tolist(), ends.tolist()):
            yield tokenizer.decode(tokens[a:b].tolist(), skip_special_tokens=False), shard.domain


def _source_documents(cfg: CorpusConfig):
    from train.data.sources import TextSource

    if not cfg.sources:
        raise UserError("corpus.type=sources needs corpus.sources (name: {type, paths, domain, ...}).")
    for name, source_cfg in cfg.sources.items():
        if cfg.domains and source_cfg.domain not in cfg.domains:
            continue
        for text in TextSource(name, source_cfg).documents():
            yield text, source_cfg.domain


def token_counts(dataset: str | Path, split: str = "train") -> np.ndarray:
    """Occurrences of every id in a prepared dataset's split (EOS included): frequencies for annotation."""
    from train.data.manifest import Manifest

    manifest = Manifest.load(dataset)
    dtype = np.dtype(manifest.dtype).newbyteorder("<")
    counts = np.zeros(manifest.vocab_size, dtype=np.int64)
    for shard in manifest.select(split):
        tokens = np.memmap(Path(dataset) / shard.file, dtype=dtype, mode="r")
        for start in range(0, len(tokens), 1 << 24):  # bounded memory on large shards
            counts += np.bincount(tokens[start : start + (1 << 24)], minlength=manifest.vocab_size)
    return counts
