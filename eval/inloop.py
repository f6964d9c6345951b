"""Filtered validation losses during training: annotate a fixed validation set once, score it every N steps.

    from eval.inloop import FilteredLoss
    val = FilteredLoss.from_dataset("data/demo", filters=["all", "content", "content & no_copy"], window=512)
    ...
    if step % N == 0:
        metrics |= val(model)   # {"val/loss/all": 3.91, "val/loss/content": 4.62, "val/loss/content&no_copy": ...}

The set is tokenized, tagged and windowed like `python -m eval` does it (one separator token before
each document, `repeat_n` per window), then kept as tensors: inputs and targets [W, T] and one
boolean mask [W, T] per filter. `__call__(model)` runs `model(input_ids) -> logits` in eval mode
under `torch.no_grad` on the model's device, accumulates each filter's summed loss and count, and
restores the model's training mode. Every rank can call it (FSDP needs all ranks in the forward);
the values are the same on every rank, so rank 0 logs them.
"""

from __future__ import annotations

import numpy as np
import torch
from tokenizers import Tokenizer

from eval.annotate import annotate, load_tokenizer
from eval.config import CorpusConfig
from eval.corpus import load_corpus
from eval.filters import Filters
from eval.repeats import repeat_n
from eval.score import make_windows, row_losses
from models.errors import UserError


class FilteredLoss:
    """Callable `model -> {"val/loss/<filter>": mean loss}` over a fixed annotated validation set."""

    def __init__(
        self, inputs: torch.Tensor, targets: torch.Tensor, masks: dict[str, torch.Tensor], batch_size: int = 8
    ):
        self.inputs, self.targets, self.batch_size = inputs, targets, batch_size  # [W, T], -100 = padding
        self.masks = {name: mask & (targets >= 0) for name, mask in masks.items()}  # [W, T] bool each

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        tokenizer: Tokenizer | str,
        domains: list[str] | None = None,
        filters: list[str] = ("all", "content", "function", "no_copy", "content & no_copy"),
        window: int = 512,
        batch_size: int = 8,
        prefix_token: str = "<|endoftext|>",
        **annotate_kwargs,
    ) -> FilteredLoss:
        """Annotate `texts` once and keep tensors and masks of the given filter expressions."""
        tok = load_tokenizer(tokenizer)
        prefix_id = tok.token_to_id(prefix_token)
        if prefix_id is None:
            raise UserError(
                f"the tokenizer has no token {prefix_token!r}; pass prefix_token= its BOS/EOS token."
            )
        table = annotate(texts, tok, domains, **annotate_kwargs)
        windows = make_windows(table["doc_id"], table["position"], table["token_id"], window, prefix_id)
        table["window"], table["window_pos"] = windows.window_index, windows.window_pos
        table["repeat_n"] = repeat_n(table["token_id"].to_numpy(), windows.group)
        registry = Filters()
        row_masks = {name: registry.mask(name, table) for name in filters}
        T = max(len(x) for x in windows.inputs)
        inputs = np.full((len(windows.inputs), T), prefix_id, dtype=np.int64)
        targets = np.full((len(windows.inputs), T), -100, dtype=np.int64)
        masks = {name: np.zeros((len(windows.inputs), T), dtype=bool) for name in filters}
        token_id = table["token_id"].to_numpy()
        for w, (ids, rows) in enumerate(zip(windows.inputs, windows.rows)):
            inputs[w, : len(ids)], targets[w, : len(ids)] = ids, token_id[rows]
            for name in filters:
                masks[name][w, : len(ids)] = row_masks[name][rows]
        return cls(
            torch.from_numpy(inputs),
            torch.from_numpy(targets),
            {n: torch.from_numpy(m) for n, m in masks.items()},
            batch_size,
        )

    @classmethod
    def from_dataset(
        cls, path: str, split: str = "validation", max_docs_per_domain: int | None = 8,
        max_chars_per_doc: int | None = 20000, **kwargs,
    ) -> FilteredLoss:  # fmt: skip
        """From a prepared dataset's split (its tokenizer.json; see `eval.corpus`)."""
        corpus = load_corpus(CorpusConfig(name=str(path), type="dataset", path=str(path), split=split,
                                          max_docs_per_domain=max_docs_per_domain, max_chars_per_doc=max_chars_per_doc))  # fmt: skip
        return cls.from_texts(corpus.texts, f"{path}/tokenizer.json", corpus.domains, **kwargs)

    def keys(self) -> list[str]:
        return [f"val/loss/{name.replace(' ', '')}" for name in self.masks]

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        """Mean loss (nats) of `model` on each filter's tokens."""
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        sums = torch.zeros(len(self.masks), dtype=torch.float64)
        counts = torch.zeros(len(self.masks), dtype=torch.float64)
        order = np.arange(len(self.inputs))
        try:
            for start in range(0, len(order), self.batch_size):
                idx = torch.from_numpy(order[start : start + self.batch_size])
                logits = model(self.inputs[idx].to(device))  # [B, T, V]
                targets = self.targets[idx].to(device)
                loss = row_losses(logits.flatten(0, 1), targets.flatten()).cpu().double()
                for f, mask in enumerate(self.masks.values()):
                    selected = mask[idx].flatten()
                    sums[f] += loss[selected].sum()
                    counts[f] += selected.sum()
        finally:
            model.train(was_training)
        return {key: float(s / c) if c > 0 else float("nan") for key, s, c in zip(self.keys(), sums, counts)}
