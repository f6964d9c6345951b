"""Strided scoring windows: each token scored once, enough context, stride=W is the old layout, and
repeat_n counts exactly the document tokens a target saw."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from eval.repeats import repeat_n_in_context
from eval.score import load_model, make_windows, token_losses

PREFIX = 0


def random_docs(rng: np.random.Generator, max_len: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(doc_id, position, token_id) of 1-4 documents with random lengths (some of 1 token) and a small vocab."""
    lengths = rng.integers(1, max_len, rng.integers(1, 5))
    doc_id = np.repeat(np.arange(len(lengths)), lengths)
    position = np.concatenate([np.arange(n) for n in lengths])
    return doc_id, position, rng.integers(1, 5, len(doc_id))


def non_overlapping_windows(doc_id, position, token_id, window, prefix_id):
    """The layout before strided scoring: token i of a document is target i % W of window i // W."""
    window_index, window_pos = position // window, position % window
    key = doc_id.astype(np.int64) * (1 << 32) + window_index
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    bounds = np.r_[starts, len(token_id)]
    inputs, rows = [], []
    for a, b in itertools.pairwise(bounds):
        first = prefix_id if window_index[a] == 0 else int(token_id[a - 1])
        inputs.append(np.r_[first, token_id[a : b - 1]])
        rows.append(np.arange(a, b))
    return inputs, rows, window_index, window_pos, np.repeat(np.arange(len(starts)), np.diff(bounds))


def test_stride_equal_to_window_reproduces_the_non_overlapping_windows() -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        doc_id, position, token_id = random_docs(rng)
        window = int(rng.integers(1, 12))
        w = make_windows(doc_id, position, token_id, window, PREFIX, stride=window)
        inputs, rows, window_index, window_pos, group = non_overlapping_windows(
            doc_id, position, token_id, window, PREFIX
        )
        assert [x.tolist() for x in w.inputs] == [x.tolist() for x in inputs]
        assert [r.tolist() for r in w.rows] == [r.tolist() for r in rows]
        assert (w.first == 0).all() and (w.group == group).all()
        assert (w.window_index == window_index).all() and (w.window_pos == window_pos).all()


def test_strided_windows_score_each_token_once_with_min_context() -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        doc_id, position, token_id = random_docs(rng)
        window = int(rng.integers(1, 12))
        stride = int(rng.integers(1, window + 1))
        w = make_windows(doc_id, position, token_id, window, PREFIX, stride=stride)
        scored = np.concatenate(w.rows)
        assert np.array_equal(np.sort(scored), np.arange(len(token_id)))  # every row, exactly once
        for ids, rows, first in zip(w.inputs, w.rows, w.first):
            assert len(ids) <= window and len(ids) - first == len(rows)
            for j, r in enumerate(rows):  # the inputs up to this target are the document's real prefix
                p, doc = position[r], token_id[doc_id == doc_id[r]]
                stream = np.r_[PREFIX, doc]  # stream[i] is the input that predicts doc[i]
                k = first + j
                assert ids[: k + 1].tolist() == stream[p - k : p + 1].tolist()
                assert w.window_pos[r] == k and w.context_start[r] == max(p - k - 1, 0)
        seen = position - w.context_start
        assert (seen >= np.minimum(position, window - stride)).all(), (window, stride)
        assert (w.context_start <= position).all()


def test_stride_outside_one_to_window_is_one_clear_error() -> None:
    doc_id, position, token_id = np.zeros(4, int), np.arange(4), np.arange(4)
    for stride in (0, 5):
        with pytest.raises(ValueError, match=f"stride {stride} is outside 1..4"):
            make_windows(doc_id, position, token_id, 4, PREFIX, stride=stride)
    assert make_windows(doc_id, position, token_id, 4, PREFIX).stride == 2  # default: window // 2


def brute_repeat_n(tokens: np.ndarray, p: int, start: int, max_n: int = 8) -> int:
    """Largest n whose n-gram ending at p, and an earlier occurrence, lie in positions [start, p]."""
    best = 0
    for n in range(1, max_n + 1):
        if p - n + 1 < start:
            break
        gram = tokens[p - n + 1 : p + 1].tolist()
        if any(tokens[j - n + 1 : j + 1].tolist() == gram for j in range(start + n - 1, p)):
            best = n
    return best


def test_repeat_n_counts_the_previous_windows_last_token() -> None:
    # "alph|a| bet|a" with W=2: window 1 feeds [a, bet] and scores [bet, a]; the last a saw an a.
    alph, a, bet = 7, 3, 9
    tokens = np.array([alph, a, bet, a])
    w = make_windows(np.zeros(4, int), np.arange(4), tokens, 2, PREFIX, stride=2)
    assert w.context_start.tolist() == [0, 0, 1, 1]
    assert repeat_n_in_context(tokens, np.zeros(4, int), np.arange(4), w.context_start).tolist() == [
        0,
        0,
        0,
        1,
    ]


def test_repeat_n_in_context_equals_the_definition() -> None:
    rng = np.random.default_rng(2)
    for _ in range(100):
        doc_id, position, token_id = random_docs(rng)
        window = int(rng.integers(1, 12))
        w = make_windows(doc_id, position, token_id, window, PREFIX, stride=int(rng.integers(1, window + 1)))
        got = repeat_n_in_context(token_id, doc_id, position, w.context_start)
        for r in range(len(token_id)):
            doc = token_id[doc_id == doc_id[r]]
            assert got[r] == brute_repeat_n(doc, position[r], w.context_start[r]), r


def test_strided_losses_match_a_direct_forward(tiny_models) -> None:
    cpu = torch.device("cpu")
    model = load_model(tiny_models["transformer"], cpu, torch.float32)
    token_id = np.random.default_rng(3).integers(1, 400, 20)
    w = make_windows(np.zeros(20, int), np.arange(20), token_id, window=8, prefix_id=PREFIX, stride=4)
    losses = token_losses(model.forward, w, token_id, batch_size=2, device=cpu)
    # window 2 starts at 8: inputs t7..t14 predict t8..t15, of which it scores t12..t15
    with torch.no_grad():
        logits = model.forward(torch.from_numpy(token_id[None, 7:15]))[0]
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor(token_id[8:16]), reduction="none")
    assert np.allclose(losses[12:16], expected[4:].numpy(), atol=1e-5)
    assert w.context_start[12] == 7 and np.isfinite(losses).all()
