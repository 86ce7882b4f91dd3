"""Near-duplicate removal: LSH candidates → verified edges → components → first doc survives.

The same rule on both engines: in every band bucket each document is linked to the bucket's
smallest document; with `verify` a link is kept only when the two signatures agree on at least
`threshold` of their values (an estimate of Jaccard similarity). Every component keeps its
smallest document (the first in input order); the others are removed with the survivor as both
cluster id and kept id.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .components import components_local
from .lsh import choose_bands, star_edges, write_buckets
from .minhash import estimated_jaccard


@dataclass
class NearDedupResult:
    labels: dict[int, int]  # doc -> smallest doc of its cluster, for docs in a cluster of 2+
    bands: int
    rows: int
    candidate_pairs: int
    verified_pairs: int

    def removed(self) -> Iterator[tuple[int, int, int]]:
        """(doc, cluster id, kept doc) for every removed document, in doc order."""
        for doc in sorted(self.labels):
            root = self.labels[doc]
            if root != doc:
                yield doc, root, root

    @property
    def num_removed(self) -> int:
        return sum(1 for d, r in self.labels.items() if d != r)


class _SignatureStore:
    """All signatures in a memory-mapped file, looked up by doc id (docs arrive ascending)."""

    def __init__(self, path: Path, num_perm: int) -> None:
        self.path = path
        self.num_perm = num_perm
        self._handle = open(path, "wb")  # noqa: SIM115 (closed in finish)
        self._docs: list[np.ndarray] = []

    def add(self, docs: np.ndarray, signatures: np.ndarray) -> None:
        self._docs.append(docs.astype(np.int64))
        self._handle.write(np.ascontiguousarray(signatures, dtype=np.uint64).tobytes())

    def finish(self) -> None:
        self._handle.close()
        self.docs = np.concatenate(self._docs) if self._docs else np.empty(0, np.int64)
        if len(self.docs) > 1 and not (np.diff(self.docs) > 0).all():
            raise ValueError("near dedup needs document ids in increasing order")
        self.matrix = (
            np.memmap(self.path, dtype=np.uint64, mode="r", shape=(len(self.docs), self.num_perm))
            if len(self.docs)
            else np.empty((0, self.num_perm), np.uint64)
        )

    def rows(self, docs: np.ndarray) -> np.ndarray:
        return self.matrix[np.searchsorted(self.docs, docs)]


def near_dedup_local(
    batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    work_dir: Path,
    verify: bool = True,
    partitions: int = 16,
) -> NearDedupResult:
    """`batches` yield (doc ids ascending, group per doc, signatures (n, num_perm))."""
    bands, rows = choose_bands(threshold, num_perm, verified=verify)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    store = _SignatureStore(work_dir / "signatures.u64", num_perm)

    def stored(source):
        for docs, groups, sigs in source:
            if sigs.shape[1] != num_perm:
                raise ValueError(f"signatures have {sigs.shape[1]} values, expected {num_perm}")
            store.add(docs, sigs)
            yield docs, groups, sigs

    try:
        write_buckets(
            stored(batches), work_dir / "buckets", bands=bands, rows=rows, partitions=partitions
        )
        store.finish()
        sources, targets = [], []
        candidates = 0
        for src, dst in star_edges(work_dir / "buckets", partitions):
            candidates += len(src)
            if verify:
                keep = estimated_jaccard(store.rows(src), store.rows(dst)) >= threshold
                src, dst = src[keep], dst[keep]
            sources.append(src)
            targets.append(dst)
        src = np.concatenate(sources) if sources else np.empty(0, np.int64)
        dst = np.concatenate(targets) if targets else np.empty(0, np.int64)
        labels = components_local(src, dst)
        return NearDedupResult(labels, bands, rows, candidates, len(src))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def near_dedup_spark_signatures(
    spark, signatures, *, threshold: float = 0.8, num_perm: int = 128, verify: bool = True
) -> NearDedupResult:
    """The same on Spark. `signatures`: DataFrame (doc long, grp long, signature array<long>)."""
    from pyspark.sql import functions as F

    from .components import components_spark

    bands, rows = choose_bands(threshold, num_perm, verified=verify)
    sigs = signatures.select("doc", "grp", "signature").persist()
    keyed = sigs.select(
        "doc",
        F.posexplode(
            F.expr(
                f"transform(sequence(0, {bands - 1}), b -> slice(signature, b * {rows} + 1, {rows}))"
            )
        ).alias("band", "values"),
        "grp",
    ).select("doc", F.xxhash64("grp", "band", "values").alias("key"))
    firsts = keyed.groupBy("key").agg(F.min("doc").alias("first"))
    edges = (
        keyed.join(firsts, "key")
        .where(F.col("doc") != F.col("first"))
        .select(F.col("doc").alias("src"), F.col("first").alias("dst"))
        .distinct()
    )
    candidates = edges.count()
    if verify:
        left = sigs.select(F.col("doc").alias("src"), F.col("signature").alias("a"))
        right = sigs.select(F.col("doc").alias("dst"), F.col("signature").alias("b"))
        same = F.aggregate(
            F.zip_with("a", "b", lambda x, y: F.when(x == y, 1).otherwise(0)),
            F.lit(0),
            lambda acc, v: acc + v,
        )
        edges = (
            edges.join(left, "src")
            .join(right, "dst")
            .where(same >= F.lit(threshold * num_perm))
            .select("src", "dst")
        )
    edges = edges.persist()
    verified = edges.count()
    labels: dict[int, int] = {}
    if verified:
        for row in components_spark(edges).toLocalIterator():
            labels[int(row["node"])] = int(row["root"])
            labels.setdefault(int(row["root"]), int(row["root"]))
    sigs.unpersist()
    edges.unpersist()
    return NearDedupResult(labels, bands, rows, candidates, verified)
