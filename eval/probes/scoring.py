"""Candidate scoring: log p(candidate | prefix) summed over the candidate's tokens, in batched forwards.

Every candidate of an example continues the same prefix. Candidates of one token are all read from
one forward of the prefix (the last position's distribution); a candidate of n > 1 tokens needs the
prefix plus its first n - 1 tokens as input, one sequence of its own. Sequences are sorted longest
first and right-padded into batches (causal models ignore what follows a position), and log-softmax
is taken in fp32 only at the positions asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from eval.score import ForwardFn, LoadedModel
from models.errors import UserError


@dataclass
class _Job:
    inputs: np.ndarray  # [T] input ids
    positions: list[int]  # where each asked-for token is predicted
    targets: list[int]  # the token asked for at that position
    item: int  # which example
    owners: list[int]  # which candidate each target belongs to


def _jobs(items: list[tuple[np.ndarray, list[np.ndarray]]]) -> list[_Job]:
    jobs = []
    for item, (prefix, candidates) in enumerate(items):
        last = len(prefix) - 1
        single = [k for k, c in enumerate(candidates) if len(c) == 1]
        if single:
            jobs.append(
                _Job(prefix, [last] * len(single), [int(candidates[k][0]) for k in single], item, single)
            )
        for k, c in enumerate(candidates):
            if len(c) > 1:
                inputs = np.concatenate([prefix, c[:-1]])
                jobs.append(_Job(inputs, list(range(last, len(inputs))), c.tolist(), item, [k] * len(c)))
    return jobs


@torch.inference_mode()
def candidate_logprobs(
    forward: ForwardFn,
    items: list[tuple[np.ndarray, list[np.ndarray]]],
    batch_size: int,
    device: torch.device,
    pad_id: int,
) -> list[np.ndarray]:
    """Per item (prefix [T], candidates [n_k] each): the sum of log p of each candidate's tokens, [K]."""
    if batch_size < 1:
        raise UserError(f"batch_size {batch_size} must be a positive number of sequences.")
    out = [np.zeros(len(candidates)) for _, candidates in items]
    jobs = sorted(_jobs(items), key=lambda j: -len(j.inputs))
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start : start + batch_size]
        T = len(batch[0].inputs)
        inputs = np.full((len(batch), T), pad_id, dtype=np.int64)  # [B, T]
        for row, job in enumerate(batch):
            inputs[row, : len(job.inputs)] = job.inputs
        logits = forward(torch.from_numpy(inputs).to(device))  # [B, T, V]
        for row, job in enumerate(batch):
            picked = logits[row, job.positions].float().log_softmax(-1)  # [n, V]
            targets = torch.tensor(job.targets, device=picked.device)
            logp = picked.gather(1, targets[:, None])[:, 0].cpu().numpy()
            np.add.at(out[job.item], job.owners, logp)
    return out


def longest_input(items: list[tuple[np.ndarray, list[np.ndarray]]]) -> int:
    """The longest sequence `candidate_logprobs` will feed for these items."""
    return max((len(p) + max(len(c) for c in cs) - 1 for p, cs in items), default=0)


def context_limit(model: LoadedModel) -> int | None:
    """The most positions a model accepts: an HF config's `max_position_embeddings`; None for zoo
    models (RoPE angles and recurrent states have no built-in limit)."""
    if model.kind != "hf":
        return None
    config = json.loads((Path(model.path) / "config.json").read_text())
    limit = config.get("max_position_embeddings")
    return int(limit) if limit else None
