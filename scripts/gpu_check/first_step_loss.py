"""The 1B models' loss at initialisation: CUDA under bf16 autocast (fla, flex_attention) vs CPU fp32.

Each model is built once on the CPU from seed 0 (the same weights for both), its loss per token on
one seeded batch (1 x 1024 random token ids in two packed documents of 600 and 424 tokens) computed
in fp32 on the CPU (the torch kernels, SDPA masks), then the same model moved to the GPU computes it
under bf16 autocast. They must agree within `REL_TOLERANCE` (bf16's rounding averaged over tokens).
"""

from __future__ import annotations

import os

import torch

from models import build_model, load_model_config
from scripts.gpu_check.result import StepResult, agreement, step_main
from scripts.gpu_check.steps import BENCH_MODELS

REL_TOLERANCE = 1e-2
DOCUMENTS = (600, 424)


def batch(vocab_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """input ids, doc ids and labels [1, 1024], the same on every machine."""
    tokens = torch.randint(0, vocab_size, (1, sum(DOCUMENTS) + 1), generator=torch.Generator().manual_seed(1))
    doc_ids = torch.cat([torch.full((n,), i) for i, n in enumerate(DOCUMENTS)]).unsqueeze(0)
    return tokens[:, :-1], doc_ids, tokens[:, 1:]


@torch.no_grad()
def loss_per_token(model, ids, doc_ids, labels, bf16: bool) -> float:
    device = next(model.parameters()).device
    ids, doc_ids, labels = ids.to(device), doc_ids.to(device), labels.to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        loss, _ = model(ids, doc_ids=doc_ids, labels=labels)
    return loss.item() / labels.numel()


def compare(name: str, device: str = "cuda") -> dict:
    """One row: the CPU fp32 and `device` bf16 losses of model `name` on the same weights and batch."""
    cfg = load_model_config(name)
    torch.manual_seed(0)
    model = build_model(cfg, device="cpu")
    ids, doc_ids, labels = batch(cfg.vocab_size)
    reference = loss_per_token(model, ids, doc_ids, labels, bf16=False)
    measured = loss_per_token(model.to(device), ids, doc_ids, labels, bf16=True)
    rel = abs(measured - reference) / reference
    return {"model": name, "cpu fp32": reference, f"{device} bf16": measured, "rel diff": rel,
            "tol": REL_TOLERANCE, "ok": rel <= REL_TOLERANCE}  # fmt: skip


def check() -> StepResult:
    torch.set_num_threads(os.cpu_count() or 1)  # the CPU reference is the slow half
    rows = [compare(name) for name in BENCH_MODELS]
    return agreement(rows, ("rel diff",), ("model",))


if __name__ == "__main__":
    step_main(check, __doc__)
