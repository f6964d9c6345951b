"""Reading documents from a source: local files, Hugging Face datasets, or the demo corpus.

Every reader yields one `str` per document, in a fixed order, so re-reading a source (once to train
a tokenizer, once to encode) sees the same documents. Bytes that are not valid UTF-8 are replaced
by U+FFFD and counted, never fatal: a crawl with a few broken bytes should not stop a long run, and
the counts land in the manifest and the summary so they are not silent either.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from models.errors import UserError
from train.data.config import SourceConfig, SourceType

TEXT_SUFFIXES = (".txt", ".jsonl", ".json", ".parquet")
TEXT_SOURCE_TYPES = (SourceType.local, SourceType.hf, SourceType.demo)


def check_source(name: str, cfg: SourceConfig, types: tuple[SourceType, ...]) -> None:
    """What every source is checked for where it is built, whoever builds it (prepare, eval corpora)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise UserError(f"source name '{name}' must be letters, digits, '_', '.' or '-' (it names files).")
    if cfg.type not in types:
        other = (
            " (token files are read only by python -m train.prepare)" if cfg.type == SourceType.tokens else ""
        )
        raise UserError(f"source '{name}' has type '{cfg.type}'; here use one of {', '.join(types)}{other}.")
    if cfg.weight is not None and cfg.weight <= 0:
        raise UserError(f"source '{name}' has weight {cfg.weight}; weights must be positive.")


@dataclass
class SourceStats:
    """What reading a source saw; stored per source in `manifest.json`."""

    documents: int = 0
    bytes: int = 0
    empty_documents: int = 0  # skipped: nothing to learn from an EOS alone
    invalid_utf8_documents: int = 0
    invalid_utf8_replacements: int = 0  # undecodable byte sequences replaced by U+FFFD

    def as_dict(self) -> dict:
        return asdict(self)


