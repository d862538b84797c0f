"""Who reads which frames, and how far a job got: shards, epoch seeds, loader state.

Every DataLoader worker of every rank reads one shard of the view:
``shard_index = rank * workers_per_rank + worker_id`` of
``shard_count = world_size * workers_per_rank``. The service's shards are
disjoint and together the whole view, so each frame is read exactly once per
epoch with no coordination between processes.

A job's position is one resume cursor per shard (the cursor after the last
frame handed to the training loop) plus the epoch; restoring it continues each
shard right after that frame.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Mixes the epoch into the view's seed (the 64-bit golden ratio), so epochs get unrelated permutations.
_EPOCH_SEED_STEP = 0x9E3779B97F4A7C15
_SEED_MODULUS = 2**63
STATE_FORMAT = 1


def epoch_seed(base_seed: int, epoch: int) -> int:
    """The random seed of an epoch: the view's own seed in epoch 0, a different one in every later epoch."""
    return (base_seed + epoch * _EPOCH_SEED_STEP) % _SEED_MODULUS


def distributed_rank_and_world_size() -> tuple[int, int]:
    """This process's rank and the world size: from ``torch.distributed`` when it is initialized,
    else from the ``RANK`` / ``WORLD_SIZE`` variables torchrun sets, else a single process."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return int(dist.get_rank()), int(dist.get_world_size())
    except ImportError:
        pass
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


@dataclass(frozen=True)
class ShardLayout:
    """The shards of one rank: its workers' shard indexes among all ranks' workers."""

    rank: int
    world_size: int
    workers_per_rank: int

    def __post_init__(self) -> None:
        if self.world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {self.world_size}")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be in 0..{self.world_size - 1}, got {self.rank}")
        if self.workers_per_rank < 1:
            raise ValueError(f"workers_per_rank must be >= 1, got {self.workers_per_rank}")

    @property
    def shard_count(self) -> int:
        return self.world_size * self.workers_per_rank

    def shard_index(self, worker_id: int) -> int:
        if not 0 <= worker_id < self.workers_per_rank:
            raise ValueError(f"worker_id must be in 0..{self.workers_per_rank - 1}, got {worker_id}")
        return self.rank * self.workers_per_rank + worker_id

    @property
    def shard_indexes(self) -> list[int]:
        return [self.shard_index(worker) for worker in range(self.workers_per_rank)]


@dataclass
class LoaderState:
    """The position of one rank in its epoch.

    ``cursors`` maps a shard index to the resume cursor after the last frame
    delivered from that shard (absent: nothing delivered yet). ``complete``
    says the epoch was read to its end, so the next iteration starts the next epoch.
    """

    epoch: int = 0
    layout: ShardLayout | None = None
    cursors: dict[int, str] = field(default_factory=dict)
    frames_delivered: int = 0
    complete: bool = False

    def advance(self, shard_index: int, cursor: str, frames: int) -> None:
        self.cursors[shard_index] = cursor
        self.frames_delivered += frames

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.cursors = {}
        self.frames_delivered = 0
        self.complete = False

    def to_dict(self) -> dict[str, Any]:
        layout = self.layout
        return {
            "format": STATE_FORMAT,
            "epoch": self.epoch,
            "rank": layout.rank if layout else None,
            "world_size": layout.world_size if layout else None,
            "workers_per_rank": layout.workers_per_rank if layout else None,
            "cursors": {str(index): cursor for index, cursor in sorted(self.cursors.items())},
            "frames_delivered": self.frames_delivered,
            "complete": self.complete,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any], expected: ShardLayout | None) -> LoaderState:
        """The state saved by :meth:`to_dict`.

        Raises:
            ValueError: not such a state, or saved with another rank, world
                size or worker count than ``expected`` (the shards would differ).
        """
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"state: format must be {STATE_FORMAT}, got {state.get('format')!r}")
        layout = None
        if state.get("world_size") is not None:
            layout = ShardLayout(int(state["rank"]), int(state["world_size"]), int(state["workers_per_rank"]))
        if expected is not None and layout is not None and layout != expected:
            raise ValueError(
                f"state: saved by rank {layout.rank} of {layout.world_size} with {layout.workers_per_rank} "
                f"workers, restored into rank {expected.rank} of {expected.world_size} with "
                f"{expected.workers_per_rank} workers; the shards would not be the same")
        cursors = state.get("cursors") or {}
        if not isinstance(cursors, Mapping):
            raise ValueError("state: cursors must map shard indexes to cursors")
        return cls(
            epoch=int(state.get("epoch", 0)),
            layout=layout,
            cursors={int(index): str(cursor) for index, cursor in cursors.items()},
            frames_delivered=int(state.get("frames_delivered", 0)),
            complete=bool(state.get("complete", False)),
        )
