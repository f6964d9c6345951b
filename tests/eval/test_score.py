"""Scoring: window layout, HF model == the same weights imported into the zoo, cache and resume."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import Olmo3Config, Olmo3ForCausalLM

from eval.score import cached_losses, load_model, make_windows, token_losses

CPU = torch.device("cpu")


def test_windows_cover_every_token_once_with_its_prefix() -> None:
    doc_id = np.r_[np.zeros(5, int), np.ones(2, int)]
    position = np.r_[np.arange(5), np.arange(2)]
    token_id = np.array([10, 11, 12, 13, 14, 20, 21])
    w = make_windows(doc_id, position, token_id, window=2, prefix_id=0, stride=2)
    assert [x.tolist() for x in w.inputs] == [[0, 10], [11, 12], [13], [0, 20]]
    assert [r.tolist() for r in w.rows] == [[0, 1], [2, 3], [4], [5, 6]]
    assert w.window_pos.tolist() == [0, 1, 0, 1, 0, 0, 1] and w.window_index.tolist() == [0, 0, 1, 1, 2, 0, 0]
    assert w.group.tolist() == [0, 0, 1, 1, 2, 3, 3]
    with pytest.raises(ValueError, match="window 0"):
        make_windows(doc_id, position, token_id, window=0, prefix_id=0)


def test_losses_match_a_direct_forward(tiny_models) -> None:
    model = load_model(tiny_models["transformer"], CPU, torch.float32)
    rng = np.random.default_rng(0)
    token_id = rng.integers(1, 400, 30)
    doc_id, position = np.r_[np.zeros(20, int), np.ones(10, int)], np.r_[np.arange(20), np.arange(10)]
    w = make_windows(doc_id, position, token_id, window=8, prefix_id=0, stride=8)
    losses = token_losses(model.forward, w, token_id, batch_size=3, device=CPU)
    # by hand: document 0, window 1 = targets 8..15 after input [t7, t8, ..., t14]
    with torch.no_grad():
        logits = model.forward(torch.from_numpy(token_id[None, 7:15]))[0]
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor(token_id[8:16]), reduction="none")
    assert np.allclose(losses[8:16], expected.numpy(), atol=1e-5)
    assert np.isfinite(losses).all()


def test_hf_model_scores_equal_its_zoo_import(tmp_path, tokenizer_file) -> None:
    torch.manual_seed(0)
    config = Olmo3Config(vocab_size=512, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=256, pad_token_id=1, eos_token_id=0)  # fmt: skip
    Olmo3ForCausalLM(config).eval().save_pretrained(tmp_path / "hf")
    shutil.copy(tokenizer_file, tmp_path / "hf" / "tokenizer.json")
    subprocess.run(
        [sys.executable, "-m", "models.hf", "import", str(tmp_path / "hf"), str(tmp_path / "zoo")], check=True
    )
    hf, zoo = (
        load_model(tmp_path / "hf", CPU, torch.float32),
        load_model(tmp_path / "zoo", CPU, torch.float32),
    )
    assert (hf.kind, zoo.kind) == ("hf", "zoo")
    token_id = np.random.default_rng(1).integers(1, 400, 40)
    w = make_windows(np.zeros(40, int), np.arange(40), token_id, window=16, prefix_id=0)
    a = token_losses(hf.forward, w, token_id, 2, CPU)
    b = token_losses(zoo.forward, w, token_id, 2, CPU)
    assert np.abs(a - b).max() <= 1e-4


def test_cache_and_resume(tmp_path, tiny_models, monkeypatch) -> None:
    model = load_model(tiny_models["transformer"], CPU, torch.float32)
    token_id = np.random.default_rng(2).integers(1, 400, 64)
    w = make_windows(np.zeros(64, int), np.arange(64), token_id, window=4, prefix_id=0, stride=4)
    full = token_losses(model.forward, w, token_id, 2, CPU)
    # an interrupted run leaves a checkpoint after 4 of 8 batches; the rerun computes only the rest
    calls = []
    real = model.forward

    def crash_after_five(x):
        calls.append(1)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return real(x)

    model.forward = crash_after_five
    with pytest.raises(KeyboardInterrupt):
        token_losses(model.forward, w, token_id, 2, CPU, checkpoint=tmp_path / "p.npz", checkpoint_every=4)
    calls.clear()
    model.forward = lambda x: (calls.append(1), real(x))[1]
    resumed = token_losses(
        model.forward, w, token_id, 2, CPU, checkpoint=tmp_path / "p.npz", checkpoint_every=4
    )
    assert len(calls) == 4 and np.allclose(resumed, full)
    first = cached_losses(model, w, token_id, 2, CPU, torch.float32, tmp_path / "cache")
    calls.clear()
    second = cached_losses(model, w, token_id, 2, CPU, torch.float32, tmp_path / "cache")
    assert not calls and np.array_equal(first, second)
    strided = make_windows(np.zeros(64, int), np.arange(64), token_id, window=4, prefix_id=0, stride=2)
    third = cached_losses(model, strided, token_id, 2, CPU, torch.float32, tmp_path / "cache")
    assert calls and not np.array_equal(first, third)  # the stride is part of the cache key
