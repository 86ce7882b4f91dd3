"""Turn packed blocks into model batches with per-document positions, labels and cu_seqlens."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from tinylm_train.shards import Block

IGNORE_INDEX = -100


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
    rows = len(blocks)
    block_size = len(blocks[0].input_ids)
    input_ids = np.stack([b.input_ids for b in blocks]).astype(np.int64)
    labels = np.full((rows, block_size), IGNORE_INDEX, dtype=np.int64)
    position_ids = np.zeros((rows, block_size), dtype=np.int64)
    cu: list[int] = [0]
    for r, block in enumerate(blocks):
        offsets = block.doc_offsets.astype(np.int64)
        bounds = list(offsets)
        if bounds[-1] < block_size:
            bounds.append(block_size)  # padding tail: its own pseudo-segment, no labels
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            position_ids[r, start:end] = np.arange(end - start)
            cu.append(r * block_size + end)
        for start, end in zip(offsets[:-1], offsets[1:], strict=True):
            labels[r, start + 1 : end] = input_ids[r, start + 1 : end]
    seqlens = np.diff(cu)
    return {
        "input_ids": torch.from_numpy(input_ids),
        "labels": torch.from_numpy(labels),
        "position_ids": torch.from_numpy(position_ids),
        "cu_seqlens": torch.tensor(cu, dtype=torch.int32),
        "max_seqlen": int(seqlens.max()),
    }
