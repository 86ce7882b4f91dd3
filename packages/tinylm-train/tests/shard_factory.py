"""Write shard datasets exactly per docs/shard-format.md (schema 1), for tests and benchmarks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        ("input_ids", pa.list_(pa.int32())),
        ("doc_offsets", pa.list_(pa.int32())),
        ("num_tokens", pa.int32()),
        ("doc_ids", pa.list_(pa.string())),
        ("is_partial", pa.bool_()),
    ]
)


def write_tokenizer(directory: Path, vocab_size: int) -> None:
    """A word-level tokenizer over ids 0..vocab_size-1 (id 0 is EOS/pad), saved for AutoTokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<eos>": 0, **{f"w{i}": i for i in range(1, vocab_size)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<eos>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<eos>")
    fast.save_pretrained(directory)


def random_documents(
    rng: np.random.Generator, count: int, vocab_size: int, max_len: int
) -> list[np.ndarray]:
    """Documents of random length, each ending with EOS (id 0)."""
    docs = []
    for _ in range(count):
        length = int(rng.integers(2, max_len))
        body = rng.integers(1, vocab_size, size=length - 1)
        docs.append(np.concatenate([body, [0]]).astype(np.int32))
    return docs


def pack_concat(docs: list[np.ndarray], block_size: int) -> list[dict]:
    """Concat packing: documents cut at block boundaries, the final block partial."""
    rows, ids, offsets, doc_ids = [], [], [0], []
    for d, doc in enumerate(docs):
        pos = 0
        while pos < len(doc):
            take = min(len(doc) - pos, block_size - len(ids))
            ids.extend(doc[pos : pos + take].tolist())
            offsets.append(len(ids))
            doc_ids.append(f"doc-{d}")
            pos += take
            if len(ids) == block_size:
                rows.append(_row(ids, offsets, doc_ids, block_size, partial=False))
                ids, offsets, doc_ids = [], [0], []
    if ids:
        rows.append(_row(ids, offsets, doc_ids, block_size, partial=True))
    return rows


def _row(ids, offsets, doc_ids, block_size, *, partial):
    n = len(ids)
    return {
        "input_ids": ids + [0] * (block_size - n),
        "doc_offsets": list(offsets),
        "num_tokens": n,
        "doc_ids": list(doc_ids),
        "is_partial": partial,
    }


def write_dataset(
    out: Path,
    *,
    name: str = "sample",
    version: str = "v-0123456789abcdef",
    num_docs: int = 200,
    vocab_size: int = 100,
    block_size: int = 64,
    max_doc_len: int = 50,
    rows_per_shard: int = 16,
    row_group_size: int = 4,
    seed: int = 0,
    schema_version: int = 1,
) -> Path:
    """Write OUT/<name>/<version>/{manifest.json, shards/, tokenizer/} and OUT/<name>/LATEST."""
    root = out / name / version
    (root / "shards").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    docs = random_documents(rng, num_docs, vocab_size, max_doc_len)
    rows = pack_concat(docs, block_size)
    shards = []
    for i in range(0, len(rows), rows_per_shard):
        chunk = rows[i : i + rows_per_shard]
        rel = f"shards/part-{i // rows_per_shard:05d}.parquet"
        pq.write_table(
            pa.Table.from_pylist(chunk, schema=SCHEMA), root / rel, row_group_size=row_group_size
        )
        data = (root / rel).read_bytes()
        shards.append(
            {
                "path": rel,
                "rows": len(chunk),
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "tokens": sum(r["num_tokens"] for r in chunk),
            }
        )
    write_tokenizer(root / "tokenizer", vocab_size)
    real = sum(len(d) for d in docs)
    manifest = {
        "schema_version": schema_version,
        "format": "tinylm-packed-blocks",
        "name": name,
        "version": version,
        "created_by": {"package": "test-factory", "version": "0"},
        "tokenizer": {
            "name": "test-wordlevel",
            "sha256": "0" * 64,
            "vocab_size": vocab_size,
            "eos_id": 0,
            "pad_id": 0,
        },
        "block_size": block_size,
        "pack_mode": "concat",
        "num_blocks": len(rows),
        "tokens": {
            "real": real,
            "slots": len(rows) * block_size,
            "utilisation": real / (len(rows) * block_size),
            "documents": num_docs,
            "split_documents": 0,
            "split_fraction": 0.0,
        },
        "counts": {},
        "config": {},
        "shards": shards,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    (out / name / "LATEST").write_text(version + "\n", encoding="utf-8")
    return root
