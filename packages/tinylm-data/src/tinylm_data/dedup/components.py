"""Connected components: union-find locally, large-star/small-star on Spark.

Both label every node with the smallest node of its component, so the survivor of a cluster is
its first document in input order, whichever engine found it.
"""

from __future__ import annotations

import numpy as np


class UnionFind:
    """Union-find over arbitrary int64 ids, with path halving and union by size."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.size: dict[int, int] = {}
        self.smallest: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        if x not in parent:
            parent[x] = x
            self.size[x] = 1
            self.smallest[x] = x
            return x
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        self.smallest[ra] = min(self.smallest[ra], self.smallest[rb])

    def labels(self) -> dict[int, int]:
        """node -> smallest node of its component."""
        return {x: self.smallest[self.find(x)] for x in self.parent}


def components_local(src: np.ndarray, dst: np.ndarray) -> dict[int, int]:
    uf = UnionFind()
    for a, b in zip(src.tolist(), dst.tolist(), strict=True):
        uf.union(a, b)
    return uf.labels()


def components_spark(edges, max_iterations: int = 100):
    """Large-star/small-star (Kiveris et al., "Connected Components in MapReduce and Beyond",
    SoCC 2014) over a DataFrame of undirected edges (src, dst). Returns (node, root) for every
    node, root being the smallest node of its component."""
    from pyspark.sql import functions as F

    def neighbourhood(e):
        both = e.select("src", "dst").union(
            e.select(F.col("dst").alias("src"), F.col("src").alias("dst"))
        )
        return both.distinct()

    def large_star(e):
        both = neighbourhood(e)
        m = both.groupBy("src").agg(F.least(F.min("dst"), F.first("src")).alias("m"))
        return (
            both.join(m, "src")
            .where(F.col("dst") > F.col("src"))
            .select(F.col("dst").alias("src"), F.col("m").alias("dst"))
            .distinct()
        )

    def small_star(e):
        both = neighbourhood(e).where(F.col("dst") <= F.col("src"))
        m = both.groupBy("src").agg(F.least(F.min("dst"), F.first("src")).alias("m"))
        return (
            both.join(m, "src")
            .select(F.col("dst").alias("src"), F.col("m").alias("dst"))
            .union(m.select("src", F.col("m").alias("dst")))
            .where(F.col("src") != F.col("dst"))
            .distinct()
        )

    current = (
        edges.select("src", "dst").where(F.col("src") != F.col("dst")).distinct().localCheckpoint()
    )
    for _ in range(max_iterations):
        updated = small_star(large_star(current)).localCheckpoint()
        changed = updated.exceptAll(current).count() + current.exceptAll(updated).count()
        current = updated
        if changed == 0:
            break
    else:
        raise RuntimeError("connected components did not converge")
    # Converged: every edge points from a node to the root of its component (a star).
    return (
        current.groupBy("src")
        .agg(F.min("dst").alias("root"))
        .select(F.col("src").alias("node"), "root")
    )
