"""Format names and their Arrow schemas, each with its own schema version.

A manifest names one format and that format's schema version. Readers accept only the formats
they were written for and refuse the rest with the name they found.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from .errors import ShardError


@dataclass(frozen=True, kw_only=True)
class ShardFormat:
    name: str
    """The manifest's `format` value."""
    schema_version: int
    """The manifest's `schema_version` for this format; bumped when old readers would misread."""
    schema: pa.Schema
    """The columns every shard of the format has (a writer may add per-token columns)."""
    token_columns: tuple[str, ...]
    """List columns with one value per token slot: their length is the manifest's block_size."""


_BLOCK_COLUMNS = [
    ("input_ids", pa.list_(pa.int32())),
    ("doc_offsets", pa.list_(pa.int32())),
    ("num_tokens", pa.int32()),
    ("doc_ids", pa.list_(pa.string())),
    ("is_partial", pa.bool_()),
]

PACKED_BLOCKS = ShardFormat(
    name="tinylm-packed-blocks",
    schema_version=1,
    schema=pa.schema(_BLOCK_COLUMNS),
    token_columns=("input_ids",),
)
"""Pretraining blocks: documents packed into rows of block_size tokens (docs/shard-format.md)."""

SFT_BLOCKS = ShardFormat(
    name="tinylm-sft-blocks",
    schema_version=1,
    schema=pa.schema([*_BLOCK_COLUMNS, ("loss_mask", pa.list_(pa.int8()))]),
    token_columns=("input_ids", "loss_mask"),
)
"""Packed conversations for instruction tuning (docs/shard-format.md, "SFT blocks").

The packed-block columns plus `loss_mask` (one int8 per token slot): 1 where `input_ids[i]` is a
training target (assistant text and its terminator), 0 on system/user text, scaffolding, padding
and the first token of every sample. Each sample is one segment and never crosses a row. The
manifest adds an `sft` object (template, max_length, pack_mode, stop_tokens, stop_strings,
trainable_tokens). Written by `tinylm-data sft build`."""

PREFERENCE_PAIRS = ShardFormat(
    name="tinylm-preference-pairs",
    schema_version=2,
    schema=pa.schema(
        [
            ("pair_id", pa.string()),
            ("prompt_ids", pa.list_(pa.int32())),
            ("chosen_ids", pa.list_(pa.int32())),
            ("rejected_ids", pa.list_(pa.int32())),
            ("prompt_truncated", pa.int32()),
            ("answer_truncated", pa.int32()),
        ]
    ),
    token_columns=(),
)
"""One preference pair per row: the prompt's ids, the chosen and the rejected answer's ids (the
answer tokens are the labelled ones), and the tokens truncation removed. The manifest's
block_size is the max_length every prompt + answer fits in (docs/shard-format.md; pairs.py)."""

RETRIEVAL_INDEX = ShardFormat(
    name="tinylm-bm25-index",
    schema_version=1,
    schema=pa.schema(
        [
            ("id", pa.string()),
            ("doc_id", pa.string()),
            ("source", pa.string()),
            ("text", pa.string()),
        ]
    ),
    token_columns=(),
)
"""A BM25 retrieval index: one passage per row of passages.arrow, a bm25s matrix beside it
(docs/retrieval-format.md; tinylm_shards.retrieval)."""

# why: not a shard dataset (no blocks, no block_size), so it is not among the shard FORMATS
FORMATS = {f.name: f for f in (PACKED_BLOCKS, SFT_BLOCKS, PREFERENCE_PAIRS)}


def format_named(name: object) -> ShardFormat:
    """The declared format called `name`."""
    try:
        return FORMATS[name]  # type: ignore[index]
    except (KeyError, TypeError):
        raise ShardError(f"unknown shard format {name!r}; known: {sorted(FORMATS)}") from None
