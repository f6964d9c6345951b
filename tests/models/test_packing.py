"""models.packing: the document layout built once per forward, and the shared attention masks."""

from __future__ import annotations

import pytest
import torch

import models.packing as packing_module
from models import build_model
from models.mixers.attention import attention_mask
from models.ops import gated_delta_rule, short_conv
from models.ops.gated_linear_attention import gla, simple_gla
from models.packing import Packing, cu_seqlens_from_doc_ids
from tests.models.test_model import PATTERNS, VOCAB, tiny


def packed_doc_ids() -> torch.Tensor:
    """[3, 40]: rows of 2, 1 and 3 documents, the last starting with a one-token document."""
    rows = [[11, 29], [40], [1, 25, 14]]
    return torch.stack([torch.cat([torch.full((n,), i) for i, n in enumerate(row)]) for row in rows])


def test_layout_fields_describe_the_segments() -> None:
    doc_ids = packed_doc_ids()
    p = Packing.from_doc_ids(doc_ids)
    assert p.bounds == (0, 11, 40, 80, 81, 106, 120)
    assert torch.equal(p.cu_seqlens, cu_seqlens_from_doc_ids(doc_ids))
    assert torch.equal(p.cu_seqlens_cpu, p.cu_seqlens) and p.max_seqlen == 40
    expected = torch.cat([torch.arange(n) for n in (11, 29, 40, 1, 25, 14)])
    assert torch.equal(p.position, expected)
    # chunks of 64: one per segment except none; fla's layout is (segment, chunk within it)
    assert p.chunks.segments == tuple((i, i + 1) for i in range(6))
    assert p.chunks.chunk_indices.tolist() == [[i, 0] for i in range(6)]
    tokens = torch.arange(120.0)
    padded = torch.cat([tokens, torch.tensor([-1.0])])[p.chunks.gather]  # [6 * 64] slots
    assert torch.equal(padded[p.chunks.scatter], tokens)  # gather then scatter is the identity
    assert (padded == -1).sum() == 6 * 64 - 120


def test_chunk_index_of_long_segments() -> None:
    chunks = packing_module.packed_chunks((0, 5, 14, 14 + 4), 4)
    assert chunks.segments == ((0, 2), (2, 5), (5, 6))
    assert chunks.chunk_indices.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1], [1, 2], [2, 0]]


def count_mask_builds(monkeypatch) -> list[int | None]:
    """Record the window of every document mask built from now on."""
    calls: list[int | None] = []
    build = packing_module.document_mask

    def counted(doc_ids, window):
        calls.append(window)
        return build(doc_ids, window)

    monkeypatch.setattr(packing_module, "document_mask", counted)
    return calls


@pytest.mark.parametrize("name", ["olmo3", "mixed", "hybrid"])
def test_shared_masks_equal_per_layer_masks_and_are_built_once(name: str, monkeypatch) -> None:
    """One mask per distinct window per forward; the logits equal those of masks built per layer."""
    torch.manual_seed(0)
    model = build_model(tiny(PATTERNS[name])).eval()
    x, doc_ids = torch.randint(0, VOCAB, (3, 40)), packed_doc_ids()
    calls = count_mask_builds(monkeypatch)
    with torch.no_grad():
        shared = model(x, doc_ids=doc_ids)
        assert sorted(calls, key=str) == sorted(set(model.attention_windows), key=str)
        calls.clear()
        model.attention_windows = ()  # nothing prepared: every attention layer builds its own mask
        per_layer = model(x, doc_ids=doc_ids)
    n_attention = sum(1 for m in model.cfg.layer_mixers() if m.type == "attention")
    assert len(calls) == n_attention
    assert torch.equal(shared, per_layer)


def test_attention_mixer_packing_path_equals_the_per_call_mask() -> None:
    """The prepared mask equals `attention_mask` of the doc_ids, and the mixer output with it is the
    output with a mask built on the spot."""
    torch.manual_seed(0)
    mixer = build_model(tiny(["swa"])).blocks[0].mixer  # window 5
    doc_ids = packed_doc_ids()
    p = Packing.from_doc_ids(doc_ids, windows=[5, 5, None])
    assert list(p.masks) == [5, None] and not p.block_masks
    assert torch.equal(p.masks[5], attention_mask(40, 5, doc_ids, doc_ids.device))
    x = torch.randn(3, 40, 64)
    with torch.no_grad():
        assert torch.equal(mixer(x, packing=p), mixer(x, packing=Packing.from_doc_ids(doc_ids)))


@pytest.mark.parametrize("backend", ["torch", "torch_recurrent"])
def test_ops_given_a_packing_equal_the_ops_given_cu_seqlens(backend: str) -> None:
    """Precomputed boundaries, chunk maps and positions give exactly the per-call results."""
    torch.manual_seed(0)
    p = Packing.from_doc_ids(packed_doc_ids())
    q, k = (torch.randn(1, 120, 2, 8) for _ in range(2))
    v, g, beta = torch.randn(1, 120, 2, 16), -torch.rand(1, 120, 2), torch.rand(1, 120, 2)
    h0 = torch.randn(6, 2, 8, 16)
    given = gated_delta_rule(
        q, k, v, g, beta, initial_state=h0, output_final_state=True, packing=p, backend=backend
    )
    own = gated_delta_rule(
        q, k, v, g, beta, initial_state=h0, output_final_state=True, cu_seqlens=p.cu_seqlens, backend=backend
    )
    assert torch.equal(given[0], own[0]) and torch.equal(given[1], own[1])
    x, w = torch.randn(1, 120, 12), torch.randn(12, 4)
    assert torch.equal(short_conv(x, w, packing=p), short_conv(x, w, cu_seqlens=p.cu_seqlens))
    for op, decay in ((simple_gla, g), (gla, -torch.rand(1, 120, 2, 8))):
        given = op(q, k, v, decay, initial_state=h0, output_final_state=True, packing=p, backend=backend)
        own = op(q, k, v, decay, initial_state=h0, output_final_state=True, cu_seqlens=p.cu_seqlens,
                 backend=backend)  # fmt: skip
        assert torch.equal(given[0], own[0]) and torch.equal(given[1], own[1])


def test_ops_reject_a_packing_of_other_tokens_or_with_cu_seqlens() -> None:
    p = Packing.from_doc_ids(packed_doc_ids())
    q = torch.randn(1, 100, 2, 8)
    g = torch.rand(1, 100, 2)
    with pytest.raises(ValueError, match="packing covers 120 tokens, not T=100"):
        gated_delta_rule(q, q, q, g, g, packing=p)
    with pytest.raises(ValueError, match="not both"):
        short_conv(torch.randn(1, 120, 4), torch.randn(4, 4), packing=p, cu_seqlens=p.cu_seqlens)
    with pytest.raises(ValueError, match="packing covers 120 tokens"):
        short_conv(torch.randn(2, 60, 4), torch.randn(4, 4), packing=p)
