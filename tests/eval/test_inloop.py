"""In-loop filtered losses equal the offline eval of the same model on the same documents."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from eval_helpers import DOMAINS, EOS, TEXTS, run_eval, trained_at

from eval.annotate import load_tokenizer
from eval.filters import Filters
from eval.inloop import FilteredLoss, FilteredLossCallback
from eval.score import load_model, token_losses
from eval.table import scoring_table

FILTERS = ["all", "content", "content & no_copy", "close_bracket", "copy1"]


def test_filtered_loss_matches_the_scoring_table(tiny_models, tokenizer_file) -> None:
    val = FilteredLoss.from_texts(TEXTS, tokenizer_file, DOMAINS, filters=FILTERS, window=32, batch_size=3)
    model = load_model(tiny_models["transformer"], torch.device("cpu"), torch.float32)
    lm = model.forward
    lm.train()
    metrics = val(lm)
    assert lm.training  # mode restored
    assert list(metrics) == [f"val/loss/{name.replace(' ', '')}" for name in FILTERS]

    tokenizer = load_tokenizer(tokenizer_file)
    table, windows = scoring_table(TEXTS, tokenizer, DOMAINS, 32, None, tokenizer.token_to_id(EOS))
    assert windows.stride == 16 and (table["context_start"] > 0).any()
    losses = token_losses(lm, windows, table.token_id.to_numpy(), 4, torch.device("cpu"))
    for name, key in zip(FILTERS, metrics):
        mask = Filters().mask(name, table)
        assert val.masks[name].sum() == mask.sum() > 0, name
        assert np.isclose(metrics[key], losses[mask].mean(), atol=1e-5), name


@pytest.mark.slow
def test_filtered_loss_equals_python_m_eval(tmp_path, tiny_models, tokenizer_file) -> None:
    """The offline side is `python -m eval` itself: its summary.json losses, same documents, W, S."""
    window, stride = 16, 4
    proc, out = run_eval(tmp_path, [tiny_models["transformer"], tiny_models["hybrid"]], f"score.window={window}", f"score.stride={stride}",
                         "filters.use=[" + ",".join(f"'{f}'" for f in FILTERS) + "]", "filters.favoured.enabled=false")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    losses = pd.DataFrame(json.loads((out / "summary.json").read_text())["losses"])
    offline = losses[losses["model"] == "hybrid"].set_index("filter")
    tokens = pd.read_parquet(out / "tokens.parquet")
    assert (tokens["context_start"] > 0).any() and (tokens["repeat_n"] <= tokens["repeat_n_doc"]).all()

    val = FilteredLoss.from_texts(
        TEXTS, tokenizer_file, DOMAINS, filters=FILTERS, window=window, stride=stride
    )
    metrics = val(load_model(tiny_models["hybrid"], torch.device("cpu"), torch.float32).forward)
    for name in FILTERS:
        assert int(val.masks[name].sum()) == int(offline.loc[name, "tokens"]), name
        assert np.isclose(
            metrics[f"val/loss/{name.replace(' ', '')}"], offline.loc[name, "mean_loss"], atol=1e-5
        )


@pytest.mark.slow
def test_in_loop_callback_and_python_m_eval_agree_by_default(
    tmp_path, tiny_models, tokenizer_file, monkeypatch
) -> None:
    """No window, stride or documents given on either side: both read corpus `handcrafted` and the seq_len
    (eval from the model's config.yaml, the callback from the trainer), so their numbers are the same."""
    model = trained_at(tiny_models["hybrid"], tmp_path / "hybrid", seq_len=24)
    proc, out = run_eval(tmp_path, [model], "score.window=null", "filters.use=[all,content]",
                         "filters.favoured.enabled=false")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scoring"][0]["window"] == 24 and summary["scoring"][0]["stride"] == 12
    offline = pd.DataFrame(summary["losses"]).set_index("filter")

    monkeypatch.setattr(
        "eval.corpus.CORPUS_DIR", tmp_path / "conf" / "corpus"
    )  # run_eval wrote handcrafted.yaml
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(tokenizer_file, data / "tokenizer.json")
    trainer = SimpleNamespace(data_path=data, cfg=SimpleNamespace(trainer=SimpleNamespace(seq_len=24)),
                              model=load_model(model, torch.device("cpu"), torch.float32).forward)  # fmt: skip
    callback = FilteredLossCallback(["all", "content"], corpus="handcrafted")
    callback.on_fit_start(trainer)
    metrics = callback.on_evaluate(trainer)
    for name in ("all", "content"):
        assert int(callback.loss.masks[name].sum()) == int(offline.loc[name, "tokens"]), name
        assert np.isclose(metrics[f"val/loss/{name}"], offline.loc[name, "mean_loss"], atol=1e-5), name
