"""Perplexity over tinylm-data packed shards (docs/shard-format.md of tinylm-data, schema version 1).

Each segment of a block is its own sequence: position ids restart at 0 at every document offset, which
transformers' Qwen2 turns into per-document attention when `attention_mask` is None. No label crosses a
document boundary (a document's first token is not predicted from the previous one) or comes from padding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

SUPPORTED_SCHEMA_VERSIONS = (1,)


class ShardError(ValueError):
    """A dataset that does not follow the shard contract, or fails its checksum."""


def open_manifest(path: Path) -> tuple[Path, dict]:
    path = Path(path)
    if not (path / "manifest.json").is_file() and (path / "LATEST").is_file():
        path = path / (path / "LATEST").read_text().strip()
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise ShardError(f"{path}: no manifest.json (nor a LATEST pointing to one)")
    manifest = json.loads(manifest_path.read_text())
    version = manifest.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise ShardError(
            f"{manifest_path}: schema_version {version!r} is not supported by this tinylm-eval "
            f"(it reads {SUPPORTED_SCHEMA_VERSIONS}); upgrade tinylm-eval"
        )
    return path, manifest


def _verified(root: Path, shard: dict) -> Path:
    path = root / shard["path"]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != shard["sha256"]:
        raise ShardError(
            f"{path}: sha256 {digest.hexdigest()} does not match the manifest's {shard['sha256']}"
        )
    return path


def block_inputs(input_ids: list[int], doc_offsets: list[int]) -> tuple[list[int], list[int]]:
    """(position ids, labels) of one block: labels are -100 at document starts and on padding."""
    positions = [0] * len(input_ids)
    labels = [-100] * len(input_ids)
    for start, end in zip(doc_offsets[:-1], doc_offsets[1:], strict=True):
        for offset, t in enumerate(range(start, end)):
            positions[t] = offset
            if t > start:
                labels[t] = input_ids[t]
    return positions, labels


@torch.inference_mode()
def nll_of_blocks(model, rows: list[tuple[list[int], list[int]]]) -> tuple[float, int]:
    """(summed negative log-likelihood, predicted tokens) of packed rows (input_ids, doc_offsets)."""
    device = next(model.parameters()).device
    ids = torch.tensor([r[0] for r in rows], dtype=torch.long, device=device)
    built = [block_inputs(*r) for r in rows]
    positions = torch.tensor([b[0] for b in built], dtype=torch.long, device=device)
    labels = torch.tensor([b[1] for b in built], dtype=torch.long, device=device)
    logits = model(
        input_ids=ids, position_ids=positions, attention_mask=None, use_cache=False
    ).logits
    # logits at t predict the token at t + 1
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), labels[:, 1:], ignore_index=-100, reduction="sum"
    )
    return float(losses), int((labels[:, 1:] != -100).sum())


def perplexity(model, dataset: Path, *, batch_size: int = 4, max_blocks: int | None = None) -> dict:
    import pyarrow.parquet as pq

    root, manifest = open_manifest(dataset)
    vocab = model.get_input_embeddings().num_embeddings
    if manifest["tokenizer"]["vocab_size"] > vocab:
        raise ShardError(
            f"the shards' tokenizer has {manifest['tokenizer']['vocab_size']} ids but the model's "
            f"embedding table has {vocab}"
        )
    total_nll, total_tokens, blocks = 0.0, 0, 0
    pending: list[tuple[list[int], list[int]]] = []

    def flush():
        nonlocal total_nll, total_tokens
        nll, count = nll_of_blocks(model, pending)
        total_nll, total_tokens = total_nll + nll, total_tokens + count
        pending.clear()

    for shard in manifest["shards"]:
        table = pq.read_table(
            _verified(root, shard), columns=["input_ids", "doc_offsets", "num_tokens"]
        )
        for row in table.to_pylist():
            if max_blocks is not None and blocks >= max_blocks:
                break
            offsets = row["doc_offsets"]
            if (
                offsets[0] != 0
                or offsets[-1] != row["num_tokens"]
                or len(row["input_ids"]) != manifest["block_size"]
            ):
                raise ShardError(
                    f"{shard['path']}: a block breaks the contract (offsets {offsets[:3]}…, "
                    f"num_tokens {row['num_tokens']})"
                )
            pending.append((row["input_ids"], offsets))
            blocks += 1
            if len(pending) == batch_size:
                flush()
    if pending:
        flush()
    if total_tokens == 0:
        raise ShardError(f"{root}: no predictable tokens")
    mean = total_nll / total_tokens
    return {
        "dataset": manifest.get("name"),
        "version": manifest.get("version"),
        "blocks": blocks,
        "tokens": total_tokens,
        "mean_nll": mean,
        "perplexity": math.exp(mean),
    }
