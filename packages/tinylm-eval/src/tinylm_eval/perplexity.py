"""Perplexity over packed shards (the tinylm-packed-blocks format, read through tinylm_shards).

Which blocks are scored is `block_selection`'s job.

Long context: with `max_length` below the block size a block is scored in windows of at most
`max_length` tokens about `stride` apart; each window predicts only the tokens the previous one did
not, so every token is predicted once, with at least `max_length - stride` tokens of context (fewer
only at the start of its document). A document that starts before a window keeps its
positions relative to the window (RoPE sees distances, and no position exceeds `max_length`). The
mean NLL is also broken down by a token's position in its document (0-255, 256-511, 512-1023, ...),
which shows whether more context still helps.

Each segment of a block is its own sequence: position ids restart at 0 at every document offset, which
transformers' Qwen2 turns into per-document attention when `attention_mask` is None. No label crosses a
document boundary (a document's first token is not predicted from the previous one) or comes from padding.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tinylm_eval.block_selection import SPLITS, BlockSelection, select_blocks
from tinylm_eval.models.base import Progress
from tinylm_shards import (
    IGNORE_INDEX,
    DatasetReader,
    ShardError,
    labels,
    position_ids,
)

__all__ = [
    "SPLITS",
    "POSITION_BUCKETS",
    "BlockSelection",
    "ShardError",
    "nll_of_blocks",
    "perplexity",
    "select_blocks",
]

logger = logging.getLogger(__name__)


POSITION_BUCKETS = (0, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
"""Lower edges of the per-position breakdown (position of the predicted token in its document)."""


def windows(length: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first predicted) slices of a row of `length` tokens, at most `max_length` long:
    each after the first keeps the last `max_length - stride` tokens (at least one) of the one
    before as context and predicts from where it stopped."""
    end = min(max_length, length)
    spans = [(0, end, 0)]
    overlap = max(max_length - stride, 1)
    while end < length:
        begin = end - overlap
        spans.append((begin, min(begin + max_length, length), end))
        end = spans[-1][1]
    return spans


@torch.inference_mode()
def token_nll(model, ids: np.ndarray, positions: np.ndarray, targets: np.ndarray):
    """(NLL of each predicted token, the (B, T - 1) mask of predicted slots) of rows (B, T) whose
    `targets` (HF labels: position t-1 predicts targets[t]) are IGNORE_INDEX where none is."""
    device = next(model.parameters()).device
    logits = model(
        input_ids=torch.from_numpy(ids).to(device),
        position_ids=torch.from_numpy(positions).to(device),
        attention_mask=None,
        use_cache=False,
    ).logits
    wanted = torch.from_numpy(targets[:, 1:]).to(device)
    # logits at t predict the token at t + 1
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), wanted, ignore_index=IGNORE_INDEX, reduction="none"
    )
    keep = wanted != IGNORE_INDEX
    return losses[keep].double().cpu().numpy(), keep.cpu().numpy()


def nll_of_blocks(model, rows: Sequence[tuple[Sequence[int], Sequence[int]]]) -> tuple[float, int]:
    """(summed negative log-likelihood, predicted tokens) of packed rows (input_ids, doc_offsets)."""
    ids = np.stack([np.asarray(r[0], dtype=np.int64) for r in rows])  # (B, T)
    offsets = [np.asarray(r[1], dtype=np.int64) for r in rows]
    losses, _ = token_nll(model, ids, position_ids(offsets, ids.shape[1]), labels(ids, offsets))
    return float(losses.sum()), len(losses)


@dataclass(frozen=True, slots=True)
class Window:
    ids: np.ndarray  # (W,)
    positions: np.ndarray  # (W,) what the model sees
    targets: np.ndarray  # (W,) IGNORE_INDEX where this window predicts nothing
    doc_positions: np.ndarray  # (W,) each token's position in its document


