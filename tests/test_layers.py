"""The package layers import one way (docs/design.md, "Layers"), and files stay small.

models  <-  train.data  <-  eval
   ^            ^
   +---- train (the training half) ----+  (and never eval)

Checked on the source with `ast`, so lazy imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "train", "eval")
MAX_LINES, MAX_ENTRY_LINES = 400, 150


def _imports(path: Path) -> set[str]:
    """Every module name `path` imports (absolute imports only: the project uses no relative ones)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _layer(module: str) -> str | None:
    """`models`, `data` (train.data), `train` (the training half) or `eval`; None for libraries."""
    top = module.split(".")[0]
    if top == "train":
        return "data" if module == "train.data" or module.startswith("train.data.") else "train"
    return top if top in PACKAGES else None


def _source_layer(path: Path) -> str:
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "train" and len(rel.parts) > 1 and rel.parts[1] == "data":
        return "data"
    return rel.parts[0]


# What each layer may import besides itself and libraries. `python -m train.prepare` is the data
# half's entry point living beside the trainer's, so it counts as data.
ALLOWED = {"models": set(), "data": {"models"}, "train": {"models", "data"}, "eval": {"models", "data"}}


def _project_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _project_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_one_way(path: Path) -> None:
    layer = "data" if path == ROOT / "train" / "prepare.py" else _source_layer(path)
    imported = {_layer(m) for m in _imports(path)} - {None, layer}
    assert imported <= ALLOWED[layer], (
        f"{path.relative_to(ROOT)} ({layer}) imports {sorted(imported - ALLOWED[layer])}"
    )


def test_files_stay_small() -> None:
    files = [*_project_files(), *(ROOT / "scripts").glob("*.py")]
    too_long = {}
    for path in files:
        limit = MAX_ENTRY_LINES if path.name == "__main__.py" else MAX_LINES
        lines = len(path.read_text().splitlines())
        if lines > limit:
            too_long[str(path.relative_to(ROOT))] = lines
    assert not too_long, f"files over {MAX_LINES} lines (entry points: {MAX_ENTRY_LINES}): {too_long}"
