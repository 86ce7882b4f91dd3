"""Perplexity over packed shards (the tinylm-packed-blocks format, read through tinylm_shards).

Which blocks are scored is `block_selection`'s job.

Each segment of a block is its own sequence: position ids restart at 0 at every document offset, which
transformers' Qwen2 turns into per-document attention when `attention_mask` is None. No label crosses a
document boundary (a document's first token is not predicted from the previous one) or comes from padding.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

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
    "BlockSelection",
    "ShardError",
    "nll_of_blocks",
    "perplexity",
    "select_blocks",
]

logger = logging.getLogger(__name__)


@torch.inference_mode()
def nll_of_blocks(model, rows: Sequence[tuple[Sequence[int], Sequence[int]]]) -> tuple[float, int]:
    """(summed negative log-likelihood, predicted tokens) of packed rows (input_ids, doc_offsets)."""
    device = next(model.parameters()).device
    ids = np.stack([np.asarray(r[0], dtype=np.int64) for r in rows])  # (B, T)
    offsets = [np.asarray(r[1], dtype=np.int64) for r in rows]
    positions = torch.from_numpy(position_ids(offsets, ids.shape[1])).to(device)
    targets = torch.from_numpy(labels(ids, offsets)).to(device)
    logits = model(
        input_ids=torch.from_numpy(ids).to(device),
        position_ids=positions,
        attention_mask=None,
        use_cache=False,
    ).logits
    # logits at t predict the token at t + 1
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().transpose(1, 2),
        targets[:, 1:],
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    return float(losses), int((targets[:, 1:] != IGNORE_INDEX).sum())


def perplexity(
    model, selection: BlockSelection, *, batch_size: int = 4, progress: Progress | None = None
) -> dict:
    """Perplexity of `model` over the selected blocks; `progress` is called with blocks scored."""
    manifest = selection.manifest
    vocab = model.get_input_embeddings().num_embeddings
    if manifest.vocab_size > vocab:
        raise ShardError(
            f"the shards' tokenizer has {manifest.vocab_size} ids but the model's "
            f"embedding table has {vocab}"
        )
    total_nll, total_tokens = 0.0, 0
    pending: list[tuple[np.ndarray, np.ndarray]] = []

    def flush():
        nonlocal total_nll, total_tokens
        nll, count = nll_of_blocks(model, pending)
        total_nll, total_tokens = total_nll + nll, total_tokens + count
        if progress:
            progress(len(pending))
        pending.clear()

    reader = DatasetReader(manifest, verify=False)  # why: select_blocks checked these shards
    for index in selection.indices.tolist():
        block = reader.block(index)
        pending.append((block.input_ids, block.doc_offsets))
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    if total_tokens == 0:
        raise ShardError(f"{manifest.root}: no predictable tokens in the {selection.split} split")
    mean = total_nll / total_tokens
    return {
        "dataset": manifest.name,
        "version": manifest.version,
        "split": selection.split,
        "block_seed": selection.seed,
        "blocks": len(selection.indices),
        "tokens": total_tokens,
        "mean_nll": mean,
        "perplexity": math.exp(mean),
    }
