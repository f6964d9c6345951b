"""Fused LM head + cross-entropy (+ z-loss), chunked over tokens, gradients computed in the forward.

The plain route, `F.cross_entropy(hidden @ W.T, labels)`, materialises the [tokens, vocab] logits
and several tensors of the same size (log-probabilities, NLL's zero-filled gradient, the logits'
gradient): 134 MB each for 4096 tokens at a 8192 vocabulary, 1.6 GB per 4096-token sequence at
Olmo's 100k. On GPUs that is memory the activations need; on CPUs with glibc's default allocator
each such tensor is a fresh mmap whose pages fault in on first touch: fwd + bwd of 4096 x 128 ->
8192 took 333 ms the plain way and 191 ms here. With an allocator that recycles large blocks
(MALLOC_MMAP_THRESHOLD_ raised, jemalloc, tcmalloc) the plain route takes 181 ms and this one 197:
on CPUs the gain is the allocations, not arithmetic (docs/benchmarks.md).

Here the tokens go through in chunks of `chunk_size` rows. For each chunk the logits are computed,
turned in place into their gradient `softmax * (1 + 2 z lse) - onehot` while they are still in cache,
and immediately contracted into `grad_hidden` and `grad_weight`; nothing of vocabulary width
outlives its chunk, and one chunk buffer is reused throughout. The backward pass only scales the
stored gradients by the incoming scalar. The FLOPs are those of the plain route (three [chunk, d] x
[d, vocab] matmuls); peak memory is a chunk's. The idea is the one behind Liger-Kernel's and Apple's
cut-cross-entropy fused losses; this is our own torch implementation, usable on any device.

Reductions are sums (the trainer divides by its token count): `ce = sum_i lse_i - logit_i[y_i]` and
`z = z_weight * sum_i lse_i^2` (PaLM's z-loss), over tokens whose label is not `ignore_index`.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100


def _loss_and_gradients(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    z_weight: float,
    chunk_size: int,
    compute_dtype: torch.dtype,
    want_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """hidden [N, d], weight [V, d], labels [N] -> (ce sum, z sum, d(ce+z)/d hidden, d(ce+z)/d weight)."""
    w = weight.to(compute_dtype)
    softmax_dtype = torch.promote_types(compute_dtype, torch.float32)  # fp32, or fp64 in gradchecks
    ce = torch.zeros((), dtype=softmax_dtype, device=hidden.device)
    z = torch.zeros((), dtype=softmax_dtype, device=hidden.device)
    grad_hidden = torch.empty_like(hidden) if want_grad else None
    grad_weight = torch.zeros(weight.shape, dtype=softmax_dtype, device=weight.device) if want_grad else None
    # one reused buffer for every chunk's logits: a fresh [C, V] allocation each chunk costs ~8%
    logits_buffer = torch.empty(
        min(chunk_size, hidden.shape[0]), weight.shape[0], dtype=compute_dtype, device=hidden.device
    )
    for start in range(0, hidden.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        h, y = hidden[rows].to(compute_dtype), labels[rows]
        logits = torch.mm(h, w.T, out=logits_buffer[: h.shape[0]]).to(softmax_dtype)  # the only [C, V] tensor
        keep = (y != IGNORE_INDEX).to(softmax_dtype)
        target = y.clamp(min=0).unsqueeze(1)
        target_logit = logits.gather(1, target).squeeze(1)
        row_max = logits.amax(dim=1, keepdim=True)
        probs = logits.sub_(row_max).exp_()  # one exp pass, in place; normalised below
        row_sum = probs.sum(dim=1, keepdim=True)
        lse = (row_max + row_sum.log()).squeeze(1)
        ce += ((lse - target_logit) * keep).sum()
        if z_weight:
            z += z_weight * (lse.square() * keep).sum()
        if not want_grad:
            continue
        # d(lse - logit_y + z lse^2) / d logits = softmax * (1 + 2 z lse) - onehot(y), on kept rows
        row_scale = keep * (1 + 2 * z_weight * lse) if z_weight else keep
        probs.mul_(row_scale.unsqueeze(1) / row_sum)
        probs.scatter_add_(1, target, -keep.unsqueeze(1))
        g = probs.to(compute_dtype)
        grad_hidden[rows] = g @ w
        if g.dtype == grad_weight.dtype:
            grad_weight.addmm_(g.T, h)
        else:  # bf16 products, accumulated in fp32 across chunks
            grad_weight += (g.T @ h).to(softmax_dtype)
    return ce, z, grad_hidden, grad_weight


class _LinearCrossEntropy(torch.autograd.Function):
    """Autograd wrapper: the gradients come out of the forward; backward scales them."""

    @staticmethod
    def forward(ctx, hidden, weight, labels, z_weight, chunk_size, compute_dtype, want_grad):
        with torch.autocast(hidden.device.type, enabled=False):  # dtypes are chosen explicitly
            ce, z, grad_hidden, grad_weight = _loss_and_gradients(
                hidden, weight, labels, z_weight, chunk_size, compute_dtype, want_grad
            )
        if want_grad:
            ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype))
        ctx.mark_non_differentiable(z)
        return ce + z, z

    @staticmethod
    def backward(ctx, grad_loss, _grad_z):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_loss, grad_weight * grad_loss, None, None, None, None, None


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    z_weight: float = 0.0,
    compute_dtype: torch.dtype | None = None,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed `cross_entropy + z_weight * lse^2` of `hidden @ weight.T` against `labels`, and the z part.

    `hidden` [..., d], `weight` [vocab, d], `labels` [...] (`-100` = ignored). Returns `(loss, z)`:
    `loss` (ce + z, differentiable) and `z` (a detached statistic). The head matmuls run in
    `compute_dtype` (default: `hidden`'s dtype; the trainer passes bf16 under autocast), the softmax
    in fp32. `chunk_size` (rows per chunk) defaults to what keeps a chunk's fp32 logits within
    16 MiB on CPU (L3-resident; 512 rows at a 8192 vocabulary: fwd + bwd of 4096 x 128 -> 8192
    took 184-191 ms against 193-214 at 128 rows and 196-199 at 1024 on the 2-core dev box) and
    512 MiB on accelerators, where larger matmuls pay and memory, not cache, is the limit.
    """
    if hidden.shape[:-1] != labels.shape:
        raise ValueError(f"hidden {tuple(hidden.shape)} and labels {tuple(labels.shape)} disagree; "
                         "labels must have one entry per hidden vector")  # fmt: skip
    if chunk_size is None:
        budget = (16 if hidden.device.type == "cpu" else 512) * 2**20
        chunk_size = max(16, budget // (4 * weight.shape[0]))
    want_grad = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    return _LinearCrossEntropy.apply(
        hidden.flatten(0, -2), weight, labels.flatten(), float(z_weight), chunk_size,
        compute_dtype or hidden.dtype, want_grad,
    )  # fmt: skip
