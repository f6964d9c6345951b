"""Typed data configuration shared by `python -m train.prepare` and the trainer (`data=...`).

A data config names its sources (a dict, so one source is one override away:
`data.sources.books.weight=2`), the tokenizer, the split and the directory the prepared dataset
lives in; or, instead of sources, a `synthetic` task generated from the seed (`data=probe_mqar`,
no files, no tokenizer). The dataclasses are Hydra structured configs: a typo in `conf/data/*.yaml` or on the
command line fails when the config is composed, not half-way through a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from models.choices import Choice
from models.errors import UserError
from train.data.synthetic import TASKS, MQARConfig, ParityConfig, S5Config, Task, build_task


class SourceType(Choice):
    local = "local"
    hf = "hf"
    tokens = "tokens"
    demo = "demo"


class TokenizerKind(Choice):
    train = "train"
    file = "file"
    hf = "hf"


class ShardDtype(Choice):
    auto = "auto"  # uint16 when the vocab fits, else uint32
    uint16 = "uint16"
    uint32 = "uint32"


SOURCE_TYPES, TOKENIZER_KINDS, DTYPES = SourceType.values(), TokenizerKind.values(), ShardDtype.values()


@dataclass
class SourceConfig:
    """One source of documents, tagged with a domain; fields a `type` does not use stay unset.

    - `local`: `paths` (globs, `**` allowed) of `.txt` (a file is one document), `.jsonl`/`.json`
      (one JSON object per line, text under `text_field`) or `.parquet` (column `text_field`);
      `.gz` versions of the text formats too.
    - `hf`: a Hugging Face dataset, `load_dataset(dataset, subset, split=split, streaming=...,
      data_files=...)`, text under `text_field`; works offline from the local HF cache.
    - `tokens`: existing token files in OLMo-core's layout (`paths`, `token_dtype`): raw
      little-endian ids, documents separated by the tokenizer's EOS.
    - `demo`: one part of the offline demo corpus, `demo` in `train.data.demo_corpus.DEMO_KINDS`.
    """

    type: SourceType = SourceType.local
    domain: str = "text"
    # Mixture weight: the share of training sequences drawn from this source. Leave all weights
    # unset to sample every source in proportion to its size (each sequence once per epoch).
    weight: float | None = None
    paths: list[str] = field(default_factory=list)
    text_field: str = "text"
    dataset: str | None = None
    subset: str | None = None
    split: str = "train"
    streaming: bool = False
    data_files: list[str] = field(default_factory=list)
    token_dtype: str | None = None
    demo: str | None = None
    # Caps, applied in source order (documents are never cut): useful for quick or demo runs.
    max_docs: int | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.type not in SOURCE_TYPES:  # a config built in Python skips OmegaConf's check
            raise UserError(f"a source has type {self.type!r}; use one of {', '.join(SOURCE_TYPES)}.")
        self.type = SourceType(self.type)


@dataclass
class TokenizerConfig:
    """Where the tokenizer comes from: `train` (byte-level BPE on the sources' training split),
    `file` (a `tokenizer.json` at `path`) or `hf` (hub id `name`, read from the local HF cache)."""

    kind: TokenizerKind = TokenizerKind.train
    path: str | None = None
    name: str | None = None
    vocab_size: int = 8192  # kind=train only; includes the special tokens
    train_bytes: int = 64_000_000  # kind=train: text read for training, split evenly over sources
    eos_token: str = "<|endoftext|>"

    def __post_init__(self) -> None:
        self.kind = TokenizerKind.parse(self.kind, "data.tokenizer.kind")


@dataclass
class SyntheticConfig:
    """A synthetic task (`train.data.synthetic`): its name and the knobs of each task's section.

    Training examples come from `trainer.seed`, validation examples from `validation_seed` on a
    separate stream; `trainer.seq_len` is the example length. Only the section of `task` is used.
    """

    task: str = MISSING  # mqar | parity | s5
    validation_seed: int = 0
    mqar: MQARConfig = field(default_factory=MQARConfig)
    parity: ParityConfig = field(default_factory=ParityConfig)
    s5: S5Config = field(default_factory=S5Config)

    def section(self):
        """The knobs of the chosen task."""
        if self.task not in TASKS:
            raise UserError(f"data.synthetic.task={self.task!r}: use one of {', '.join(TASKS)}.")
        return getattr(self, self.task)

    def build(self) -> Task:
        return build_task(self.task, self.section())


@dataclass
class DataConfig:
    """A dataset: its sources, tokenizer, split, and the directory holding the prepared shards, or
    a `synthetic` task (then `sources` and `path` stay empty)."""

    name: str = MISSING
    path: str | None = MISSING  # prepared dataset directory (relative paths: from the working directory)
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    dtype: ShardDtype = ShardDtype.auto  # shard dtype
    validation_fraction: float = 0.01  # share of each source's documents held out
    split_seed: int = 0
    max_shard_tokens: int = 1 << 28  # shards hold whole documents and close after this many tokens
    synthetic: SyntheticConfig | None = None  # a generated task instead of prepared shards

    def __post_init__(self) -> None:
        self.dtype = ShardDtype.parse(self.dtype, "data.dtype")


@dataclass
class PrepareConfig:
    """`python -m train.prepare`: build `data.path` from `data`, reusing it when inputs match."""

    data: DataConfig = MISSING
    num_workers: int = 2  # tokenizer threads (Rayon), as in `Tokenizer.encode_batch`
    overwrite: bool = False  # replace a prepared dataset built from different inputs
    progress: bool = True
    batch_bytes: int = 4_000_000  # text per encode_batch call


def register_configs() -> None:
    """Register the schemas so YAML files extend (and are checked against) them."""
    cs = ConfigStore.instance()
    cs.store(name="prepare_schema", node=PrepareConfig)
    cs.store(group="data", name="data_schema", node=DataConfig)