def block_windows(
    input_ids: np.ndarray, doc_offsets: np.ndarray, max_length: int | None, stride: int | None
) -> list[Window]:
    """The windows one packed row is scored in (the whole row when it fits `max_length`)."""
    ids = np.asarray(input_ids, dtype=np.int64)
    offsets = [np.asarray(doc_offsets, dtype=np.int64)]
    positions = position_ids(offsets, len(ids))[0]
    targets = labels(ids[None], offsets)[0]
    max_length = max_length or len(ids)
    out = []
    for begin, end, first in windows(len(ids), max_length, stride or max_length):
        doc = positions[begin:end]
        seen = doc.copy()
        restarts = np.flatnonzero(seen == 0)
        head = restarts[0] if len(restarts) else len(seen)
        seen[:head] -= seen[0]  # why: the document begun before the window starts at 0 in it
        wanted = targets[begin:end].copy()
        wanted[: first - begin] = IGNORE_INDEX
        out.append(Window(ids[begin:end], seen, wanted, doc))
    return out


def perplexity(
    model,
    selection: BlockSelection,
    *,
    batch_size: int = 4,
    max_length: int | None = None,
    stride: int | None = None,
    progress: Progress | None = None,
) -> dict:
    """Perplexity of `model` over the selected blocks; `progress` is called with blocks scored.
    `max_length` below the block size scores each block in windows `stride` apart (default:
    `max_length`, windows side by side)."""
    manifest = selection.manifest
    vocab = model.get_input_embeddings().num_embeddings
    if manifest.vocab_size > vocab:
        raise ShardError(
            f"the shards' tokenizer has {manifest.vocab_size} ids but the model's "
            f"embedding table has {vocab}"
        )
    if max_length is not None and not 1 <= (stride or max_length) <= max_length:
        raise ValueError(f"stride must be in [1, max_length {max_length}], not {stride}")
    edges = np.asarray(POSITION_BUCKETS)
    bucket_nll = np.zeros(len(edges))
    bucket_tokens = np.zeros(len(edges), dtype=np.int64)
    pending: list[Window] = []
    windows_scored = 0

    def flush():
        nonlocal windows_scored
        rows = {name: np.stack([getattr(w, name) for w in pending]) for name in Window.__slots__}
        losses, keep = token_nll(model, rows["ids"], rows["positions"], rows["targets"])
        where = np.searchsorted(edges, rows["doc_positions"][:, 1:][keep], side="right") - 1
        np.add.at(bucket_nll, where, losses)
        np.add.at(bucket_tokens, where, 1)
        windows_scored += len(pending)
        pending.clear()

    reader = DatasetReader(manifest, verify=False)  # why: select_blocks checked these shards
    for index in selection.indices.tolist():
        block = reader.block(index)
        for window in block_windows(block.input_ids, block.doc_offsets, max_length, stride):
            if pending and (len(pending) == batch_size or len(pending[0].ids) != len(window.ids)):
                flush()
            pending.append(window)
        if progress:
            progress(1)  # why: its windows are queued; the bar may run one batch ahead
    if pending:
        flush()
    total_tokens = int(bucket_tokens.sum())
    if total_tokens == 0:
        raise ShardError(f"{manifest.root}: no predictable tokens in the {selection.split} split")
    mean = float(bucket_nll.sum()) / total_tokens
    ends = [*POSITION_BUCKETS[1:], None]
    by_position = {
        f"{low}-{high - 1}" if high else f"{low}-": {
            "tokens": int(count),
            "mean_nll": float(nll / count),
            "perplexity": math.exp(nll / count),
        }
        for low, high, nll, count in zip(
            POSITION_BUCKETS, ends, bucket_nll, bucket_tokens, strict=True
        )
        if count
    }
    return {
        "dataset": manifest.name,
        "version": manifest.version,
        "split": selection.split,
        "block_seed": selection.seed,
        "blocks": len(selection.indices),
        "block_size": manifest.block_size,
        "max_length": max_length or manifest.block_size,
        "stride": (stride or max_length) if max_length else None,
        "windows": windows_scored,
        "tokens": total_tokens,
        "mean_nll": mean,
        "perplexity": math.exp(mean),
        "by_position": by_position,
    }
