"""Data-parallel batch jobs (`dhrd predict`, `evaluate`, `explain`, the local teacher of `rationales`) under the
launchers users already run for training: `torchrun --nproc_per_node N -m trainer.cli predict ...` or `accelerate
launch -m trainer.cli ...`.

Each process (rank) takes every N-th row (`mine`), on its own device (`LOCAL_RANK`: `trainer.device` resolves
`--device auto` / `cuda` to it, and `launched` makes it the current CUDA device). The ranks meet only at barriers and
in gathers of small per-row results, over gloo (a CPU backend: it works whatever device the model runs on, and what
travels is a few numbers a row). What is done is recorded per row (the resumable parts), never per rank: a rerun
with another number of processes, or with one, resumes. One process without a launcher is rank 0 of 1 and never
touches `torch.distributed`.
"""

import atexit
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes the output and reports."""
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.world_size > 1

    def mine(self, positions: Sequence[int]) -> list[int]:
        """The positions (in the whole split) this rank handles: every `world_size`-th row, so each rank gets rows of
        every length however the data is ordered."""
        return [position for position in positions if position % self.world_size == self.rank]

    def share(self, total: int) -> int:
        """How many of `total` rows this rank handles."""
        return len(range(self.rank, total, self.world_size))

    def in_window(self, start: int, count: int) -> list[int]:
        """This rank's rows of a window of `count` rows starting at split position `start`, as offsets in the
        window (what a job reading the split window by window selects)."""
        first = start + (self.rank - start) % self.world_size
        return list(range(first - start, count, self.world_size))

    def barrier(self) -> None:
        if self.several:
            import torch.distributed as dist

            dist.barrier()

    def all_gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on every rank (a small, picklable value)."""
        if not self.several:
            return [value]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def gather_rows(self, values: list[Any], total: int) -> list[Any] | None:
        """The per-row `values` of every rank (each rank's for its `mine` rows, in order), put back in the split's
        order on rank 0 (None on the others)."""
        if not self.several:
            return values
        import torch.distributed as dist

        gathered: list[Any] | None = [None] * self.world_size if self.main else None
        dist.gather_object(values, gathered, dst=0)
        if gathered is None:
            return None
        return [gathered[position % self.world_size][position // self.world_size] for position in range(total)]


def launched_processes() -> int:
    """How many processes the launcher started (`WORLD_SIZE`; 1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched() -> Ranks:
    """This process's rank under `torchrun` / `accelerate launch` (their `WORLD_SIZE`, `RANK`, `LOCAL_RANK`), with the
    process group started (gloo) and the rank's GPU made current; one process without a launcher is `Ranks()`."""
    world_size = launched_processes()
    if world_size <= 1:
        return Ranks()
    import torch
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("gloo")
        # gloo's threads must be joined before the interpreter exits, or a rank can abort at exit ("terminate called
        # without an active exception") after its work is done, and the launcher reports the job failed
        atexit.register(_close_process_group)
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    return Ranks(rank, world_size)


def _close_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
