"""Reading a built dataset back: manifest, checksums, and one block decoded with its boundaries.

The checks are the contract's own (tinylm_shards); this module keeps the plain-dict view the
`inspect` command prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tinylm_shards
from tinylm_shards import ShardError as DatasetError

__all__ = [
    "CorruptShard",
    "DatasetError",
    "DecodedSegment",
    "decode_block",
    "load_manifest",
    "read_block",
    "resolve_dataset_dir",
    "verify_shards",
]


def resolve_dataset_dir(path: Path) -> Path:
    """A version directory, or OUT/<name> whose LATEST names one."""
    return tinylm_shards.resolve_version_dir(path)


def load_manifest(directory: Path) -> dict:
    """The checked manifest.json of `directory`, as the dict it was written as."""
    return tinylm_shards.load_manifest(directory).raw


def verify_shards(directory: Path, manifest: dict, *, checksum: bool = True) -> list[str]:
    """Problems found (empty when every shard is present with its recorded size and sha256).

    Without `checksum`, only presence and sizes are checked (a stat per shard).
    """
    parsed = tinylm_shards.parse_manifest(directory, manifest)
    return tinylm_shards.dataset_problems(parsed, checksum=checksum)


@dataclass
class DecodedSegment:
    doc_id: str
    start: int
    end: int
    text: str


class CorruptShard(DatasetError):
    """A shard that does not match the manifest, or that cannot be decoded."""


def read_block(directory: Path, manifest: dict, index: int) -> dict:
    """Row `index` over all shards, in manifest order (negative counts from the end).

    The shard holding it is checked against the manifest (size, sha256, rows) before it is read.
    """
    import pyarrow as pa

    reader = tinylm_shards.DatasetReader(directory, verify=True, doc_ids=True)
    if index < 0:
        index += reader.num_blocks
    if not 0 <= index < reader.num_blocks:
        raise DatasetError(f"block index out of range: the dataset has {reader.num_blocks} blocks")
    try:
        block = reader.block(index)
    except DatasetError as exc:
        raise CorruptShard(str(exc)) from None
    except (pa.ArrowException, OSError) as exc:
        raise CorruptShard(f"block {index} cannot be read: {exc}") from None
    return {
        "input_ids": block.input_ids.tolist(),
        "doc_offsets": block.doc_offsets.tolist(),
        "num_tokens": block.num_tokens,
        "doc_ids": list(block.doc_ids),
        "is_partial": block.is_partial,
    }


def decode_block(directory: Path, block: dict) -> list[DecodedSegment]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(directory / "tokenizer" / "tokenizer.json"))
    offsets = block["doc_offsets"]
    segments = []
    for k, doc_id in enumerate(block["doc_ids"]):
        ids = block["input_ids"][offsets[k] : offsets[k + 1]]
        segments.append(
            DecodedSegment(
                doc_id, offsets[k], offsets[k + 1], tokenizer.decode(ids, skip_special_tokens=False)
            )
        )
    return segments
