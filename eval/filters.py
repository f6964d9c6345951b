"""Named boolean token filters and the small expression language that combines them.

A filter maps the token table (`eval.annotate` columns, plus scoring columns) to a boolean mask.
Names resolve, in order, to:
- user filters: pandas expressions (`"word_class == 'content' and repeat_n < 2"`, evaluated with
  `DataFrame.eval`) or Python callables (`table -> mask`, or `"module:function"` strings in YAML);
- built-ins: `all`, `content`, `function`, `other`, `no_copy` (completes no repeated n-gram,
  `repeat_n == 0`), `copyN` (completes a repeated N-gram, `repeat_n >= N`, N = 1..16), `copyN_exact`
  (`repeat_n == N`: repeated N-gram, but not N+1; `copy16_exact` = `copy16`, as `repeat_n` stops at
  16), `open_bracket`, `close_bracket`, `bracket`,
  `word_initial`, `subword` (a word's non-initial piece), `pronoun`, `number`, `punct`, `whitespace`;
- names derived from the table: `domain_<d>`, `upos_<UPOS>`, `tag_<TAG>`, `bracket_<type>`,
  `freq_<bucket>` (characters other than letters, digits and `_` become `_`: `tag__LRB_`).

Expressions combine names with `&`, `|`, `~` and parentheses: `content & no_copy`,
`~function`, `(open_bracket | close_bracket) & domain_python`. They are parsed with `ast`, never
`eval`ed, so a filter string cannot run code.

`favoured_tags` selects the study's data-driven filter: the k open-class fine tags with the largest
mean gap in a reference comparison; `Filters.add_tag_set` registers "those tags ∩ NO-COPY".
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from eval.repeats import MAX_N
from models.errors import UserError

FilterFn = Callable[[pd.DataFrame], "np.ndarray | pd.Series"]


def _col(name: str, value: object) -> FilterFn:
    return lambda t: (t[name] == value).to_numpy(bool)


def _builtins() -> dict[str, FilterFn]:
    builtins: dict[str, FilterFn] = {
        "all": lambda t: np.ones(len(t), dtype=bool),
        "content": _col("word_class", "content"),
        "function": _col("word_class", "function"),
        "other": _col("word_class", "other"),
        "no_copy": lambda t: (t["repeat_n"] == 0).to_numpy(bool),
        "open_bracket": _col("bracket", "open"),
        "close_bracket": _col("bracket", "close"),
        "bracket": lambda t: (t["bracket"] != "none").to_numpy(bool),
        "word_initial": lambda t: t["word_initial"].to_numpy(bool),
        "subword": lambda t: ~t["word_initial"].to_numpy(bool) & ~t["is_whitespace"].to_numpy(bool),
        "pronoun": lambda t: t["is_pronoun"].to_numpy(bool),
        "number": lambda t: t["is_number"].to_numpy(bool),
        "punct": lambda t: t["is_punct"].to_numpy(bool),
        "whitespace": lambda t: t["is_whitespace"].to_numpy(bool),
    }
    for n in range(1, MAX_N + 1):
        builtins[f"copy{n}"] = lambda t, n=n: (t["repeat_n"] >= n).to_numpy(bool)
        builtins[f"copy{n}_exact"] = lambda t, n=n: (t["repeat_n"] == n).to_numpy(bool)
    return builtins


BUILTINS = _builtins()
_COPY_NAME = re.compile(r"copy\d+(_exact)?")
_DERIVED = {
    "domain": "domain",
    "upos": "upos",
    "tag": "tag",
    "bracket": "bracket_type",
    "freq": "freq_bucket",
}


def safe_name(value: object) -> str:
    """A category value as it appears in a derived filter name (`-LRB-` -> `_LRB_`)."""
    return re.sub(r"\W", "_", str(value))


class Filters:
    """A registry of named filters (built-ins plus user ones) that evaluates filter expressions."""

    def __init__(
        self, queries: dict[str, str] | None = None, functions: dict[str, FilterFn | str] | None = None
    ) -> None:
        self.user: dict[str, FilterFn] = {}
        for name, query in (queries or {}).items():
            self.add(name, _query_filter(name, query))
        for name, fn in (functions or {}).items():
            self.add(name, _import_callable(name, fn) if isinstance(fn, str) else fn)

    def add(self, name: str, fn: FilterFn) -> None:
        """Register `fn` under `name`; user names shadow built-ins."""
        if not name.isidentifier():
            raise UserError(f"filter name {name!r} is not an identifier; use letters, digits and '_'.")
        self.user[name] = fn

    def add_tag_set(self, name: str, tags: list[str]) -> None:
        """Register `name` = content tokens whose fine tag is in `tags`, restricted to NO-COPY."""
        tag_set = set(tags)
        self.add(
            name,
            lambda t: (
                t["tag"].astype(str).isin(tag_set).to_numpy(bool)
                & BUILTINS["content"](t)
                & BUILTINS["no_copy"](t)
            ),
        )

    def known(self, table: pd.DataFrame) -> list[str]:
        """Every name an expression may use on `table`."""
        derived = [
            f"{prefix}_{safe_name(v)}"
            for prefix, column in _DERIVED.items()
            if column in table
            for v in _values(table[column])
        ]
        return [*self.user, *BUILTINS, *derived]

    def mask(self, expression: str, table: pd.DataFrame) -> np.ndarray:
        """The boolean mask [len(table)] of a filter expression."""
        try:
            tree = ast.parse(expression.strip(), mode="eval").body
        except SyntaxError:
            raise UserError(
                f"filter {expression!r} does not parse; combine names with &, |, ~ and parentheses."
            ) from None
        return np.asarray(self._eval(tree, expression, table), dtype=bool)

    def _eval(self, node: ast.AST, expression: str, table: pd.DataFrame) -> np.ndarray:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd | ast.BitOr):
            left, right = self._eval(node.left, expression, table), self._eval(node.right, expression, table)
            return left & right if isinstance(node.op, ast.BitAnd) else left | right
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
            return ~self._eval(node.operand, expression, table)
        if isinstance(node, ast.Name):
            return self._named(node.id, table)
        raise UserError(
            f"filter {expression!r} uses {ast.unparse(node)!r}; only names, &, |, ~ and parentheses are "
            "allowed (put comparisons in a named query filter)."
        )

    def _named(self, name: str, table: pd.DataFrame) -> np.ndarray:
        fn = self.user.get(name) or BUILTINS.get(name)
        if fn is not None:
            mask = np.asarray(fn(table), dtype=bool)
            if mask.shape != (len(table),):
                raise UserError(f"filter {name!r} returned shape {mask.shape}, not ({len(table)},); fix it.")
            return mask
        prefix, _, value = name.partition("_")
        column = _DERIVED.get(prefix)
        if column in table:
            matches = [v for v in _values(table[column]) if safe_name(v) == value]
            if matches:
                return table[column].astype(str).isin([str(v) for v in matches]).to_numpy(bool)
        renamed = re.fullmatch(r"copy(\d+)_only", name)
        if renamed:
            n = renamed.group(1)
            raise UserError(
                f"filter {name!r} is now copy{n}_exact (repeat_n == {n}); copy{n} is repeat_n >= {n}."
            )
        known = [n for n in self.known(table) if not _COPY_NAME.fullmatch(n)]
        known.append(f"copy1..copy{MAX_N}, copy1_exact..copy{MAX_N}_exact")
        raise UserError(f"unknown filter {name!r}; known filters: {', '.join(known)}.")


def _values(column: pd.Series) -> list:
    values = column.cat.categories if isinstance(column.dtype, pd.CategoricalDtype) else column.unique()
    return [v for v in values if str(v) != ""]


def _query_filter(name: str, query: str) -> FilterFn:
    def fn(table: pd.DataFrame) -> np.ndarray:
        try:
            return np.asarray(table.eval(query, engine="python"), dtype=bool)
        except Exception as e:  # pandas raises many types for a bad expression
            raise UserError(f"query filter {name!r} ({query!r}) failed: {e}; fix the expression.") from None

    return fn


def _import_callable(name: str, spec: str) -> FilterFn:
    module, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        raise UserError(
            f"filter {name!r}: cannot import {spec!r}; give it as 'package.module:function'."
        ) from None


def favoured_tags(table: pd.DataFrame, gap: np.ndarray, k: int = 10, min_count: int = 20) -> list[str]:
    """The `k` fine tags of content tokens with the largest mean `gap`, among tags with >= `min_count` tokens."""
    content = BUILTINS["content"](table)
    frame = pd.DataFrame(
        {"tag": table["tag"].astype(str).to_numpy()[content], "gap": np.asarray(gap)[content]}
    )
    stats = frame.groupby("tag")["gap"].agg(["mean", "size"])
    stats = stats[stats["size"] >= min_count].sort_values("mean", ascending=False, kind="stable")
    return stats.index[:k].tolist()
