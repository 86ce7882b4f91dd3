"""Instruction augmentation: random character deletion or repetition in user turns, seeded.

The reference project documents it as: 15% of instructions are augmented, and in each, every
character is deleted or repeated with probability 0.1 (deleted or repeated with equal chance).
Whether a turn is augmented, and how, is a hash of (seed, sample id, turn), so a rebuild gives the
same text whatever the order. Held-out samples are never augmented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xxhash


@dataclass(frozen=True, slots=True)
class AugmentStats:
    augmented: bool
    deleted: int
    repeated: int


def _rng(seed: int, sample_id: str, turn: int) -> np.random.Generator:
    return np.random.default_rng(
        xxhash.xxh64_intdigest(f"augment\x00{seed}\x00{sample_id}\x00{turn}".encode())
    )


def augment_instruction(
    text: str, *, sample_id: str, turn: int, seed: int, instruction_rate: float, char_rate: float
) -> tuple[str, AugmentStats]:
    """The user text, changed in `instruction_rate` of turns: each character, with probability
    `char_rate`, is deleted or doubled (half each). A change that would leave nothing is undone."""
    rng = _rng(seed, sample_id, turn)
    if not text or rng.random() >= instruction_rate:
        return text, AugmentStats(False, 0, 0)
    hit = rng.random(len(text)) < char_rate
    repeat = rng.random(len(text)) < 0.5
    counts = np.where(hit, np.where(repeat, 2, 0), 1)
    out = "".join(c * int(n) for c, n in zip(text, counts, strict=True))
    if not out.strip():
        return text, AugmentStats(False, 0, 0)
    return out, AugmentStats(True, int((hit & ~repeat).sum()), int((hit & repeat).sum()))
