"""Resumable checkpoints: torch.distributed.checkpoint (sharded) plus per-rank loop state.

Layout of a run's `checkpoints/`:

    step_000120/            a complete checkpoint (the name appears only once it is complete)
        .metadata, *.distcp model and optimizer, sharded across ranks by DCP
        loop.pt             scheduler, data position, step, tokens seen, RNG state (written by rank 0)
    .tmp-step_000240/       being written; ignored by resume and removed by the next save

Every rank writes into the temporary directory; after a barrier rank 0 renames it, which is atomic,
so a checkpoint killed half-way (SIGKILL, preemption, a full disk) never looks complete. Older
checkpoints beyond `keep_last` are deleted after the new one is in place. The loop state is the same
on every rank (the data position is global and training draws no random numbers after init), so
one copy serves all ranks and DCP's resharding lets a run resume on a different world size.
"""

from __future__ import annotations

import random
import re
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from models.errors import UserError
from train.distributed import World, barrier

STEP_DIR = re.compile(r"^step_(\d+)$")
LOOP_FILE = "loop.pt"


def checkpoint_dirs(root: Path) -> list[Path]:
    """Complete checkpoints under `root`, oldest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


@contextmanager
def _single_process_quiet(world: World) -> Iterator[None]:
    """Silence DCP's 'assuming the intent is to save in a single process' notice on one rank."""
    with warnings.catch_warnings():
        if not world.distributed:
            warnings.filterwarnings("ignore", message=".*single process.*", category=UserWarning)
        yield


def rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_checkpoint(
    root: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loop_state: dict,
    world: World,
    keep_last: int,
) -> Path:
    """Write checkpoint `step` atomically (all ranks call this) and prune old ones; returns its path."""
    final = root / f"step_{step:06d}"
    tmp = root / f".tmp-{final.name}"
    if world.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(world)
    model_state, optim_state = get_state_dict(model, optimizer)
    with _single_process_quiet(world):
        dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(tmp))
    if world.is_main:
        torch.save({**loop_state, "rng": rng_state()}, tmp / LOOP_FILE)
    barrier(world)
    if world.is_main:
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        for old in checkpoint_dirs(root)[:-keep_last] if keep_last > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
        for debris in root.glob(".tmp-step_*"):
            shutil.rmtree(debris, ignore_errors=True)
    barrier(world)
    return final


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, world: World) -> dict:
    """Restore model, optimizer and RNG from `path`; returns the loop state."""
    if not (path / LOOP_FILE).is_file():
        raise UserError(
            f"{path} is not a complete checkpoint (no {LOOP_FILE}); pass a checkpoints/step_N dir."
        )
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    with _single_process_quiet(world):
        dcp.load(state, checkpoint_id=str(path))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    loop_state = torch.load(path / LOOP_FILE, weights_only=False)
    set_rng_state(loop_state.pop("rng"))
    return loop_state
