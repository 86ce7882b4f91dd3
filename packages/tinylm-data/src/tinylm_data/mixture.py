"""Mixture weights: how many times each kept document is used."""

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
