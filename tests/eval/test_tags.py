"""Annotation rules: UD word classes, punctuation and whitespace tokens, and what counts as an HTML tag."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eval import pos
from eval.annotate import annotate
from eval.brackets import BRACKET_TYPES, char_events

PROSE = "Hello   world. The students' books cost 50% more, 42 in all."
CODE = "x = (a == b)  # note\nif x:\n    y += 1\n"


@pytest.fixture(scope="module")
def table(tokenizer_file) -> pd.DataFrame:
    return annotate([PROSE, CODE], tokenizer_file)


def rows(table: pd.DataFrame, doc: int, text: str, needle: str) -> pd.DataFrame:
    """The tokens that overlap the first `needle` in document `doc`."""
    start = text.index(needle)
    end = start + len(needle)
    return table[(table.doc_id == doc) & (table.char_start < end) & (table.char_end > start)]


def test_word_classes_are_universal_dependencies_open_and_closed_classes() -> None:
    content = ["ADJ", "ADV", "INTJ", "NOUN", "PROPN", "VERB"]
    function = ["ADP", "AUX", "CCONJ", "DET", "NUM", "PART", "PRON", "SCONJ"]
    other = ["PUNCT", "SYM", "X", "SPACE"]
    got = pos.word_classes(np.array(content + function + other, dtype=object)).tolist()
    assert got == ["content"] * 6 + ["function"] * 8 + ["other"] * 4


def test_interjections_are_content_and_numerals_function(table) -> None:
    hello = rows(table, 0, PROSE, "Hello").iloc[0]
    assert (hello.upos, hello.word_class) == ("INTJ", "content")
    fifty = rows(table, 0, PROSE, "50")
    assert (fifty.upos == "NUM").all() and (fifty.word_class == "function").all() and fifty.is_number.all()


def test_punctuation_tokens_are_punct_or_sym_never_content(table) -> None:
    code = table[table.doc_id == 1]
    solid = code[~code.is_whitespace & (code.token.str.strip().str.fullmatch(r"[^\w\s]+"))]
    assert set(solid.token.str.strip()) == {"=", "(", ")", "#", ":", "+"}
    assert (solid.word_class == "other").all() and solid.is_punct.all() and not solid.is_number.any()
    by_token = dict(zip(solid.token.str.strip(), zip(solid.upos.astype(str), solid.tag.astype(str))))
    assert by_token["="] == ("SYM", "SYM") and by_token["+"] == ("SYM", "SYM")  # spaCy: NOUN, NUM
    assert by_token["#"] == ("PUNCT", "NFP")  # spaCy: NOUN
    assert by_token["("] == ("PUNCT", "-LRB-")  # spaCy's own PUNCT and tag stand
    percent = rows(table, 0, PROSE, "%").iloc[0]
    assert (percent.upos, percent.word_class) == ("SYM", "other")  # UD lists % as a symbol
    possessive = rows(table, 0, PROSE, "'").iloc[0]
    assert (possessive.upos, possessive.tag, possessive.word_class) == ("PART", "POS", "function")


def test_whitespace_tokens_are_space(table) -> None:
    spaces = table[table.is_whitespace]
    assert len(spaces) >= 10 and (spaces.token.str.strip() == "").all()
    assert (
        (spaces.upos == "SPACE").all()
        and (spaces.tag == "_SP").all()
        and (spaces.word_class == "other").all()
    )
    run = rows(table, 0, PROSE, "   ").iloc[0]  # spaCy gives "Hello" the first space, X before
    assert (run.token, run.upos, run.word_class) == ("  ", "SPACE", "other")
    assert not table[~table.is_whitespace].upos.isin(["SPACE"]).any()


def test_colorsys_has_no_punctuation_among_content_tokens(tokenizer_file) -> None:
    text = Path(colorsys.__file__).read_text()
    t = annotate([text], tokenizer_file, ["python"])
    punct_only = t.token.str.strip().str.fullmatch(r"[\W_]+").to_numpy(bool)
    assert punct_only.sum() > 200
    assert not (punct_only & (t.word_class == "content").to_numpy()).any()
    assert (t[punct_only].upos.isin(["PUNCT", "SYM", "PART"])).all()


def tag_heads(text: str) -> list[tuple[str, int]]:
    """The html-typed runs of `text` with their event: [("<div", 1), ("</div", -1)]."""
    event, kind = char_events(text)
    html = kind == BRACKET_TYPES.index("html")
    edges = np.flatnonzero(np.diff(np.r_[0, html.astype(np.int8), 0]))
    return [(text[a:b], int(event[a])) for a, b in zip(edges[::2], edges[1::2])]


@pytest.mark.parametrize(
    "code",
    [
        "template <typename T>\nT max(T a, T b);",
        "std::vector<int> v; std::vector<std::string> w;",
        "List<String> names = new ArrayList<String>();",
        "if (a<b && c>d) { return; }",
        "if a<b and c>d:\n    pass",
        "a < b > c",
        "x<y",
        "Map<String, List<Integer>> m;",
        "vector< int > v;",
        "x << 2; y <<= 1; p->q; a <= b; a >= b; f = x => x;",
        "#include <map>\n#include <stdio.h>\nimport <vector>;",
        "List<Object> xs; Vec<Option<T>> ys; Array<Table> zs;",
        "mail <user@example.com> or <https://example.com>",
        "fn f<'a>(x: &'a str) -> Box<dyn Error>",
    ],
)
def test_code_angle_brackets_are_not_tags(code) -> None:
    assert tag_heads(code) == []


@pytest.mark.parametrize(
    ("markup", "heads"),
    [
        ('<div class="note">text</div>', [("<div", 1), ("</div", -1)]),
        ("<p>one</p>", [("<p", 1), ("</p", -1)]),
        ("<P>upper</P> <Div>mixed", [("<P", 1), ("</P", -1)]),
        ("line<br>break<br/>and<img src='a.png'/><hr />", []),  # void and self-closing: nothing
        ('<a title="x > y" href=foo.html>link</a>', [("<a", 1), ("</a", -1)]),
        ("<option selected>x <input disabled> <template v-else>", [("<option", 1), ("<template", 1)]),
        ("<!DOCTYPE html><!-- <div> and </p> --><?xml version='1.0'?>", []),
        ("<![CDATA[ <b> ]]><script>if (a<b) s = '<div>';</script>", [("<script", 1), ("</script", -1)]),
        (
            '<book id="1"><my-widget>t</my-widget></book>',
            [("<book", 1), ("<my-widget", 1), ("</my-widget", -1), ("</book", -1)],
        ),
        ("H<sub>2</sub>O", [("<sub", 1), ("</sub", -1)]),
    ],
)
def test_markup_tags(markup, heads) -> None:
    assert tag_heads(markup) == heads
