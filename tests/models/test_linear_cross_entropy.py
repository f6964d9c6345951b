"""The fused chunked head + cross-entropy against the plain route (full logits, F.cross_entropy)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models import build_model, load_model_config
from models.ops.linear_cross_entropy import IGNORE_INDEX, linear_cross_entropy


def plain(hidden, weight, labels, z_weight):
    """Summed CE + z-loss through materialised logits: the reference."""
    logits = (hidden @ weight.T).float().flatten(0, -2)
    labels = labels.flatten()
    keep = labels != IGNORE_INDEX
    ce = F.cross_entropy(logits, labels, reduction="sum", ignore_index=IGNORE_INDEX)
    z = z_weight * (logits.logsumexp(-1)[keep].square().sum())
    return ce + z, z


def inputs(n=37, d=16, vocab=50, ignored=5, dtype=torch.float32):
    torch.manual_seed(0)
    hidden = torch.randn(n, d, dtype=dtype, requires_grad=True)
    weight = torch.randn(vocab, d, dtype=dtype, requires_grad=True)
    labels = torch.randint(0, vocab, (n,))
    labels[torch.randperm(n)[:ignored]] = IGNORE_INDEX
    return hidden, weight, labels


@pytest.mark.parametrize("chunk_size", [1, 8, 37, 64, None])
@pytest.mark.parametrize("z_weight", [0.0, 1e-2])
def test_loss_and_gradients_match_plain_route(chunk_size, z_weight):
    hidden, weight, labels = inputs()
    loss, z = linear_cross_entropy(hidden, weight, labels, z_weight, chunk_size=chunk_size)
    grads = torch.autograd.grad(loss * 0.5, (hidden, weight))  # a non-unit upstream gradient
    want_loss, want_z = plain(hidden, weight, labels, z_weight)
    want_grads = torch.autograd.grad(want_loss * 0.5, (hidden, weight))
    torch.testing.assert_close(loss, want_loss)
    torch.testing.assert_close(z, want_z)
    assert not z.requires_grad
    for got, want in zip(grads, want_grads):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert grads[0][labels == IGNORE_INDEX].abs().max() == 0  # ignored tokens get no gradient


def test_gradcheck_fp64():
    hidden, weight, labels = inputs(n=6, d=3, vocab=7, ignored=1, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda h, w: linear_cross_entropy(h, w, labels, 0.1, chunk_size=4)[0], (hidden, weight)
    )


def test_no_grad_gives_the_same_loss_and_no_graph():
    hidden, weight, labels = inputs()
    with torch.no_grad():
        loss, _ = linear_cross_entropy(hidden, weight, labels, chunk_size=8)
    assert loss.grad_fn is None
    torch.testing.assert_close(loss, plain(hidden, weight, labels, 0.0)[0])


def test_bf16_compute_is_close_and_keeps_parameter_dtypes():
    hidden, weight, labels = inputs(n=64, d=32, vocab=100, ignored=0)
    loss, _ = linear_cross_entropy(hidden, weight, labels, compute_dtype=torch.bfloat16, chunk_size=16)
    loss.backward()
    assert loss.dtype == torch.float32 and hidden.grad.dtype == weight.grad.dtype == torch.float32
    want = plain(hidden.detach(), weight.detach(), labels, 0.0)[0]
    torch.testing.assert_close(loss.detach(), want, rtol=2e-2, atol=0)


def test_shape_mismatch_is_one_clear_error():
    hidden, weight, labels = inputs()
    with pytest.raises(ValueError, match="one entry per hidden vector"):
        linear_cross_entropy(hidden, weight, labels[:-1])


@pytest.mark.parametrize("name", ["tiny_transformer", "tiny_hybrid"])
@pytest.mark.parametrize("tied", [False, True])
def test_model_loss_equals_cross_entropy_of_its_logits(name, tied):
    """`LM(x, labels=y)` is the loss of `LM(x)`'s logits, with the same gradient for every parameter."""
    cfg = load_model_config(name, [f"tie_embeddings={tied}", "vocab_size=300"])
    torch.manual_seed(0)
    model = build_model(cfg)
    tokens = torch.randint(0, cfg.vocab_size, (2, 33))
    x, y = tokens[:, :-1], tokens[:, 1:]
    loss, _ = model(x, labels=y, z_weight=1e-4)
    got = torch.autograd.grad(loss, list(model.parameters()))
    logits = model(x).float()
    want_loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum")
    want_loss = want_loss + 1e-4 * logits.logsumexp(-1).square().sum()
    want = torch.autograd.grad(want_loss, list(model.parameters()))
    torch.testing.assert_close(loss, want_loss, rtol=1e-5, atol=1e-4)
    for (param_name, _), g, w in zip(model.named_parameters(), got, want):
        # fp32 sums over 64 tokens in another order: tolerate noise at 1e-4 of the tensor's scale
        atol = 1e-4 * float(w.abs().max()) + 1e-7
        torch.testing.assert_close(g, w, rtol=1e-4, atol=atol, msg=lambda m, n=param_name: f"{n}: {m}")


@pytest.mark.gpu
def test_cuda_bf16_matches_plain_route_without_holding_the_logits():
    """On CUDA in bf16 the fused loss equals the plain one, and its peak memory stays far below
    the [tokens, vocab] fp32 logits the plain route allocates (8192 x 100352 x 4 B = 3.3 GB)."""
    torch.manual_seed(0)
    n, d, vocab = 8192, 512, 100352
    hidden = torch.randn(n, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    weight = (torch.randn(vocab, d, device="cuda") * 0.02).requires_grad_()
    labels = torch.randint(0, vocab, (n,), device="cuda")
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    loss, _ = linear_cross_entropy(hidden, weight, labels, 1e-4, compute_dtype=torch.bfloat16)
    loss.backward()
    fused_peak = torch.cuda.max_memory_allocated() - base
    got = (loss.detach(), hidden.grad.clone(), weight.grad.clone())
    hidden.grad = weight.grad = None
    want_loss, _ = plain(hidden, weight.to(torch.bfloat16), labels, 1e-4)
    want_loss.backward()
    torch.testing.assert_close(got[0], want_loss.detach(), rtol=1e-3, atol=0)
    torch.testing.assert_close(got[1].float(), hidden.grad.float(), rtol=5e-2, atol=1e-4)
    torch.testing.assert_close(got[2], weight.grad, rtol=5e-2, atol=1e-4)
    assert fused_peak < 1.5e9, f"fused loss peaked at {fused_peak / 1e9:.2f} GB"
