"""Local repetition: how long an n-gram ending at each token already occurred earlier in its group.

`repeat_n[i]` is the largest n <= `max_n` such that tokens[i-n+1 .. i] occurred, in the same order,
ending at some j < i inside the same group (a document, or a scoring window of a document), else 0.
Groups are what the model could see: repetition never reaches across a document start or, when
documents are cut into scoring windows, across a window start.

Repeats are nested (a repeated n-gram ends in a repeated (n-1)-gram), so `repeat_n` is the number
of n in 1..max_n whose n-gram ending here is not its first occurrence in the group. Each n-gram is
hashed to 64 bits with the group id (wrapping arithmetic, random odd multipliers); a collision
needs ~2^32 distinct n-grams in one call.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAX_N = 16  # the study measured repeats up to 16-grams; int8 holds the count
_MULTIPLIERS = np.random.default_rng(0x5EED).integers(1, 2**63, size=MAX_N + 1, dtype=np.uint64) | np.uint64(
    1
)


def repeat_n(token_ids: np.ndarray, group_ids: np.ndarray, max_n: int = MAX_N) -> np.ndarray:
    """`repeat_n` per token [N] for tokens in reading order with their group ids [N] (groups contiguous)."""
    if not 1 <= max_n <= MAX_N:
        raise ValueError(f"max_n {max_n} is outside 1..{MAX_N}; pick a value in that range.")
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
