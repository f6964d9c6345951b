"""Loading: packed sequences, document boundaries, and the deterministic, resumable sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from prep_helpers import prepare
from train_helpers import DEMO_CAPS, TINY

from models.config import CONF_DIR
from train.config import register_configs
from train.data.loader import (
    TokenSequences,
    TrainBatches,
    check_tokenizer_compatible,
    cu_seqlens_from_doc_ids,
    validation_batches,
)
from train.data.sampler import BLOCK, apportion
from train.distributed import World
from train.trainer import Trainer

SEQ_LEN = 16


@pytest.fixture
def dataset(tmp_path, sources) -> TokenSequences:
    return TokenSequences(prepare(tmp_path, sources, validation_fraction=0.1), SEQ_LEN)


def batches(loader: TrainBatches, steps: range) -> list[dict[str, torch.Tensor]]:
    return [loader.batch(i) for i in steps]


def assert_same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_sequences_pack_documents_and_shift(dataset):
    batch = TrainBatches(dataset, 8, seed=0).batch(3)
    inputs, labels, doc_ids = batch["input_ids"], batch["labels"], batch["doc_ids"]
    assert inputs.shape == labels.shape == doc_ids.shape == (8, SEQ_LEN)
    assert torch.equal(inputs[:, 1:], labels[:, :-1])
    eos = dataset.eos_id
    expected = torch.zeros_like(doc_ids)
    expected[:, 1:] = torch.cumsum(inputs[:, :-1] == eos, dim=1)
    assert torch.equal(doc_ids, expected) and doc_ids.max() > 0
    cu = cu_seqlens_from_doc_ids(doc_ids)
    assert cu[0] == 0 and cu[-1] == inputs.numel()
    flat = inputs.flatten()
    for start, end in zip(cu[:-1].tolist(), cu[1:].tolist(), strict=True):
        assert not (flat[start : end - 1] == eos).any()  # EOS only ever ends a segment


def batches_fed_by_the_trainer(run_dir: Path, data_dir: Path, model: str, steps: int) -> list[tuple]:
    """(input_ids, labels) of every forward `train.Trainer` runs in its first `steps` steps with `model`."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"output_dir={run_dir}", f"data.path={data_dir}", *DEMO_CAPS, *TINY,
                                          f"model={model}", "trainer.max_steps=4"])  # fmt: skip
    trainer = Trainer(OmegaConf.to_object(cfg), World(0, 1, 0, torch.device("cpu")))
    fed = []
    trainer.model.register_forward_pre_hook(
        lambda _, args, kwargs: fed.append((args[0].clone(), kwargs["labels"].clone())), with_kwargs=True
    )
    for _ in range(steps):
        trainer.train_step()
    trainer.logger.close()
    return fed


def test_same_batches_for_every_model_config(tmp_path, demo_data) -> None:
    """What each architecture's trainer actually feeds its model is the same, forward by forward."""
    register_configs()
    fed = {m: batches_fed_by_the_trainer(tmp_path / m, demo_data, m, steps=2) for m in ("tiny_transformer", "tiny_hybrid", "tiny_rnn")}  # fmt: skip
    reference = fed.pop("tiny_transformer")
    assert len(reference) == 2 * 1024 // (64 * 4)  # 2 steps of 1024 tokens in micro-batches of 4 x 64
    assert len({tuple(ids.flatten().tolist()) for ids, _ in reference}) == len(reference)  # data moves on
    for model, forwards in fed.items():
        assert len(forwards) == len(reference), model
        for (ids, labels), (ref_ids, ref_labels) in zip(forwards, reference, strict=True):
            assert torch.equal(ids, ref_ids) and torch.equal(labels, ref_labels), model


def test_world_sizes_slice_the_same_global_batch(dataset):
    single = batches(TrainBatches(dataset, 8, seed=1), range(12))
    ranks = [batches(TrainBatches(dataset, 8, seed=1, rank=r, world_size=2), range(12)) for r in range(2)]
    joined = [{k: torch.cat([r0[k], r1[k]]) for k in r0} for r0, r1 in zip(*ranks, strict=True)]
    assert_same(single, joined)
    with pytest.raises(ValueError, match="multiple of the world size"):
        TrainBatches(dataset, 8, seed=1, rank=0, world_size=3)


def test_resume_continues_exactly(dataset):
    reference = TrainBatches(dataset, 4, seed=3)
    it = iter(reference)
    [next(it) for _ in range(7)]
    state = reference.state_dict()
    expected = [next(it) for _ in range(5)]
    resumed = TrainBatches(dataset, 4, seed=3)
    resumed.load_state_dict(state)
    assert_same(expected, [b for _, b in zip(range(5), resumed, strict=False)])
    with pytest.raises(ValueError, match="other data, seq_len or seed"):
        TrainBatches(dataset, 4, seed=4).load_state_dict(state)


def test_epochs_visit_every_sequence_once_and_reshuffle(dataset):
    loader = TrainBatches(dataset, 1, seed=0)
    n = len(dataset)
    ids = loader.sampler.sequence_ids(0, 3 * n).reshape(3, n)
    for epoch in ids:
        assert sorted(epoch.tolist()) == list(range(n))
    assert not np.array_equal(ids[0], ids[1]) and not np.array_equal(ids[1], ids[2])
    assert not np.array_equal(ids[0], TrainBatches(dataset, 1, seed=1).sampler.sequence_ids(0, n))


def test_mixture_weights_are_honoured(dataset):
    loader = TrainBatches(dataset, 64, seed=0, weights={"prose": 1.0, "code": 3.0})
    ids = loader.sampler.sequence_ids(0, 2 * BLOCK)
    code_start, code_end = dataset.source_sizes[0], len(dataset)
    assert dataset.source_names == ["prose", "code"]
    is_code = (ids >= code_start) & (ids < code_end)
    for block in is_code.reshape(2, BLOCK):
        assert block.sum() == apportion([1.0, 3.0], BLOCK)[1] == 3 * BLOCK // 4
    # The small source cycles through its own epochs: each of its sequences is drawn equally often.
    counts = np.bincount(ids[is_code] - code_start, minlength=code_end - code_start)
    assert counts.max() - counts.min() <= 1
    with pytest.raises(ValueError, match="no mixture weight"):
        TrainBatches(dataset, 64, seed=0, weights={"prose": 1.0})


def test_tokenizer_compatibility(dataset):
    manifest = dataset.manifest
    check_tokenizer_compatible(manifest, manifest.vocab_size)
    check_tokenizer_compatible(manifest, 100352, manifest.tokenizer["sha256"], manifest.eos_id)
    with pytest.raises(ValueError, match=r"model vocab_size 299 is smaller .* set model.vocab_size >= 300"):
        check_tokenizer_compatible(manifest, 299)
    with pytest.raises(ValueError, match="not the dataset's"):
        check_tokenizer_compatible(manifest, 300, tokenizer_sha256="0" * 64)
    with pytest.raises(ValueError, match="EOS id"):
        check_tokenizer_compatible(manifest, 300, eos_id=manifest.eos_id + 1)


def test_validation_batches_per_domain(dataset):
    val = TokenSequences(dataset.path, SEQ_LEN, split="validation", domains=["python"])
    got = torch.cat(
        [b["input_ids"] for b in validation_batches(dataset.path, SEQ_LEN, 3, domains=["python"])]
    )
    assert got.shape[0] == len(val) > 0
    assert torch.equal(got, val.gather(np.arange(len(val)))["input_ids"])
    with pytest.raises(ValueError, match=r"\['latex'\] not in this dataset"):
        TokenSequences(dataset.path, SEQ_LEN, split="validation", domains=["latex"])
