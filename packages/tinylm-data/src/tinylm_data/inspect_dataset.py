"""Reading a built dataset back: manifest, checksums, and one block decoded with its boundaries
(SFT blocks with their trained spans), or one preference pair decoded.

The checks are the contract's own (tinylm_shards); this module keeps the plain-dict view the
`inspect` command prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    "read_pair",
    "resolve_dataset_dir",
    "verify_shards",
]


def resolve_dataset_dir(path: Path) -> Path:
    """A version directory, or OUT/<name> whose LATEST names one."""
    return tinylm_shards.resolve_version_dir(path)


FORMATS = tuple(tinylm_shards.FORMATS.values())


def load_manifest(directory: Path) -> dict:
    """The checked manifest.json of `directory` (any known format), as the dict it was written as."""
    return tinylm_shards.load_manifest(directory, formats=FORMATS).raw


def verify_shards(directory: Path, manifest: dict, *, checksum: bool = True) -> list[str]:
    """Problems found (empty when every shard is present with its recorded size and sha256).

    Without `checksum`, only presence and sizes are checked (a stat per shard).
    """
    parsed = tinylm_shards.parse_manifest(directory, manifest, formats=FORMATS)
    return tinylm_shards.dataset_problems(parsed, checksum=checksum)


@dataclass
class DecodedSegment:
    doc_id: str
    start: int
    end: int
    text: str
    spans: list[tuple[str, bool]] = field(default_factory=list)
    """(text, trained) runs of an SFT sample, in order; empty for pretraining blocks."""


class CorruptShard(DatasetError):
    """A shard that does not match the manifest, or that cannot be decoded."""


def read_block(directory: Path, manifest: dict, index: int) -> dict:
    """Row `index` over all shards, in manifest order (negative counts from the end).

    The shard holding it is checked against the manifest (size, sha256, rows) before it is read.
    """
    import pyarrow as pa

    parsed = tinylm_shards.parse_manifest(directory, manifest, formats=FORMATS)
    columns = ("loss_mask",) if parsed.format is tinylm_shards.SFT_BLOCKS else ()
    reader = tinylm_shards.DatasetReader(parsed, verify=True, doc_ids=True, token_columns=columns)
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
        **{name: block.token_columns[name].tolist() for name in columns},
    }


def read_pair(directory: Path, manifest: dict, index: int) -> dict:
    """Pair `index` of preference-pair shards (checked against the manifest), decoded."""
    import pyarrow as pa

    parsed = tinylm_shards.parse_manifest(directory, manifest, formats=FORMATS)
    reader = tinylm_shards.PairReader(parsed, verify=True)
    if index < 0:
        index += len(reader)
    if not 0 <= index < len(reader):
        raise DatasetError(f"pair index out of range: the dataset has {len(reader)} pairs")
    try:
        pair = reader.pair(index)
    except DatasetError as exc:
        raise CorruptShard(str(exc)) from None
    except (pa.ArrowException, OSError) as exc:
        raise CorruptShard(f"pair {index} cannot be read: {exc}") from None
    decode = _decoder(directory)
    return {
        "pair_id": pair.pair_id,
        **{
            part: {"tokens": len(ids), "text": decode(ids.tolist())}
            for part, ids in (
                ("prompt", pair.prompt_ids),
                ("chosen", pair.chosen_ids),
                ("rejected", pair.rejected_ids),
            )
        },
        "prompt_truncated": pair.prompt_truncated,
        "answer_truncated": pair.answer_truncated,
    }


def _decoder(directory: Path):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(directory / "tokenizer" / "tokenizer.json"))
    return lambda ids: tokenizer.decode(ids, skip_special_tokens=False)


def decode_block(directory: Path, block: dict) -> list[DecodedSegment]:
    decode = _decoder(directory)
    offsets, mask = block["doc_offsets"], block.get("loss_mask")
    segments = []
    for k, doc_id in enumerate(block["doc_ids"]):
        start, end = offsets[k], offsets[k + 1]
        ids = block["input_ids"][start:end]
        spans = []
        if mask is not None:
            run = start
            for i in range(start + 1, end + 1):
                if i == end or mask[i] != mask[run]:
                    spans.append((decode(block["input_ids"][run:i]), bool(mask[run])))
                    run = i
        segments.append(DecodedSegment(doc_id, start, end, decode(ids), spans))
    return segments
