"""Segment maths from doc_offsets: per-document positions, labels and cu_seqlens.

Each segment of a block is its own sequence. The padding after the last segment is treated as
one more pseudo-segment so that it never joins a real document and cu_seqlens covers every slot.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IGNORE_INDEX = -100
"""The label of a slot that predicts nothing (the Hugging Face and PyTorch convention)."""


def segment_bounds(doc_offsets: np.ndarray, block_size: int) -> np.ndarray:
    """(segments + 1,) or (segments + 2,) int64: doc_offsets, plus block_size when padding follows."""
    bounds = np.asarray(doc_offsets, dtype=np.int64)
    if bounds[-1] < block_size:
        bounds = np.append(bounds, block_size)
    return bounds


def position_ids(doc_offsets: Sequence[np.ndarray], block_size: int) -> np.ndarray:
    """(B, T) int64 positions restarting at 0 at every segment start (padding included)."""
    out = np.empty((len(doc_offsets), block_size), dtype=np.int64)
    slots = np.arange(block_size, dtype=np.int64)
    for r, offsets in enumerate(doc_offsets):
        bounds = segment_bounds(offsets, block_size)
        out[r] = slots - np.repeat(bounds[:-1], np.diff(bounds))
    return out


def labels(input_ids: np.ndarray, doc_offsets: Sequence[np.ndarray]) -> np.ndarray:
    """(B, T) int64 labels in the HF convention (position t-1 predicts labels[t]).

    The ids, with IGNORE_INDEX at every segment start (the last token of one document never
    predicts the first of the next) and on padding.
    """
    out = np.array(input_ids, dtype=np.int64, copy=True, ndmin=2)
    for r, offsets in enumerate(doc_offsets):
        offsets = np.asarray(offsets, dtype=np.int64)
        out[r, offsets[:-1]] = IGNORE_INDEX
        out[r, offsets[-1] :] = IGNORE_INDEX
    return out


def cu_seqlens(doc_offsets: Sequence[np.ndarray], block_size: int) -> np.ndarray:
    """(S + 1,) int32 cumulative segment starts over the flattened (B * T) batch.

    Padding tails are segments too, so the last entry is B * T.
    """
    parts = [np.zeros(1, dtype=np.int64)]
    for r, offsets in enumerate(doc_offsets):
        parts.append(r * block_size + segment_bounds(offsets, block_size)[1:])
    return np.concatenate(parts).astype(np.int32)
