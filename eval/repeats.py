"""Local repetition: how long an n-gram ending at each token already occurred earlier in its group.

`repeat_n[i]` is the largest n <= `max_n` such that tokens[i-n+1 .. i] occurred, in the same order,
ending at some j < i inside the same group (a document, or what one scoring window saw of it), else 0.
Groups are what the model could see: repetition never reaches across a document start, and
`repeat_n_in_context` limits it to the document tokens a scoring window fed the model.

Repeats are nested (a repeated n-gram ends in a repeated (n-1)-gram), so `repeat_n` is the number
of n in 1..max_n whose n-gram ending here is not its first occurrence in the group. Each n-gram is
hashed to 64 bits with the group id (wrapping arithmetic, random odd multipliers); a collision
needs ~2^32 distinct n-grams in one call.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.errors import UserError

MAX_N = 16  # the study measured repeats up to 16-grams; int8 holds the count
_MULTIPLIERS = np.random.default_rng(0x5EED).integers(1, 2**63, size=MAX_N + 1, dtype=np.uint64) | np.uint64(
    1
)


def repeat_n(token_ids: np.ndarray, group_ids: np.ndarray, max_n: int = MAX_N) -> np.ndarray:
    """`repeat_n` per token [N] for tokens in reading order with their group ids [N] (groups contiguous)."""
    if not 1 <= max_n <= MAX_N:
        raise UserError(f"max_n {max_n} is outside 1..{MAX_N}; pick a value in that range.")
    tokens = np.asarray(token_ids, dtype=np.uint64)
    groups = np.asarray(group_ids, dtype=np.int64)
    n_tok = len(tokens)
    out = np.zeros(n_tok, dtype=np.int8)
    if n_tok == 0:
        return out
    # index of each token within its group: an n-gram ending at i exists iff offset >= n - 1
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    offset = np.arange(n_tok) - np.repeat(starts, np.diff(np.r_[starts, n_tok]))
    with np.errstate(over="ignore"):
        key = groups.astype(np.uint64) * _MULTIPLIERS[0]
        for n in range(1, max_n + 1):
            shifted = np.zeros(n_tok, dtype=np.uint64)
            shifted[n - 1 :] = tokens[: n_tok - n + 1]
            key = key * _MULTIPLIERS[n] + shifted + np.uint64(1)
            valid = offset >= n - 1
            seen = pd.Series(np.where(valid, key, np.uint64(0))).duplicated().to_numpy()
            hit = seen & valid
            if not hit.any():
                break
            out += hit
    return out


def repeat_n_in_context(
    token_ids: np.ndarray, doc_ids: np.ndarray, positions: np.ndarray, context_start: np.ndarray,
    max_n: int = MAX_N,
) -> np.ndarray:  # fmt: skip
    """`repeat_n` per token [N] counting only the document tokens at positions [context_start, position].

    Rows are whole documents in position order (0..L-1). Each contiguous run of rows sharing a
    document and a `context_start` (a scoring window's targets) is one group whose tokens are the
    document's positions context_start .. the run's last position, so an n-gram is repeated only if
    it and its earlier occurrence both lie inside what the model saw; the separator is never a token.
    """
    tokens = np.asarray(token_ids)
    docs, pos = np.asarray(doc_ids), np.asarray(positions, dtype=np.int64)
    start = np.asarray(context_start, dtype=np.int64)
    n_tok = len(tokens)
    if n_tok == 0:
        return np.zeros(0, dtype=np.int8)
    doc_first = np.arange(n_tok) - pos  # row of each row's document position 0
    runs = np.flatnonzero(np.r_[True, (docs[1:] != docs[:-1]) | (start[1:] != start[:-1])])
    run_last = np.r_[runs[1:], n_tok] - 1
    seg_first = doc_first[runs] + start[runs]  # row of each group's first context token
    seg_len = run_last - seg_first + 1
    if (seg_len < 1).any() or (start[runs] > pos[runs]).any():
        raise ValueError(
            "context_start must lie in 0..position of each row; pass the rows make_windows gave."
        )
    seg_offsets = np.r_[0, np.cumsum(seg_len)]
    rows = np.repeat(seg_first - seg_offsets[:-1], seg_len) + np.arange(seg_offsets[-1])  # [sum seg_len]
    grouped = repeat_n(tokens[rows], np.repeat(np.arange(len(runs)), seg_len), max_n)
    run_of_row = np.repeat(np.arange(len(runs)), np.diff(np.r_[runs, n_tok]))
    return grouped[seg_offsets[run_of_row] + (np.arange(n_tok) - seg_first[run_of_row])]
