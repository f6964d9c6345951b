"""fla's Triton kernels vs our torch backend for every recurrent op, with the max errors.

For gated_delta_rule, simple_gla and gla; dense [2, 200] and packed (documents of 37, 1, 100 and 64
tokens through `cu_seqlens`); fp32 and bf16: the max abs difference of the outputs, of the final
states, and of the input gradients (each over the largest |gradient| of the torch backend, at least
1), from a backward of seeded random projections of output and state. The tolerances are those of
tests/models/test_gated_delta_rule.py::test_fla_matches_torch (|fla - torch| <= tol + tol |torch|).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.ops import gated_delta_rule, gla, simple_gla
from scripts.gpu_check.result import StepResult, agreement, step_main

TOLERANCE = {torch.float32: 1e-2, torch.bfloat16: 5e-2}
LENGTHS = (37, 1, 100, 64)
HEADS, KEY, VALUE = 2, 64, 64


def make_inputs(op: str, packed: bool, dtype: torch.dtype, device: str) -> dict[str, torch.Tensor]:
    """Leaf tensors in fla's layout; Gated DeltaNet gets two value heads per q/k head."""
    gen = torch.Generator().manual_seed(0)
    b, t, n = (1, sum(LENGTHS), len(LENGTHS)) if packed else (2, 200, 2)
    hv = 2 * HEADS if op == "gated_delta_rule" else HEADS
    g_shape = {"gated_delta_rule": (b, t, hv), "simple_gla": (b, t, hv), "gla": (b, t, hv, KEY)}[op]
    x = {
        "q": torch.randn(b, t, HEADS, KEY, generator=gen),
        "k": torch.randn(b, t, HEADS, KEY, generator=gen) * KEY**-0.5,
        "v": torch.randn(b, t, hv, VALUE, generator=gen),
        "g": F.logsigmoid(torch.randn(*g_shape, generator=gen)),
        "initial_state": torch.randn(n, hv, KEY, VALUE, generator=gen),
    }
    if op == "gated_delta_rule":
        x["beta"] = torch.rand(b, t, hv, generator=gen)
    return {k: v.to(device, dtype).requires_grad_() for k, v in x.items()}


def run(op: str, x: dict[str, torch.Tensor], backend: str, cu_seqlens: torch.Tensor | None):
    """Output, final state and every input's gradient."""
    for t in x.values():
        t.grad = None
    common = {"initial_state": x["initial_state"], "output_final_state": True, "cu_seqlens": cu_seqlens,
              "backend": backend}  # fmt: skip
    if op == "gated_delta_rule":
        o, state = gated_delta_rule(x["q"], x["k"], x["v"], x["g"], x["beta"], use_qk_l2norm=True, **common)
    else:
        o, state = {"simple_gla": simple_gla, "gla": gla}[op](x["q"], x["k"], x["v"], x["g"], **common)
    gen = torch.Generator().manual_seed(1)
    d_o, d_state = (
        torch.randn(o.shape, generator=gen).to(o),
        torch.randn(state.shape, generator=gen).to(state),
    )
    ((o * d_o).sum() + (state * d_state).sum()).backward()
    return o.detach().float(), state.detach().float(), {k: t.grad.float() for k, t in x.items()}


def compare(op: str, packed: bool, dtype: torch.dtype, device: str = "cuda", candidate: str = "fla") -> dict:
    """One table row: `candidate` (fla; on a CPU, for tests, torch_recurrent) vs the torch backend."""
    tol = TOLERANCE[dtype]
    x = make_inputs(op, packed, dtype, device)
    cu = torch.tensor([0, *torch.tensor(LENGTHS).cumsum(0).tolist()], device=device) if packed else None
    (o_f, s_f, g_f), (o_t, s_t, g_t) = run(op, x, candidate, cu), run(op, x, "torch", cu)
    close = lambda a, e: bool(torch.allclose(a, e, atol=tol, rtol=tol))  # noqa: E731
    scaled = {k: (g_f[k] / g_t[k].abs().max().clamp(min=1.0), g_t[k] / g_t[k].abs().max().clamp(min=1.0))
              for k in g_t}  # fmt: skip
    grad_error = max((a - e).abs().max().item() for a, e in scaled.values())
    ok = close(o_f, o_t) and close(s_f, s_t) and all(close(a, e) for a, e in scaled.values())
    return {"op": op, "layout": "packed" if packed else "dense", "dtype": str(dtype).removeprefix("torch."),
            "output": (o_f - o_t).abs().max().item(), "state": (s_f - s_t).abs().max().item(),
            "grad (scaled)": grad_error, "tol": tol, "ok": ok}  # fmt: skip


def check() -> StepResult:
    rows = [
        compare(op, packed, dtype)
        for op in ("gated_delta_rule", "simple_gla", "gla")
        for packed in (False, True)
        for dtype in TOLERANCE
    ]
    return agreement(rows, ("output", "state", "grad (scaled)"), ("op", "layout", "dtype"))


if __name__ == "__main__":
    step_main(check, __doc__)
