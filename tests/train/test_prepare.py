"""Preparing token shards: round trip, split, formats, reuse and atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prep_helpers import make_docs, prepare, write_jsonl
from tokenizers import Tokenizer

from train.data.config import TokenizerConfig
from train.data.manifest import Manifest, verify_shards
from train.data.split import validation_mask


def decode_docs(path, manifest: Manifest, split: str, source: str) -> list[str]:
    """Documents of one source and split, decoded from the raw shard files."""
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    docs = []
    for shard in manifest.select(split, sources=[source]):
        ids = np.fromfile(path / shard.file, dtype=np.dtype(manifest.dtype).newbyteorder("<"))
        assert ids[-1] == manifest.eos_id
        for piece in np.split(ids, np.flatnonzero(ids == manifest.eos_id) + 1)[:-1]:
            docs.append(tok.decode(piece[:-1].tolist(), skip_special_tokens=False))
    return docs


def test_round_trip_with_split(tmp_path, corpus, sources):
    path = prepare(tmp_path, sources, validation_fraction=0.1)
    manifest = Manifest.load(path)
    verify_shards(path, manifest, full=True)
    assert manifest.dtype == "uint16" and manifest.vocab_size == 300
    for name, docs in corpus.items():
        is_val = validation_mask(np.arange(len(docs)), 0.1, 0, name)
        assert decode_docs(path, manifest, "train", name) == [
            d for d, v in zip(docs, is_val, strict=True) if not v
        ]
        assert decode_docs(path, manifest, "validation", name) == [
            d for d, v in zip(docs, is_val, strict=True) if v
        ]
        entry = manifest.sources[name]
        assert entry["train"]["documents"] + entry["validation"]["documents"] == len(docs)
        assert entry["validation"]["documents"] == is_val.sum() > 0
    assert {s.domain for s in manifest.select("validation", domains=["python"])} == {"python"}


def test_split_is_one_per_run_and_seeded():
    mask = validation_mask(np.arange(1000), 0.05, seed=3, source="x")
    assert mask.reshape(50, 20).sum(axis=1).tolist() == [1] * 50
    assert not np.array_equal(mask, validation_mask(np.arange(1000), 0.05, seed=4, source="x"))
    assert np.array_equal(mask[500:], validation_mask(np.arange(500, 1000), 0.05, seed=3, source="x"))


def test_shards_hold_whole_documents(tmp_path, sources):
    path = prepare(tmp_path, sources, validation_fraction=0.0, max_shard_tokens=500)
    manifest = Manifest.load(path)
    prose = manifest.select("train", sources=["prose"])
    assert len(prose) > 3 and not manifest.select("validation")
    assert all(s.tokens <= 500 for s in prose)
    verify_shards(path, manifest, full=True)


def test_parquet_gz_and_hf_json_sources(tmp_path):
    docs = make_docs(30, seed=5)
    pq.write_table(pa.table({"body": docs}), tmp_path / "a.parquet")
    import gzip

    (tmp_path / "b.jsonl.gz").write_bytes(
        gzip.compress("".join(json.dumps({"text": d}) + "\n" for d in docs).encode())
    )
    write_jsonl(tmp_path / "c.jsonl", docs)
    sources = {
        "pq": {"paths": [str(tmp_path / "a.parquet")], "text_field": "body"},
        "gz": {"paths": [str(tmp_path / "b.jsonl.gz")]},
        "hf": {"type": "hf", "dataset": "json", "data_files": [str(tmp_path / "c.jsonl")]},
        "hfs": {
            "type": "hf",
            "dataset": "json",
            "data_files": [str(tmp_path / "c.jsonl")],
            "streaming": True,
        },
    }
    path = prepare(tmp_path, sources, validation_fraction=0.0)
    manifest = Manifest.load(path)
    for name in sources:
        assert decode_docs(path, manifest, "train", name) == docs


def test_token_files_round_trip(tmp_path, sources):
    """OLMo-core layout in: raw uint32 ids, EOS-separated; the same documents come out."""
    first = prepare(tmp_path, sources, validation_fraction=0.0)
    manifest = Manifest.load(first)
    ids = np.concatenate([np.fromfile(first / s.file, dtype="<u2") for s in manifest.select("train")])
    ids.astype("<u4").tofile(tmp_path / "olmo.npy")
    tokens_source = {
        "olmo": {"type": "tokens", "paths": [str(tmp_path / "olmo.npy")], "token_dtype": "uint32"}
    }
    tokenizer = TokenizerConfig(kind="file", path=str(first / "tokenizer.json"))
    second = prepare(
        tmp_path, tokens_source, out="ds2", tokenizer=tokenizer, validation_fraction=0.0, dtype="uint32"
    )
    manifest2 = Manifest.load(second)
    assert manifest2.tokenizer["sha256"] == manifest.tokenizer["sha256"] and manifest2.dtype == "uint32"
    assert np.array_equal(np.fromfile(second / manifest2.shards[0].file, dtype="<u4"), ids.astype("<u4"))
    assert manifest2.sources["olmo"]["train"]["documents"] == 340


def test_rerun_reuses_and_changed_inputs_are_refused(tmp_path, sources, capsys):
    path = prepare(tmp_path, sources)
    mtime = (path / "manifest.json").stat().st_mtime_ns
    prepare(tmp_path, sources)
    assert "up to date" in capsys.readouterr().out
    assert (path / "manifest.json").stat().st_mtime_ns == mtime
    with open(tmp_path / "prose.jsonl", "a") as f:
        f.write(json.dumps({"text": "one more document"}) + "\n")
    with pytest.raises(ValueError, match="different inputs; pass overwrite=true"):
        prepare(tmp_path, sources)
    assert (path / "manifest.json").stat().st_mtime_ns == mtime


def test_failure_leaves_nothing_behind(tmp_path, sources):
    sources["bad"] = {"paths": [str(tmp_path / "bad.jsonl")]}
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"txt": "no text field"}\n')
    with pytest.raises(ValueError, match="has no field 'text'"):
        prepare(tmp_path, sources)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "code", "prose.jsonl"]
