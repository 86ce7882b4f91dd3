"""The build's shard writer: the contract's writer (tinylm_shards), with the `shard` crash point."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa

import tinylm_shards

from .faults import crash_point


class ShardWriter(tinylm_shards.ShardWriter):
    """Writes `rows_per_shard` blocks per file; `token_columns` adds per-token columns."""

    def __init__(
        self,
        directory: Path,
        *,
        rows_per_shard: int,
        root: Path,
        token_columns: Mapping[str, pa.DataType] | None = None,
    ) -> None:
        super().__init__(
            directory,
            rows_per_shard=rows_per_shard,
            root=root,
            token_columns=token_columns,
            before_write=lambda: crash_point("shard"),
        )
