"""Scored-probe examples: a template (intro, query, candidates) around a filler, as token ids.

A probe's generator returns a `Template`; `render` puts a filler of exactly d tokens between the
intro and the query and tokenizes the pieces with the model's tokenizer (`add_special_tokens=False`,
as eval tokenizes documents), preceded by the separator token (eval.score's `prefix_token`). The
model input is then `[sep] + ids(intro) + ids(filler) + ids(query)` followed by one candidate's ids.
This is what the tokenizer makes of the whole text: `render` checks that `encode(text)` and
`encode(text + candidate)` are exactly these ids and draws another filler when a piece boundary
would merge tokens (for instance `.` before `)`), so "d tokens of filler" holds in the model's own
tokenization and every candidate continues the same prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from eval.probes.filler import FillerPool
from models.errors import UserError

MAX_ATTEMPTS = 50


@dataclass
class Template:
    """What a generator writes: the filler goes between `intro` and `query`; candidates continue it."""

    intro: str
    query: str
    candidates: list[str]
    answer: int  # index of the right candidate
    variant: str  # a label of the template's kind (the opener, the queried gender, ...)


@dataclass
class Example:
    """One rendered example: the prefix ids (separator first), each candidate's ids, the text."""

    example: int
    difficulty: int  # the filler's length in tokens
    variant: str
    text: str  # intro + filler + query
    prefix: np.ndarray  # [sep, intro..., filler..., query...] int64
    candidates: list[np.ndarray]  # each [n_k] int64
    answer: int
    filler_start: int  # index in `prefix` of the filler's first token

    @property
    def setting(self) -> str:
        return f"d={self.difficulty}"


def encode(tokenizer: Tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False).ids


def separator_id(tokenizer: Tokenizer, prefix_token: str) -> int:
    """The id of `prefix_token`; ValueError naming the setting otherwise."""
    sep = tokenizer.token_to_id(prefix_token)
    if sep is None:
        raise UserError(
            f"the tokenizer has no token {prefix_token!r}; set score.prefix_token to its BOS/EOS token."
        )
    return sep


def render(
    template: Template, index: int, d: int, pool: FillerPool, tokenizer: Tokenizer, sep: int, seed: int
) -> Example:
    """`template` with a filler of exactly `d` tokens, drawn from `pool` with a seed of (seed, index, d)."""
    intro, query = encode(tokenizer, template.intro), encode(tokenizer, template.query)
    candidates = [encode(tokenizer, c) for c in template.candidates]
    if not all(candidates) or len({tuple(c) for c in candidates}) != len(candidates):
        raise UserError(f"candidates {template.candidates} must be non-empty and tokenize differently.")
    for attempt in range(MAX_ATTEMPTS):
        filler = pool.draw(np.random.default_rng([seed, index, d, attempt]), d)
        text = template.intro + filler.text + template.query
        ids = [*intro, *filler.ids, *query]
        joint = tokenizer.encode_batch(
            [text, *(text + c for c in template.candidates)], add_special_tokens=False
        )
        if joint[0].ids == ids and all(j.ids == ids + c for j, c in zip(joint[1:], candidates)):
            return Example(
                example=index,
                difficulty=d,
                variant=template.variant,
                text=text,
                prefix=np.array([sep, *ids], dtype=np.int64),
                candidates=[np.array(c, dtype=np.int64) for c in candidates],
                answer=template.answer,
                filler_start=1 + len(intro),
            )
    raise UserError(
        f"no filler of {d} tokens joins template {template.intro!r} ... {template.query!r} without merging "
        f"tokens in {MAX_ATTEMPTS} draws; the tokenizer splits these pieces unusually (use another filler)."
    )
