"""Turn packed blocks into model batches with per-document positions, labels and cu_seqlens."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from tinylm_shards import IGNORE_INDEX, cu_seqlens, labels, position_ids, segment_bounds
from tinylm_train.loss import LOSS_WEIGHTS
from tinylm_train.shards import Block

__all__ = ["IGNORE_INDEX", "LOSS_MASK", "collate_blocks", "sft_labels", "weights_per_sample"]

LOSS_MASK = "loss_mask"
"""The SFT shards' per-token column: 1 where input_ids[i] is a training target."""


def collate_blocks(
    blocks: Sequence[Block], *, loss_mask: bool = False, sample_weights: bool = False
) -> dict[str, torch.Tensor | int]:
    """Batch packed blocks.

    Returns
      input_ids     (B, T) int64, padding slots hold the shard's pad id
      labels        (B, T) int64 in the HF convention (the model shifts: position t-1 predicts
                    labels[t]): the ids, with IGNORE_INDEX at every segment start (so the last
                    token of one document never predicts the first of the next) and on padding.
      position_ids  (B, T) int64 restarting at 0 at each segment start; padding continues a
                    trailing pseudo-segment so it never joins a real document.
      cu_seqlens    (S + 1,) int32 cumulative segment starts over the flattened (B*T) batch,
                    padding included as its own segments so the ends line up with B*T.
      max_seqlen    int, the longest segment.

    With `loss_mask` (SFT blocks), labels keep only the tokens whose `loss_mask` is 1 (the
    assistant tokens). With `sample_weights` too, `loss_weights` (B, T) float32 is added:
    1 / (the trainable tokens of its sample) on each trainable token, else 0 (the `sample`
    loss normalisation).
    """
    block_size = len(blocks[0].input_ids)
    input_ids = np.stack([b.input_ids for b in blocks]).astype(np.int64)
    offsets = [b.doc_offsets for b in blocks]
    cu = cu_seqlens(offsets, block_size)
    targets = labels(input_ids, offsets)
    if loss_mask:
        targets = sft_labels(targets, np.stack([b.token_columns[LOSS_MASK] for b in blocks]))
    batch = {
        "input_ids": torch.from_numpy(input_ids),
        "labels": torch.from_numpy(targets),
        "position_ids": torch.from_numpy(position_ids(offsets, block_size)),
        "cu_seqlens": torch.from_numpy(cu),
        "max_seqlen": int(np.diff(cu).max()),
    }
    if sample_weights:
        batch[LOSS_WEIGHTS] = torch.from_numpy(weights_per_sample(targets, offsets))
    return batch


def sft_labels(targets: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(B, T) labels kept only where the loss mask is 1 (segment starts and padding stay ignored)."""
    return np.where(mask.astype(bool), targets, IGNORE_INDEX)


def weights_per_sample(targets: np.ndarray, doc_offsets: Sequence[np.ndarray]) -> np.ndarray:
    """(B, T) float32: 1 / n on each of a sample's n labelled tokens, 0 elsewhere.

    Summed over a batch, the weights count its samples that have a labelled token.
    """
    trained = targets != IGNORE_INDEX
    out = np.zeros(targets.shape, dtype=np.float32)
    block_size = targets.shape[1]
    for r, offsets in enumerate(doc_offsets):
        bounds = segment_bounds(offsets, block_size)
        sample = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))  # (T,) segment of slot
        counts = np.bincount(sample, weights=trained[r], minlength=len(bounds) - 1)
        per_slot = counts[sample]
        out[r] = np.where(trained[r], 1.0 / np.maximum(per_slot, 1), 0.0)
    return out
