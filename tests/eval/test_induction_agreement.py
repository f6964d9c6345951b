"""`python -m eval probes=[induction]` and the in-loop `val/induction` agree on the same checkpoint:
about 0 for an untrained model, over 1 nat for one trained on a copy task."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from eval.annotate import load_tokenizer
from eval.induction import induction_sequences
from eval.inloop_induction import InductionCallback
from models import build_model, load_model_config, load_pretrained, save_pretrained
from train.data.tokenizer import special_token_ids

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
LENGTH, COUNT = 32, 8


def train_copier(tokenizer_file: Path, steps: int = 400) -> torch.nn.Module:
    """A 2-layer, 64-wide transformer trained on random sequences shown twice (every position in the
    loss): it passes its induction phase change near step 300 (about 30 s on 2 CPU cores)."""
    cfg = load_model_config("tiny_transformer", ["n_layers=2", "vocab_size=512", "d_model=64", "n_heads=2",
                                                 "mlp_hidden=128"])  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    tokenizer = load_tokenizer(tokenizer_file)
    vocab, special = tokenizer.get_vocab_size(), special_token_ids(tokenizer)
    for step in range(steps):  # training seeds never meet the evaluation's seed 0
        ids = torch.from_numpy(induction_sequences(vocab, special, LENGTH, 16, seed=1000 + step, separator=0))
        loss, _ = model(ids[:, :-1], labels=ids[:, 1:])
        (loss / ids[:, 1:].numel()).backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


def in_loop(model: torch.nn.Module, data: Path) -> dict[str, float]:
    """What the trainer logs: the default callback's metrics on a run over the dataset `data`."""
    trainer = SimpleNamespace(
        model=model, data_path=data, world=SimpleNamespace(device=torch.device("cpu"), is_main=True),
        cfg=SimpleNamespace(trainer=SimpleNamespace(seq_len=2 * LENGTH + 1), data=SimpleNamespace(synthetic=None)),
    )  # fmt: skip
    callback = InductionCallback(count=COUNT)
    callback.on_fit_start(trainer)
    assert callback.sequences.shape == (COUNT, 2 * LENGTH + 1)
    return callback.on_evaluate(trainer)


def offline(model_dir: Path, tmp_path: Path) -> dict:
    out = tmp_path / "eval"
    args = [sys.executable, "-m", "eval", f"models=[{model_dir}]", "probes=[induction]",
            f"probes.induction.lengths=[{LENGTH}]", f"probes.induction.n_examples={COUNT}", "report.n_boot=100",
            f"cache_dir={tmp_path / 'cache'}", "progress=false", f"hydra.run.dir={out}"]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    (record,) = json.loads((out / "summary.json").read_text())["induction"]
    assert "Induction score" in (out / "report.md").read_text()
    return record


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tokenizer_file) -> Path:
    """A prepared-dataset dir as the trainer sees it: its tokenizer and manifest (EOS id 0)."""
    path = tmp_path_factory.mktemp("data")
    shutil.copy(tokenizer_file, path / "tokenizer.json")
    vocab = load_tokenizer(tokenizer_file).get_vocab_size()
    (path / "manifest.json").write_text(json.dumps({"tokenizer": {"file": "tokenizer.json", "vocab_size": vocab,
                                                                  "eos_id": 0}}))  # fmt: skip
    return path


@pytest.mark.parametrize("trained", [False, True], ids=["untrained", "copier"])
def test_probe_and_in_loop_metric_agree_on_the_same_checkpoint(
    tmp_path, tokenizer_file, dataset, trained
) -> None:
    if trained:
        model = train_copier(tokenizer_file)
        model_dir = save_pretrained(model, tmp_path / "copier", tokenizer_file=str(tokenizer_file))
    else:
        model_dir = build_untrained(tmp_path / "untrained", tokenizer_file)
    metrics = in_loop(load_pretrained(model_dir).eval(), dataset)
    record = offline(model_dir, tmp_path)
    assert record["n"] == COUNT and record["length"] == LENGTH
    assert metrics["val/induction"] == pytest.approx(record["score"], abs=1e-4)
    assert metrics["val/induction_acc"] == pytest.approx(record["second_acc"], abs=1e-6)
    if trained:
        assert record["score"] >= 1.0 and record["second_acc"] > 0.5
    else:
        assert abs(record["score"]) < 0.1 and record["second_acc"] < 0.05


def build_untrained(path: Path, tokenizer_file: Path) -> Path:
    cfg = load_model_config("tiny_transformer", ["n_layers=2", "vocab_size=512"])
    torch.manual_seed(0)
    return save_pretrained(build_model(cfg), path, tokenizer_file=str(tokenizer_file))
