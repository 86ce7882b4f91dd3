"""Turn packed blocks into model batches with per-document positions, labels and cu_seqlens."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from tinylm_shards import IGNORE_INDEX, cu_seqlens, labels, position_ids
from tinylm_train.shards import Block

__all__ = ["IGNORE_INDEX", "collate_blocks"]


def collate_blocks(blocks: Sequence[Block]) -> dict[str, torch.Tensor | int]:
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
    """
    block_size = len(blocks[0].input_ids)
    input_ids = np.stack([b.input_ids for b in blocks]).astype(np.int64)
    offsets = [b.doc_offsets for b in blocks]
    cu = cu_seqlens(offsets, block_size)
    return {
        "input_ids": torch.from_numpy(input_ids),
        "labels": torch.from_numpy(labels(input_ids, offsets)),
        "position_ids": torch.from_numpy(position_ids(offsets, block_size)),
        "cu_seqlens": torch.from_numpy(cu),
        "max_seqlen": int(np.diff(cu).max()),
    }
