"""The device check's steps, in the order they run: what each does, its time limit, what it imports.

Every step is one subprocess that writes its result, `{"passed", "headline", "rows"}`, as JSON to the
path after `--json` (the runner records a timeout or a crash itself). The limits add up to at most
`FULL_BUDGET_S` (the whole run, 8 minutes on one H100), those of the quick (correctness) steps to at
most `QUICK_BUDGET_S`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.errors import UserError

FULL_BUDGET_S, QUICK_BUDGET_S = 480, 240
BENCH_MODELS = ("transformer_swa_1b", "hybrid_1b", "rnn_1b")
# The test files that hold `@pytest.mark.gpu` tests (tests/eval needs spaCy, which the image lacks).
GPU_TEST_PATHS = ("tests/models", "tests/train/test_trainer.py")
HERE = "scripts.gpu_check"  # the step modules, run as `python -m scripts.gpu_check.<step>`
PROJECT = ("models", "models.ops", "models.packing", "train.config", "train.trainer", "train.metrics")


@dataclass(frozen=True)
class Step:
    """One timed subprocess. `imports` must import from the image plus `.whl/` (the dry run checks it);
    `gpu_only` are top-level packages that need a GPU to import (triton), so the dry run only checks
    that `.whl/` holds them; `compose` are the overrides of a training run whose config the dry run
    composes; `probe` is an extra dry-run command (pytest's collection)."""

    name: str
    limit_s: int
    quick: bool
    what: str
    command: Callable[[Path], list[str]]
    imports: tuple[str, ...] = PROJECT
    gpu_only: tuple[str, ...] = ()
    compose: tuple[str, ...] | None = None
    probe: list[str] | None = None


def _module(name: str) -> Callable[[Path], list[str]]:
    """`python -m scripts.gpu_check.<name> --json OUT`."""
    return lambda out: [sys.executable, "-m", f"{HERE}.{name}", "--json", str(out)]


def _bench(model: str) -> Callable[[Path], list[str]]:
    return lambda out: [
        sys.executable, "scripts/bench_throughput.py", "--models", model, "--seq-len", "4096",
        "--micro-batch", "2", "--accumulation", "1", "--steps", "8", "--warmup", "3", "--json", str(out),
    ]  # fmt: skip


STEPS = (
    Step("pytest_gpu", 75, True, "pytest -m gpu on " + " ".join(GPU_TEST_PATHS), _module("pytest_gpu"),
         imports=(*PROJECT, f"{HERE}.pytest_gpu", "pytest_timeout"), gpu_only=("fla",),
         probe=[sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                *GPU_TEST_PATHS]),
    Step("ops_agreement", 35, True,
         "fla vs torch: gated_delta_rule, simple_gla, gla; outputs, states, grads; dense+packed; fp32+bf16",
         _module("ops_agreement"), imports=(*PROJECT, f"{HERE}.ops_agreement"), gpu_only=("fla",)),
    Step("flex_vs_sdpa", 30, True, "flex_attention block masks vs SDPA boolean masks, packed documents",
         _module("flex_vs_sdpa"), imports=(*PROJECT, f"{HERE}.flex_vs_sdpa")),
    Step("first_step_loss_1b", 95, True, "1B models: CUDA bf16 loss vs CPU fp32 loss, same weights and batch",
         _module("first_step_loss"), imports=(*PROJECT, f"{HERE}.first_step_loss"), gpu_only=("fla",)),
    Step("tiny_training", 80, False, "every tiny model: 50 bf16 compiled steps on the demo corpus, loss falls",
         _module("tiny_training"), imports=(*PROJECT, f"{HERE}.tiny_training", "train.prepare"), gpu_only=("fla",),
         compose=("model=tiny_hybrid", "data=demo", "trainer.device=cuda")),
    *(Step(f"bench_{m}", 55, False, f"scripts/bench_throughput.py {m}, seq 4096, steps 4-8 after warm-up",
           _bench(m), imports=(*PROJECT, "hydra", "omegaconf", "tokenizers"), gpu_only=("fla",),
           compose=(f"model={m}", "data=olmo_tokens_example", "trainer.device=cuda")) for m in BENCH_MODELS),
)  # fmt: skip


def select(quick: bool, only: list[str] | None) -> list[Step]:
    """The steps to run: all, the quick ones, or those named (in the check's order)."""
    if only:
        unknown = set(only) - {s.name for s in STEPS}
        if unknown:
            raise UserError(f"--only {sorted(unknown)} names no step; use some of {[s.name for s in STEPS]}.")
        return [s for s in STEPS if s.name in only]
    return [s for s in STEPS if s.quick or not quick]
