"""Near-duplicate removal: LSH candidates → verified edges → components → first doc survives.

The same rule on both engines: in every band bucket each document is linked to the bucket's
smallest document; with `verify` a link is kept only when the two signatures agree on at least
`threshold` of their values (an estimate of Jaccard similarity). Every component keeps its
smallest document (the first in input order); the others are removed with the survivor as both
cluster id and kept id.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .components import components_local
from .lsh import choose_bands, star_edges, write_buckets
from .minhash import document_shingles, minhash_signatures

logger = logging.getLogger(__name__)


def min_equal_values(threshold: float, num_perm: int, slack: float = 0.0) -> int:
    """Equal signature values a verified pair needs: estimated Jaccard >= threshold - slack.

    An integer, so both engines apply exactly the same test (no float rounding at the edge).
    """
    if not 0.0 <= slack < threshold:
        raise ValueError(f"slack must be in [0, threshold), got {slack}")
    return math.ceil(round((threshold - slack) * num_perm, 9))


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


def _distinct_pairs(
    sources: list[np.ndarray], targets: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    if not sources:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    pairs = np.unique(np.stack([np.concatenate(sources), np.concatenate(targets)], axis=1), axis=0)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def near_dedup_local(
    batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    work_dir: Path,
    verify: bool = True,
    slack: float = 0.0,
    partitions: int = 16,
    layout: tuple[int, int] | None = None,
) -> NearDedupResult:
    """`batches` yield (doc ids ascending, int64 group per doc, signatures (n, num_perm)).

    Groups are the scope: documents of different groups are never duplicates (all zero for
    global scope). Memory: one bucket partition at a time plus memory-mapped signatures;
    `work_dir` is emptied first and removed at the end. `layout` (bands, rows) overrides
    `choose_bands` (the benchmarks compare layouts).
    """
    bands, rows = layout or choose_bands(threshold, num_perm, verified=verify)
    if bands * rows > num_perm:
        raise ValueError(f"{bands} bands x {rows} rows need more than {num_perm} permutations")
    need = min_equal_values(threshold, num_perm, slack)
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
        for src, dst in star_edges(work_dir / "buckets", partitions):
            sources.append(src)
            targets.append(dst)
        # The same pair is found in several bands (and partitions): count and verify it once.
        src, dst = _distinct_pairs(sources, targets)
        candidates = len(src)
        if verify:
            keep = np.zeros(len(src), dtype=bool)
            for lo in range(0, len(src), 65536):
                hi = lo + 65536
                equal = store.rows(src[lo:hi]) == store.rows(dst[lo:hi])
                keep[lo:hi] = equal.sum(axis=1) >= need
            src, dst = src[keep], dst[keep]
        labels = components_local(src, dst)
        result = NearDedupResult(labels, bands, rows, candidates, len(src))
        logger.info(
            "near dedup: %d bands x %d rows, %d candidate pairs, %d verified, %d removed",
            bands,
            rows,
            candidates,
            len(src),
            result.num_removed,
        )
        return result
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def near_dedup_spark_signatures(
    spark,
    signatures,
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    verify: bool = True,
    slack: float = 0.0,
) -> NearDedupResult:
    """The same on Spark. `signatures`: DataFrame (doc long, grp long, signature array<long>)."""
    from pyspark.sql import functions as F

    from .components import components_spark

    bands, rows = choose_bands(threshold, num_perm, verified=verify)
    need = min_equal_values(threshold, num_perm, slack)
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
            .where(same >= F.lit(need))
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


def group_id(group: str | int) -> int:
    """The int64 scope key of a group name (a source name); integers pass through."""
    if isinstance(group, int):
        return group
    import xxhash

    return xxhash.xxh64_intdigest(group.encode()) - (1 << 63)


def signature_batches(
    batches: Iterable[tuple[Sequence[int], Sequence[str | int], Sequence[str], Sequence[str]]],
    *,
    num_perm: int = 128,
    shingle: str = "chars",
    ngram_chars: int = 5,
    ngram: int = 5,
    ngram_zh: int = 2,
    seed: int = 1,
    scope: str = "global",
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(doc ids, groups, texts, languages) batches -> the (doc ids, group ids, signatures)
    batches `near_dedup_local` takes. `scope` "global" puts every document in one group."""
    if scope not in ("global", "source"):
        raise ValueError(f"scope must be 'global' or 'source', got {scope!r}")
    for docs, groups, texts, languages in batches:
        sets = [
            document_shingles(
                t, lang, scheme=shingle, ngram=ngram, ngram_zh=ngram_zh, ngram_chars=ngram_chars
            )
            for t, lang in zip(texts, languages, strict=True)
        ]
        grp = (
            np.fromiter((group_id(g) for g in groups), dtype=np.int64, count=len(texts))
            if scope == "source"
            else np.zeros(len(texts), dtype=np.int64)
        )
        sigs = minhash_signatures(sets, num_perm=num_perm, seed=seed)
        yield np.asarray(docs, dtype=np.int64), grp, sigs


