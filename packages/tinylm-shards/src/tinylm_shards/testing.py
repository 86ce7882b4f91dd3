"""A tiny valid dataset for tests and benchmarks, written through the real writer and manifest.

root = write_dataset(tmp_path)                      # OUT/sample/<version>/, OUT/sample/LATEST
root = write_dataset(tmp_path, documents=[[5, 6, 0], [7, 0]], block_size=8)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .block import Block
from .manifest import LATEST, MANIFEST, write_manifest
from .writer import ShardWriter

EOS_ID = 0
"""The test vocabulary's end-of-document (and padding) id."""


def random_documents(
    rng: np.random.Generator, count: int, vocab_size: int, max_len: int
) -> list[np.ndarray]:
    """Documents of random length (2 .. max_len - 1), each ending with EOS."""
    docs = []
    for _ in range(count):
        length = int(rng.integers(2, max_len))
        body = rng.integers(1, vocab_size, size=length - 1)
        docs.append(np.concatenate([body, [EOS_ID]]).astype(np.int32))
    return docs


def pack_concat(
    documents: Sequence[Sequence[int]],
    block_size: int,
    token_column: Callable[[int, np.ndarray], np.ndarray] | None = None,
    *,
    column_name: str = "loss_mask",
) -> list[Block]:
    """Concat packing: documents cut at block boundaries, the final block partial and padded.

    `token_column(d, ids)` gives document d's per-token values, carried as `column_name`.
    """
    blocks: list[Block] = []
    ids: list[int] = []
    extra: list[int] = []
    offsets, doc_ids = [0], []

    def emit(partial: bool) -> None:
        pad = block_size - len(ids)
        columns = {}
        if token_column is not None:
            columns[column_name] = np.array(extra + [0] * pad, dtype=np.int8)
        blocks.append(
            Block(
                input_ids=np.array(ids + [EOS_ID] * pad, dtype=np.int32),
                doc_offsets=np.array(offsets, dtype=np.int32),
                doc_ids=tuple(doc_ids),
                is_partial=partial,
                token_columns=columns,
            )
        )

    for d, document in enumerate(documents):
        doc = np.asarray(document, dtype=np.int32)
        values = token_column(d, doc) if token_column is not None else None
        pos = 0
        while pos < len(doc):
            take = min(len(doc) - pos, block_size - len(ids))
            ids.extend(doc[pos : pos + take].tolist())
            if values is not None:
                extra.extend(np.asarray(values[pos : pos + take]).tolist())
            offsets.append(len(ids))
            doc_ids.append(f"doc-{d}")
            pos += take
            if len(ids) == block_size:
                emit(partial=False)
                ids, extra, offsets, doc_ids = [], [], [0], []
    if ids:
        emit(partial=True)
    return blocks


