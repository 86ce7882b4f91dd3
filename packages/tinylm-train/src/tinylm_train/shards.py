"""Seeded, rank-sharded, resumable iteration over a shard dataset (read through tinylm_shards).

The global order is a seeded permutation of all blocks; rank r of w reads every w-th entry of it.
The position (epoch, index into this rank's slice) is a state_dict, so a resumed run continues
with exactly the blocks it had not seen. Manifest, verification and the per-row checks are the
contract's own; their names are importable from here too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tinylm_shards import (
    PACKED_BLOCKS,
    Block,
    DatasetReader,
    Manifest,
    ShardError,
    ShardFormat,
    load_manifest,
    resolve_version_dir,
    verify_shards,
)

__all__ = [
    "Block",
    "Manifest",
    "ShardError",
    "ShardReader",
    "load_manifest",
    "resolve_version_dir",
    "verify_shards",
]

log = logging.getLogger(__name__)


class ShardReader:
    """Seeded, rank-sharded, resumable iteration over all blocks of a shard dataset.

    Every epoch is a fresh permutation (seed + epoch) of all blocks; rank `rank` of `world_size`
    takes entries rank, rank + world_size, …, trimmed so every rank sees the same count.
    `verify` checks every shard against the manifest first: pass it on one process per dataset
    (rank 0, or local rank 0 per node) and False elsewhere. `formats` are the dataset formats
    accepted and `token_columns` the extra per-token columns read (SFT: `loss_mask`).
    """

    def __init__(
        self,
        data: str | Path,
        *,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        verify: bool = True,
        formats: Sequence[ShardFormat] = (PACKED_BLOCKS,),
        token_columns: Sequence[str] = (),
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.manifest = load_manifest(data, formats=formats)
        if verify:
            verify_shards(self.manifest)
        self._reader = DatasetReader(self.manifest, verify=False, token_columns=token_columns)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.num_blocks = self._reader.num_blocks
        self.blocks_per_rank = self.num_blocks // world_size
        if self.blocks_per_rank == 0:
            raise ShardError(f"{self.num_blocks} blocks cannot feed {world_size} ranks")
        self.epoch = 0
        self.index = 0  # next position in this rank's slice of the epoch's permutation
        self._order: np.ndarray | None = None

    def _rank_order(self, epoch: int) -> np.ndarray:
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_blocks)
        return perm[self.rank :: self.world_size][: self.blocks_per_rank]

    def block(self, global_index: int) -> Block:
        return self._reader.block(global_index)

    def next_block(self) -> Block:
        if self._order is None:
            self._order = self._rank_order(self.epoch)
        if self.index >= self.blocks_per_rank:
            self.epoch += 1
            self.index = 0
            self._order = self._rank_order(self.epoch)
            log.info("shard reader rank %d starts epoch %d", self.rank, self.epoch)
        block = self.block(int(self._order[self.index]))
        self.index += 1
        return block

    def __iter__(self) -> Iterator[Block]:
        while True:
            yield self.next_block()

    def state_dict(self) -> dict:
        return {
            "seed": self.seed,
            "epoch": self.epoch,
            "index": self.index,
            "rank": self.rank,
            "world_size": self.world_size,
            "version": self.manifest.version,
        }

    def load_state_dict(self, state: dict) -> None:
        current = {
            "seed": self.seed,
            "world_size": self.world_size,
            "version": self.manifest.version,
        }
        for key, value in current.items():
            if state[key] != value:
                raise ValueError(
                    f"cannot resume the data position: {key} was {state[key]!r}, now {value!r}"
                )
        self.epoch, self.index = int(state["epoch"]), int(state["index"])
        self._order = None
