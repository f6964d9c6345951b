"""SLURM's variables -> the ones torchrun sets (what `srun` and the submitit launcher rely on)."""

from __future__ import annotations

import os

import pytest

from train.distributed import _export_slurm_ranks, launch_rank

TORCHRUN_VARS = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@pytest.fixture
def slurm_array_task(monkeypatch):
    """Task 5 of 8 on the second of two nodes, in an array job (as Hydra's submitit sweeps run)."""
    for name in (
        *TORCHRUN_VARS,
        "SUBMITIT_EXECUTOR",
    ):  # set, then delete: teardown removes what the test exports
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    for name, value in {"SLURM_JOB_ID": "91234", "SLURM_ARRAY_JOB_ID": "91230", "SLURM_ARRAY_TASK_ID": "4",
                        "SLURM_NTASKS": "8", "SLURM_JOB_NUM_NODES": "2", "SLURM_NODEID": "1",
                        "SLURM_JOB_NODELIST": "gpu-a[07-08]", "SLURM_PROCID": "5", "SLURM_LOCALID": "1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)


def test_slurm_task_becomes_a_torchrun_rank(slurm_array_task) -> None:
    assert launch_rank() == 5
    _export_slurm_ranks()
    got = {name: os.environ[name] for name in TORCHRUN_VARS}
    assert got == {"MASTER_ADDR": "gpu-a07", "MASTER_PORT": str(20000 + 91234 % 40000), "RANK": "5",
                   "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"}  # fmt: skip


def test_torchrun_inside_slurm_is_left_alone(slurm_array_task, monkeypatch) -> None:
    monkeypatch.setenv("RANK", "2")
    assert launch_rank() == 2
    _export_slurm_ranks()
    assert "MASTER_ADDR" not in os.environ and os.environ["RANK"] == "2"
