"""`python -m eval` end to end on tiny random zoo models, and its answers to bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from eval_helpers import DOMAINS, run_eval, save_tiny, train_tokenizer, trained_at

from models import build_model, load_model_config, save_pretrained

OUTPUTS = ["tokens.parquet", "report.md", "gaps.csv", "summary.json", "plots", "tokens.html"]
pytestmark = pytest.mark.slow


def test_cli_end_to_end_with_curves(tmp_path, tiny_models) -> None:
    steps = tmp_path / "ckpt"
    for step in (100, 200):
        shutil.copytree(tiny_models["transformer"], steps / f"step_{step}")
    models = [tiny_models["transformer"], tiny_models["hybrid"]]
    proc, out = run_eval(tmp_path, models, f"+curves.t=['{steps}/step_*']", "filters.favoured.min_count=1")
    assert proc.returncode == 0, proc.stderr
    assert all((out / name).exists() for name in OUTPUTS)
    tokens = pd.read_parquet(out / "tokens.parquet")
    assert {"loss_transformer", "loss_hybrid", "window", "window_pos", "repeat_n_doc", "upos"} <= set(
        tokens.columns
    )
    assert tokens["loss_transformer"].notna().all() and len(tokens) == tokens.groupby("doc_id").size().sum()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"] == ["transformer", "hybrid"] and summary["tokens"] == len(tokens)
    assert {g["filter"] for g in summary["gaps"]} >= {"all", "content & no_copy", "top_favoured_no_copy"}
    assert sorted({c["step"] for c in summary["curves"]}) == [100, 200]
    pngs = {p.name for p in (out / "plots").glob("*.png")}
    assert {"gaps_transformer_vs_hybrid.png", "pos_transformer_vs_hybrid.png", "curves.png"} <= pngs
    gaps = pd.read_csv(out / "gaps.csv")
    assert set(gaps["domain"]) == {"all", *DOMAINS}
    assert "## Regression of the gap" in (out / "report.md").read_text()


def broken_checkpoint(tmp_path: Path, source: Path, keep_config: bool) -> Path:
    """A copy of `source` without tokenizer.json, its weights 100 zero bytes, its config cut short unless kept."""
    broken = tmp_path / "broken"
    shutil.copytree(source, broken)
    (broken / "tokenizer.json").unlink()
    (broken / "model.safetensors").write_bytes(bytes(100))
    if not keep_config:
        (broken / "config.yaml").write_text("name: tiny_transformer\n")
    return broken


CASES = ["missing_model", "tokenizer_mismatch", "empty_corpus", "unknown_filter", "corrupt_parquet",
         "incomplete_config", "corrupt_weights", "token_source", "bad_stride", "no_gpu", "html_pair",
         "small_vocab"]  # fmt: skip
NO_GPU = "import torch; torch.cuda.is_available = lambda: False; torch.cuda.device_count = lambda: 0"


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_line_nonzero_nothing_written(tmp_path, tiny_models, case: str) -> None:
    models, extra, patch = [tiny_models["transformer"], tiny_models["hybrid"]], [], ""
    if case in ("incomplete_config", "corrupt_weights"):
        models = [
            broken_checkpoint(tmp_path, tiny_models["transformer"], keep_config=case == "corrupt_weights")
        ]
    elif case == "token_source":
        extra = [f"corpus.sources.{DOMAINS[0]}.type=tokens"]
    elif case == "missing_model":
        models[1] = tmp_path / "no_such_model"
    elif case == "tokenizer_mismatch":
        other = tmp_path / "other_tok.json"
        train_tokenizer(vocab_size=300).save(str(other))
        models[1] = save_tiny(tmp_path / "other", "tiny_transformer", other)
    elif case == "empty_corpus":
        extra = ["corpus.max_chars_per_doc=0", "corpus.max_docs_per_domain=0"]
    elif case == "unknown_filter":
        extra = ["filters.use=[all,contnet]"]
    elif case == "bad_stride":
        extra = ["score.stride=65"]
    elif case == "no_gpu":
        extra, patch = ["score.device=cuda"], NO_GPU
    elif case == "html_pair":
        extra = ["report.html_pair=[transformer,nosuch]"]
    elif case == "small_vocab":
        cfg = load_model_config("tiny_transformer", ["n_layers=2", "vocab_size=300"])
        models[1] = save_pretrained(
            build_model(cfg), tmp_path / "small", tokenizer_file=models[0] / "tokenizer.json"
        )
    else:
        (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
        extra = [f"filters.favoured.reference={tmp_path / 'bad.parquet'}"]
    proc, out = run_eval(tmp_path, models, *extra, patch=patch)
    expected = {"missing_model": "does not exist", "tokenizer_mismatch": "tokenizer mismatch",
                "empty_corpus": "no non-empty document", "unknown_filter": "unknown filter 'contnet'",
                "corrupt_parquet": "cannot read the reference",
                "incomplete_config": f"{tmp_path / 'broken' / 'config.yaml'}' is incomplete or corrupt",
                "corrupt_weights": f"{tmp_path / 'broken' / 'model.safetensors'}' are incomplete or corrupt",
                "token_source": f"source '{DOMAINS[0]}' has type 'tokens'",
                "bad_stride": "stride 65 is outside 1..64",
                "no_gpu": "score.device=cuda but this machine has 0 CUDA device",
                "html_pair": "report.html_pair ['transformer', 'nosuch'] must name two",
                "small_vocab": "has 300 output ids but the tokenizer has"}[case]  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr
    assert not any((out / name).exists() for name in OUTPUTS)
    assert not list((tmp_path / "cache").glob("losses/*")), "a model was scored before the input was checked"


def test_one_model_reports_its_filtered_losses_without_gaps(tmp_path, tiny_models) -> None:
    """A model trained at 32 tokens, scored in windows of 64: the report says how many targets lie past 32."""
    model = trained_at(tiny_models["transformer"], tmp_path / "transformer", seq_len=32)
    proc, out = run_eval(tmp_path, [model])
    assert proc.returncode == 0, proc.stderr
    assert "it/s" not in proc.stderr and "%|" not in proc.stderr, "progress=false still drew a progress bar"
    tokens = pd.read_parquet(out / "tokens.parquet")
    past = float((tokens["window_pos"] >= 32).mean())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"] == ["transformer"] and summary["gaps"] == [] and len(summary["losses"]) > 1
    [scoring] = summary["scoring"]
    assert scoring["window"] == 64 and scoring["dtype"] == "float32" and scoring["trained_seq_len"] == 32
    assert 0 < past < 1 and np.isclose(scoring["past_trained"], past)
    report = (out / "report.md").read_text()
    assert (
        "## Mean loss per filter" in report
        and "## Paired gaps" not in report
        and "One model: no gaps" in report
    )
    assert (
        f"{past:.1%} of transformer's scored targets lie at positions past its training seq_len 32" in report
    )
    assert f"{past:.1%}" in proc.stdout  # the header printed before scoring
    assert (out / "plots" / "losses.png").is_file() and (out / "tokens.html").is_file()
    table = subprocess.run([sys.executable, "scripts/demo_table.py", str(out / "summary.json")],
                           capture_output=True, text=True, cwd=Path(__file__).parents[2])  # fmt: skip
    assert table.returncode == 0 and f"targets past it {past:.1%}" in table.stdout, table.stderr


def test_an_internal_value_error_keeps_its_traceback(tmp_path, tiny_models) -> None:
    """A ValueError from inside a library is a bug: the entry point must not turn it into an `error:` line."""
    patch = "import numpy as np, eval.corpus as c; c.load_corpus = lambda cfg: np.zeros(-1)"
    proc, _ = run_eval(tmp_path, [tiny_models["transformer"]], patch=patch)
    assert proc.returncode == 1 and "Traceback" in proc.stderr, proc.stderr
    assert "ValueError: negative dimensions are not allowed" in proc.stderr and "error: " not in proc.stderr


@pytest.mark.gpu
def test_an_fp32_trained_model_is_scored_in_fp32_on_cuda(tmp_path, tiny_models) -> None:
    """score.dtype=auto on CUDA keeps an fp32-trained model in fp32 (it used to be cast to bf16)."""
    model = trained_at(tiny_models["transformer"], tmp_path / "transformer", seq_len=64)
    runs = {}
    for device in ("cpu", "cuda"):
        (tmp_path / device).mkdir()
        proc, out = run_eval(tmp_path / device, [model], f"score.device={device}", "cache_dir=null")
        assert proc.returncode == 0, proc.stderr
        assert json.loads((out / "summary.json").read_text())["scoring"][0]["dtype"] == "float32"
        runs[device] = pd.read_parquet(out / "tokens.parquet")["loss_transformer"].to_numpy()
    assert np.allclose(runs["cuda"], runs["cpu"], atol=1e-3)  # bf16 weights would be ~1e-2 off
