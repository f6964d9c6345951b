"""The train / validation split by document: a pure function of (seed, source, document index).

Each source's documents are cut into consecutive runs of K = round(1 / fraction) documents and one
document of every run, at a position drawn from a counter-based hash of (seed, source, run), goes
to validation. That holds the validation share at 1/K (within one document), spreads it evenly
over the source (a sorted source is not held out by its tail), needs no look-ahead (streams work),
and lets tokenizer training skip validation documents before any shard is written. A source with
fewer than K documents gets a validation document with probability n/K: raise the fraction for
small sources.
"""

from __future__ import annotations

import numpy as np

from models.errors import UserError
from train.data.hashing import key64, splitmix64


def run_length(fraction: float) -> int:
    """K: one document in K is held out (0 when nothing is)."""
    if not 0.0 <= fraction <= 0.5:
        raise UserError(f"validation_fraction {fraction} is outside [0, 0.5]; use e.g. 0.01.")
    return 0 if fraction == 0 else round(1.0 / fraction)


def validation_mask(doc_index: np.ndarray, fraction: float, seed: int, source: str) -> np.ndarray:
    """True for the documents (by index within their source) that belong to the validation split."""
    k = run_length(fraction)
    doc_index = np.asarray(doc_index, dtype=np.uint64)
    if k == 0:
        return np.zeros(doc_index.shape, dtype=bool)
    runs = doc_index // np.uint64(k)
    chosen = splitmix64(runs ^ key64("split", seed, source)) % np.uint64(k)
    return doc_index % np.uint64(k) == chosen
