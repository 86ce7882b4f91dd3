"""Locality-sensitive hashing of signatures into band buckets, with bounded memory.

Band hashes are written to `partitions` Parquet files by hash; each file is then loaded on its
own, sorted, and every document in a bucket is linked to the bucket's smallest document: a star
per bucket is enough for connected components, and it is the same rule on Spark.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


@lru_cache(maxsize=64)
def choose_bands(
    threshold: float = 0.8, num_perm: int = 128, *, verified: bool = True
) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive and false-negative areas of the
    S-curve 1 - (1 - s^r)^b around `threshold` (datasketch's MinHashLSH optimisation; Leskovec
    et al., Mining of Massive Datasets, ch. 3).

    When candidates are verified by their signatures, false positives cost only a comparison, so
    the weights favour recall (0.05 / 0.95): at 0.8 and 128 permutations that is 16 bands of 8
    rows, which misses 1 in 10,000 pairs with Jaccard 0.9 (14 x 9: 1 in 1,000; equal weights:
    7 in 100) for 0.6% more candidate pairs on the planted sets (bench_neardedup_quality.py).

    The same choice as datasketch's `_optimal_param` (tested equal), without importing it: its
    module pulls in scipy for the integrals (1.5-2 s of every build with near dedup). The
    S-curve is a polynomial of degree b * r <= num_perm, so Gauss-Legendre quadrature with
    num_perm / 2 + 1 nodes integrates it exactly, for every (b, r) at once.
    """
    fp_weight, fn_weight = (0.05, 0.95) if verified else (0.5, 0.5)
    layouts = np.array(
        [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], dtype=float
    )
    bands, rows = layouts[:, :1], layouts[:, 1:]
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)

    def area(lo: float, hi: float, collide: bool) -> np.ndarray:
        s = (hi - lo) / 2 * nodes + (hi + lo) / 2  # the nodes mapped from [-1, 1] to [lo, hi]
        p = 1 - (1 - s**rows) ** bands  # (layouts, nodes)
        return (hi - lo) / 2 * ((p if collide else 1 - p) @ weights)

    error = fp_weight * area(0.0, threshold, True) + fn_weight * area(threshold, 1.0, False)
    best = int(np.argmin(error))  # the first minimum, as datasketch's strict `<` keeps
    return int(layouts[best, 0]), int(layouts[best, 1])


_MIX = np.uint64(0x9E3779B97F4A7C15)


def band_hashes(signatures: np.ndarray, groups: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(N, bands) uint64 bucket keys; the group and band number are part of the key."""
    n = len(signatures)
    out = np.empty((n, bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            h = groups.astype(np.uint64) * _MIX + np.uint64(band + 1)
            for col in signatures[:, band * rows : (band + 1) * rows].T:
                h = (h ^ col) * np.uint64(0x100000001B3) + _MIX  # FNV-style mixing, vectorised
                h ^= h >> np.uint64(29)
            out[:, band] = h
    return out


def write_buckets(
    batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    work_dir: Path,
    *,
    bands: int,
    rows: int,
    partitions: int,
) -> int:
    """Writes (key, doc) pairs into `partitions` files by key; returns the number of documents."""
    work_dir.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("key", pa.uint64()), ("doc", pa.int64())])
    writers = [
        pq.ParquetWriter(str(work_dir / f"bucket-{p:04d}.parquet"), schema)
        for p in range(partitions)
    ]
    count = 0
    try:
        for docs, groups, sigs in batches:
            count += len(docs)
            keys = band_hashes(sigs, groups, bands, rows).ravel()
            owners = np.repeat(docs, bands)
            part = (keys % np.uint64(partitions)).astype(np.int64)
            order = np.argsort(part, kind="stable")
            bounds = np.searchsorted(part[order], np.arange(partitions + 1))
            for p in range(partitions):
                sel = order[bounds[p] : bounds[p + 1]]
                if len(sel):
                    writers[p].write_table(
                        pa.table({"key": keys[sel], "doc": owners[sel]}, schema=schema)
                    )
    finally:
        for writer in writers:
            writer.close()
    return count


def star_edges(work_dir: Path, partitions: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per partition: (doc, bucket minimum) for every document that shares a bucket."""
    for p in range(partitions):
        table = pq.read_table(work_dir / f"bucket-{p:04d}.parquet")
        if table.num_rows == 0:
            continue
        keys = table.column("key").to_numpy()
        docs = table.column("doc").to_numpy()
        order = np.lexsort((docs, keys))
        keys, docs = keys[order], docs[order]
        new_bucket = np.ones(len(keys), dtype=bool)
        new_bucket[1:] = keys[1:] != keys[:-1]
        first = docs[np.maximum.accumulate(np.where(new_bucket, np.arange(len(keys)), 0))]
        linked = ~new_bucket & (docs != first)
        if linked.any():
            yield docs[linked], first[linked]
