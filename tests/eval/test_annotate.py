"""Annotation: exact categories of chosen tokens in prose, Python, HTML and LaTeX; repeats; the cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from eval_helpers import DOMAINS, HTML, LATEX, PROSE, PYTHON, TEXTS

from eval import annotate as annotate_mod
from eval.annotate import annotate
from eval.repeats import repeat_n

REQUIRED = ["doc_id", "position", "token_id", "token", "char_start", "char_end", "upos", "tag", "word_class",
            "repeat_n", "bracket", "domain", "word", "word_initial", "bracket_type", "is_pronoun", "is_number",
            "is_punct", "is_whitespace", "frequency", "freq_bucket"]  # fmt: skip


@pytest.fixture(scope="module")
def table(tokenizer_file) -> pd.DataFrame:
    return annotate(TEXTS, tokenizer_file, DOMAINS)


def at(table: pd.DataFrame, doc: int, text: str, needle: str, offset: int = 0) -> pd.Series:
    """The row of the token covering character `offset` of the first `needle` in document `doc`."""
    char = text.index(needle) + offset
    rows = table[(table.doc_id == doc) & (table.char_start <= char) & (table.char_end > char)]
    assert len(rows) >= 1, (needle, offset)
    return rows.iloc[0]


def test_columns_and_token_spans(table, tokenizer_file) -> None:
    assert set(REQUIRED) <= set(table.columns)
    assert (
        table.groupby("doc_id")["position"].apply(lambda p: (p.to_numpy() == np.arange(len(p))).all()).all()
    )
    for doc, text in enumerate(TEXTS):
        part = table[table.doc_id == doc]
        assert "".join(part.token) == text  # byte-level offsets tile the text here (ASCII)
        assert set(part.domain) == {DOMAINS[doc]}


def test_prose_categories(table) -> None:
    assert at(table, 0, PROSE, "walked")[["upos", "word_class", "word_initial"]].tolist() == [
        "VERB",
        "content",
        True,
    ]
    assert at(table, 0, PROSE, "slowly")[["upos", "word_class"]].tolist() == ["ADV", "content"]
    assert at(table, 0, PROSE, "The")[["upos", "word_class"]].tolist() == ["DET", "function"]
    there = at(table, 0, PROSE, "there")
    assert (there.tag, there.word_class, there.is_pronoun) == ("EX", "function", True)
    assert at(table, 0, PROSE, "He").is_pronoun
    assert at(table, 0, PROSE, "(")[["bracket", "bracket_type", "is_punct"]].tolist() == [
        "open",
        "round",
        True,
    ]
    assert at(table, 0, PROSE, ")")[["bracket", "bracket_type"]].tolist() == ["close", "round"]
    assert at(table, 0, PROSE, ".").word_class == "other"
    # the second " old man walked slowly" repeats the first (" The" differs from the initial "The")
    second = PROSE.index("The old man walked slowly back") + len("The old man walked ")
    row = table[(table.doc_id == 0) & (table.char_start <= second) & (table.char_end > second)].iloc[0]
    assert row.token == " slowly" and row.repeat_n == 4
    assert at(table, 0, PROSE, "The").repeat_n == 0  # first token of the document


def test_code_and_markup_brackets(table) -> None:
    assert at(table, 1, PYTHON, "(width")[["bracket", "bracket_type"]].tolist() == ["open", "round"]
    assert at(table, 1, PYTHON, "[width")[["bracket", "bracket_type"]].tolist() == ["open", "square"]
    assert at(table, 1, PYTHON, "{")[["bracket", "bracket_type"]].tolist() == ["open", "curly"]
    assert at(table, 1, PYTHON, "}")[["bracket", "bracket_type"]].tolist() == ["close", "curly"]
    assert at(table, 1, PYTHON, "2, 3").is_number
    assert at(table, 1, PYTHON, "\n\n", 1).is_whitespace
    assert at(table, 2, HTML, "div", 0)[["bracket", "bracket_type"]].tolist() == ["open", "html"]
    assert at(table, 2, HTML, "</p", 2)[["bracket", "bracket_type"]].tolist() == [
        "close",
        "html",
    ]  # the tag name
    assert at(table, 2, HTML, "</div", 3).bracket == "close"
    assert at(table, 2, HTML, "br", 0).bracket == "none"  # void element: opens nothing
    assert at(table, 2, HTML, "img", 0).bracket == "none"  # self-closing
    assert at(table, 2, HTML, "class").bracket == "none"  # an attribute is not the tag head
    assert at(table, 3, LATEX, "begin")[["bracket", "bracket_type"]].tolist() == ["open", "latex"]
    assert at(table, 3, LATEX, "end{")[["bracket", "bracket_type"]].tolist() == ["close", "latex"]
    assert at(table, 3, LATEX, "{2}")[["bracket", "bracket_type"]].tolist() == ["open", "curly"]


def test_repeat_n_exact_and_resets_at_groups() -> None:
    ids = np.array([1, 2, 3, 9, 1, 2, 3, 1, 2, 3])
    assert repeat_n(ids, np.zeros(10, dtype=int)).tolist() == [0, 0, 0, 0, 1, 2, 3, 1, 2, 3]
    # a new group (document or window) at index 4 forgets everything before it
    assert repeat_n(ids, np.r_[np.zeros(4, int), np.ones(6, int)]).tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 2, 3]
    long = np.tile(np.arange(20), 2)  # repeats grow to the cap of 16, the study's longest n-gram
    assert repeat_n(long, np.zeros(40, dtype=int))[20:].tolist() == list(range(1, 16)) + [16] * 5
    assert repeat_n(long, np.zeros(40, dtype=int), max_n=8)[20:].tolist() == list(range(1, 8)) + [8] * 13
    with pytest.raises(ValueError, match="max_n 17"):
        repeat_n(ids, np.zeros(10, dtype=int), max_n=17)


def test_frequency_buckets_and_counts(table, tokenizer_file) -> None:
    counts = table.groupby("token_id").size()
    assert (table.frequency.to_numpy() == counts.loc[table.token_id].to_numpy()).all()
    reference = np.zeros(400, dtype=np.int64)
    reference[table.token_id.iloc[0]] = 7
    custom = annotate(TEXTS[:1], tokenizer_file, counts=reference)
    assert custom.frequency.iloc[0] == 7 and custom.freq_bucket.iloc[0] == "top100"
    assert (custom.freq_bucket.iloc[1:] == "unseen").all()
    with pytest.raises(ValueError, match="frequency counts cover 3 ids"):
        annotate(TEXTS[:1], tokenizer_file, counts=np.ones(3, dtype=np.int64))


def test_cache_hit_skips_tagging(tmp_path, tokenizer_file, monkeypatch) -> None:
    first = annotate(TEXTS, tokenizer_file, DOMAINS, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.parquet"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(annotate_mod, "tag_words", fail)
    again = annotate(TEXTS, tokenizer_file, DOMAINS, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(first, again)
    with pytest.raises(AssertionError):  # another corpus is another key
        annotate(TEXTS[:2], tokenizer_file, DOMAINS[:2], cache_dir=tmp_path)


def test_cache_written_under_other_rules_is_not_reused(tmp_path, tokenizer_file, monkeypatch) -> None:
    version = annotate_mod.ANNOTATOR_VERSION
    with monkeypatch.context() as m:
        m.setattr(annotate_mod, "ANNOTATOR_VERSION", "1")  # the rules before UD classes and tag grammar
        annotate(TEXTS[:1], tokenizer_file, cache_dir=tmp_path)
    assert annotate_mod.ANNOTATOR_VERSION == version != "1"
    fresh = annotate(TEXTS[:1], tokenizer_file, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.parquet"))) == 2  # a new key, so a new file, not the stale one
    pd.testing.assert_frame_equal(fresh, annotate(TEXTS[:1], tokenizer_file))


def test_bad_inputs(tokenizer_file) -> None:
    with pytest.raises(ValueError, match="corpus is empty"):
        annotate(["", ""], tokenizer_file)
    with pytest.raises(ValueError, match="2 domains for 1 texts"):
        annotate(["x"], tokenizer_file, ["a", "b"])
    with pytest.raises(ValueError, match="does not exist"):
        annotate(["x"], "/nonexistent/tokenizer.json")


def test_an_unparsable_tokenizer_names_the_file(tmp_path) -> None:
    (tmp_path / "tokenizer.json").write_text('{"model": ')
    with pytest.raises(ValueError, match=r"tokenizer\.json' is not a valid tokenizer\.json"):
        annotate_mod.load_tokenizer(tmp_path)
