"""Reading a built dataset back: manifest, checksums, and one block decoded with its boundaries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from .atomic import file_sha256
from .shards import SCHEMA_VERSION


class DatasetError(ValueError):
    """A dataset directory that is missing, incomplete or of an unknown schema."""


def resolve_dataset_dir(path: Path) -> Path:
    """A version directory, or OUT/<name> whose LATEST names one."""
    if (path / "manifest.json").is_file():
        return path
    latest = path / "LATEST"
    if latest.is_file():
        version_dir = path / latest.read_text().strip()
        if (version_dir / "manifest.json").is_file():
            return version_dir
        raise DatasetError(f"{latest} names {version_dir.name}, which has no manifest.json")
    raise DatasetError(f"{path} holds neither a manifest.json nor a LATEST pointer")


def load_manifest(directory: Path) -> dict:
    manifest = json.loads((directory / "manifest.json").read_text())
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DatasetError(
            f"{directory} has shard schema version {version!r}; this tinylm-data reads {SCHEMA_VERSION}"
        )
    return manifest


def verify_shards(directory: Path, manifest: dict) -> list[str]:
    """Problems found (empty when every shard is present with its recorded size and sha256)."""
    problems = []
    for shard in manifest["shards"]:
        path = directory / shard["path"]
        if not path.is_file():
            problems.append(f"missing shard {shard['path']}")
        elif path.stat().st_size != shard["bytes"]:
            problems.append(f"{shard['path']}: size {path.stat().st_size} != {shard['bytes']}")
        elif file_sha256(path) != shard["sha256"]:
            problems.append(f"{shard['path']}: sha256 mismatch")
    return problems


@dataclass
class DecodedSegment:
    doc_id: str
    start: int
    end: int
    text: str


def read_block(directory: Path, manifest: dict, index: int) -> dict:
    """Row `index` over all shards, in manifest order."""
    if index < 0:
        index += manifest["num_blocks"]
    for shard in manifest["shards"]:
        if index < shard["rows"]:
            table = pq.read_table(directory / shard["path"]).slice(index, 1)
            return table.to_pylist()[0]
        index -= shard["rows"]
    raise DatasetError(f"block index out of range: the dataset has {manifest['num_blocks']} blocks")


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
