"""The demo corpus is the same on every machine: five domains from pinned sdists, in a fixed order."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from test_prepare_cli import ROOT, compose_prepare

from train.data import pypi_sdists
from train.data.config import SourceConfig
from train.data.demo_corpus import EXTRA_KINDS, PYPI_KINDS, SDISTS, Part, demo_documents
from train.data.pypi_sdists import Sdist
from train.data.sources import TextSource

# (documents, sha256 over the documents' sha256s) of each default source as prepare reads it (caps
# applied). These are constants: a machine, Python version or cache that gives other text fails.
PINNED_STREAMS = {
    "prose": (55, "4d373a0f68d9a55a7194dd9568794ee37d71bc18131332c4e63d11acfade9245"),
    "books": (42, "5c5b99c33057ade046aca3d4252f3ca0948deb380bf830164d9dd8a2992c271d"),
    "python": (236, "fa1e1c43e2fe00859a1d7ac597bbf8abad4822c1dd0919424c1f3c2081bcdb6b"),
    "html": (33, "63d3d227f8ba171a8741079f2867ba5bb3fa167c58da9b169662fa006d932f3e"),
    "latex": (62, "defb777279f69bfe71ff050c8383c0091ce4d8a47242bd362c6bec9ab5046f73"),
}


def test_default_demo_has_five_domains_all_from_pinned_sdists() -> None:
    sources = compose_prepare(["data=demo"]).data.sources
    assert {s.domain for s in sources.values()} == {"prose", "books", "python", "html", "latex"}
    assert all(s.type == "demo" and s.demo in PYPI_KINDS for s in sources.values())
    assert not {s.demo for s in sources.values()} & set(EXTRA_KINDS)


def test_default_demo_streams_are_the_pinned_ones() -> None:
    """Reads the cached sdists (`make setup` fetched them); any other machine must get these bytes."""
    sources = compose_prepare(["data=demo"]).data.sources
    streams = {}
    for name, cfg in sources.items():
        digest, count = hashlib.sha256(), 0
        for doc in TextSource(name, cfg).documents():
            digest.update(hashlib.sha256(doc.encode("utf-8")).digest())
            count += 1
        streams[name] = (count, digest.hexdigest())
    assert streams == PINNED_STREAMS


def _sdist(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"fake-1.0/{name}")
            info.size, info.mtime = len(data), hash(path) % 10**9  # mtimes differ between the two
            tar.addfile(info, io.BytesIO(data))
    return path


def test_order_depends_on_names_not_on_the_archive(tmp_path, monkeypatch) -> None:
    members = {f"docs/{i:02d}.txt": f"document {i}".encode() for i in range(30)}
    members["docs/skip.rst"] = b"not matched"
    forward = _sdist(tmp_path / "a" / "fake-1.0.tar.gz", members)
    backward = _sdist(tmp_path / "b" / "fake-1.0.tar.gz", dict(reversed(members.items())))
    monkeypatch.setitem(SDISTS, "fake", Sdist("fake", "1.0", "0" * 64))
    monkeypatch.setitem(PYPI_KINDS, "fake_docs", (Part("fake", ("docs/*.txt",)),))
    cfg = SourceConfig(type="demo", demo="fake_docs")
    first, second = list(demo_documents(cfg, [forward])), list(demo_documents(cfg, [backward]))
    assert first == second and sorted(first) == sorted(v for k, v in members.items() if k.endswith(".txt"))
    assert first != sorted(first)  # a spread, so that a max_bytes cap does not take the first names


def test_a_changed_sdist_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HYBRIDZOO_CACHE", str(tmp_path))
    (tmp_path / SDISTS["docutils"].file).write_bytes(b"not the pinned sdist")
    with pytest.raises(ValueError, match="expected 3a6b1873.*delete it to re-download"):
        pypi_sdists.fetch([SDISTS["docutils"]])


def test_a_missing_download_is_one_error_line_naming_the_fix(tmp_path) -> None:
    """No cache and no reachable index: prepare stops with one line saying how to get the sdists."""
    empty = tmp_path / "no-index"
    empty.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HYBRIDZOO_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(empty),
           "PIP_CONFIG_FILE": "/dev/null"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "train.prepare", "data=demo", f"data.path={tmp_path / 'demo'}",
         f"hydra.run.dir={tmp_path / 'hydra'}"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: could not download docutils==0.21.2 from PyPI")
    assert "make setup" in lines[0] and str(tmp_path / "cache") in lines[0]
    assert not (tmp_path / "demo").exists()
