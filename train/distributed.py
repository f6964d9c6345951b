"""Process groups and parallelism, applied from outside the model (torchtitan style).

`torchrun` starts the ranks and sets RANK / WORLD_SIZE / LOCAL_RANK; under SLURM (`srun`, or the
submitit launcher, one task per GPU) the same variables are derived from SLURM's; a plain
`python -m train` is a world of one. Several ranks shard every block with FSDP2 `fully_shard`
(nccl on CUDA, gloo on CPU, which is how the tests run two ranks); one rank trains the plain module. Activation checkpointing
and `torch.compile` wrap each block, so the model code knows nothing of training.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from models.errors import UserError


@dataclass(frozen=True)
class World:
    """This process's place among the ranks."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _started_by_slurm() -> bool:
    """SLURM started several tasks of this command and no torchrun set RANK inside them."""
    return "RANK" not in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1


def launch_rank() -> int:
    """This process's rank as its launcher set it, before any process group exists: torchrun's
    RANK, else SLURM's task id when SLURM started several tasks, else 0."""
    if _started_by_slurm():
        return int(os.environ.get("SLURM_PROCID", 0))
    return int(os.environ.get("RANK", 0))


def _export_slurm_ranks() -> None:
    """Under SLURM with several tasks (one per GPU) set the variables torchrun would set.

    Read straight from SLURM's variables (through submitit's `SlurmJobEnvironment`, which parses
    `SLURM_JOB_NODELIST`), so a plain `srun python -m train` works as well as the submitit launcher.
    The rendezvous is the job's first node; the port is `MASTER_PORT` if set, else one derived from
    `SLURM_JOB_ID` (numeric also for array tasks, unlike submitit's `job_id`), the same on every task.
    """
    if not _started_by_slurm():
        return
    from submitit.slurm.slurm import SlurmJobEnvironment

    job = SlurmJobEnvironment()
    port = os.environ.get("MASTER_PORT", str(20000 + int(os.environ["SLURM_JOB_ID"]) % 40000))
    os.environ.update({
        "MASTER_ADDR": job.hostnames[0],
        "MASTER_PORT": port,
        "RANK": str(job.global_rank),
        "WORLD_SIZE": str(job.num_tasks),
        "LOCAL_RANK": str(job.local_rank),
        "LOCAL_WORLD_SIZE": str(job.num_tasks // job.num_nodes),
    })  # fmt: skip


def init_world(device: str = "auto") -> World:
    """Join the process group torchrun (or SLURM) describes, if any, and pick this rank's device."""
    _export_slurm_ranks()
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "trainer.device=cuda but torch sees no CUDA device here (torch.cuda.is_available() is False); "
            "use trainer.device=auto or cpu, or run where a GPU and a CUDA build of torch are."
        )
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        # % count: SLURM may show each task all of the node's GPUs, or only its own (--gpu-bind)
        dev = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return World(rank, world_size, local_rank, dev)


def close_world(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def all_reduce_mean(value: torch.Tensor, world: World) -> torch.Tensor:
    """The mean of `value` over ranks (a copy; the input is untouched)."""
    value = value.detach().clone()
    if world.distributed:
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= world.world_size
    return value


def all_reduce_sum(value: torch.Tensor, world: World) -> torch.Tensor:
    """The sum of `value` over ranks (a copy; the input is untouched)."""
    value = value.detach().clone()
    if world.distributed:
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def broadcast_object(obj, world: World):
    """Rank 0's `obj` on every rank."""
    if not world.distributed:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def parallelize(
    model: nn.Module, world: World, *, bf16: bool, compile: bool, checkpointing: bool
) -> nn.Module:
    """Wrap each block with activation checkpointing and/or compile, then FSDP2 when distributed."""
    for index, block in enumerate(model.blocks):
        if checkpointing:
            block = checkpoint_wrapper(block)
        if compile:
            block.compile()
        model.blocks[index] = block
    if world.distributed:
        policy = MixedPrecisionPolicy(
            param_dtype=torch.bfloat16 if bf16 else torch.float32, reduce_dtype=torch.float32
        )
        for block in model.blocks:
            fully_shard(block, mp_policy=policy)
        fully_shard(model, mp_policy=policy)
    return model
