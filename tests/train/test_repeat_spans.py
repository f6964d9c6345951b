"""`trainer.repeat_spans`: verbatim repeats pasted into training rows, deterministic and rank-sliced."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from prep_helpers import prepare

from models.errors import UserError
from train.data.loader import TokenSequences, TrainBatches
from train.data.repeats import RepeatSpans, paste_repeats

SPANS = RepeatSpans(fraction=0.5, min_len=4, max_len=12)


@pytest.fixture
def dataset(tmp_path, sources) -> TokenSequences:
    return TokenSequences(prepare(tmp_path, sources, validation_fraction=0.1), 64)


def test_each_chosen_row_gets_one_later_copy_of_its_own_span():
    rows = np.arange(1000 * 65, dtype=np.int64).reshape(1000, 65)  # every token distinct
    out = paste_repeats(rows, SPANS, seed=0, step=7, first_row=0, global_rows=1000)
    changed = 0
    for before, after in zip(rows, out, strict=True):
        where = np.flatnonzero(before != after)
        if len(where) == 0:
            continue
        changed += 1
        target, length = int(where[0]), len(where)
        assert SPANS.min_len <= length <= SPANS.max_len
        assert np.array_equal(where, np.arange(target, target + length))  # one contiguous stretch
        source = int(after[target] - before[0])  # tokens are their own positions
        assert source + length <= target  # the first copy is intact and comes first
        assert np.array_equal(after[target : target + length], before[source : source + length])
    assert 400 < changed < 600  # about half the rows


def test_pastes_are_a_function_of_seed_and_step():
    rows = np.arange(64 * 65, dtype=np.int64).reshape(64, 65)
    again = paste_repeats(rows, SPANS, seed=0, step=3, first_row=0, global_rows=64)
    assert np.array_equal(paste_repeats(rows, SPANS, 0, 3, 0, 64), again)
    assert not np.array_equal(paste_repeats(rows, SPANS, 0, 4, 0, 64), again)
    assert not np.array_equal(paste_repeats(rows, SPANS, 1, 3, 0, 64), again)


def test_batches_carry_the_repeats_consistently(dataset):
    plain = TrainBatches(dataset, 8, seed=0).batch(2)
    repeated = TrainBatches(dataset, 8, seed=0, repeats=SPANS).batch(2)
    inputs, labels = repeated["input_ids"], repeated["labels"]
    assert torch.equal(inputs[:, 1:], labels[:, :-1])  # inputs and targets shift by one as before
    assert (inputs != plain["input_ids"]).any()
    expected_docs = torch.zeros_like(repeated["doc_ids"])
    expected_docs[:, 1:] = torch.cumsum(inputs[:, :-1] == dataset.eos_id, dim=1)
    assert torch.equal(repeated["doc_ids"], expected_docs)


def test_fraction_zero_trains_on_the_data_as_is(dataset):
    plain = TrainBatches(dataset, 8, seed=0).batch(1)
    off = TrainBatches(dataset, 8, seed=0, repeats=RepeatSpans(fraction=0.0)).batch(1)
    assert all(torch.equal(plain[k], off[k]) for k in plain)


def test_random_source_repeats_fresh_random_ids():
    rows = np.arange(1000 * 65, dtype=np.int64).reshape(1000, 65) + 10_000  # no id below 10,000
    pool = np.arange(1, 50)  # ids to draw from: all below 10,000, so every drawn token stands out
    spans = RepeatSpans(fraction=0.5, min_len=4, max_len=12, source="random")
    out = paste_repeats(rows, spans, seed=0, step=7, first_row=0, global_rows=1000, random_ids=pool)
    changed = 0
    for after in out:
        drawn = np.flatnonzero(after < 10_000)
        if len(drawn) == 0:
            continue
        changed += 1
        length = len(drawn) // 2
        assert spans.min_len <= length <= spans.max_len
        first, second = drawn[:length], drawn[length:]
        assert np.array_equal(first, np.arange(first[0], first[0] + length))  # two contiguous stretches
        assert np.array_equal(second, np.arange(second[0], second[0] + length))
        assert np.array_equal(after[first], after[second])  # the second repeats the first
        assert np.isin(after[first], pool).all()
    assert 400 < changed < 600
    # the text source draws the same rows, lengths and places: only what fills the first copy differs
    text = paste_repeats(rows, RepeatSpans(0.5, 4, 12), seed=0, step=7, first_row=0, global_rows=1000)
    assert np.array_equal((text != rows).any(axis=1), (out != rows).any(axis=1))


def test_random_repeats_never_draw_special_ids(dataset):
    spans = RepeatSpans(fraction=1.0, min_len=12, max_len=12, source="random")
    batches = TrainBatches(dataset, 8, seed=0, repeats=spans)
    assert dataset.eos_id not in batches.random_ids
    plain, repeated = TrainBatches(dataset, 8, seed=0).batch(3), batches.batch(3)
    changed = repeated["input_ids"] != plain["input_ids"]
    assert changed.any(dim=1).all()  # every row
    assert not (repeated["input_ids"][changed] == dataset.eos_id).any()


def test_world_sizes_see_the_same_repeated_global_batch(dataset):
    whole = TrainBatches(dataset, 8, seed=0, repeats=SPANS).batch(5)
    halves = [TrainBatches(dataset, 8, 0, rank, 2, repeats=SPANS).batch(5) for rank in (0, 1)]
    for key in whole:
        assert torch.equal(whole[key], torch.cat([h[key] for h in halves]))


def test_resume_refuses_other_repeat_settings(dataset):
    state = TrainBatches(dataset, 8, seed=0, repeats=SPANS).state_dict()
    TrainBatches(dataset, 8, seed=0, repeats=SPANS).load_state_dict(state)
    with pytest.raises(UserError, match="repeat_spans"):
        TrainBatches(dataset, 8, seed=0).load_state_dict(state)
    with pytest.raises(UserError, match="repeat_spans"):
        TrainBatches(dataset, 8, seed=0, repeats=RepeatSpans(0.25, 4, 12)).load_state_dict(state)


@pytest.mark.parametrize(
    ("spans", "message"),
    [
        (RepeatSpans(fraction=1.5), "fraction"),
        (RepeatSpans(fraction=0.5, min_len=8, max_len=4), "min_len <= max_len"),
        (RepeatSpans(fraction=0.5, min_len=4, max_len=40), "at most 32"),
        (RepeatSpans(fraction=0.5, min_len=4, max_len=12, source="noise"), "'text' or 'random'"),
    ],
)
def test_bad_settings_name_the_fix(dataset, spans, message):
    with pytest.raises(UserError, match=message):
        TrainBatches(dataset, 8, seed=0, repeats=spans)
