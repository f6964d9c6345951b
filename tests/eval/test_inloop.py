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
from eval.inloop import FilteredLoss, FilteredLossCallback
from eval.score import load_model
from models import load_pretrained

FILTERS = ["all", "content", "content & no_copy", "close_bracket", "copy1"]
# filters a test can mask by hand from token ids and domains alone (no tagger)
HAND_FILTERS = ["all", "copy1", "no_copy", "domain_python", "copy2 & domain_prose"]


def repeats_in_context(ids: list[int], context_start: int, p: int, n: int) -> bool:
    """Whether the n-gram ending at p occurred earlier among the document tokens ids[context_start:p]."""
    if p - n + 1 < context_start:
        return False
    gram = ids[p - n + 1 : p + 1]
    return any(ids[j - n + 1 : j + 1] == gram for j in range(context_start + n - 1, p))


def hand_scored_targets(model, tokenizer, window: int, stride: int) -> list[dict]:
    """Per target: its loss from a plain forward of exactly the context it is scored with, and
    its hand-computed filters. A document is `[EOS] + ids`; target p is scored in window 0 when
    p < window, else in the window starting at k * stride that ends just after p's stride slot."""
    eos = tokenizer.token_to_id(EOS)
    rows = []
    for text, domain in zip(TEXTS, DOMAINS, strict=True):
        ids = tokenizer.encode(text).ids
        sequence = [eos, *ids]
        for p in range(len(ids)):
            start = 0 if p < window else ((p - window) // stride + 1) * stride
            context = torch.tensor([sequence[start : p + 1]])
            with torch.no_grad():
                logits = model(context)[0, -1]
            loss = torch.nn.functional.cross_entropy(logits, torch.tensor(ids[p])).item()
            seen_from = max(start - 1, 0)  # document position of the first document token in context
            copy1, copy2 = (repeats_in_context(ids, seen_from, p, n) for n in (1, 2))
            rows.append({"loss": loss, "all": True, "copy1": copy1, "no_copy": not copy1,
                         "domain_python": domain == "python", "copy2 & domain_prose": copy2 and domain == "prose"})  # fmt: skip
    return rows


def test_filtered_loss_matches_the_scoring_table(tiny_models, tokenizer_file) -> None:
    """FilteredLoss against an independent computation: one plain forward per target over the
    context the documented windows give it, and filter masks computed by hand."""
    window, stride = 32, 16
    filters = list(dict.fromkeys(FILTERS + HAND_FILTERS))
    val = FilteredLoss.from_texts(
        TEXTS, tokenizer_file, DOMAINS, filters=filters, window=window, batch_size=3
    )
    lm = load_model(tiny_models["transformer"], torch.device("cpu"), torch.float32).forward
    lm.train()
    metrics = val(lm)
    assert lm.training  # mode restored
    assert list(metrics) == [f"val/loss/{name.replace(' ', '')}" for name in filters]

    model = load_pretrained(tiny_models["transformer"]).eval()
    targets = pd.DataFrame(hand_scored_targets(model, load_tokenizer(tokenizer_file), window, stride))
    assert len(targets) > window * 2  # some documents need later, strided windows
    for name in HAND_FILTERS:
        mask = targets[name].to_numpy(bool)
        assert int(val.masks[name].sum()) == int(mask.sum()) > 0, name
        expected = targets.loss[mask].mean()
        assert np.isclose(metrics[f"val/loss/{name.replace(' ', '')}"], expected, rtol=1e-5), name


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