def near_dedup_texts_local(
    batches: Iterable[tuple[Sequence[int], Sequence[str | int], Sequence[str], Sequence[str]]],
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    shingle: str = "chars",
    ngram_chars: int = 5,
    ngram: int = 5,
    ngram_zh: int = 2,
    seed: int = 1,
    scope: str = "global",
    work_dir: Path,
    verify: bool = True,
    slack: float = 0.0,
) -> NearDedupResult:
    """Near dedup of (doc ids ascending, groups, texts, languages) batches, in this process."""
    return near_dedup_local(
        signature_batches(
            batches,
            num_perm=num_perm,
            shingle=shingle,
            ngram_chars=ngram_chars,
            ngram=ngram,
            ngram_zh=ngram_zh,
            seed=seed,
            scope=scope,
        ),
        threshold=threshold,
        num_perm=num_perm,
        work_dir=work_dir,
        verify=verify,
        slack=slack,
    )


def near_dedup_spark(
    spark,
    docs,
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    shingle: str = "chars",
    ngram_chars: int = 5,
    ngram: int = 5,
    ngram_zh: int = 2,
    seed: int = 1,
    scope: str = "global",
    verify: bool = True,
    slack: float = 0.0,
) -> NearDedupResult:
    """Near dedup of a DataFrame (doc long, group string|long, text string, language string)
    on Spark: signatures on the executors (the same code as locally), then LSH and
    large-star/small-star components as Spark jobs. Same result as `near_dedup_texts_local`."""
    import pyarrow as pa

    if scope not in ("global", "source"):
        raise ValueError(f"scope must be 'global' or 'source', got {scope!r}")

    def sign(record_batches):
        for rb in record_batches:
            ((docs_, grp, sigs),) = signature_batches(
                [
                    (
                        rb.column("doc").to_pylist(),
                        rb.column("group").to_pylist(),
                        rb.column("text").to_pylist(),
                        rb.column("language").to_pylist(),
                    )
                ],
                num_perm=num_perm,
                shingle=shingle,
                ngram_chars=ngram_chars,
                ngram=ngram,
                ngram_zh=ngram_zh,
                seed=seed,
                scope=scope,
            )
            flat = pa.array(sigs.astype(np.int64).ravel())
            offsets = pa.array(np.arange(0, len(flat) + 1, num_perm, dtype=np.int32))
            yield pa.RecordBatch.from_arrays(
                [pa.array(docs_), pa.array(grp), pa.ListArray.from_arrays(offsets, flat)],
                names=["doc", "grp", "signature"],
            )

    signatures = docs.select("doc", "group", "text", "language").mapInArrow(
        sign, "doc long, grp long, signature array<long>"
    )
    return near_dedup_spark_signatures(
        spark, signatures, threshold=threshold, num_perm=num_perm, verify=verify, slack=slack
    )
