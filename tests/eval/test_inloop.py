"""In-loop filtered losses equal the offline pipeline's per-filter means on the same tokens."""

from __future__ import annotations

import numpy as np
import torch
from eval_helpers import DOMAINS, TEXTS

from eval.annotate import annotate
from eval.filters import Filters
from eval.inloop import FilteredLoss
from eval.repeats import repeat_n
from eval.score import load_model, make_windows, token_losses


def test_filtered_loss_matches_offline_scoring(tiny_models, tokenizer_file) -> None:
    filters = ["all", "content", "content & no_copy", "close_bracket"]
    val = FilteredLoss.from_texts(TEXTS, tokenizer_file, DOMAINS, filters=filters, window=32, batch_size=3)
    model = load_model(tiny_models["transformer"], torch.device("cpu"), torch.float32)
    lm = model.forward
    lm.train()
    metrics = val(lm)
    assert lm.training  # mode restored
    assert list(metrics) == [
        "val/loss/all",
        "val/loss/content",
        "val/loss/content&no_copy",
        "val/loss/close_bracket",
    ]

    table = annotate(TEXTS, tokenizer_file, DOMAINS)
    w = make_windows(table.doc_id, table.position, table.token_id, 32, prefix_id=0)
    table["window_pos"] = w.window_pos
    table["repeat_n"] = repeat_n(table.token_id.to_numpy(), w.group)
    losses = token_losses(lm, w, table.token_id.to_numpy(), 4, torch.device("cpu"))
    for name, key in zip(filters, metrics):
        mask = Filters().mask(name, table)
        assert np.isclose(metrics[key], losses[mask].mean(), atol=1e-5), name
