"""The in-loop induction score: `val/induction` and `val/induction_acc` at every evaluation, `phase.json` at the end.

Every training run has it by default (`trainer.induction_eval=true` adds
`{_target_: eval.inloop_induction.InductionCallback, threshold: trainer.phase_threshold}` to the
callbacks; `train.callbacks` names it by string, so the training half never imports eval). At fit
start it draws a fixed small batch of `eval.induction` sequences (8 of L = min(64, (seq_len - 1)
// 2) tokens, at least 2, shown twice) from the run's own vocabulary: the prepared data's
tokenizer without its special tokens, after its EOS (the document separator in `manifest.json`),
or a synthetic task's vocabulary (no separator). Scoring them is one forward of 8 sequences of at
most 129 tokens: negligible beside a training step. At fit end rank 0 writes `phase.json`
(`eval.phase`): the first step at which the score reached `threshold` nats, or null.
"""

from __future__ import annotations

import json

import numpy as np

from eval.annotate import load_tokenizer
from eval.induction import induction_score, induction_sequences
from eval.phase import DEFAULT_THRESHOLD, describe_phase, write_phase
from train.data.tokenizer import special_token_ids


class InductionCallback:
    """The trainer callback (`train.callbacks.Callback` hooks) behind `val/induction` and phase.json."""

    def __init__(
        self,
        count: int = 8,
        length: int | None = None,
        seed: int = 0,
        threshold: float = DEFAULT_THRESHOLD,
        batch_size: int = 8,
    ) -> None:
        self.count, self.length, self.seed = count, length, seed
        self.threshold, self.batch_size = threshold, batch_size
        self.sequences: np.ndarray | None = None

    def on_fit_start(self, trainer) -> None:
        if self.sequences is not None:
            return
        # within the training context where it allows two copies of 2+ tokens (all models accept longer)
        length = self.length or max(2, min(64, (trainer.cfg.trainer.seq_len - 1) // 2))
        vocab, special, separator = vocabulary(trainer)
        self.sequences = induction_sequences(vocab, special, length, self.count, self.seed, separator)

    def on_evaluate(self, trainer) -> dict[str, float]:
        if self.sequences is None:
            self.on_fit_start(trainer)
        model = trainer.model
        was_training = model.training
        model.eval()
        try:
            result = induction_score(model, self.sequences, self.batch_size, trainer.world.device)
        finally:
            model.train(was_training)
        return {"val/induction": result["score"], "val/induction_acc": result["second_acc"]}

    def on_fit_end(self, trainer) -> None:
        if trainer.world.is_main:
            print(describe_phase(write_phase(trainer.run_dir, self.threshold)))


def vocabulary(trainer) -> tuple[int, set[int], int | None]:
    """(vocab size, special ids, separator id or None) of the data the trainer trains on."""
    synthetic = trainer.cfg.data.synthetic
    if synthetic is not None:
        return synthetic.build().vocab_size, set(), None
    described = json.loads((trainer.data_path / "manifest.json").read_text())["tokenizer"]
    tokenizer = load_tokenizer(trainer.data_path / described["file"])
    # the tokenizer's own size, as `probes=[induction]` takes it, so both draw the same sequences
    return tokenizer.get_vocab_size(), special_token_ids(tokenizer), int(described["eos_id"])
