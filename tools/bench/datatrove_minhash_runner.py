"""Runs datatrove's MinHash dedup pipeline on a JSONL file; used by bench_neardedup_quality.py.

It runs with a Python that has datatrove: the workspace's own after
`uv sync --all-packages --group bench`, or any other environment:

    python datatrove_minhash_runner.py INPUT.jsonl WORK_DIR LANGUAGE [WORKERS]

INPUT.jsonl has one {"id", "text"} per line; with WORKERS (default 1) processes, every stage
runs that many tasks in parallel and the input is the INPUT.jsonl file's folder, one file per
task (`*.jsonl`, as many files as workers, so each task reads one). Prints one JSON line:
{"seconds", "clusters"} with clusters mapping every document in a cluster of two or more to its
datatrove cluster id. Seconds cover the four stages, not this process's imports. Worker pools
are forked (datatrove's default is a forkserver), so their CPU time counts as this process's
children's, and the caller can measure it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.hashing import HashConfig


def main(input_path: str, work: str, language: str, workers: int = 1) -> None:
    work_dir = Path(work)
    # datatrove's defaults (5-grams, 14 buckets x 8 hashes) but sha1 shingle hashes: its xxhash
    # path hands str to xxhash, which xxhash >= 4 (our pin) refuses.
    config = MinhashConfig(hash_config=HashConfig(hash_fc="sha1"))
    pattern = Path(input_path).name if workers == 1 else "*.jsonl"
    reader = JsonlReader(str(Path(input_path).parent), glob_pattern=pattern)
    stages = [
        [reader, MinhashDedupSignature(str(work_dir / "sigs"), config=config, language=language)],
        [MinhashDedupBuckets(str(work_dir / "sigs"), str(work_dir / "buckets"), config=config)],
        [
            MinhashDedupCluster(
                str(work_dir / "buckets"),
                str(work_dir / "remove"),
                config=config,
                save_cluster_id=True,
            )
        ],
        [
            reader,
            MinhashDedupFilter(
                str(work_dir / "remove"),
                load_cluster_ids=True,
                exclusion_writer=JsonlWriter(str(work_dir / "removed")),
            ),
            JsonlWriter(str(work_dir / "kept")),
        ],
    ]
    start = time.perf_counter()
    for i, pipeline in enumerate(stages):
        tasks = {1: config.num_buckets, 2: 1}.get(i, workers)
        LocalPipelineExecutor(
            pipeline=pipeline,
            tasks=tasks,
            workers=min(workers, tasks),
            start_method="fork",
            logging_dir=str(work_dir / f"logs{i}"),
        ).run()
    seconds = time.perf_counter() - start
    clusters = {}
    import gzip

    for path in list((work_dir / "kept").glob("*")) + list((work_dir / "removed").glob("*")):
        with gzip.open(path, "rt") as handle:
            for line in handle:
                row = json.loads(line)
                cluster = row.get("metadata", {}).get("minhash_cluster_id", -1)
                if cluster != -1:
                    clusters[row["id"]] = cluster
    print(json.dumps({"seconds": seconds, "clusters": clusters}))


if __name__ == "__main__":
    main(*sys.argv[1:4], *(int(w) for w in sys.argv[4:5]))
