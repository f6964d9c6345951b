"""Running parity of a bit string (the state-tracking task of Grazzi et al., ICLR 2025).

Input: T random bits; the answer at position t is the parity (XOR) of bits 0..t, so every position
is asked and training at length T covers every length up to T. A test at a longer length asks the
parity of the whole string at its last position. A linear RNN solves this at any length only if its
state transition can flip sign (an eigenvalue of -1): Gated DeltaNet's `allow_neg_eigval`.
Vocabulary: the bits 0 and 1, which are also the answers (even 0, odd 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.errors import UserError
from train.data.synthetic.common import Task


@dataclass
class ParityConfig:
    """Knobs of parity: the probability of a 1 bit."""

    p_one: float = 0.5


class Parity(Task):
    """Running-parity examples; see the module docstring."""

    name = "parity"
    vocab_size = 2

    def __init__(self, cfg: ParityConfig) -> None:
        if not 0.0 < cfg.p_one < 1.0:
            raise UserError(f"parity p_one={cfg.p_one} must lie strictly between 0 and 1.")
        self.cfg = cfg
        self.answer_ids = np.arange(2)

    def example(self, rng: np.random.Generator, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        bits = (rng.random(seq_len) < self.cfg.p_one).astype(np.int64)
        return bits, np.cumsum(bits) % 2

    def reference(self, input_ids: np.ndarray) -> np.ndarray:
        answers, odd = np.empty(len(input_ids), dtype=np.int64), 0
        for t, bit in enumerate(input_ids.tolist()):
            odd ^= bit
            answers[t] = odd
        return answers
