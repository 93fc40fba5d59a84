"""Multi-process training under ``torchrun``: one process per device, DDP, rank 0 writes.

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) everything here is a no-op,
so the trainer has a single code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch import nn


@dataclass
class Distributed:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, name: str) -> torch.device:
        """Each process takes its own GPU; on CPU they share it."""
        if name in ("auto", "cuda") and torch.cuda.is_available():
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    def wrap(self, networks: dict[str, nn.Module], device: torch.device) -> dict[str, nn.Module]:
        """DDP wrappers for networks with trainable parameters; the modules themselves when
        not distributed."""
        if not self.enabled:
            return networks
        device_ids = [device.index] if device.type == "cuda" else None
        return {
            name: nn.parallel.DistributedDataParallel(network, device_ids=device_ids, broadcast_buffers=False)
            for name, network in networks.items()
        }

    def barrier(self) -> None:
        if self.enabled:
            torch_dist.barrier()


def setup() -> Distributed:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    if not torch_dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch_dist.init_process_group(backend)
    return Distributed(rank=torch_dist.get_rank(), local_rank=int(os.environ.get("LOCAL_RANK", "0")), world_size=world_size)
