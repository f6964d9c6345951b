"""Synthetic tasks (train.data.synthetic): determinism, the structure they claim, and batches per rank."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from train.data.synthetic import IGNORE, MQARConfig, ParityConfig, S5Config, build_task
from train.data.synthetic.batches import SyntheticBatches, SyntheticSequences, synthetic_validation_batches

CASES = {
    "mqar": (MQARConfig(keys=32, values=16, pairs_min=2, pairs_max=12), 40),
    "parity": (ParityConfig(), 33),
    "s5": (S5Config(), 17),
}


@pytest.mark.parametrize("name", CASES)
def test_examples_are_a_pure_function_of_split_seed_and_index(name: str) -> None:
    cfg, seq_len = CASES[name]
    task = build_task(name, cfg)
    batch = task.generate("train", 3, np.arange(10), seq_len)
    again = task.generate("train", 3, np.array([7, 2]), seq_len)
    assert np.array_equal(again["input_ids"], batch["input_ids"][[7, 2]])
    assert np.array_equal(again["labels"], batch["labels"][[7, 2]])
    for other in (
        task.generate("train", 4, np.arange(10), seq_len),
        task.generate("validation", 3, np.arange(10), seq_len),
    ):
        assert not np.array_equal(other["input_ids"], batch["input_ids"])
    assert batch["input_ids"].max() < task.vocab_size and batch["input_ids"].min() >= 0
    asked = batch["labels"][batch["labels"] != IGNORE]
    assert np.isin(asked, task.answer_ids).all()


@pytest.mark.parametrize("name", CASES)
def test_every_answer_is_what_the_prefix_determines(name: str) -> None:
    """The reference solver reads only the inputs (and, at position t, only inputs 0..t)."""
    cfg, seq_len = CASES[name]
    task = build_task(name, cfg)
    batch = task.generate("train", 0, np.arange(50), seq_len)
    for inputs, labels in zip(batch["input_ids"], batch["labels"], strict=True):
        assert np.array_equal(task.reference(inputs), labels)
        t = seq_len // 2
        assert np.array_equal(task.reference(inputs[: t + 1]), labels[: t + 1])


def test_mqar_layout_pairs_then_every_key_queried_once() -> None:
    cfg, seq_len = CASES["mqar"]
    task = build_task("mqar", cfg)
    batch = task.generate("train", 1, np.arange(200), seq_len)
    seen_pairs = set()
    for inputs, labels in zip(batch["input_ids"], batch["labels"], strict=True):
        queries = np.flatnonzero(labels != IGNORE)
        pairs = len(queries)
        seen_pairs.add(pairs)
        keys, values = inputs[0 : 2 * pairs : 2], inputs[1 : 2 * pairs : 2]
        assert len(set(keys.tolist())) == pairs and (keys <= cfg.keys).all() and (values > cfg.keys).all()
        assert queries.min() >= 2 * pairs and sorted(inputs[queries].tolist()) == sorted(keys.tolist())
        rest = np.setdiff1d(np.arange(2 * pairs, seq_len), queries)
        assert (inputs[rest] == 0).all()
    assert seen_pairs == set(range(cfg.pairs_min, cfg.pairs_max + 1))


def test_parity_and_s5_ask_every_position() -> None:
    parity = build_task("parity", ParityConfig()).generate("train", 0, np.arange(4), 64)
    assert np.array_equal(parity["labels"], np.cumsum(parity["input_ids"], axis=1) % 2)
    s5 = build_task("s5", S5Config())
    assert s5.vocab_size == 120 and (s5.compose[0] == np.arange(120)).all()  # 0 is the identity
    batch = s5.generate("train", 0, np.arange(4), 16)
    assert (batch["labels"][:, 0] == batch["input_ids"][:, 0]).all()


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_rank_slices_make_up_the_same_global_batch(world_size: int) -> None:
    cfg, seq_len = CASES["mqar"]
    dataset = SyntheticSequences(build_task("mqar", cfg), cfg, seq_len, seed=5)
    single = SyntheticBatches(dataset, 8, seed=5).batch(3)
    ranks = [SyntheticBatches(dataset, 8, 5, rank, world_size).batch(3) for rank in range(world_size)]
    for key in single:
        assert torch.equal(torch.cat([r[key] for r in ranks]), single[key])


def test_state_dict_resumes_and_refuses_other_data() -> None:
    cfg, seq_len = CASES["parity"]
    task = build_task("parity", cfg)
    batches = SyntheticBatches(SyntheticSequences(task, cfg, seq_len, seed=0), 4, seed=0)
    stream = iter(batches)
    [next(stream) for _ in range(3)]
    resumed = SyntheticBatches(SyntheticSequences(task, cfg, seq_len, seed=0), 4, seed=0)
    resumed.load_state_dict(batches.state_dict())
    assert torch.equal(next(iter(resumed))["input_ids"], next(stream)["input_ids"])
    other = SyntheticBatches(SyntheticSequences(task, cfg, seq_len + 1, seed=0), 4, seed=0)
    with pytest.raises(ValueError, match="comes from other data"):
        other.load_state_dict(batches.state_dict())


def test_validation_examples_are_held_out() -> None:
    cfg, seq_len = CASES["s5"]
    task = build_task("s5", cfg)
    train = SyntheticSequences(task, cfg, seq_len, seed=0).gather(np.arange(16))["input_ids"]
    validation = next(synthetic_validation_batches(task, cfg, seq_len, 16, seed=0))["input_ids"]
    assert not any(torch.equal(v, t) for v in validation for t in train)


@pytest.mark.parametrize(
    ("name", "cfg", "seq_len", "message"),
    [
        ("mqar", MQARConfig(pairs_min=5, pairs_max=4), 64, "pairs range"),
        ("mqar", MQARConfig(keys=8, pairs_max=9), 64, "keys"),
        ("mqar", MQARConfig(pairs_max=30), 64, "seq_len >= 90"),
        ("parity", ParityConfig(p_one=1.0), 8, "p_one"),
        ("s5", S5Config(n=9), 8, "n=9"),
    ],
)
def test_bad_knobs_fail_with_one_clear_line(name, cfg, seq_len, message) -> None:
    with pytest.raises(ValueError, match=message):
        build_task(name, cfg).generate("train", 0, np.arange(1), seq_len)
