"""Ranks: this process among torchrun's, and the few collectives the training loop uses.

One process (WORLD_SIZE unset) is rank 0 of a world of 1: every collective is the identity
and torch.distributed is never initialised, so a single-process run is exactly what it was.
Under `torchrun --nproc-per-node N` the process group comes from torchrun's environment
(RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): gloo on CPU, NCCL on CUDA.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0  # index of this rank's GPU on its machine

    @classmethod
    def current(cls) -> Ranks:
        """The initialised process group's ranks, or a single process."""
        if not (dist.is_available() and dist.is_initialized()):
            return cls()
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        return cls(dist.get_rank(), dist.get_world_size(), local)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share: every world-th item from its rank on (sizes differ by <= 1)."""
        return list(items[self.rank :: self.world])

    def broadcast(self, value: T) -> T:
        """Rank 0's value on every rank (the others pass anything, e.g. None)."""
        if self.world == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def from_main(self, make: Callable[[], T]) -> T:
        """`make()` runs on rank 0 only; every rank returns its result."""
        return self.broadcast(make() if self.is_main else None)  # type: ignore[return-value]

    def gather(self, value: T) -> list[T]:
        """Every rank's value, in rank order, on every rank."""
        if self.world == 1:
            return [value]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def sum(self, *values: float) -> list[float]:
        """Element-wise sums over ranks, in float64 (exact for counts below 2**53)."""
        if self.world == 1:
            return list(values)
        totals = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(totals)
        return totals.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    @property
    def device(self) -> torch.device:
        """Where collectives' tensors live: the rank's GPU under NCCL, else the CPU."""
        if self.world > 1 and dist.get_backend() == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


def select_device(ranks: Ranks, preferred: str | None = None) -> torch.device:
    """CUDA when available (a rank's own GPU), else the CPU: every core for one process (at
    least 2 threads), an equal share of them for each rank on the machine."""
    if preferred:
        return torch.device(preferred)
    if torch.cuda.is_available():
        return torch.device("cuda", ranks.local_rank) if ranks.world > 1 else torch.device("cuda")
    cores = os.cpu_count() or 2
    if ranks.world > 1:
        torch.set_num_threads(max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", ranks.world))))
    else:
        torch.set_num_threads(max(2, cores))
    return torch.device("cpu")


@contextmanager
def process_group() -> Iterator[Ranks]:
    """Join torchrun's process group when launched by it (WORLD_SIZE set); a group that is
    already initialised is used as it is, and only one made here is destroyed on exit."""
    made = False
    if "WORLD_SIZE" in os.environ and dist.is_available() and not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if cuda else "gloo")
        made = True
    try:
        yield Ranks.current()
    finally:
        if made:
            dist.destroy_process_group()
