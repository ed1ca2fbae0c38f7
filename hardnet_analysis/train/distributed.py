"""Data-parallel context from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK).

Without torchrun the context is a single rank 0 and nothing is initialised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from hardnet_analysis.backends import backend_of


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job. Only rank 0 (`is_main`) writes files."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistContext:
    """Join the torchrun job with the device's process-group backend (gloo on CPU, nccl on
    CUDA: `Backend.distributed`) or return the single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        dist.init_process_group(backend_of(device).distributed)
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def all_reduce_sum(values: list[float], device: torch.device, ctx: DistContext) -> list[float]:
    """Element-wise sum of `values` over all ranks (the values themselves when single)."""
    if not ctx.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return [float(v) for v in tensor.tolist()]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
