"""manifest.json: find it (a version directory, or OUT/<name> through LATEST), check it, write it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ShardError
from .files import atomic_path
from .formats import FORMATS, PACKED_BLOCKS, ShardFormat

MANIFEST = "manifest.json"
LATEST = "LATEST"
SHARD_FIELDS = ("path", "rows", "bytes", "sha256")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Manifest:
    """A checked manifest.json: the fields readers rely on, and the whole file as `raw`."""

    root: Path
    """The version directory holding manifest.json."""
    format: ShardFormat
    schema_version: int
    name: str
    version: str
    block_size: int
    vocab_size: int
    eos_id: int
    pad_id: int
    shards: tuple[dict, ...]
    """One entry per shard file, in dataset order: path (relative to root), rows, bytes, sha256."""
    raw: dict
    splits: Mapping[str, tuple[dict, ...]] = dataclasses.field(default_factory=dict)
    """The shards of each held-out split (`"validation"`), never part of `shards`."""

    @property
    def tokenizer_dir(self) -> Path:
        return self.root / "tokenizer"

    @property
    def num_blocks(self) -> int:
        return sum(int(s["rows"]) for s in self.shards)

    def split(self, name: str) -> Manifest:
        """The held-out split `name` as a manifest of its own shards, readable by DatasetReader."""
        if name not in self.splits:
            have = ", ".join(repr(n) for n in self.splits) or "none"
            raise ShardError(
                f"{self.root / MANIFEST} has no {name!r} split (held-out splits: {have}); "
                "the dataset was built without one"
            )
        return dataclasses.replace(self, shards=self.splits[name], splits={})


def resolve_version_dir(data: str | Path) -> Path:
    """A version directory (has manifest.json) as is; `OUT/<name>` through its LATEST file."""
    path = Path(data)
    if (path / MANIFEST).is_file():
        return path
    latest = path / LATEST
    if latest.is_file():
        version = latest.read_text(encoding="utf-8").strip()
        target = path / version
        if not (target / MANIFEST).is_file():
            raise ShardError(f"{latest} names {version!r}, which has no {MANIFEST}")
        return target
    raise ShardError(f"{path} holds neither a {MANIFEST} nor a {LATEST} pointer: not a dataset")


def load_manifest(
    data: str | Path, *, formats: Sequence[ShardFormat] = (PACKED_BLOCKS,)
) -> Manifest:
    """Read and check manifest.json; refuse a format outside `formats` or an unknown schema version."""
    root = resolve_version_dir(data)
    path = root / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ShardError(f"{path} is not valid JSON: {exc}") from None
    return parse_manifest(root, raw, formats=formats)


def write_manifest(
    directory: Path, fields: Mapping[str, Any], *, format: ShardFormat = PACKED_BLOCKS
) -> Manifest:
    """Write directory/manifest.json atomically: `format`'s name and schema version, then `fields`.

    The result is checked as a reader would check it, so a writer cannot publish what readers refuse.
    """
    clash = {"schema_version", "format"} & set(fields)
    if clash:
        raise ValueError(f"{sorted(clash)} come from the format, not from the fields")
    raw = {"schema_version": format.schema_version, "format": format.name, **fields}
    manifest = parse_manifest(directory, raw, formats=(format,))
    with atomic_path(directory / MANIFEST) as tmp:
        tmp.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def parse_manifest(
    root: Path, raw: Any, *, formats: Sequence[ShardFormat] = (PACKED_BLOCKS,)
) -> Manifest:
    """Check the content of root/manifest.json, already read as `raw`."""
    where = root / MANIFEST
    if not isinstance(raw, dict):
        raise ShardError(f"{where}: expected a JSON object, found {type(raw).__name__}")
    name = raw.get("format")
    shard_format = next((f for f in formats if f.name == name), None)
    if shard_format is None:
        readable = [f.name for f in formats]
        if name in (None, ""):
            raise ShardError(f"{where} lacks the field 'format'; this reader reads {readable}")
        if name not in FORMATS:
            raise ShardError(f"{where} has unknown format {name!r}; known: {sorted(FORMATS)}")
        raise ShardError(f"{where} has format {name!r}; this reader reads {readable} only")
    schema = raw.get("schema_version")
    if schema != shard_format.schema_version:
        raise ShardError(
            f"{where} has schema_version {schema!r}; this reader reads {shard_format.name} "
            f"schema_version {shard_format.schema_version} only (upgrade the reader or rebuild)"
        )
    shards = _shard_list(where, raw, "")
    splits_raw = raw.get("splits", {})
    if not isinstance(splits_raw, dict):
        raise ShardError(f"{where}: 'splits' must be an object, found {type(splits_raw).__name__}")
    splits: dict[str, tuple[dict, ...]] = {}
    for split_name, split in splits_raw.items():
        prefix = f"splits.{split_name}."
        if not isinstance(split, dict):
            raise ShardError(f"{where}: '{prefix[:-1]}' is not an object")
        splits[split_name] = tuple(_shard_list(where, split, prefix))
        blocks = _field(where, split, "num_blocks", int, prefix=prefix)
        rows = sum(s["rows"] for s in splits[split_name])
        if blocks != rows:
            raise ShardError(
                f"{where}: '{prefix}num_blocks' is {blocks}, its shards hold {rows} rows"
            )
    tokenizer = _field(where, raw, "tokenizer", dict)
    return Manifest(
        root=root,
        format=shard_format,
        schema_version=schema,
        name=_field(where, raw, "name", str),
        version=_field(where, raw, "version", str),
        block_size=_field(where, raw, "block_size", int),
        vocab_size=_field(where, tokenizer, "vocab_size", int, prefix="tokenizer."),
        eos_id=_field(where, tokenizer, "eos_id", int, prefix="tokenizer."),
        pad_id=_field(where, tokenizer, "pad_id", int, prefix="tokenizer."),
        shards=tuple(shards),
        raw=raw,
        splits=splits,
    )


def _shard_list(where: Path, data: dict, prefix: str) -> list[dict]:
    shards = _field(where, data, "shards", list, prefix=prefix)
    for k, shard in enumerate(shards):
        if not isinstance(shard, dict):
            raise ShardError(f"{where}: {prefix}shards[{k}] is not an object")
        for key, kind in zip(SHARD_FIELDS, (str, int, int, str), strict=True):
            _field(where, shard, key, kind, prefix=f"{prefix}shards[{k}].")
    return shards


def _field(where: Path, data: dict, key: str, kind: type, *, prefix: str = "") -> Any:
    if key not in data:
        raise ShardError(f"{where} lacks the field '{prefix}{key}'")
    value = data[key]
    # why: bool is an int subclass, and `"rows": true` is a broken manifest, not one row
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ShardError(
            f"{where}: '{prefix}{key}' must be {kind.__name__}, found {type(value).__name__}"
        )
    return value
