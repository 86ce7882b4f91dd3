"""Reader of the tinylm packed-block shard contract (schema version 1), without tinylm-data.

Shards are memory-mapped Parquet files; only the row groups of the rows being read are decoded.
The global order is a seeded permutation of all blocks; rank r of w reads every w-th entry of it.
The position (epoch, index into this rank's slice) is a state_dict, so a resumed run continues
with exactly the blocks it had not seen.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

SUPPORTED_SCHEMA_VERSIONS = (1,)
FORMAT = "tinylm-packed-blocks"
REQUIRED_COLUMNS = ("input_ids", "doc_offsets", "num_tokens")


class ShardError(ValueError):
    """The shard directory does not satisfy the contract."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Manifest:
    """The parts of manifest.json a trainer needs."""

    root: Path
    """The version directory holding manifest.json."""
    schema_version: int
    version: str
    block_size: int
    vocab_size: int
    eos_id: int
    pad_id: int
    shards: tuple[dict, ...]
    raw: dict

    @property
    def tokenizer_dir(self) -> Path:
        return self.root / "tokenizer"

    @property
    def num_blocks(self) -> int:
        return sum(int(s["rows"]) for s in self.shards)


def resolve_version_dir(data: str | Path) -> Path:
    """A version directory (has manifest.json) as is; `OUT/<name>` through its LATEST file."""
    path = Path(data)
    if (path / "manifest.json").is_file():
        return path
    latest = path / "LATEST"
    if latest.is_file():
        version = latest.read_text(encoding="utf-8").strip()
        target = path / version
        if not (target / "manifest.json").is_file():
            raise ShardError(f"{latest} names {version!r} but {target}/manifest.json is missing")
        return target
    raise ShardError(f"{path} has neither manifest.json nor LATEST: not a shard dataset")


def load_manifest(data: str | Path) -> Manifest:
    """Read and check manifest.json; refuse an unknown schema version or format."""
    root = resolve_version_dir(data)
    raw = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    schema = raw.get("schema_version")
    if schema not in SUPPORTED_SCHEMA_VERSIONS:
        raise ShardError(
            f"{root}/manifest.json has schema_version {schema!r}; this tinylm-train reads "
            f"{list(SUPPORTED_SCHEMA_VERSIONS)} only (upgrade tinylm-train or rebuild the shards)"
        )
    if raw.get("format") != FORMAT:
        raise ShardError(
            f"{root}/manifest.json has format {raw.get('format')!r}, expected {FORMAT!r}"
        )
    try:
        tok = raw["tokenizer"]
        return Manifest(
            root=root,
            schema_version=schema,
            version=str(raw.get("version", root.name)),
            block_size=int(raw["block_size"]),
            vocab_size=int(tok["vocab_size"]),
            eos_id=int(tok["eos_id"]),
            pad_id=int(tok["pad_id"]),
            shards=tuple(raw["shards"]),
            raw=raw,
        )
    except (KeyError, TypeError) as exc:
        raise ShardError(f"{root}/manifest.json lacks a required field: {exc}") from exc


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_shards(manifest: Manifest) -> None:
    """Check every shard's SHA-256 and row count against the manifest."""
    for shard in manifest.shards:
        path = manifest.root / shard["path"]
        if not path.is_file():
            raise ShardError(f"shard {path} listed in the manifest is missing")
        actual = sha256_file(path)
        if actual != shard["sha256"]:
            raise ShardError(
                f"checksum mismatch for {path}: manifest {shard['sha256']}, file {actual}"
            )
        rows = pq.ParquetFile(path, memory_map=True).metadata.num_rows
        if rows != int(shard["rows"]):
            raise ShardError(f"{path} has {rows} rows, the manifest says {shard['rows']}")


class _Shard:
    """One memory-mapped Parquet file with row-group-granular random access."""

    def __init__(self, path: Path, block_size: int) -> None:
        self.path = path
        self.file = pq.ParquetFile(path, memory_map=True)
        names = set(self.file.schema_arrow.names)
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise ShardError(f"{path} lacks columns {missing}")
        meta = self.file.metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self.group_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.block_size = block_size
        self._cached_group = -1
        self._cached: pa.Table | None = None

    def row(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        group = bisect.bisect_right(self.group_starts, index) - 1
        if group != self._cached_group:
            self._cached = self.file.read_row_group(group, columns=list(REQUIRED_COLUMNS))
            self._cached_group = group
        local = index - int(self.group_starts[group])
        assert self._cached is not None
        ids = np.asarray(self._cached.column("input_ids")[local].values, dtype=np.int64)
        offsets = np.asarray(self._cached.column("doc_offsets")[local].values, dtype=np.int64)
        num_tokens = int(self._cached.column("num_tokens")[local].as_py())
        _check_row(self.path, index, ids, offsets, num_tokens, self.block_size)
        return ids, offsets


def _check_row(path: Path, index: int, ids, offsets, num_tokens: int, block_size: int) -> None:
    if len(ids) != block_size:
        raise ShardError(f"{path} row {index}: {len(ids)} ids, block_size is {block_size}")
    if (
        len(offsets) < 2
        or offsets[0] != 0
        or offsets[-1] != num_tokens
        or np.any(np.diff(offsets) <= 0)
    ):
        raise ShardError(
            f"{path} row {index}: doc_offsets must start at 0, increase strictly and end at "
            f"num_tokens={num_tokens}"
        )
    if num_tokens > block_size:
        raise ShardError(f"{path} row {index}: num_tokens {num_tokens} > block_size {block_size}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Block:
    """One packed row: ids (block_size,), document offsets (segments + 1,)."""

    input_ids: np.ndarray
    doc_offsets: np.ndarray
    index: int = -1
    """The block's global index in the dataset (-1 when not read from shards)."""


class ShardReader:
    """Seeded, rank-sharded, resumable iteration over all blocks of a shard dataset.

    Every epoch is a fresh permutation (seed + epoch) of all blocks; rank `rank` of `world_size`
    takes entries rank, rank + world_size, …, trimmed so every rank sees the same count.
    """

    def __init__(
        self,
        data: str | Path,
        *,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        verify: bool = True,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.manifest = load_manifest(data)
        if verify:
            verify_shards(self.manifest)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self._shards = [
            _Shard(self.manifest.root / s["path"], self.manifest.block_size)
            for s in self.manifest.shards
        ]
        self._starts = np.concatenate(
            [[0], np.cumsum([int(s["rows"]) for s in self.manifest.shards])]
        )
        self.num_blocks = int(self._starts[-1])
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
        shard = int(np.searchsorted(self._starts, global_index, side="right")) - 1
        ids, offsets = self._shards[shard].row(global_index - int(self._starts[shard]))
        return Block(input_ids=ids, doc_offsets=offsets, index=global_index)

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
