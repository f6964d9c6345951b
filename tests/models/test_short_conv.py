"""Tests for models.ops.short_conv: nn.Conv1d convention, packed sequences, gradients, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from models.ops import short_conv

ATOL, RTOL = 1e-6, 1e-5


def reference(x: torch.Tensor, conv: nn.Conv1d, activation: str | None) -> torch.Tensor:
    """nn.Conv1d(D, D, W, groups=D, padding=W-1) over time, truncated to the first T outputs."""
    y = conv(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)
    return F.silu(y) if activation else y


@pytest.mark.parametrize("activation", ["silu", None], ids=["silu", "linear"])
@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize(
    ("b", "t", "d", "w"),
    [
        pytest.param(*s, id="B{}-T{}-D{}-W{}".format(*s))
        for s in [(2, 1, 8, 4), (2, 5, 16, 4), (1, 33, 8, 3), (3, 17, 4, 2)]
    ],
)
def test_matches_conv1d(b, t, d, w, bias, activation):
    """Same values as the depthwise nn.Conv1d transformers stores as a [D, 1, W] weight."""
    torch.manual_seed(0)
    conv = nn.Conv1d(d, d, w, groups=d, padding=w - 1, bias=bias)
    x = torch.randn(b, t, d)
    y = short_conv(x, conv.weight[:, 0], bias=conv.bias, activation=activation, backend="torch")
    torch.testing.assert_close(y, reference(x, conv, activation), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
def test_packed_equals_separate(bias):
    """With cu_seqlens no window crosses a sequence start: values and gradients equal per-sequence runs."""
    torch.manual_seed(0)
    lengths, d, w = [37, 1, 100, 2, 64], 8, 4
    cu_seqlens = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
    x = torch.randn(1, sum(lengths), d, requires_grad=True)
    weight = torch.randn(d, w, requires_grad=True)
    b = torch.randn(d, requires_grad=True) if bias else None
    y = short_conv(x, weight, bias=b, cu_seqlens=cu_seqlens, backend="torch")
    d_y = torch.randn_like(y)
    grads = torch.autograd.grad((y * d_y).sum(), [x, weight] + ([b] if bias else []))

    pieces, total = [], None
    for s, e in zip(cu_seqlens[:-1].tolist(), cu_seqlens[1:].tolist()):
        y_n = short_conv(x[:, s:e], weight, bias=b, backend="torch")
        pieces.append(y_n)
        part = (y_n * d_y[:, s:e]).sum()
        total = part if total is None else total + part
    torch.testing.assert_close(y, torch.cat(pieces, dim=1), atol=ATOL, rtol=RTOL)
    for got, want in zip(grads, torch.autograd.grad(total, [x, weight] + ([b] if bias else []))):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
def test_gradcheck_fp64(packed):
    """Gradients of x, weight and bias are exact in fp64 (dense and packed taps)."""
    torch.manual_seed(0)
    x = torch.randn(1, 9, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True)
    cu_seqlens = torch.tensor([0, 2, 3, 9]) if packed else None

    def fn(x, weight, bias):
        return short_conv(x, weight, bias=bias, cu_seqlens=cu_seqlens, backend="torch")

    assert torch.autograd.gradcheck(fn, (x, weight, bias))


def test_keeps_dtype():
    """bf16 input gives bf16 output even with an fp32 weight."""
    y = short_conv(torch.randn(1, 6, 4, dtype=torch.bfloat16), torch.randn(4, 4))
    assert y.dtype == torch.bfloat16 and y.shape == (1, 6, 4)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "kwargs", "match"),
    [
        pytest.param((6, 4), (4, 4), {}, "must be \\[B, T, D\\]", id="rank"),
        pytest.param((1, 6, 4), (4, 1, 4), {}, "must be \\[D=4, W\\]", id="weight3d"),
        pytest.param((1, 6, 4), (5, 4), {}, "must be \\[D=4, W\\]", id="weight_d"),
        pytest.param((1, 6, 4), (4, 4), {"bias": torch.zeros(3)}, "bias", id="bias"),
        pytest.param((2, 6, 4), (4, 4), {"cu_seqlens": torch.tensor([0, 6])}, "B == 1", id="cu_batch"),
        pytest.param((1, 6, 4), (4, 4), {"activation": "gelu"}, "activation='gelu'", id="act"),
        pytest.param((1, 6, 4), (4, 4), {"backend": "triton"}, "backend='triton' is unknown", id="backend"),
        pytest.param((1, 6, 4), (4, 4), {"backend": "fla"}, "needs CUDA", id="fla_cpu"),
    ],
)
def test_bad_input_raises(x_shape, w_shape, kwargs, match):
    """Bad shapes, activation or backend raise ValueError naming the value and the fix."""
    with pytest.raises(ValueError, match=match):
        short_conv(torch.zeros(x_shape), torch.zeros(w_shape), **kwargs)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(
    ("dtype", "tol"), [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)], ids=["fp32", "bf16"]
)
@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
def test_fla_matches_torch(dtype, tol, packed):
    """fla's causal_conv1d and our torch backend agree on CUDA, values and gradients."""
    torch.manual_seed(0)
    lengths = [37, 1, 100, 64]
    cu_seqlens = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()]).cuda() if packed else None
    b, t = (1, sum(lengths)) if packed else (2, 150)
    x = torch.randn(b, t, 64, device="cuda", dtype=dtype, requires_grad=True)
    weight = torch.randn(64, 4, device="cuda", dtype=dtype, requires_grad=True)
    bias = torch.randn(64, device="cuda", dtype=dtype, requires_grad=True)
    results = []
    for backend in ("fla", "torch"):
        y = short_conv(x, weight, bias=bias, cu_seqlens=cu_seqlens, backend=backend)
        results.append((y, *torch.autograd.grad(y.float().square().sum(), [x, weight, bias])))
    for a, e in zip(*results):
        scale = e.float().abs().max().clamp(min=1.0)
        torch.testing.assert_close(a.float() / scale, e.float() / scale, atol=tol, rtol=tol)
