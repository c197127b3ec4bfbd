"""Batch commands as several processes (`--nproc`, or torchrun): each process (rank) takes every world-th file, and
the ranks' results are gathered so that the outputs and the totals are those of a one-process run."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

Item = TypeVar("Item")
LAUNCHED_ENV = "FCN_VIEWER_LAUNCHED"  # set in the ranks `--nproc` starts (cli/launch.py), which reports for them
EXIT_RANK_LOST = 4  # a launched rank's exit code when it stops because another rank failed


class RankLost(RuntimeError):
    """Another rank stopped (it said why) while this one waited for its results."""


def launched() -> bool:
    """Whether this process is a rank that `--nproc` started."""
    return os.environ.get(LAUNCHED_ENV) == "1"


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world`` processes (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world: int = 1

    @property
    def leader(self) -> bool:
        """Rank 0: the process that prints totals and writes summary files."""
        return self.rank == 0

    def take(self, items: Sequence[Item]) -> list[Item]:
        """This rank's share: items rank, rank + world, rank + 2·world, … (all of them for one process)."""
        return list(items[self.rank :: self.world])

    def label(self) -> str:
        return f" (rank {self.rank} of {self.world})" if self.world > 1 else ""

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order, on every rank (just ``[value]`` for one process)."""
        if self.world == 1:
            return [value]
        import torch.distributed as dist

        values: list[Any] = [None] * self.world
        try:
            dist.all_gather_object(values, value)
        except RuntimeError as error:  # gloo: "Connection closed by peer", a rank has ended
            raise RankLost("another rank stopped; its message is above") from error
        return values

    def close(self) -> None:
        """Leaves the process group (after the last gather)."""
        if self.world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()


def shard_from_environment() -> Shard:
    """The shard torchrun's environment describes; joins the process group (gloo: only small results travel
    between ranks) and, on CUDA machines, puts each rank on its own GPU (LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Shard()
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return Shard(dist.get_rank(), dist.get_world_size())


@contextmanager
def sharded() -> Iterator[Shard]:
    """This process's shard (the whole job when not under torchrun), closed when the command is done."""
    shard = shard_from_environment()
    try:
        yield shard
    finally:
        shard.close()
