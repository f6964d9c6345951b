"""Bad input: one clear error (ValueError, or one stderr line and exit 1 from the CLI), nothing half-written."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prep_helpers import make_docs, prepare, write_jsonl
from tokenizers import Tokenizer, models, pre_tokenizers

from train.data.config import TokenizerConfig
from train.data.loader import TokenSequences
from train.data.manifest import Manifest, verify_shards


def assert_nothing_written(tmp_path, before: set[str]) -> None:
    assert {p.name for p in tmp_path.iterdir()} == before


BAD_SOURCES = {
    # id: (files to write, the source spec (paths relative to tmp_path) or None for no source, error)
    "missing-file": ({}, {"paths": ["missing*.txt"]}, "no file matches"),
    "empty-file": ({"e.txt": b""}, {"paths": ["e.txt"]}, "is empty"),
    "empty-corpus": ({}, None, "the corpus is empty"),
    "only-empty-docs": (
        {"b.jsonl": b'{"text": ""}\n{"text": null}\n'},
        {"paths": ["b.jsonl"]},
        "no documents",
    ),
    "no-text-field": ({"f.jsonl": b'{"body": "a"}\n'}, {"paths": ["f.jsonl"]}, "has no field 'text'"),
    "bad-json": (
        {"j.jsonl": b'{"text": "ok"}\n{oops\n'},
        {"paths": ["j.jsonl"]},
        "j.jsonl:2 is not valid JSON",
    ),
    "bad-json-array": ({"a.json": b'[{"text": "ok"},'}, {"paths": ["a.json"]}, "a.json is not valid JSON"),
    "text-not-str": ({"n.jsonl": b'{"text": 5}\n'}, {"paths": ["n.jsonl"]}, "is a int, not text"),
    "suffix": ({"c.csv": b"a,b"}, {"paths": ["c.csv"]}, "use one of .txt"),
    "type": ({}, {"type": "nope"}, "has type 'nope'"),
    "hf-without-dataset": ({}, {"type": "hf"}, "no dataset"),
    "hf-missing": (
        {},
        {"type": "hf", "dataset": "json", "data_files": ["nope/*.jsonl"]},
        "cannot load dataset",
    ),
    "demo-kind": ({}, {"type": "demo", "demo": "nope"}, "demo kind 'nope'"),
    "bad-name": ({"a.txt": b"a"}, {"paths": ["a.txt"], "name": "a/b"}, "must be letters"),
}


@pytest.mark.parametrize(("files", "spec", "message"), BAD_SOURCES.values(), ids=BAD_SOURCES.keys())
def test_bad_sources(tmp_path, files, spec, message):
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    sources = {}
    if spec is not None:
        spec = dict(spec)
        spec["paths"] = [str(tmp_path / p) for p in spec.get("paths", [])]
        sources[spec.pop("name", "x")] = spec
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match=message):
        prepare(tmp_path, sources)
    assert_nothing_written(tmp_path, before)


def test_parquet_without_text_column(tmp_path):
    pq.write_table(pa.table({"body": ["a b c"]}), tmp_path / "a.parquet")
    with pytest.raises(ValueError, match=r"has no column 'text' \(has \['body'\]\)"):
        prepare(tmp_path, {"x": {"paths": [str(tmp_path / "a.parquet")]}})


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    docs = make_docs(20, seed=3)
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 and \xff\xfe twice")
    write_jsonl(tmp_path / "ok.jsonl", docs)
    sources = {"x": {"paths": [str(tmp_path / "bad.txt"), str(tmp_path / "ok.jsonl")]}}
    path = prepare(tmp_path, sources, validation_fraction=0.0)
    stats = Manifest.load(path).sources["x"]["stats"]
    assert stats["invalid_utf8_documents"] == 1 and stats["invalid_utf8_replacements"] == 3
    ids = np.fromfile(path / "train" / "x-00000.npy", dtype="<u2")
    first = ids[: int(np.flatnonzero(ids == Manifest.load(path).eos_id)[0])]
    assert (
        Tokenizer.from_file(str(path / "tokenizer.json")).decode(first.tolist())
        == "caf\ufffd and \ufffd\ufffd twice"
    )


def big_tokenizer(tmp_path) -> str:
    """A word-level tokenizer whose largest id (70000) needs uint32."""
    vocab = {"<|endoftext|>": 0, "[UNK]": 1, **{w: 69990 + i for i, w in enumerate("abcdefghijk")}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "big.json"))
    return str(tmp_path / "big.json")


def test_tokenizer_ids_exceeding_the_dtype(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", ["a b c", "d e f"])
    tokenizer = TokenizerConfig(kind="file", path=big_tokenizer(tmp_path))
    sources = {"x": {"paths": [str(tmp_path / "a.jsonl")]}}
    with pytest.raises(ValueError, match="ids up to 70000, which do not fit data.dtype=uint16"):
        prepare(tmp_path, sources, tokenizer=tokenizer, dtype="uint16")
    manifest = Manifest.load(prepare(tmp_path, sources, tokenizer=tokenizer, validation_fraction=0.0))
    assert manifest.dtype == "uint32" and manifest.vocab_size == 70001


def test_token_files_with_foreign_ids(tmp_path):
    np.array([5, 6, 0, 70001, 0], dtype="<u4").tofile(tmp_path / "t.npy")
    tokenizer = TokenizerConfig(kind="file", path=big_tokenizer(tmp_path))
    sources = {"x": {"type": "tokens", "paths": [str(tmp_path / "t.npy")], "token_dtype": "uint32"}}
    with pytest.raises(ValueError, match="holds token id 70001, but the tokenizer has 70001 ids"):
        prepare(tmp_path, sources, tokenizer=tokenizer)
    (tmp_path / "odd.npy").write_bytes(b"\x00" * 6)
    sources["x"]["paths"] = [str(tmp_path / "odd.npy")]
    with pytest.raises(ValueError, match="not a whole number of uint32 tokens"):
        prepare(tmp_path, sources, tokenizer=tokenizer)


def test_manifest_that_does_not_match_its_shards(tmp_path, sources):
    path = prepare(tmp_path, sources)
    manifest = Manifest.load(path)
    shard = path / manifest.shards[0].file
    data = bytearray(shard.read_bytes())
    data[10] ^= 0xFF
    shard.write_bytes(bytes(data))
    TokenSequences(path, 8)  # sizes still agree: only the full check sees changed content
    with pytest.raises(ValueError, match="does not match its sha256"):
        verify_shards(path, manifest, full=True)
    shard.write_bytes(bytes(data[:-2]))
    with pytest.raises(ValueError, match=r"has \d+ bytes, but manifest.json says"):
        TokenSequences(path, 8)
    shard.unlink()
    with pytest.raises(ValueError, match="is missing"):
        TokenSequences(path, 8)
    (path / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="is not a hybridzoo-tokens/1 manifest"):
        TokenSequences(path, 8)
