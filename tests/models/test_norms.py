"""RMSNorm's hand-written backward against autograd through the textbook formula."""

from __future__ import annotations

import torch

from models.norms import GatedRMSNorm, RMSNorm


def reference(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    x32 = x.float()
    return (weight.float() * x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def test_rmsnorm_values_and_gradients_match_formula():
    torch.manual_seed(0)
    norm = RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        norm.weight.normal_()
    x = torch.randn(3, 7, 16, requires_grad=True)
    dy = torch.randn(3, 7, 16)
    got = norm(x)
    got_grads = torch.autograd.grad((got * dy).sum(), (x, norm.weight))
    want = reference(x, norm.weight, 1e-5)
    want_grads = torch.autograd.grad((want * dy).sum(), (x, norm.weight))
    torch.testing.assert_close(got, want)
    for g, w in zip(got_grads, want_grads):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_rmsnorm_gradcheck_fp64():
    weight = torch.randn(5, dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    norm = RMSNorm(5).double()
    assert torch.autograd.gradcheck(
        lambda x, w: torch.func.functional_call(norm, {"weight": w}, (x,)), (x, weight)
    )


def test_rmsnorm_keeps_input_dtype_and_bf16_weight_gets_bf16_grad():
    norm = RMSNorm(8).to(torch.bfloat16)
    x = torch.randn(2, 8, dtype=torch.bfloat16, requires_grad=True)
    y = norm(x)
    y.float().sum().backward()
    assert y.dtype == torch.bfloat16 and x.grad.dtype == torch.bfloat16
    assert norm.weight.grad.dtype == torch.bfloat16
    torch.testing.assert_close(y, reference(x, norm.weight, norm.eps))


def test_gated_rmsnorm_is_norm_times_silu_gate():
    torch.manual_seed(0)
    norm = GatedRMSNorm(8)
    x, gate = torch.randn(4, 8), torch.randn(4, 8)
    torch.testing.assert_close(
        norm(x, gate), reference(x, norm.weight, norm.eps) * torch.nn.functional.silu(gate)
    )
