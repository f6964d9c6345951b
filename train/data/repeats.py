"""Verbatim repeats pasted into training rows: more tokens on which in-context copying pays.

Natural text rewards copying from context only rarely (a name, an identifier). With
`RepeatSpans(fraction=f)` a share f of the rows of every global training batch gets one span of its
own text, L tokens long (L uniform in [min_len, max_len]), copied over a later stretch of the same
row: the second copy is predictable only by looking it up, which is what induction heads (and
recurrent state) are for. With `source="random"` the span is first overwritten with
uniformly random ids (every id but the special ones): the pasted stretch is then exactly the
induction score's probe (eval/induction.py) inside natural text, predictable by nothing but copying,
not even by n-gram statistics learned in training. (`experiment=cpu_study` repeats text in every
row; what each setting did for a tiny transformer's induction phase change on the demo corpus:
docs/reproducing-olmo-hybrid.md, section 6.)

Which rows, spans and places is a pure function of (seed, step) drawn for the whole global batch,
so every world size sees the same batches and resume stays exact. Validation data is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.errors import UserError


@dataclass
class RepeatSpans:
    """How many training rows get a repeated span, and how long; fraction 0 turns it off."""

    fraction: float = 0.0  # share of the rows of each global batch that get one repeated span
    min_len: int = 32  # span length in tokens, drawn uniformly in [min_len, max_len]
    max_len: int = 128
    source: str = "text"  # what is repeated: "text" (the row's own) or "random" (uniform random ids)

    def check(self, seq_len: int) -> None:
        """Refuse settings that cannot be drawn in rows of `seq_len + 1` tokens."""
        if not 0.0 <= self.fraction <= 1.0:
            raise UserError(f"trainer.repeat_spans.fraction={self.fraction} must lie in [0, 1].")
        if not 1 <= self.min_len <= self.max_len:
            raise UserError(
                f"trainer.repeat_spans needs 1 <= min_len <= max_len (got {self.min_len}, {self.max_len})."
            )
        if self.fraction > 0 and 2 * self.max_len > seq_len + 1:
            raise UserError(
                f"trainer.repeat_spans.max_len={self.max_len} does not fit twice in seq_len={seq_len}; "
                f"set max_len to at most {(seq_len + 1) // 2}."
            )
        if self.source not in ("text", "random"):
            raise UserError(f"trainer.repeat_spans.source={self.source!r} must be 'text' or 'random'.")


def paste_repeats(
    tokens: np.ndarray,
    spans: RepeatSpans,
    seed: int,
    step: int,
    first_row: int,
    global_rows: int,
    random_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Rows `first_row ...` of global batch `step` ([n, T + 1] tokens) with repeats pasted; a copy.

    The draws cover all `global_rows` rows of the batch, so a rank's slice gets the same pastes as
    the same rows of a single-process run. In each chosen row a span [a, a + L) is copied over
    [b, b + L) with b >= a + L: the first copy stays intact and every token of the second is a
    target that context alone predicts. With `spans.source == "random"` the first copy is drawn
    uniformly from `random_ids` (the ids to use: the vocabulary without its special ids).
    """
    width = tokens.shape[1]
    rng = np.random.default_rng([seed & 0xFFFFFFFF, step, 0x5EED])
    chosen = rng.random(global_rows) < spans.fraction
    lengths = rng.integers(spans.min_len, spans.max_len + 1, size=global_rows)
    placement = rng.random((global_rows, 2))
    if spans.source == "random":
        if random_ids is None or len(random_ids) == 0:
            raise ValueError("repeat_spans.source='random' needs the ids to draw from")
        drawn = random_ids[rng.integers(0, len(random_ids), size=(global_rows, spans.max_len))]
    out = tokens.copy()
    for row in np.flatnonzero(chosen[first_row : first_row + len(tokens)]).tolist():
        length = int(lengths[first_row + row])
        free = width - 2 * length  # tokens outside the two copies: before, between and after them
        source, target_less_length = sorted((placement[first_row + row] * (free + 1)).astype(int).tolist())
        target = target_less_length + length
        if spans.source == "random":
            out[row, source : source + length] = drawn[first_row + row, :length]
        out[row, target : target + length] = out[row, source : source + length]
    return out
