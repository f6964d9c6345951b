"""Per-token losses (nats) of zoo pretrained dirs and local Hugging Face models over strided windows.

Windows: every document is scored on its own, preceded by one separator token (`<|endoftext|>`
by default: our shards and Olmo's end each document with it, so a document start after it is what
the models saw in training). Windows of W inputs start every S tokens (strided scoring, the usual
way to take perplexity of long documents): the first scores all its targets, each later one only
its last S, so every token is scored exactly once and a target at document position p sees at
least min(p, W - S) tokens of its document (`context_start` records where its context began;
`repeat_n` is recomputed over exactly that context). S = W gives non-overlapping windows.
Windows are sorted by length and batched, right-padded; causal models ignore the padding.

Precision: the caller's dtype (eval.context: the training precision by default); the loss is
`cross_entropy(reduction="none")` on the logits, cast to fp32 one batch at a time (no log-softmax
tensor is kept).

Caching and resume: a model's losses are stored under `cache_dir` keyed by `SCORE_VERSION`, the
model (resolved path, weight file sizes and mtimes), the windows' inputs, W, S, the separator, the
target ids and the dtype. While
scoring, finished batches are checkpointed every `checkpoint_every` batches, so an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.errors import UserError
from models.pretrained import check_pretrained, is_pretrained_dir, load_pretrained

ForwardFn = Callable[[torch.Tensor], torch.Tensor]
CE_ROWS = 256
# Part of every loss-cache key: bump it whenever a change to scoring (windows, loss, model code or
# kernels) changes the losses, so no cached loss of older code is read back.
SCORE_VERSION = 2


@dataclass
class LoadedModel:
    """A causal LM as a function `input_ids [B, T] -> logits [B, T, V]`, with where it came from."""

    name: str
    path: Path
    kind: str  # "zoo" or "hf"
    forward: ForwardFn
    vocab_size: int
    tokenizer_file: Path | None
    identity: str


def model_kind(path: Path) -> str:
    """`zoo` for a hybridzoo pretrained dir (validated: an incomplete or corrupt one is a UserError naming
    the file), `hf` for a transformers dir; UserError otherwise."""
    if is_pretrained_dir(path):
        check_pretrained(path)
        return "zoo"
    if (path / "config.json").is_file():
        return "hf"
    raise UserError(
        f"model {str(path)!r} is neither a hybridzoo pretrained dir nor a Hugging Face model dir "
        "(config.json); check the path."
    )


def model_identity(path: Path) -> str:
    """sha256 over the resolved path and each file's name, size and mtime (cheap, no weight hashing)."""
    entries = [str(path.resolve())]
    entries += [
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(path.iterdir()) if p.is_file()
    ]
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def load_model(
    path: str | os.PathLike, device: torch.device, dtype: torch.dtype, name: str | None = None
) -> LoadedModel:
    """Load a zoo pretrained dir or a local HF dir (never from the hub) for inference."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"model directory {str(path)!r} does not exist; check the models= list.")
    kind = model_kind(path)
    if kind == "zoo":
        model = load_pretrained(path, device=device, dtype=dtype).eval()
        forward, vocab = model, model.cfg.vocab_size
    else:
        from transformers import AutoModelForCausalLM

        hf = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True).to(device).eval()

        def forward(input_ids: torch.Tensor, hf=hf) -> torch.Tensor:
            return hf(input_ids=input_ids, use_cache=False).logits

        vocab = hf.config.vocab_size
    tokenizer = path / "tokenizer.json"
    return LoadedModel(
        name=name or path.name,
        path=path,
        kind=kind,
        forward=forward,
        vocab_size=int(vocab),
        tokenizer_file=tokenizer if tokenizer.is_file() else None,
        identity=model_identity(path),
    )


@dataclass
class Windows:
    """The scoring plan for a token table: per row its window; per window its rows and inputs.

    Window w feeds `inputs[w]` and scores the targets `rows[w]` at input positions
    `first[w] .. len(inputs[w]) - 1`; the input positions before `first[w]` are context only.
    """

    window: int
    stride: int
    prefix_id: int
    inputs: list[np.ndarray]  # per window: input ids [n_w]
    rows: list[np.ndarray]  # per window: table rows of its targets [m_w], m_w <= n_w
    first: np.ndarray  # per window: input position of its first target (n_w - m_w)
    window_index: np.ndarray  # per row: window number within its document
    window_pos: np.ndarray  # per row: position within the window's inputs (= context length - 1)
    context_start: np.ndarray  # per row: document position of the first document token it saw
    group: np.ndarray  # per row: a global window id (doc, window), for per-window statistics

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(f"{self.window}:{self.stride}:{self.prefix_id}".encode())
        for ids, rows in zip(self.inputs, self.rows):
            digest.update(len(ids).to_bytes(8, "little") + len(rows).to_bytes(8, "little"))
            digest.update(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
        return digest.hexdigest()


def default_stride(window: int, stride: int | None) -> int:
    """`stride`, or half the window when None; UserError unless 1 <= stride <= window."""
    if window < 1:
        raise UserError(f"window {window} must be a positive number of tokens.")
    stride = max(1, window // 2) if stride is None else stride
    if not 1 <= stride <= window:
        raise UserError(
            f"stride {stride} is outside 1..{window} (the window); set a stride (score.stride) in that range."
        )
    return stride


def window_starts(length: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """(start, first target, end) document positions of each window over a document of `length` tokens.

    Window k feeds the inputs for targets [k*stride, k*stride + window) and scores those not scored
    before: all of them in window 0, the last `stride` in later windows. So every target is scored
    once, and a target of window k >= 1 sees at least window - stride + 1 document tokens.
    """
    spans, start = [], 0
    while True:
        end = min(start + window, length)
        spans.append((start, 0 if start == 0 else start + window - stride, end))
        if end >= length:
            return spans
        start += stride


def make_windows(
    doc_id: np.ndarray,
    position: np.ndarray,
    token_id: np.ndarray,
    window: int,
    prefix_id: int,
    stride: int | None = None,
) -> Windows:
    """Cut documents (rows grouped by `doc_id`, positions 0..L-1 in order) into strided windows.

    The input sequence of a document is `[prefix, t_0, ..., t_{L-1}]`; window k feeds its slice
    `[k*stride, k*stride + window)` (so target t_p is predicted from input position p) and scores the
    targets listed by `window_starts`. `stride=window` gives non-overlapping windows; the default
    (None) is `window // 2`.
    """
    stride = default_stride(window, stride)
    doc_id, position = np.asarray(doc_id), np.asarray(position, dtype=np.int64)
    token_id = np.asarray(token_id, dtype=np.int64)
    n = len(token_id)
    doc_starts = np.flatnonzero(np.r_[True, doc_id[1:] != doc_id[:-1]]) if n else np.zeros(0, dtype=np.int64)
    window_index = np.zeros(n, dtype=np.int32)
    window_pos = np.zeros(n, dtype=np.int32)
    context_start = np.zeros(n, dtype=np.int64)
    group = np.zeros(n, dtype=np.int64)
    inputs, rows, first = [], [], []
    for r0, r1 in zip(doc_starts.tolist(), np.r_[doc_starts[1:], n].tolist()):
        if position[r0] != 0 or position[r1 - 1] != r1 - r0 - 1:
            raise UserError(
                f"document {doc_id[r0]} is not one run of positions 0..L-1; pass whole documents."
            )
        for k, (start, lo, end) in enumerate(window_starts(r1 - r0, window, stride)):
            head = [prefix_id] if start == 0 else [int(token_id[r0 + start - 1])]
            inputs.append(np.r_[head, token_id[r0 + start : r0 + end - 1]].astype(np.int64))
            targets = np.arange(r0 + lo, r0 + end)
            rows.append(targets)
            first.append(lo - start)
            window_index[targets] = k
            window_pos[targets] = np.arange(lo, end) - start
            context_start[targets] = max(start - 1, 0)
            group[targets] = len(rows) - 1
    return Windows(window, stride, prefix_id, inputs, rows, np.asarray(first, dtype=np.int64), window_index,
                   window_pos, context_start, group)  # fmt: skip


def batches(windows: Windows, batch_size: int) -> list[np.ndarray]:
    """Window indices per batch: longest first, so padding stays small."""
    order = np.argsort([-len(x) for x in windows.inputs], kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _batch_tensors(windows: Windows, idx: np.ndarray, token_id: np.ndarray, device: torch.device):
    lengths = [len(windows.inputs[i]) for i in idx]
    T = max(lengths)
    inputs = np.full((len(idx), T), windows.prefix_id, dtype=np.int64)
    targets = np.full((len(idx), T), -100, dtype=np.int64)
    for row, i in enumerate(idx):
        n = lengths[row]
        inputs[row, :n] = windows.inputs[i]
        targets[row, windows.first[i] : n] = token_id[windows.rows[i]]
    return torch.from_numpy(inputs).to(device), torch.from_numpy(targets).to(device)


@torch.inference_mode()
def token_losses(
    forward: ForwardFn,
    windows: Windows,
    token_id: np.ndarray,
    batch_size: int,
    device: torch.device,
    progress: str | None = None,
    checkpoint: Path | None = None,
    checkpoint_every: int = 50,
) -> np.ndarray:
    """Loss in nats of every row's token given its window's prefix, float32 [N]."""
    losses = np.full(len(token_id), np.nan, dtype=np.float32)
    plan = batches(windows, batch_size)
    done = _load_partial(checkpoint, losses) if checkpoint else 0
    for step, idx in enumerate(tqdm(plan, desc=progress, disable=progress is None, initial=done), start=0):
        if step < done:
            continue
        inputs, targets = _batch_tensors(windows, idx, token_id, device)
        logits = forward(inputs)  # [B, T, V]
        spans = [(int(windows.first[i]), len(windows.inputs[i])) for i in idx]  # scored positions only
        loss = torch.cat(
            [row_losses(logits[row, a:b], targets[row, a:b]) for row, (a, b) in enumerate(spans)]
        )
        loss = loss.cpu().numpy()
        losses[np.concatenate([windows.rows[i] for i in idx])] = loss
        if checkpoint and (step + 1) % checkpoint_every == 0 and step + 1 < len(plan):
            _save_atomic(checkpoint, {"done": np.array(step + 1), "losses": losses})
    return losses


def row_losses(logits: torch.Tensor, targets: torch.Tensor, rows: int = CE_ROWS) -> torch.Tensor:
    """cross_entropy(reduction="none") of logits [N, V] against targets [N] (-100: 0), fp32 [N].

    Done `rows` rows at a time: the fp32 cast of bf16 logits stays small on GPU, and on CPU the
    log-softmax scratch stays in cache instead of making another [N, V] pass through memory.
    """
    out = torch.empty(targets.shape, dtype=torch.float32, device=logits.device)
    for start in range(0, len(targets), rows):
        part = slice(start, start + rows)
        out[part] = F.cross_entropy(logits[part].float(), targets[part], reduction="none")
    return out


@torch.inference_mode()
def bare_forward(
    forward: ForwardFn, windows: Windows, token_id: np.ndarray, batch_size: int, device: torch.device
) -> float:
    """Seconds for the forward passes alone over the same batches (the benchmark's baseline)."""
    start = time.perf_counter()
    for idx in batches(windows, batch_size):
        inputs, _ = _batch_tensors(windows, idx, token_id, device)
        forward(inputs)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def cached_losses(
    model: LoadedModel,
    windows: Windows,
    token_id: np.ndarray,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype,
    cache_dir: Path | None,
    progress: bool = True,
) -> np.ndarray:
    """`token_losses` (a progress bar named after the model unless `progress` is False), read from /
    written to the per-model cache when `cache_dir` is set."""
    label = model.name if progress else None
    if cache_dir is None:
        return token_losses(model.forward, windows, token_id, batch_size, device, progress=label)
    key = loss_cache_key(model.identity, windows, token_id, dtype)
    final, partial = cache_dir / f"losses-{key}.npy", cache_dir / f"losses-{key}.partial.npz"
    if final.is_file():
        losses = np.load(final)
        if losses.shape == (len(token_id),):
            return losses
    cache_dir.mkdir(parents=True, exist_ok=True)
    losses = token_losses(model.forward, windows, token_id, batch_size, device, label, partial)
    _save_atomic(final, losses)
    partial.unlink(missing_ok=True)
    return losses


def loss_cache_key(identity: str, windows: Windows, token_id: np.ndarray, dtype: torch.dtype) -> str:
    """The cache key of one model's losses: code version, model, windows, target ids and dtype."""
    targets = hashlib.sha256(np.ascontiguousarray(token_id, dtype=np.int64).tobytes()).hexdigest()
    fields = [SCORE_VERSION, identity, windows.fingerprint, targets, str(dtype)]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:32]


def _load_partial(path: Path, losses: np.ndarray) -> int:
    if not path.is_file():
        return 0
    try:
        with np.load(path) as saved:
            if saved["losses"].shape != losses.shape:
                return 0
            losses[:] = saved["losses"]
            return int(saved["done"])
    except (OSError, ValueError, KeyError):
        return 0  # a damaged checkpoint only costs recomputation


def _save_atomic(path: Path, data: np.ndarray | dict[str, np.ndarray]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **data) if isinstance(data, dict) else np.save(f, data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
