"""Scoring follows how a model was trained: window, stride, dtype and device; the loss cache's key."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from eval_helpers import DOMAINS, TEXTS, corpus_files, trained_at
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import eval.score
from eval.config import register_configs
from eval.context import (
    MAX_DEFAULT_WINDOW,
    model_context,
    past_trained_fraction,
    scoring_device,
    scoring_dtype,
    scoring_window,
)
from eval.corpus import named_corpus
from eval.inloop import FilteredLossCallback
from eval.score import cached_losses, load_model, make_windows
from models.config import TrainingContext
from models.errors import UserError

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
CONF = Path(__file__).parents[2] / "conf"


def test_the_window_defaults_to_the_training_seq_len() -> None:
    assert scoring_window(None, None, [TrainingContext(seq_len=256)], ["a"]) == (256, 128, [])
    window, stride, notes = scoring_window(
        None, 16, [TrainingContext(seq_len=512), TrainingContext(seq_len=256)], ["a", "b"]
    )
    assert (window, stride) == (256, 16) and "a 512, b 256" in notes[0] and "smallest, 256" in notes[0]
    assert scoring_window(None, None, [TrainingContext(seq_len=8192)], ["a"])[0] == MAX_DEFAULT_WINDOW
    window, _, notes = scoring_window(None, None, [TrainingContext()], ["hf"])
    assert window == MAX_DEFAULT_WINDOW and len(notes) == 1 and "no model records" in notes[0]
    assert scoring_window(4096, None, [TrainingContext(seq_len=256)], ["a"])[:2] == (
        4096,
        2048,
    )  # explicit: kept
    with pytest.raises(UserError, match="stride 300 is outside 1..256"):
        scoring_window(None, 300, [TrainingContext(seq_len=256)], ["a"])


def test_eval_and_the_demo_leave_the_window_to_the_training_context() -> None:
    """conf/eval.yaml no longer pins 2048: the demo (trained at 256) is scored at 256."""
    register_configs()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("eval", ["models=[a]", "corpus=demo"])
    demo = OmegaConf.load(CONF / "experiment" / "demo.yaml")
    assert cfg.score.window is None and demo.trainer.seq_len == 256
    assert scoring_window(cfg.score.window, cfg.score.stride, [TrainingContext(seq_len=256)], ["a"])[0] == 256


def test_the_model_context_is_read_from_config_yaml(tmp_path, tiny_models) -> None:
    context = model_context(trained_at(tiny_models["transformer"], tmp_path / "m", 32, "bf16"))
    assert (
        context.vocab_size == 512 and context.training.seq_len == 32 and context.training.precision == "bf16"
    )
    assert model_context(tiny_models["hybrid"]).training == TrainingContext()  # saved without a context


def test_targets_past_the_trained_length_are_counted() -> None:
    window_pos = np.arange(64)  # one window of 64 targets, input positions 0..63
    assert past_trained_fraction(window_pos, TrainingContext(seq_len=16)) == 48 / 64
    assert past_trained_fraction(window_pos, TrainingContext(seq_len=64)) == 0.0
    assert past_trained_fraction(window_pos, TrainingContext()) is None


def test_the_dtype_follows_the_training_precision() -> None:
    fp32, bf16, unknown = (
        TrainingContext(precision="fp32"),
        TrainingContext(precision="bf16"),
        TrainingContext(),
    )
    assert scoring_dtype("auto", CUDA, fp32) == torch.float32  # no bf16 cast of an fp32-trained model
    assert scoring_dtype("auto", CPU, bf16) == torch.bfloat16
    assert (
        scoring_dtype("auto", CUDA, unknown) == torch.bfloat16
        and scoring_dtype("auto", CPU, unknown) == torch.float32
    )
    assert scoring_dtype("float32", CUDA, bf16) == torch.float32  # an explicit dtype wins


def test_a_cuda_device_without_a_gpu_is_one_line(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    for setting in ("cuda", "cuda:1"):
        with pytest.raises(UserError, match=f"score.device={setting} but this machine has 0 CUDA device"):
            scoring_device(setting)
    assert scoring_device("auto") == CPU


def test_the_loss_cache_misses_on_a_new_version_or_a_changed_target(
    tmp_path, tiny_models, monkeypatch
) -> None:
    model = load_model(tiny_models["transformer"], CPU, torch.float32)
    token_id = np.arange(1, 41) % 300
    doc_id, position = np.repeat([0, 1], 20), np.tile(np.arange(20), 2)
    windows = make_windows(doc_id, position, token_id, 8, 0, 4)
    calls = []
    scored = eval.score.token_losses
    monkeypatch.setattr(eval.score, "token_losses", lambda *a, **k: calls.append(1) or scored(*a, **k))

    def losses(ids: np.ndarray) -> np.ndarray:
        return cached_losses(model, windows, ids, 4, CPU, torch.float32, tmp_path, progress=False)

    first = losses(token_id)
    assert np.array_equal(losses(token_id), first) and len(calls) == 1  # a hit
    changed = token_id.copy()
    changed[19] = 7  # the last token of document 0: a target, never an input, so the windows are the same
    assert make_windows(doc_id, position, changed, 8, 0, 4).fingerprint == windows.fingerprint
    assert losses(changed)[19] != first[19] and len(calls) == 2  # a miss
    monkeypatch.setattr(eval.score, "SCORE_VERSION", eval.score.SCORE_VERSION + 1)
    losses(token_id)
    assert len(calls) == 3  # a miss after a version bump


def test_in_loop_and_eval_read_one_corpus_definition(tmp_path, tokenizer_file, monkeypatch) -> None:
    """The callback's `corpus=NAME` is what `python -m eval corpus=NAME` composes; W defaults to seq_len."""
    register_configs()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        composed = compose("eval", ["models=[a]", "corpus=demo"])
    assert named_corpus("demo") == OmegaConf.to_object(composed.corpus)

    corpus_files(tmp_path)
    monkeypatch.setattr("eval.corpus.CORPUS_DIR", tmp_path / "conf" / "corpus")
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(tokenizer_file, data / "tokenizer.json")
    trainer = SimpleNamespace(data_path=data, cfg=SimpleNamespace(trainer=SimpleNamespace(seq_len=32)))
    scored = FilteredLossCallback(["all"], corpus="handcrafted").scoring_corpus(trainer)
    assert (scored.window, scored.stride) == (32, 16)
    assert scored.corpus.texts == TEXTS and scored.corpus.domains == DOMAINS
    scored = FilteredLossCallback(["all"], corpus="handcrafted", window=8, stride=2).scoring_corpus(trainer)
    assert (scored.window, scored.stride) == (8, 2)
