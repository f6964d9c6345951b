"""The induction score: its sequences, and what it gives for a model that copies and one that cannot."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from eval.annotate import load_tokenizer
from eval.induction import induction_score, induction_sequences, sequence_scores
from eval.inloop_induction import InductionCallback, vocabulary
from eval.score import load_model
from models.errors import UserError
from train.data.tokenizer import special_token_ids

VOCAB = 1000


def copier(ids: torch.Tensor) -> torch.Tensor:
    """An ideal induction head: at each position, predict what followed the last earlier occurrence of
    the current token (uniform when there is none)."""
    logits = torch.zeros(*ids.shape, VOCAB)
    for b, row in enumerate(ids.tolist()):
        last: dict[int, int] = {}
        for p, token in enumerate(row):
            if token in last:
                logits[b, p, row[last[token] + 1]] = 12.0
            last[token] = p
    return logits


def uniform(ids: torch.Tensor) -> torch.Tensor:
    return torch.zeros(*ids.shape, VOCAB)


def test_sequences_repeat_random_ids_after_the_separator_without_special_ids() -> None:
    special = set(range(0, VOCAB, 2))  # half the vocabulary: would be drawn often if not excluded
    ids = induction_sequences(VOCAB, special, length=16, count=5, seed=3, separator=0)
    assert ids.shape == (5, 33) and ids.dtype == np.int64
    assert (ids[:, 0] == 0).all()
    assert (ids[:, 1:17] == ids[:, 17:]).all()
    assert not set(ids[:, 1:].ravel().tolist()) & special
    assert len(np.unique(ids[:, 1:17])) > 40  # random, not a constant


def test_sequences_depend_on_seed_but_not_on_count() -> None:
    few = induction_sequences(VOCAB, set(), 8, 2, seed=0)
    many = induction_sequences(VOCAB, set(), 8, 6, seed=0)
    assert few.shape == (2, 16)  # no separator: the first copy starts the sequence
    assert (many[:2] == few).all()
    assert not (induction_sequences(VOCAB, set(), 8, 2, seed=1) == few).all()


def test_score_of_an_ideal_copier_is_log_vocab_and_of_a_uniform_model_zero() -> None:
    ids = induction_sequences(VOCAB, {0}, length=32, count=6, seed=0, separator=0)
    copy = induction_score(copier, ids, batch_size=4)
    assert copy["first_loss"] >= math.log(VOCAB) - 1e-6  # chance repeats in the first copy mislead it
    assert copy["second_loss"] < 0.3 and copy["second_acc"] > 0.95  # the same chance repeats
    assert copy["score"] == pytest.approx(copy["first_loss"] - copy["second_loss"])
    assert copy["score"] > 6.5  # about log(vocab)
    flat = induction_score(uniform, ids)
    assert flat["score"] == pytest.approx(0.0, abs=1e-9)


def test_per_sequence_scores_score_tokens_two_to_L_of_each_copy() -> None:
    """Only the second copy's tokens 2..L: its first token follows x_L, which a copier maps to the
    second copy's own start, not to anything predictable."""
    ids = induction_sequences(VOCAB, {0}, length=4, count=1, seed=0, separator=0)

    def only_second_copy_tail(x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(*x.shape, VOCAB)
        for p in (5, 6, 7):  # predict tokens 2..4 of the second copy (input positions 6..8)
            logits[0, p, x[0, p + 1]] = 50.0
        return logits

    scores = sequence_scores(only_second_copy_tail, ids)
    assert scores["second_acc"][0] == 1.0 and scores["second_loss"][0] < 1e-6
    assert scores["first_loss"][0] == pytest.approx(math.log(VOCAB))


def test_untrained_model_scores_about_zero(tiny_models) -> None:
    model = load_model(tiny_models["transformer"], torch.device("cpu"), torch.float32)
    ids = induction_sequences(model.vocab_size, {0}, length=32, count=8, seed=0, separator=0)
    result = induction_score(model.forward, ids)
    assert abs(result["score"]) < 0.1
    assert result["second_acc"] < 0.05


def test_special_token_ids_are_the_tokenizers_special_tokens(tokenizer_file) -> None:
    assert special_token_ids(load_tokenizer(tokenizer_file)) == {0}  # <|endoftext|>


def test_bad_lengths_and_vocabularies_are_user_errors() -> None:
    with pytest.raises(UserError, match="length 1"):
        induction_sequences(VOCAB, set(), length=1, count=2)
    with pytest.raises(UserError, match="non-special"):
        induction_sequences(2, {0}, length=4, count=2)


def synthetic_trainer(seq_len: int) -> SimpleNamespace:
    task = SimpleNamespace(build=lambda: SimpleNamespace(vocab_size=257))
    return SimpleNamespace(
        cfg=SimpleNamespace(trainer=SimpleNamespace(seq_len=seq_len), data=SimpleNamespace(synthetic=task))
    )


@pytest.mark.parametrize(("seq_len", "length"), [(512, 64), (101, 50), (4, 2)])
def test_in_loop_sequences_of_a_synthetic_task_use_its_vocabulary_without_separator(seq_len, length) -> None:
    trainer = synthetic_trainer(seq_len)
    assert vocabulary(trainer) == (257, set(), None)
    callback = InductionCallback()
    callback.on_fit_start(trainer)
    assert callback.sequences.shape == (8, 2 * length) and callback.sequences.max() < 257
    assert (callback.sequences[:, :length] == callback.sequences[:, length:]).all()
