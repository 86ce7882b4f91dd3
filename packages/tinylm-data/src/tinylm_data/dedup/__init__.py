"""Near-duplicate removal with MinHash LSH, locally and on Spark, with the same answer."""

from .components import UnionFind, components_local, components_spark
from .lsh import band_hashes, choose_bands
from .minhash import (
    char_shingles,
    document_shingles,
    estimated_jaccard,
    minhash_signatures,
    shingle_hash,
    shingles,
    signature,
)
from .near import (
    NearDedupResult,
    group_id,
    min_equal_values,
    near_dedup_local,
    near_dedup_spark,
    near_dedup_spark_signatures,
    near_dedup_texts_local,
    signature_batches,
)

__all__ = [
    "NearDedupResult",
    "UnionFind",
    "band_hashes",
    "char_shingles",
    "choose_bands",
    "components_local",
    "components_spark",
    "document_shingles",
    "estimated_jaccard",
    "group_id",
    "min_equal_values",
    "minhash_signatures",
    "near_dedup_local",
    "near_dedup_spark",
    "near_dedup_spark_signatures",
    "near_dedup_texts_local",
    "shingle_hash",
    "shingles",
    "signature",
    "signature_batches",
]
