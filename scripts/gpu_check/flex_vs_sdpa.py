"""flex_attention block masks vs SDPA boolean masks, through every tiny model that has attention.

Two rows of packed documents ([2, 300]: 1, 130 and 169 tokens; 250 and 50, crossing flex's 128-token
blocks) run through the model's blocks once with `Packing.from_doc_ids(flex=True)` and once with
`flex=False`, in fp32 (TF32 off) and under bf16 autocast. Rows: the max abs difference of the final
hidden states and of the gradient of their squared sum with respect to the embedded input (over
its largest |value|, at least 1). Mixers without attention see the same packing either way.
"""

from __future__ import annotations

from pathlib import Path

import torch

from models import build_model, load_model_config
from models.packing import Packing
from scripts.gpu_check.result import StepResult, agreement, step_main

TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 3e-2}  # atol = rtol, as torch.allclose
DOCUMENTS = ((1, 130, 169), (250, 50))
CONF = Path(__file__).resolve().parents[2] / "conf" / "model"


def attention_models() -> list[str]:
    """Every `tiny_*` model config with at least one attention layer (built on `meta`: no memory)."""
    names = sorted(p.stem for p in CONF.glob("tiny_*.yaml"))
    return [n for n in names if build_model(load_model_config(n), device="meta").attention_windows]


def hidden_and_grad(model, x: torch.Tensor, packing: Packing, dtype: torch.dtype):
    """The blocks' output and d(sum out^2)/dx, with `packing` passed to every block."""
    x = x.clone().requires_grad_()
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        h = x
        for block in model.blocks:
            h = block(h, packing=packing)
    h.float().pow(2).sum().backward()
    return h.detach().float(), x.grad.float()


def compare(name: str, dtype: torch.dtype, device: str = "cuda") -> dict:
    torch.manual_seed(0)
    model = build_model(load_model_config(name), device=device)
    doc_ids = torch.stack([torch.cat([torch.full((n,), i) for i, n in enumerate(r)]) for r in DOCUMENTS])
    doc_ids = doc_ids.to(device)
    x = torch.randn(*doc_ids.shape, model.cfg.d_model, device=device)
    flex, sdpa = (Packing.from_doc_ids(doc_ids, model.attention_windows, flex=f) for f in (True, False))
    (h_f, g_f), (h_s, g_s) = hidden_and_grad(model, x, flex, dtype), hidden_and_grad(model, x, sdpa, dtype)
    scale = g_s.abs().max().clamp(min=1.0)
    tol = TOLERANCE[dtype]
    ok = torch.allclose(h_f, h_s, atol=tol, rtol=tol) and torch.allclose(
        g_f / scale, g_s / scale, atol=tol, rtol=tol
    )
    return {"model": name, "dtype": str(dtype).removeprefix("torch."), "hidden": (h_f - h_s).abs().max().item(),
            "grad (scaled)": ((g_f - g_s) / scale).abs().max().item(), "tol": tol, "ok": bool(ok)}  # fmt: skip


def check() -> StepResult:
    torch.backends.cuda.matmul.allow_tf32 = False  # full fp32 matmuls on both paths
    rows = [compare(name, dtype) for name in attention_models() for dtype in TOLERANCE]
    return agreement(rows, ("hidden", "grad (scaled)"), ("model", "dtype"))


if __name__ == "__main__":
    step_main(check, __doc__)
