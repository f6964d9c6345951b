"""The commands the README and docs show, taken literally, still compose and validate.

Every `python -m train|train.prepare|eval ...` (also under torchrun, and inline in backticks) is
composed with Hydra's compose API exactly as written (sweeps expanded point by point) and turned
into its typed config; every `python -m models.summary ...` runs. Paths in examples need not exist:
composing checks names, keys and types, which is what drifts when code changes under the docs.
`make demo` itself runs in reduced form in tests/test_demo.py, `make test` is CI.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import eval.config
import train.config
from models.config import CONF_DIR
from models.summary import main as summary_main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
APPS = {"train": "train", "train.prepare": "prepare", "eval": "eval"}
MODULES = r"-m (?:train|train\.prepare|eval|models\.summary)(?=\s|$)"
INLINE = re.compile(r"`((?:torchrun|(?:\.venv/bin/)?python)\b[^`]*?" + MODULES + r"[^`]*)`")
# Placeholders a reader fills in (NAME, ..., [overrides], RUN_T/...), and bare mentions of an app.
PLACEHOLDER = re.compile(r"\bNAME\b|\.\.\.|\[overrides\]|RUN_[A-Z]|zoo/|^python -m eval$")

train.config.register_configs()
eval.config.register_configs()


def shown_commands() -> list[tuple[str, str]]:
    """(doc name, command line) for every documented command of the apps above."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for block in re.findall(r"```bash\n(.*?)```", text, re.S):
            for line in block.replace("\\\n", " ").splitlines():
                found.append((doc.name, line.strip()))
        found += [(doc.name, match) for match in INLINE.findall(text)]
    return [(name, line) for name, line in found if re.search(MODULES, line) and not PLACEHOLDER.search(line)]


def split_command(line: str) -> tuple[str, list[str]]:
    """The module after `-m` and its arguments (shell comments dropped)."""
    tokens = shlex.split(line, comments=True)
    start = next(i for i, t in enumerate(tokens) if t == "-m" and i + 1 < len(tokens) and tokens[i + 1] in
                 (*APPS, "models.summary"))  # fmt: skip
    return tokens[start + 1], tokens[start + 2 :]


def sweep_points(args: list[str]) -> list[list[str]]:
    """A multirun's overrides as single runs: each swept value once, the other sweeps at their first."""
    args = [a for a in args if a != "-m"]
    sweeps = {i: _values(a) for i, a in enumerate(args) if len(_values(a)) > 1}
    if not sweeps:
        return [args]
    points = []
    for index, values in sweeps.items():
        for value in values:
            point = [f"{a.split('=')[0]}={sweeps[i][0]}" if i in sweeps else a for i, a in enumerate(args)]
            point[index] = f"{args[index].split('=')[0]}={value}"
            points.append(point)
    return points


def _values(arg: str) -> list[str]:
    """`key=a,b,c` -> [a, b, c] (commas inside brackets do not split)."""
    if "=" not in arg:
        return [arg]
    value, parts, depth, current = arg.split("=", 1)[1], [], 0, ""
    for ch in value:
        depth += (ch in "[(") - (ch in "])")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


COMMANDS = shown_commands()


def test_the_docs_show_commands() -> None:
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize(("doc", "line"), COMMANDS, ids=[f"{d}:{line[:60]}" for d, line in COMMANDS])
def test_documented_command_composes(doc: str, line: str) -> None:
    module, args = split_command(line)
    if any("$" in a for a in args):
        pytest.skip(f"shell loop variable in {line!r}; its loop body is checked through the other examples")
    if module == "models.summary":
        assert summary_main(args) == 0
        return
    for point in sweep_points(args):
        overrides = [a for a in point if not a.startswith("hydra.")]  # Hydra's own run dirs, not config
        if module == "train":
            overrides.append("output_dir=/tmp/unused")
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(APPS[module], overrides=overrides)
        OmegaConf.to_object(cfg)
