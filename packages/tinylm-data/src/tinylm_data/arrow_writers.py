"""Arrow schemas and Parquet writers: the rejects side output, work files, shared options."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import tinylm_shards

from .document import Rejection

REJECT_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("file", pa.string()),
        ("line", pa.int64()),
        ("duplicate_of", pa.string()),
        ("cluster", pa.int64()),
    ]
)

# The contract's Parquet settings serve every published file of a build (reproducible bytes).
PARQUET_OPTIONS = tinylm_shards.PARQUET_OPTIONS
# Intermediate files are written once and read once: favour speed over size.
WORK_PARQUET_OPTIONS = {"compression": "lz4", "write_statistics": False}


def rejects_table(rejections: Sequence[Rejection]) -> pa.Table:
    rows = [r.as_row() for r in rejections]
    return pa.Table.from_pylist(rows, schema=REJECT_SCHEMA)


class RowGroupWriter:
    """Collects tables and writes them as row groups of about `rows_per_group` rows."""

    def __init__(
        self,
        path: Path,
        schema: pa.Schema,
        rows_per_group: int = 16384,
        options: dict | None = None,
    ) -> None:
        self.path = path
        self.schema = schema
        self.rows_per_group = rows_per_group
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer = pq.ParquetWriter(str(path), schema, **(options or PARQUET_OPTIONS))
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self.rows_per_group:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = pa.concat_tables(self._pending)
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
            self.rows += table.num_rows
            self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()
