"""Composing permutations: the running product in the symmetric group S_n (S_5 by default).

Input: T random permutations of n elements; the answer at position t is the product x_0 x_1 ... x_t
(apply x_0 first). S_5 is not solvable, so no fixed-depth circuit of a constant-depth model of the
usual kind tracks it at every length (Merrill et al. 2024); linear RNNs need products of
generalised Householder transitions with negative eigenvalues (Grazzi et al. 2025). Vocabulary:
the n! permutations in lexicographic order, ids 0..n!-1, inputs and answers alike.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from models.errors import UserError
from train.data.synthetic.common import Task


@dataclass
class S5Config:
    """Knobs of the group task: n, the number of permuted elements (S_n, n! symbols)."""

    n: int = 5


class S5(Task):
    """Running products of permutations; see the module docstring."""

    name = "s5"

    def __init__(self, cfg: S5Config) -> None:
        if not 2 <= cfg.n <= 6:
            raise UserError(f"s5 n={cfg.n} must be in 2..6 (n! symbols); S_5 is the classic case.")
        self.cfg = cfg
        self.perms = np.array(list(itertools.permutations(range(cfg.n))), dtype=np.int64)  # [n!, n]
        index = {tuple(p): i for i, p in enumerate(self.perms.tolist())}
        # compose[a, b]: a then b, i.e. the permutation i -> b[a[i]]
        self.compose = np.array(
            [[index[tuple(b[a])] for b in self.perms] for a in self.perms], dtype=np.int64
        )  # [n!, n!]
        self.vocab_size = len(self.perms)
        self.answer_ids = np.arange(self.vocab_size)

    def example(self, rng: np.random.Generator, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        inputs = rng.integers(0, self.vocab_size, size=seq_len)
        labels = np.empty(seq_len, dtype=np.int64)
        product = 0  # the identity is the first permutation in lexicographic order
        for t, x in enumerate(inputs.tolist()):
            product = self.compose[product, x]
            labels[t] = product
        return inputs.astype(np.int64), labels

    def reference(self, input_ids: np.ndarray) -> np.ndarray:
        """Apply the permutations to the arrangement 0..n-1 one after another and name the result."""
        arrangement, answers = np.arange(self.cfg.n), np.empty(len(input_ids), dtype=np.int64)
        names = {tuple(p): i for i, p in enumerate(self.perms.tolist())}
        for t, x in enumerate(input_ids.tolist()):
            arrangement = self.perms[x][arrangement]
            answers[t] = names[tuple(arrangement.tolist())]
        return answers
