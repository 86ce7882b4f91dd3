"""Mixture weights (how many times each kept document is used) and the validation hold-out."""

from __future__ import annotations

import math

import xxhash


def copies(doc_id: str, weight: float, seed: int) -> int:
    """floor(weight) copies, plus one more with probability frac(weight).

    The coin is a hash of (seed, doc_id), so the choice is reproducible and independent of order,
    engine and number of workers.
    """
    whole = math.floor(weight)
    frac = weight - whole
    if frac == 0:
        return whole
    coin = xxhash.xxh64_intdigest(f"{seed}\x00{doc_id}".encode()) / 2.0**64
    return whole + (coin < frac)


def rounds_needed(weights: list[float]) -> int:
    return max((math.ceil(w) for w in weights), default=0)


def held_out(doc_id: str, share: float, seed: int) -> bool:
    """Whether `doc_id` belongs to the validation split: a seeded hash below `share`.

    Salted apart from the mixture's coin, so which documents are held out does not follow which
    were sampled.
    """
    if share <= 0:
        return False
    return validation_coin(doc_id, seed) < share


def validation_coin(doc_id: str, seed: int) -> float:
    """The uniform [0, 1) draw `held_out` compares with the share (lowest first under a cap)."""
    return xxhash.xxh64_intdigest(f"validation\x00{seed}\x00{doc_id}".encode()) / 2.0**64
