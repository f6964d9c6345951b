"""Fixtures for the data-pipeline tests: a two-source synthetic corpus in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from prep_helpers import make_docs, write_jsonl


@pytest.fixture
def corpus(tmp_path: Path) -> dict[str, list[str]]:
    """Two sources: jsonl prose (300 docs) and .txt 'code' files (40 docs)."""
    prose = make_docs(300, seed=1, prefix="prose ")
    code = make_docs(40, seed=2, prefix="def f")
    write_jsonl(tmp_path / "prose.jsonl", prose)
    (tmp_path / "code").mkdir()
    for i, doc in enumerate(code):
        (tmp_path / "code" / f"{i:03d}.txt").write_text(doc)
    return {"prose": prose, "code": code}


@pytest.fixture
def sources(tmp_path: Path, corpus) -> dict[str, dict]:
    return {
        "prose": {"type": "local", "paths": [str(tmp_path / "prose.jsonl")], "domain": "prose"},
        "code": {"type": "local", "paths": [str(tmp_path / "code" / "*.txt")], "domain": "python"},
    }


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """A small prepared demo corpus (every available domain, ~120 kB each, vocab 8192), built once."""
    import subprocess
    import sys

    from train_helpers import DEMO_CAPS

    path = tmp_path_factory.mktemp("demo") / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "train.prepare", "data=demo", f"data.path={path}", "progress=false", *DEMO_CAPS,
         f"hydra.run.dir={path.parent / 'hydra'}"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return path
