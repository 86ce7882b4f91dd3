"""Checking shard files against their manifest: present, same size, same SHA-256, same row count.

A distributed reader runs this once per dataset (one process per node, say), not on every rank.
"""

from __future__ import annotations

import pyarrow.parquet as pq

from .errors import ShardError
from .files import sha256_file
from .manifest import Manifest


def shard_problems(manifest: Manifest, shard: dict, *, checksum: bool = True) -> list[str]:
    """What is wrong with one shard of `manifest` (empty when nothing is).

    Without `checksum`, only presence and size are checked: a stat per file, cheap enough to run
    over every shard each time a dataset is opened.
    """
    path = manifest.root / shard["path"]
    if not path.is_file():
        return [f"missing shard {path}"]
    size = path.stat().st_size
    if size != shard["bytes"]:
        return [f"{path} has {size} bytes, the manifest says {shard['bytes']}"]
    if not checksum:
        return []
    actual = sha256_file(path)
    if actual != shard["sha256"]:
        return [
            f"checksum mismatch for {path}: sha256 {actual}, the manifest says {shard['sha256']}"
        ]
    rows = pq.ParquetFile(path).metadata.num_rows
    if rows != shard["rows"]:
        return [f"{path} has {rows} rows, the manifest says {shard['rows']}"]
    return []


def dataset_problems(manifest: Manifest, *, checksum: bool = True) -> list[str]:
    """Every problem of every shard, held-out splits included, in manifest order."""
    shards = [*manifest.shards, *(s for split in manifest.splits.values() for s in split)]
    return [p for shard in shards for p in shard_problems(manifest, shard, checksum=checksum)]


def verify_shards(manifest: Manifest) -> None:
    """Raise ShardError listing every problem when any shard fails its checks."""
    problems = dataset_problems(manifest)
    if problems:
        raise ShardError("; ".join(problems))