def write_wordlevel_tokenizer(directory: Path, vocab_size: int) -> Path:
    """A whitespace word-level tokenizer over "<eos>", "w1" … "w{vocab_size-1}" (id 0 is EOS and
    pad), saved as transformers' AutoTokenizer and tokenizers' Tokenizer.from_file load it."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab = {"<eos>": EOS_ID, **{f"w{i}": i for i in range(1, vocab_size)}}
    eos = {"id": EOS_ID, "content": "<eos>", "single_word": False, "lstrip": False}
    eos |= {"rstrip": False, "normalized": False, "special": True}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [eos],
        "normalizer": None,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<eos>"},
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": "<eos>",
        "pad_token": "<eos>",
        "model_max_length": 1 << 30,
    }
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer, indent=2), encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return directory


def write_dataset(
    out: Path,
    *,
    name: str = "sample",
    version: str = "v-0123456789abcdef",
    documents: Sequence[Sequence[int]] | None = None,
    num_docs: int = 200,
    vocab_size: int = 100,
    block_size: int = 64,
    max_doc_len: int = 50,
    rows_per_shard: int = 16,
    row_group_size: int = 4,
    seed: int = 0,
    token_column: Callable[[int, np.ndarray], np.ndarray] | None = None,
    tokenizer: bool = True,
    manifest_overrides: Mapping[str, Any] | None = None,
    validation_documents: Sequence[Sequence[int]] | None = None,
) -> Path:
    """Write OUT/<name>/<version>/{manifest.json, shards/, tokenizer/} and OUT/<name>/LATEST.

    `documents` (token lists, each ending with EOS) default to `num_docs` random ones.
    `validation_documents` are packed into validation/ and listed as the "validation" split.
    `token_column(d, ids)` adds a per-token int8 `loss_mask` column from document d's values.
    `manifest_overrides` replaces top-level manifest fields afterwards, to make broken datasets.
    """
    root = out / name / version
    if documents is None:
        documents = random_documents(np.random.default_rng(seed), num_docs, vocab_size, max_doc_len)
    blocks = pack_concat(documents, block_size, token_column)
    writer = ShardWriter(
        root / "shards",
        rows_per_shard=rows_per_shard,
        root=root,
        row_group_size=row_group_size,
        token_columns={"loss_mask": pa.int8()} if token_column is not None else None,
    )
    for block in blocks:
        writer.add(block)
    shards = writer.close()
    splits = {}
    if validation_documents is not None:
        held_out = pack_concat(validation_documents, block_size)
        validation = ShardWriter(
            root / "validation",
            rows_per_shard=rows_per_shard,
            root=root,
            row_group_size=row_group_size,
        )
        for block in held_out:
            validation.add(block)
        splits["validation"] = {
            "shards": validation.close(),
            "num_blocks": len(held_out),
            "documents": len(validation_documents),
            "share": len(validation_documents) / (len(validation_documents) + len(documents)),
        }
    if tokenizer:
        write_wordlevel_tokenizer(root / "tokenizer", vocab_size)
    real = sum(len(d) for d in documents)
    slots = len(blocks) * block_size
    fields = {
        "name": name,
        "version": version,
        "created_by": {"package": "tinylm-shards.testing", "version": "0"},
        "tokenizer": {
            "name": "test-wordlevel",
            "sha256": "0" * 64,
            "vocab_size": vocab_size,
            "eos_id": EOS_ID,
            "pad_id": EOS_ID,
        },
        "block_size": block_size,
        "pack_mode": "concat",
        "num_blocks": len(blocks),
        "tokens": {
            "real": real,
            "slots": slots,
            "utilisation": real / slots if slots else 0.0,
            "documents": len(documents),
            "split_documents": 0,
            "split_fraction": 0.0,
        },
        "counts": {},
        "config": {},
        "shards": shards,
        **({"splits": splits} if splits else {}),
    }
    raw = write_manifest(root, fields).raw
    if manifest_overrides:
        raw = raw | dict(manifest_overrides)
        (root / MANIFEST).write_text(json.dumps(raw, indent=2), encoding="utf-8")
    (out / name / LATEST).write_text(version + "\n", encoding="utf-8")
    return root


def write_preference_dataset(
    out: Path,
    pairs: Sequence[tuple[Sequence[int], Sequence[int], Sequence[int]]],
    *,
    validation_pairs: Sequence[tuple[Sequence[int], Sequence[int], Sequence[int]]] | None = None,
    name: str = "prefs",
    version: str = "v-00000000feedbeef",
    max_length: int = 64,
    vocab_size: int = 100,
    eos_id: int = EOS_ID,
    pad_id: int = EOS_ID,
    tokenizer_dir: Path | None = None,
    rows_per_shard: int = 16,
    row_group_size: int = 4,
    manifest_overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Write a tinylm-preference-pairs dataset OUT/<name>/<version>/ (and LATEST) through the real
    writer: each (prompt ids, chosen ids, rejected ids) truncated prompt-first to max_length.

    `tokenizer_dir` is copied as the dataset's tokenizer (its vocab_size, eos_id and pad_id must
    be given to match); without it a word-level test tokenizer of `vocab_size` is written.
    """
    from .formats import PREFERENCE_PAIRS
    from .pairs import PairWriter, truncate_pair

    root = out / name / version

    def write(directory: str, rows, prefix: str) -> tuple[list[dict], dict]:
        writer = PairWriter(
            root / directory,
            max_length=max_length,
            rows_per_shard=rows_per_shard,
            root=root,
            row_group_size=row_group_size,
        )
        counts = {"pairs": 0, "prompt_truncated_pairs": 0, "prompt_truncated_tokens": 0}
        counts |= {"answer_truncated_pairs": 0, "answer_truncated_tokens": 0}
        for k, (prompt, chosen, rejected) in enumerate(rows):
            pair = truncate_pair(f"{prefix}-{k}", prompt, chosen, rejected, max_length=max_length)
            writer.add(pair)
            counts["pairs"] += 1
            counts["prompt_truncated_pairs"] += pair.prompt_truncated > 0
            counts["prompt_truncated_tokens"] += pair.prompt_truncated
            counts["answer_truncated_pairs"] += pair.answer_truncated > 0
            counts["answer_truncated_tokens"] += pair.answer_truncated
        return writer.close(), counts

    shards, counts = write("shards", pairs, "pair")
    splits = {}
    if validation_pairs is not None:
        held_shards, held_counts = write("validation", validation_pairs, "held")
        splits["validation"] = {
            "shards": held_shards,
            "num_blocks": held_counts["pairs"],
            "counts": held_counts,
        }
    if tokenizer_dir is not None:
        target = root / "tokenizer"
        target.mkdir(parents=True, exist_ok=True)
        for item in Path(tokenizer_dir).iterdir():
            if item.is_file():
                (target / item.name).write_bytes(item.read_bytes())
    else:
        write_wordlevel_tokenizer(root / "tokenizer", vocab_size)
    fields = {
        "name": name,
        "version": version,
        "created_by": {"package": "tinylm-shards.testing", "version": "0"},
        "tokenizer": {
            "name": "test" if tokenizer_dir is None else Path(tokenizer_dir).name,
            "sha256": "0" * 64,
            "vocab_size": vocab_size,
            "eos_id": eos_id,
            "pad_id": pad_id,
        },
        "block_size": max_length,
        "num_pairs": counts["pairs"],
        "counts": counts,
        "config": {},
        "shards": shards,
        **({"splits": splits} if splits else {}),
    }
    raw = write_manifest(root, fields, format=PREFERENCE_PAIRS).raw
    if manifest_overrides:
        raw = raw | dict(manifest_overrides)
        (root / MANIFEST).write_text(json.dumps(raw, indent=2), encoding="utf-8")
    (out / name / LATEST).write_text(version + "\n", encoding="utf-8")
    return root
