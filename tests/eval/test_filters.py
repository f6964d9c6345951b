"""Filters: built-ins, derived names, expressions, user queries and callables, the favoured-tag filter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eval.filters import Filters, favoured_tags


def tokens() -> pd.DataFrame:
    return pd.DataFrame({
        "doc_id": [0, 0, 0, 1, 1, 1],
        "word_class": pd.Categorical(["content", "function", "content", "other", "content", "function"]),
        "repeat_n": np.array([0, 1, 5, 0, 2, 0], dtype=np.int8),
        "bracket": pd.Categorical(["none", "open", "none", "close", "none", "none"]),
        "bracket_type": pd.Categorical(["none", "round", "none", "html", "none", "none"]),
        "domain": pd.Categorical(["prose", "prose", "prose", "my-code", "my-code", "my-code"]),
        "upos": pd.Categorical(["NOUN", "ADP", "ADJ", "PUNCT", "NOUN", "DET"]),
        "tag": pd.Categorical(["NN", "IN", "JJ", "-LRB-", "NN", "DT"]),
        "word_initial": [True, True, False, True, True, True],
        "is_whitespace": [False] * 6,
    })  # fmt: skip


def test_builtins_and_expressions() -> None:
    t, f = tokens(), Filters()
    assert f.mask("content", t).tolist() == [True, False, True, False, True, False]
    assert f.mask("content & no_copy", t).tolist() == [True, False, False, False, False, False]
    assert f.mask("~function", t).tolist() == [True, False, True, True, True, False]
    assert f.mask("(open_bracket | close_bracket) & domain_my_code", t).tolist() == [
        False,
        False,
        False,
        True,
        False,
        False,
    ]
    assert f.mask("copy2", t).tolist() == [False, False, True, False, True, False]
    assert f.mask("copy5_exact", t).tolist() == [False, False, True, False, False, False]
    assert f.mask("copy1", t).tolist() == [False, True, True, False, True, False]
    assert f.mask("copy1_exact", t).tolist() == [False, True, False, False, False, False]
    assert f.mask("tag__LRB_ | upos_ADJ", t).tolist() == [False, False, True, True, False, False]
    assert f.mask("bracket_html", t).tolist() == [False, False, False, True, False, False]
    assert f.mask("subword", t).tolist() == [False, False, True, False, False, False]


def test_copy_filters_reach_the_repeat_cap_of_16() -> None:
    t = pd.DataFrame({"repeat_n": np.array([0, 5, 8, 9, 12, 16], dtype=np.int8)})
    f = Filters()
    assert f.mask("copy5", t).tolist() == [False, True, True, True, True, True]  # the study's COPY-5-ONLY
    assert f.mask("copy8", t).tolist() == [False, False, True, True, True, True]
    assert f.mask("copy8_exact", t).tolist() == [False, False, True, False, False, False]
    assert f.mask("copy16", t).tolist() == f.mask("copy16_exact", t).tolist() == [False] * 5 + [True]
    with pytest.raises(ValueError, match=r"'copy5_only' is now copy5_exact \(repeat_n == 5\); copy5 is"):
        f.mask("copy5_only", t)
    with pytest.raises(
        ValueError, match="unknown filter 'copy17'.*, copy1..copy16, copy1_exact..copy16_exact.$"
    ):
        f.mask("copy17", t)


def test_user_queries_and_callables() -> None:
    t = tokens()
    f = Filters(queries={"early": "doc_id == 0 and repeat_n < 2"}, functions={"first": "numpy:ones_like"})
    assert f.mask("early & content", t).tolist() == [True, False, False, False, False, False]
    f.add("second_doc", lambda table: table["doc_id"].to_numpy() == 1)
    assert f.mask("second_doc & ~early", t).sum() == 3
    with pytest.raises(ValueError, match="cannot import 'nope:x'"):
        Filters(functions={"bad": "nope:x"})
    with pytest.raises(ValueError, match="query filter 'oops'"):
        Filters(queries={"oops": "no_such_column > 1"}).mask("oops", t)


def test_unknown_and_unsafe_expressions_fail_with_the_known_names() -> None:
    t, f = tokens(), Filters()
    with pytest.raises(ValueError, match=r"unknown filter 'contnet'; known filters: all, content, function"):
        f.mask("contnet & no_copy", t)
    with pytest.raises(ValueError, match="only names, &, |, ~"):
        f.mask("__import__('os').system('true')", t)
    with pytest.raises(ValueError, match="does not parse"):
        f.mask("content &", t)
    assert "domain_my_code" in f.known(t) and "tag_NN" in f.known(t)


def test_favoured_tags_rank_open_class_tags_by_gap() -> None:
    t = pd.DataFrame({
        "tag": ["JJ"] * 4 + ["NN"] * 4 + ["RB"] * 2 + ["IN"] * 4,
        "word_class": ["content"] * 10 + ["function"] * 4,
        "repeat_n": [0, 3, 0, 0] + [0] * 10,
    })  # fmt: skip
    gap = np.array([0.5] * 4 + [0.1] * 4 + [0.9] * 2 + [2.0] * 4)
    assert favoured_tags(t, gap, k=2, min_count=3) == ["JJ", "NN"]  # RB too rare, IN not open-class
    f = Filters()
    f.add_tag_set("top", ["JJ"])
    assert f.mask("top", t).tolist() == [True, False, True, True] + [False] * 10
