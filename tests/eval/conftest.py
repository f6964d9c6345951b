"""Fixtures for the eval tests: a tokenizer trained here and tiny random zoo models (session-wide)."""

from __future__ import annotations

from pathlib import Path

import pytest
from eval_helpers import save_tiny, train_tokenizer


@pytest.fixture(scope="session")
def tokenizer_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    train_tokenizer().save(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, tokenizer_file) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("zoo")
    return {
        "transformer": save_tiny(root / "transformer", "tiny_transformer", tokenizer_file, seed=1),
        "hybrid": save_tiny(root / "hybrid", "tiny_hybrid", tokenizer_file, seed=2),
    }
