"""The one scoring table: annotate -> strided windows -> repeat_n over what each target saw.

`python -m eval` (eval.pipeline), the in-loop filtered loss (eval.inloop) and the tests all build
their token table here, so the in-loop `val/loss/<filter>` and the offline report's filtered means
are computed over the same rows, windows and masks by construction.
"""

from __future__ import annotations

import pandas as pd
from tokenizers import Tokenizer

from eval.annotate import annotate
from eval.repeats import repeat_n_in_context
from eval.score import Windows, make_windows
from models.errors import UserError


def prefix_token_id(tokenizer: Tokenizer, token: str, setting: str = "score.prefix_token") -> int:
    """The id of the separator that precedes every document; UserError naming `setting` if absent."""
    prefix_id = tokenizer.token_to_id(token)
    if prefix_id is None:
        raise UserError(f"the tokenizer has no token {token!r}; set {setting} to its BOS/EOS token.")
    return prefix_id


def scoring_table(
    texts: list[str],
    tokenizer: Tokenizer,
    domains: list[str] | None,
    window: int,
    stride: int | None,
    prefix_id: int,
    **annotate_kwargs,
) -> tuple[pd.DataFrame, Windows]:
    """The annotated token table with its scoring windows.

    Adds `window`, `window_pos`, `context_start` (document position of the first document token the
    target saw), `repeat_n` (over document positions [context_start, position]: what the model
    could see) and `repeat_n_doc` (over the whole document, as annotate computes it).
    """
    table = annotate(texts, tokenizer, domains, **annotate_kwargs)
    windows = make_windows(table["doc_id"], table["position"], table["token_id"], window, prefix_id, stride)
    table["window"], table["window_pos"] = windows.window_index, windows.window_pos
    table["context_start"] = windows.context_start
    table["repeat_n_doc"] = table["repeat_n"]
    table["repeat_n"] = repeat_n_in_context(
        table["token_id"].to_numpy(),
        table["doc_id"].to_numpy(),
        table["position"].to_numpy(),
        windows.context_start,
    )
    return table, windows
