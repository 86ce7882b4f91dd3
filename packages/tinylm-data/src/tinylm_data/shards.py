"""Writing packed blocks into the Parquet shards of the contract (docs/shard-format.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .arrow_writers import PARQUET_OPTIONS, list_array
from .atomic import atomic_path, file_sha256
from .faults import crash_point
from .pack import Block

SCHEMA_VERSION = 1
SHARD_SCHEMA = pa.schema(
    [
        ("input_ids", pa.list_(pa.int32())),
        ("doc_offsets", pa.list_(pa.int32())),
        ("num_tokens", pa.int32()),
        ("doc_ids", pa.list_(pa.string())),
        ("is_partial", pa.bool_()),
    ]
)


class ShardWriter:
    """Buffers blocks and writes `rows_per_shard` of them per file, atomically."""

    def __init__(self, directory: Path, *, rows_per_shard: int, root: Path) -> None:
        self.directory = directory
        self.root = root
        self.rows_per_shard = rows_per_shard
        self._blocks: list[Block] = []
        self.shards: list[dict] = []

    def add(self, block: Block) -> None:
        self._blocks.append(block)
        if len(self._blocks) >= self.rows_per_shard:
            self._flush()

    def close(self) -> list[dict]:
        self._flush()
        return self.shards

    def _flush(self) -> None:
        if not self._blocks:
            return
        blocks, self._blocks = self._blocks, []
        doc_ids = [b.doc_ids for b in blocks]
        id_offsets = np.zeros(len(blocks) + 1, dtype=np.int32)
        np.cumsum([len(ids) for ids in doc_ids], out=id_offsets[1:])
        table = pa.Table.from_pydict(
            {
                "input_ids": list_array([b.input_ids for b in blocks], pa.int32()),
                "doc_offsets": list_array([b.doc_offsets for b in blocks], pa.int32()),
                "num_tokens": pa.array([b.num_tokens for b in blocks], pa.int32()),
                "doc_ids": pa.ListArray.from_arrays(
                    pa.array(id_offsets), pa.array([i for ids in doc_ids for i in ids], pa.string())
                ),
                "is_partial": pa.array([b.is_partial for b in blocks], pa.bool_()),
            },
            schema=SHARD_SCHEMA,
        )
        for name, values in blocks[0].token_columns.items():  # extra per-token columns, if any
            column = [b.token_columns[name] for b in blocks]
            table = table.append_column(name, list_array(column, pa.from_numpy_dtype(values.dtype)))
        path = self.directory / f"part-{len(self.shards):05d}.parquet"
        crash_point("shard")
        with atomic_path(path) as tmp:
            pq.write_table(table, str(tmp), row_group_size=1024, **PARQUET_OPTIONS)
        self.shards.append(
            {
                "path": path.relative_to(self.root).as_posix(),
                "rows": len(blocks),
                "bytes": path.stat().st_size,
                "sha256": file_sha256(path),
                "tokens": int(sum(b.num_tokens for b in blocks)),
            }
        )
