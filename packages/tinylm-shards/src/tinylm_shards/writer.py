"""Writing blocks into Parquet shard files: fixed settings (reproducible bytes), atomic, hashed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .arrow import list_array
from .block import check_row
from .errors import ShardError
from .files import atomic_path, sha256_file
from .formats import PACKED_BLOCKS

# Fixed so the same blocks always give the same bytes.
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "write_statistics": True}
ROW_GROUP_SIZE = 1024
"""Rows per row group: the unit a reader decodes for one random access."""


class BlockLike(Protocol):
    """What the writer needs of a block (tinylm_shards.Block, or a packer's own record)."""

    input_ids: np.ndarray
    doc_offsets: np.ndarray
    doc_ids: list[str] | tuple[str, ...]
    is_partial: bool


class ShardWriter:
    """Buffers blocks and writes `rows_per_shard` of them per file, `part-00000.parquet` onwards.

    `token_columns` declares extra per-token columns (name -> Arrow value type, e.g.
    {"loss_mask": pa.int8()}); every block then carries each of them in its `token_columns`
    mapping, as long as its input_ids. Without them the files are exactly the packed-blocks schema.
    `before_write` is called before each file is written (a fault-injection hook). A full file is
    encoded and written on a background thread (Parquet's compression runs without the GIL) while
    the caller goes on packing the next; at most one file is in flight, and an error in writing
    it is raised by the next `add` that fills a file, or by `close`. Another row
    format (pairs.PairWriter) overrides `_check` and `_table`; buffering, file naming, atomic
    writing and the manifest entries are this class's.
    """

    def __init__(
        self,
        directory: Path,
        *,
        rows_per_shard: int,
        root: Path | None = None,
        token_columns: Mapping[str, pa.DataType] | None = None,
        row_group_size: int = ROW_GROUP_SIZE,
        before_write: Callable[[], None] | None = None,
    ) -> None:
        if rows_per_shard < 1:
            raise ValueError(f"rows_per_shard must be at least 1, got {rows_per_shard}")
        self.directory = Path(directory)
        self.root = Path(root) if root is not None else self.directory.parent
        self.rows_per_shard = rows_per_shard
        self.row_group_size = row_group_size
        self.token_columns = dict(token_columns or {})
        taken = set(PACKED_BLOCKS.schema.names) & set(self.token_columns)
        if taken:
            raise ValueError(f"extra token columns {sorted(taken)} clash with the format's columns")
        self.schema = pa.schema(
            [*PACKED_BLOCKS.schema, *((n, pa.list_(t)) for n, t in self.token_columns.items())]
        )
        self.before_write = before_write
        self.block_size: int | None = None
        self.shards: list[dict] = []
        self._blocks: list[BlockLike] = []
        self._rows = 0
        self._writing: Future | None = None
        self._thread: ThreadPoolExecutor | None = None

    def add(self, block: BlockLike) -> None:
        self._check(block)
        self._blocks.append(block)
        if len(self._blocks) >= self.rows_per_shard:
            self._flush()

    def close(self) -> list[dict]:
        """Write what is buffered; the manifest entries of every file written."""
        self._flush()
        self._wait()
        if self._thread is not None:
            self._thread.shutdown()
            self._thread = None
        return self.shards

    def _check(self, block: BlockLike) -> None:
        if self.block_size is None:
            self.block_size = len(block.input_ids)
        extras = getattr(block, "token_columns", None) or {}
        if set(extras) != set(self.token_columns):
            raise ShardError(
                f"block {self._rows} carries token columns {sorted(extras)}, the writer was "
                f"declared with {sorted(self.token_columns)}"
            )
        check_row(
            f"block {self._rows}",
            block.input_ids,
            block.doc_offsets,
            int(block.doc_offsets[-1]),
            self.block_size,
            extras,
        )
        if len(block.doc_ids) != len(block.doc_offsets) - 1:
            raise ShardError(
                f"block {self._rows}: {len(block.doc_ids)} doc_ids for "
                f"{len(block.doc_offsets) - 1} segments"
            )
        self._rows += 1

    def _flush(self) -> None:
        if not self._blocks:
            return
        rows, self._blocks = self._blocks, []
        self._wait()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="shard-writer")
        self._writing = self._thread.submit(self._write, rows)

    def _wait(self) -> None:
        """Let the file in flight finish; its error, if any, is raised here."""
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def _write(self, rows: list) -> None:
        table, tokens = self._table(rows)
        path = self.directory / f"part-{len(self.shards):05d}.parquet"
        if self.before_write is not None:
            self.before_write()
        with atomic_path(path) as tmp:
            pq.write_table(table, str(tmp), row_group_size=self.row_group_size, **PARQUET_OPTIONS)
        self.shards.append(
            {
                "path": path.relative_to(self.root).as_posix(),
                "rows": len(rows),
                "bytes": path.stat().st_size,
                "sha256": sha256_file(path),
                "tokens": tokens,
            }
        )

    def _table(self, blocks: list) -> tuple[pa.Table, int]:
        """(the Arrow table of buffered rows, the tokens they hold); a subclass's format
        overrides this and `_check`."""
        doc_ids = [b.doc_ids for b in blocks]
        id_offsets = np.zeros(len(blocks) + 1, dtype=np.int32)
        np.cumsum([len(ids) for ids in doc_ids], out=id_offsets[1:])
        num_tokens = [int(b.doc_offsets[-1]) for b in blocks]
        columns = {
            "input_ids": list_array([b.input_ids for b in blocks], pa.int32()),
            "doc_offsets": list_array([b.doc_offsets for b in blocks], pa.int32()),
            "num_tokens": pa.array(num_tokens, pa.int32()),
            "doc_ids": pa.ListArray.from_arrays(
                pa.array(id_offsets), pa.array([i for ids in doc_ids for i in ids], pa.string())
            ),
            "is_partial": pa.array([b.is_partial for b in blocks], pa.bool_()),
        }
        for name, value_type in self.token_columns.items():
            columns[name] = list_array([b.token_columns[name] for b in blocks], value_type)  # type: ignore[attr-defined]
        return pa.Table.from_pydict(columns, schema=self.schema), sum(num_tokens)
