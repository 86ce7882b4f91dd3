"""Which blocks a perplexity run scores: a split of a dataset, a seeded sample of its blocks, the
shards holding them checked before a model is loaded.

The validation split that tinylm-data holds out is scored when the dataset has one; a seeded
permutation picks the blocks, so `max_blocks` of them sample every source, not the first source first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinylm_shards import Manifest, ShardError, load_manifest, shard_problems

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation")


@dataclass(frozen=True, kw_only=True)
class BlockSelection:
    """The blocks a perplexity run scores: one split of a dataset, their shards already checked."""

    manifest: Manifest
    """The split's manifest: `shards` are the split's own."""
    split: str
    indices: np.ndarray
    """Block indices within the split, ascending."""
    seed: int | None


def split_manifest(manifest: Manifest, split: str) -> Manifest:
    """The manifest of one split: `train` is the dataset's own shards; a held-out split comes
    from the contract's `Manifest.split` (its own shards, same format)."""
    return manifest if split == "train" else manifest.split(split)


def has_split(manifest: Manifest, split: str) -> bool:
    """Whether the manifest declares `split`."""
    return split == "train" or split in manifest.splits


def select_blocks(
    dataset: Path,
    *,
    split: str | None = None,
    max_blocks: int | None = None,
    seed: int | None = 0,
) -> BlockSelection:
    """The blocks to score, every shard holding one checked (size, SHA-256, rows) before any is read.

    `split` None is the validation split when the dataset has one, else the training blocks (with a
    warning: a model has seen them). `seed` draws `max_blocks` of them by a seeded permutation, so a
    prefix of the run covers every source, not the first source first; None keeps dataset order.
    """
    manifest = load_manifest(dataset)
    if split is None:
        split = "validation" if has_split(manifest, "validation") else "train"
        if split == "train":
            logger.warning(
                "%s has no validation split: scoring training blocks (pass --split train to "
                "silence this)",
                manifest.root,
            )
    elif split not in SPLITS:
        raise ShardError(f"unknown split {split!r}: expected {' or '.join(SPLITS)}")
    chosen = split_manifest(manifest, split)
    count = chosen.num_blocks
    if seed is None:
        indices = np.arange(count if max_blocks is None else min(max_blocks, count))
    else:
        indices = np.random.default_rng(seed).permutation(count)[:max_blocks]
        # why: the same blocks either way (the sum is order-free); ascending reads each shard once
        indices.sort()
    starts = np.cumsum([0, *(int(s["rows"]) for s in chosen.shards)])
    touched = sorted(set(np.searchsorted(starts, indices, side="right").tolist()))
    problems = [p for k in touched for p in shard_problems(chosen, chosen.shards[k - 1])]
    if problems:
        raise ShardError("; ".join(problems))
    return BlockSelection(manifest=chosen, split=split, indices=indices, seed=seed)
