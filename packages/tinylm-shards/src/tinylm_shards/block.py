"""One packed row as numpy arrays, and the checks every row must pass (written or read)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from .errors import ShardError


@dataclasses.dataclass(frozen=True, kw_only=True)
class Block:
    """One row of packed-block shards."""

    input_ids: np.ndarray
    """(block_size,) token ids; the slots after num_tokens hold the pad id."""
    doc_offsets: np.ndarray
    """(segments + 1,) segment boundaries: 0, strictly increasing, ending at num_tokens."""
    doc_ids: tuple[str, ...] = ()
    """The document of each segment (empty when a reader did not ask for them)."""
    is_partial: bool = False
    token_columns: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    """Extra per-token columns, each (block_size,), aligned with input_ids (e.g. a loss mask)."""
    index: int = -1
    """The block's global index in its dataset (-1 when not read from shards)."""

    @property
    def num_tokens(self) -> int:
        return int(self.doc_offsets[-1])


def check_row(
    where: str,
    input_ids: np.ndarray,
    doc_offsets: np.ndarray,
    num_tokens: int,
    block_size: int,
    token_columns: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Raise ShardError naming `where` (file and row) when a row breaks the contract."""
    if len(input_ids) != block_size:
        raise ShardError(f"{where}: {len(input_ids)} ids, block_size is {block_size}")
    offsets = np.asarray(doc_offsets).tolist()  # a handful of numbers: faster as Python ints
    if (
        len(offsets) < 2
        or offsets[0] != 0
        or offsets[-1] != num_tokens
        or any(a >= b for a, b in zip(offsets, offsets[1:], strict=False))
    ):
        raise ShardError(
            f"{where}: doc_offsets must start at 0, increase strictly and end at "
            f"num_tokens={num_tokens}"
        )
    if num_tokens > block_size:
        raise ShardError(f"{where}: num_tokens {num_tokens} > block_size {block_size}")
    for name, values in (token_columns or {}).items():
        if len(values) != block_size:
            raise ShardError(
                f"{where}: column {name!r} has {len(values)} values, input_ids has {block_size}"
            )
