"""The variable-length paths of a `Packing`: flex_attention block masks and fla's precomputed indices.

flex_attention vs SDPA: both fp32 softmax attention, the fused kernel sums in another order, so the
outputs agree to fp32 rounding (ATOL 1e-5, RTOL 1e-4 as the gated delta rule tests). On CUDA the
matmuls may run in TF32 (torch's default for SDPA is full fp32): the CUDA test pins full fp32.
"""

from __future__ import annotations

import pytest
import torch

from models import build_model
from models.ops import gated_delta_rule, short_conv
from models.packing import Packing
from tests.models.test_model import tiny

ATOL, RTOL = 1e-5, 1e-4
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DEVICES = [
    pytest.param("cpu", marks=pytest.mark.slow, id="cpu"),  # compiles flex_attention with inductor
    pytest.param("cuda", marks=[pytest.mark.gpu, requires_cuda], id="cuda"),
]


def packed_doc_ids(device: str) -> torch.Tensor:
    """[2, 300]: documents of 1, 130 and 169 tokens, and 250 + 50 (crossing flex's 128-token blocks)."""
    rows = [[1, 130, 169], [250, 50]]
    ids = [torch.cat([torch.full((n,), i) for i, n in enumerate(row)]) for row in rows]
    return torch.stack(ids).to(device)


@pytest.fixture
def full_fp32():
    """Full fp32 matmuls on CUDA for the duration of a test (torch's default is TF32 off; restore it)."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = previous


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["attn", "swa", "gqa"])
def test_flex_attention_equals_the_sdpa_mask_path(device: str, name: str, full_fp32) -> None:
    """Attention mixer outputs, and on CUDA input gradients: block mask (flex) == boolean mask (SDPA).

    torch's flex_attention has no CPU backward, so the CPU case checks the forward only.
    """
    torch.manual_seed(0)
    mixer = build_model(tiny([name]), device=device).blocks[0].mixer  # window 5 for swa
    doc_ids = packed_doc_ids(device)
    flex = Packing.from_doc_ids(doc_ids, windows=[mixer.window], flex=True)
    sdpa = Packing.from_doc_ids(doc_ids, windows=[mixer.window], flex=False)
    assert mixer.window in flex.block_masks and mixer.window in sdpa.masks
    x = torch.randn(2, 300, 64, device=device)
    backward = device == "cuda"
    outputs, grads = [], []
    for packing in (flex, sdpa):
        x_ = x.clone().requires_grad_(backward)
        with torch.set_grad_enabled(backward):
            out = mixer(x_, packing=packing)
        if backward:
            out.pow(2).sum().backward()
            grads.append(x_.grad)
        outputs.append(out.detach())
    torch.testing.assert_close(outputs[0], outputs[1], atol=ATOL, rtol=RTOL)
    if backward:
        torch.testing.assert_close(grads[0], grads[1], atol=ATOL, rtol=RTOL)


@pytest.mark.gpu
@requires_cuda
def test_cuda_default_packing_uses_flex() -> None:
    p = Packing.from_doc_ids(packed_doc_ids("cuda"), windows=[None, 5])
    assert set(p.block_masks) == {None, 5} and not p.masks


@pytest.mark.gpu
@requires_cuda
def test_fla_kernels_with_precomputed_indices_equal_their_own() -> None:
    """fla's gated delta rule and conv given a Packing (host boundaries, chunk index) give exactly
    what they compute from cu_seqlens alone."""
    torch.manual_seed(0)
    p = Packing.from_doc_ids(packed_doc_ids("cuda"))
    t = 600
    q, k = (torch.randn(1, t, 2, 32, device="cuda") for _ in range(2))
    v = torch.randn(1, t, 4, 64, device="cuda")
    g = -torch.rand(1, t, 4, device="cuda")
    beta = torch.rand(1, t, 4, device="cuda")
    given = gated_delta_rule(q, k, v, g, beta, use_qk_l2norm=True, packing=p, backend="fla")[0]
    own = gated_delta_rule(q, k, v, g, beta, use_qk_l2norm=True, cu_seqlens=p.cu_seqlens, backend="fla")[0]
    assert torch.equal(given, own)
    x, w = torch.randn(1, t, 96, device="cuda"), torch.randn(96, 4, device="cuda")
    y_given = short_conv(x, w, packing=p, backend="fla")
    assert torch.equal(y_given, short_conv(x, w, cu_seqlens=p.cu_seqlens, backend="fla"))
    torch.testing.assert_close(y_given, short_conv(x, w, packing=p, backend="torch"), atol=1e-4, rtol=1e-4)
