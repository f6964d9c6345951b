"""Filtered validation losses during training: annotate a fixed validation set once, score it every N steps.

    from eval.inloop import FilteredLoss
    val = FilteredLoss.from_dataset("data/demo", filters=["all", "content", "content & no_copy"], window=512)
    ...
    if step % N == 0:
        metrics |= val(model)   # {"val/loss/all": 3.91, "val/loss/content": 4.62, "val/loss/content&no_copy": ...}

The set's documents, W and S come from `eval.corpus.scoring_corpus` and its token table from
`eval.table.scoring_table`, the functions `python -m eval` uses (one separator token before each
document, strided windows, `repeat_n` over what each target saw), then kept as tensors: inputs and targets [W, T] (context-only positions target -100) and one
boolean mask [W, T] per filter. `__call__(model)` runs `model(input_ids) -> logits` in eval mode
under `torch.no_grad` on the model's device, accumulates each filter's summed loss and count, and
restores the model's training mode. Every rank can call it (FSDP needs all ranks in the forward);
the values are the same on every rank, so rank 0 logs them.
"""

from __future__ import annotations

import numpy as np
import torch
from tokenizers import Tokenizer

from eval.annotate import load_tokenizer
from eval.corpus import ScoringCorpus, dataset_corpus, load_corpus, named_corpus, scoring_corpus
from eval.filters import Filters
from eval.score import row_losses
from eval.table import prefix_token_id, scoring_table
from models.config import TrainingContext


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
        stride: int | None = None,
        batch_size: int = 8,
        prefix_token: str = "<|endoftext|>",
        **annotate_kwargs,
    ) -> FilteredLoss:
        """Annotate `texts` once and keep tensors and masks of the given filter expressions."""
        tok = load_tokenizer(tokenizer)
        prefix_id = prefix_token_id(tok, prefix_token, "prefix_token=")
        table, windows = scoring_table(texts, tok, domains, window, stride, prefix_id, **annotate_kwargs)
        registry = Filters()
        row_masks = {name: registry.mask(name, table) for name in filters}
        T = max(len(x) for x in windows.inputs)
        inputs = np.full((len(windows.inputs), T), prefix_id, dtype=np.int64)
        targets = np.full((len(windows.inputs), T), -100, dtype=np.int64)  # context-only inputs stay -100
        masks = {name: np.zeros((len(windows.inputs), T), dtype=bool) for name in filters}
        token_id = table["token_id"].to_numpy()
        for w, (ids, rows, first) in enumerate(zip(windows.inputs, windows.rows, windows.first.tolist())):
            inputs[w, : len(ids)], targets[w, first : len(ids)] = ids, token_id[rows]
            for name in filters:
                masks[name][w, first : len(ids)] = row_masks[name][rows]
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
        corpus = load_corpus(dataset_corpus(path, split, max_docs_per_domain, max_chars_per_doc))
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


class FilteredLossCallback:
    """The trainer callback (`train.callbacks.Callback` hooks) that logs `val/loss/<filter>` at every evaluation.

    `trainer.filtered_eval=[...]` adds it; in `trainer.callbacks` it is
    `{_target_: eval.inloop.FilteredLossCallback, filters: [...], corpus: null, window: null, stride: null}`.
    At fit start it resolves its documents, W and S with `eval.corpus.scoring_corpus`, as `python -m eval`
    does: `corpus` names a `conf/corpus/` file (`corpus: demo` scores what `python -m eval corpus=demo`
    scores), null the run's validation split (`eval.corpus.dataset_corpus`, capped at
    `max_docs_per_domain` documents of `max_chars_per_doc` characters); `window` null is the
    run's `trainer.seq_len` (at most 2048), as eval's `score.window` null is the model's. The
    documents are re-tokenized with the run's tokenizer.json and annotated once.
    """

    def __init__(
        self,
        filters: list[str] = ("all", "content", "function", "no_copy", "content & no_copy"),
        corpus: str | None = None,
        window: int | None = None,
        stride: int | None = None,
        batch_size: int = 8,
        prefix_token: str = "<|endoftext|>",
        max_docs_per_domain: int | None = 8,
        max_chars_per_doc: int | None = 20000,
    ):
        self.filters, self.corpus, self.window, self.stride = list(filters), corpus, window, stride
        self.batch_size, self.prefix_token = batch_size, prefix_token
        self.max_docs_per_domain, self.max_chars_per_doc = max_docs_per_domain, max_chars_per_doc
        self.loss: FilteredLoss | None = None

    def scoring_corpus(self, trainer) -> ScoringCorpus:
        """This run's documents, W and S (the trainer's `data_path` and `cfg.trainer.seq_len`)."""
        corpus = (
            named_corpus(self.corpus)
            if self.corpus
            else dataset_corpus(
                trainer.data_path, "validation", self.max_docs_per_domain, self.max_chars_per_doc
            )
        )
        trained = TrainingContext(seq_len=trainer.cfg.trainer.seq_len)
        return scoring_corpus(corpus, self.window, self.stride, [trained], ["this run"])

    def on_fit_start(self, trainer) -> None:
        if self.loss is None:
            scored = self.scoring_corpus(trainer)
            self.loss = FilteredLoss.from_texts(
                scored.corpus.texts, f"{trainer.data_path}/tokenizer.json", scored.corpus.domains, self.filters,
                scored.window, scored.stride, self.batch_size, self.prefix_token,
            )  # fmt: skip

    def on_evaluate(self, trainer) -> dict[str, float]:
        if self.loss is None:
            self.on_fit_start(trainer)
        return self.loss(trainer.model)

    def on_fit_end(self, trainer) -> None:
        """Nothing to release."""
