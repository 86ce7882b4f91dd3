"""Near-dedup throughput and peak memory on many short synthetic documents.

    uv run python tools/bench/bench_neardedup.py [--docs 1000000] [--batch 20000]

Documents are 20-60 words drawn from a 50,000-word vocabulary; every 20th is a near copy of an
earlier one (one word replaced). The whole local path runs streaming, as the pipeline runs it:
shingles and signatures per batch, band buckets to Parquet partitions, verification against
memory-mapped signatures, union-find. Prints docs/s per phase, the number removed and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from tinylm_data.dedup import minhash_signatures, near_dedup_local, shingles


def documents(count: int, batch: int, seed: int):
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(50_000)])
    recent: list[list[str]] = []
    for lo in range(0, count, batch):
        texts = []
        for i in range(lo, min(lo + batch, count)):
            if i % 20 == 19 and recent:
                words = list(recent[int(rng.integers(len(recent)))])
                words[int(rng.integers(len(words)))] = str(vocab[rng.integers(len(vocab))])
            else:
                words = vocab[rng.integers(0, len(vocab), size=int(rng.integers(20, 61)))].tolist()
                recent = (recent + [words])[-1000:]
            texts.append(" ".join(words))
        yield np.arange(lo, lo + len(texts), dtype=np.int64), texts


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    timings = {"generate": 0.0, "shingles": 0.0, "signatures": 0.0}

    def batches():
        clock = time.perf_counter()
        for docs, texts in documents(args.docs, args.batch, args.seed):
            now = time.perf_counter()
            timings["generate"] += now - clock
            sets = [shingles(t, "en", 5) for t in texts]
            timings["shingles"] += time.perf_counter() - now
            now = time.perf_counter()
            sigs = minhash_signatures(sets, num_perm=128, seed=1)
            timings["signatures"] += time.perf_counter() - now
            yield docs, np.zeros(len(docs), dtype=np.int64), sigs
            clock = time.perf_counter()

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = near_dedup_local(batches(), work_dir=Path(tmp) / "near")
    total = time.perf_counter() - start
    lsh = total - sum(timings.values())
    work = total - timings["generate"]
    print(
        f"documents: {args.docs:,}  removed: {result.num_removed:,} "
        f"(planted near copies: {args.docs // 20:,})"
    )
    print(
        f"bands x rows: {result.bands} x {result.rows}  candidate pairs: "
        f"{result.candidate_pairs:,}  verified: {result.verified_pairs:,}"
    )
    for phase in ("shingles", "signatures"):
        print(f"{phase:<11} {timings[phase]:8.1f} s  {args.docs / timings[phase]:10,.0f} docs/s")
    print(f"{'lsh+cc':<11} {lsh:8.1f} s  {args.docs / lsh:10,.0f} docs/s")
    print(f"{'near dedup':<11} {work:8.1f} s  {args.docs / work:10,.0f} docs/s (excl. generation)")
    print(f"peak RSS: {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