def decode_utf8(data: bytes, stats: SourceStats) -> str:
    """Decode UTF-8, replacing (and counting) invalid byte sequences."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        genuine = data.decode("utf-8", errors="ignore").count("\ufffd")
        stats.invalid_utf8_documents += 1
        stats.invalid_utf8_replacements += text.count("\ufffd") - genuine
        return text


def expand_paths(name: str, patterns: list[str], suffixes: tuple[str, ...] | None) -> list[Path]:
    """Sorted files matching the globs; every pattern must match and no file may be empty."""
    if not patterns:
        raise UserError(f"source '{name}' has no paths; set data.sources.{name}.paths to file globs.")
    files: list[Path] = []
    for pattern in patterns:
        matched = sorted(Path(p) for p in glob.glob(os.path.expanduser(pattern), recursive=True))
        matched = [p for p in matched if p.is_file()]
        if not matched:
            raise UserError(f"source '{name}': no file matches '{pattern}'; check data.sources.{name}.paths.")
        files.extend(matched)
    for path in files:
        if suffixes is not None and _suffix(path) not in suffixes:
            raise UserError(
                f"source '{name}': cannot read '{path}' (suffix '{_suffix(path)}'); "
                f"use one of {', '.join(suffixes)} (optionally .gz)."
            )
        if path.stat().st_size == 0:
            raise UserError(f"source '{name}': file '{path}' is empty; remove it or fix the glob.")
    return files


def file_inputs(files: list[Path]) -> list[list]:
    """(path, size, mtime) per file: cheap to compute, and changes whenever a file is rewritten."""
    return [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def _suffix(path: Path) -> str:
    suffixes = path.suffixes
    if suffixes and suffixes[-1] == ".gz":
        return suffixes[-2] if len(suffixes) > 1 else ""
    return path.suffix


def _read_bytes(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def _field(name: str, where: str, record: object, text_field: str) -> str | None:
    if not isinstance(record, dict) or text_field not in record:
        keys = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise UserError(
            f"source '{name}': {where} has no field '{text_field}' (has {keys}); "
            f"set data.sources.{name}.text_field."
        )
    value = record[text_field]
    if value is not None and not isinstance(value, str):
        raise UserError(
            f"source '{name}': {where} field '{text_field}' is a {type(value).__name__}, not text."
        )
    return value


def read_file(name: str, path: Path, text_field: str, stats: SourceStats) -> Iterator[str | None]:
    """Documents of one local file (`None` for a record without text)."""
    suffix = _suffix(path)
    if suffix == ".txt":
        yield decode_utf8(_read_bytes(path), stats)
    elif suffix in (".jsonl", ".json"):
        data = _read_bytes(path)
        if data.lstrip()[:1] == b"[":
            try:
                records = json.loads(decode_utf8(data, stats))
            except json.JSONDecodeError as e:
                raise UserError(
                    f"source '{name}': {path} is not valid JSON ({e.msg}, line {e.lineno})."
                ) from None
            for i, record in enumerate(records):
                yield _field(name, f"{path}[{i}]", record, text_field)
            return
        for lineno, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(decode_utf8(line, stats))
            except json.JSONDecodeError as e:
                raise UserError(f"source '{name}': {path}:{lineno} is not valid JSON ({e.msg}).") from None
            yield _field(name, f"{path}:{lineno}", record, text_field)
    else:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        if text_field not in parquet.schema_arrow.names:
            raise UserError(
                f"source '{name}': {path} has no column '{text_field}' (has {parquet.schema_arrow.names}); "
                f"set data.sources.{name}.text_field."
            )
        for batch in parquet.iter_batches(columns=[text_field], batch_size=1024):
            yield from batch.column(0).to_pylist()


class TextSource:
    """A source of text documents; `documents()` can be called again and gives the same stream."""

    def __init__(self, name: str, cfg: SourceConfig):
        check_source(name, cfg, TEXT_SOURCE_TYPES)
        self.name, self.cfg = name, cfg
        self.stats = SourceStats()
        self._hf = None
        if cfg.type == "local":
            self.files = expand_paths(name, list(cfg.paths), TEXT_SUFFIXES)
        elif cfg.type == "demo":
            from train.data.demo_corpus import demo_files

            self.files = demo_files(name, cfg)
        elif cfg.type == "hf" and not cfg.dataset:
            raise UserError(f"source '{name}' has type hf but no dataset; set data.sources.{name}.dataset.")

    def inputs(self) -> list:
        """What identifies this source's content, for deciding whether a prepared dataset is current."""
        if self.cfg.type != "hf":
            return file_inputs(self.files)
        ds = self._dataset()
        return [getattr(ds, "_fingerprint", None)]

    def _dataset(self):
        if self._hf is None:
            import datasets

            cfg = self.cfg
            try:
                ds = datasets.load_dataset(
                    cfg.dataset,
                    cfg.subset,
                    split=cfg.split,
                    streaming=cfg.streaming,
                    data_files=list(cfg.data_files) or None,
                )
            except Exception as e:  # datasets raises many types; the user needs the one sentence
                raise UserError(
                    f"source '{self.name}': cannot load dataset {cfg.dataset} ({type(e).__name__}: "
                    f"{str(e)[:200]}); check data.sources.{self.name} or the local HF cache."
                ) from None
            columns = ds.column_names
            if columns is not None and self.cfg.text_field not in columns:
                raise UserError(
                    f"source '{self.name}': dataset {cfg.dataset} has no column '{cfg.text_field}' "
                    f"(has {columns}); set data.sources.{self.name}.text_field."
                )
            self._hf = ds
        return self._hf

    def _raw(self, stats: SourceStats) -> Iterator[str | None]:
        if self.cfg.type == "hf":
            for i, record in enumerate(self._dataset()):
                yield _field(self.name, f"row {i}", record, self.cfg.text_field)
            return
        if self.cfg.type == "demo":
            from train.data.demo_corpus import demo_documents

            for data in demo_documents(self.cfg, self.files):
                yield decode_utf8(data, stats)
            return
        for path in self.files:
            yield from read_file(self.name, path, self.cfg.text_field, stats)

    def documents(self) -> Iterator[str]:
        """Non-empty documents, up to the source's `max_docs` / `max_bytes`; fills `self.stats`."""
        stats = self.stats = SourceStats()
        cfg = self.cfg
        for text in self._raw(stats):
            if not text:
                stats.empty_documents += 1
                continue
            stats.documents += 1
            stats.bytes += len(text.encode("utf-8"))
            yield text
            if (cfg.max_docs is not None and stats.documents >= cfg.max_docs) or (
                cfg.max_bytes is not None and stats.bytes >= cfg.max_bytes
            ):
                return
