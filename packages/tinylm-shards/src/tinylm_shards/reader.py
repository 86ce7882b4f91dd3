"""Reading blocks back: memory-mapped shard files, decoded one row group at a time, every row checked.

Random access costs one row-group decode when the row lies outside the group read last, so
in-order reading decodes each group once.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .arrow import list_parts
from .block import Block, check_row
from .errors import ShardError
from .formats import PACKED_BLOCKS, ShardFormat
from .manifest import Manifest, load_manifest
from .verify import shard_problems

_ALWAYS = ("input_ids", "doc_offsets", "num_tokens")
_DOC_COLUMNS = ("doc_ids", "is_partial")


class RowGroupFile:
    """One Parquet shard file with row-group-granular random access: the columns read are
    decoded one row group at a time (list columns to (offsets, values), strings to lists, the
    rest to numpy), and the group read last is kept. Subclasses turn a row into a record."""

    def __init__(self, path: Path, *, required: Sequence[str], columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.file = pq.ParquetFile(self.path, memory_map=True)
        names = set(self.file.schema_arrow.names)
        missing = [c for c in required if c not in names]
        if missing:
            raise ShardError(f"{self.path} lacks columns {missing}")
        self.columns = list(columns)
        meta = self.file.metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self.group_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.num_rows = int(self.group_starts[-1])
        self._cached_group = -1
        self._group: dict = {}

    def group_of(self, index: int) -> tuple[dict, int]:
        """(the decoded row group holding row `index`, the row's place in it)."""
        if not 0 <= index < self.num_rows:
            raise IndexError(f"{self.path} has {self.num_rows} rows, asked for row {index}")
        group = bisect.bisect_right(self.group_starts, index) - 1
        if group != self._cached_group:
            table = self.file.read_row_group(group, columns=self.columns)
            self._group = {name: _decode(table.column(name)) for name in self.columns}
            self._cached_group = group
        return self._group, index - int(self.group_starts[group])

    def row(self, index: int, *, global_index: int = -1) -> Any:
        raise NotImplementedError


def _decode(column: pa.ChunkedArray):
    if pa.types.is_list(column.type):
        return list_parts(column)
    if pa.types.is_string(column.type):
        return column.to_pylist()
    return column.to_numpy()


class ShardFile(RowGroupFile):
    """One packed-block shard file.

    `token_columns` names extra per-token columns to read; `doc_ids` also reads each segment's
    document id and the partial flag (train does not need them).
    """

    def __init__(
        self,
        path: Path,
        *,
        block_size: int,
        format: ShardFormat = PACKED_BLOCKS,
        token_columns: Sequence[str] = (),
        doc_ids: bool = False,
    ) -> None:
        super().__init__(
            path,
            required=[*format.schema.names, *token_columns],
            columns=[*_ALWAYS, *(_DOC_COLUMNS if doc_ids else ()), *token_columns],
        )
        self.block_size = block_size
        self.token_columns = tuple(token_columns)

    def row(self, index: int, *, global_index: int = -1) -> Block:
        g, local = self.group_of(index)
        ids = row_of(g["input_ids"], local).astype(np.int64)
        offsets = row_of(g["doc_offsets"], local).astype(np.int64)
        num_tokens = int(g["num_tokens"][local])
        extras = {name: row_of(g[name], local) for name in self.token_columns}
        check_row(f"{self.path} row {index}", ids, offsets, num_tokens, self.block_size, extras)
        return Block(
            input_ids=ids,
            doc_offsets=offsets,
            doc_ids=tuple(row_of(g["doc_ids"], local)) if "doc_ids" in g else (),
            is_partial=bool(g["is_partial"][local]) if "is_partial" in g else False,
            token_columns=extras,
            index=global_index,
        )


def row_of(parts: tuple[np.ndarray, np.ndarray], row: int) -> np.ndarray:
    """Row `row` of a decoded list column."""
    offsets, values = parts
    return values[offsets[row] : offsets[row + 1]]


class DatasetReader:
    """Every block of one dataset by global index (manifest order), shards opened on first use.

    With `verify`, each shard is checked against the manifest (size, SHA-256, rows) when it is
    first opened, so reading a prefix checks only the files it touches. A distributed job checks
    the whole dataset once (`verify_shards`) and passes verify=False on every rank.
    """

    def __init__(
        self,
        data: str | Path | Manifest,
        *,
        verify: bool = True,
        formats: Sequence[ShardFormat] = (PACKED_BLOCKS,),
        token_columns: Sequence[str] = (),
        doc_ids: bool = False,
    ) -> None:
        self.manifest = data if isinstance(data, Manifest) else load_manifest(data, formats=formats)
        self.verify = verify
        self.token_columns = tuple(token_columns)
        self.doc_ids = doc_ids
        self._starts = np.concatenate(
            [[0], np.cumsum([int(s["rows"]) for s in self.manifest.shards])]
        ).astype(np.int64)
        self.num_blocks = int(self._starts[-1])
        self._files: dict[int, RowGroupFile] = {}

    noun = "block"

    def block(self, index: int) -> Block:
        """Block `index` of the dataset (0 <= index < num_blocks)."""
        return self._row(index)

    def _row(self, index: int) -> Any:
        if not 0 <= index < self.num_blocks:
            raise IndexError(
                f"{self.noun} index {index} outside the dataset's {self.num_blocks} {self.noun}s"
            )
        shard = int(np.searchsorted(self._starts, index, side="right")) - 1
        return self._file(shard).row(index - int(self._starts[shard]), global_index=index)

    def _open(self, path: Path) -> RowGroupFile:
        return ShardFile(
            path,
            block_size=self.manifest.block_size,
            format=self.manifest.format,
            token_columns=self.token_columns,
            doc_ids=self.doc_ids,
        )

    def blocks(self, *, limit: int | None = None) -> Iterator[Block]:
        """Blocks in dataset order, stopping after `limit`; shards past the limit are never opened."""
        end = self.num_blocks if limit is None else min(limit, self.num_blocks)
        for index in range(end):
            yield self.block(index)

    def _file(self, shard: int) -> RowGroupFile:
        opened = self._files.get(shard)
        if opened is None:
            entry = self.manifest.shards[shard]
            if self.verify:
                problems = shard_problems(self.manifest, entry)
                if problems:
                    raise ShardError("; ".join(problems))
            opened = self._open(self.manifest.root / entry["path"])
            if opened.num_rows != int(entry["rows"]):
                raise ShardError(
                    f"{opened.path} has {opened.num_rows} rows, the manifest says {entry['rows']}"
                )
            self._files[shard] = opened
        return opened
