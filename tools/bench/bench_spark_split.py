"""Spark on one large input file: byte-range units (`split_bytes`) against reading it whole.

Writes one uncompressed JSON-lines file of about --mb megabytes from the real corpora in
../shared/data/corpora (English and Chinese, lightly varied copies so exact dedup keeps them; an
authored fallback when the corpora are absent), then builds it with the Spark engine on
`--master` (default local[2]) twice, back to back, `--repeat` times each (fastest kept):

  whole   split_bytes = 0: the file is one Spark task
  split   split_bytes = --split-mb: the file is several line-aligned byte ranges, one task each

and prints both times, the Spark tasks each ran, the ratio whole/split (above 1: splitting is
faster) and whether the two builds published the same version and shard bytes. A local-engine
build of the same file runs too, as the reference the issue compared against. Figures are
printed, never asserted; the json goes next to the output (--out).

    uv run python tools/bench/bench_spark_split.py --mb 8 --split-mb 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from bench_build import _vary, shared_data


def _texts() -> list[str]:
    import gzip

    corpora = shared_data() / "corpora"
    texts: list[str] = []
    for path in sorted((corpora / "dolma_samples").glob("*.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            texts += [json.loads(line)["text"] for line in handle if line.strip()]
    for path in sorted((corpora / "cluecorpussmall_sample").glob("*.txt")):
        texts += [line for line in path.read_text().splitlines() if line.strip()]
    if not texts:  # no shared corpora: authored sentences, varied below
        texts = [
            f"Measurement {i} of the river delta shows silt arriving every spring, "
            "carried down from the mountains by melting snow and heavy rain." * (1 + i % 5)
            for i in range(500)
        ]
    return texts


def write_large_file(path: Path, megabytes: float) -> int:
    rng = random.Random(0)
    texts = _texts()
    written = copy = 0
    with open(path, "w", encoding="utf-8") as handle:
        while written < megabytes * 1e6:
            for i, text in enumerate(texts):
                line = json.dumps({"id": f"{copy}-{i}", "text": _vary(text, rng, copy)}) + "\n"
                handle.write(line)
                written += len(line.encode())
            copy += 1
    return written


def _config(split_bytes: int) -> dict:
    return {
        "name": "big",
        "tokenizer": "builtin:sample",
        "block_size": 512,
        "split_bytes": split_bytes,
        "sources": [{"name": "web", "kind": "jsonl", "paths": ["big.jsonl"], "id_field": "id"}],
    }


def _shards(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((directory / "shards").glob("*.parquet"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=8.0)
    parser.add_argument("--split-mb", type=float, default=1.0)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench-out/spark-split"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from tinylm_data.build import BuildOptions, run_build
    from tinylm_data.config import parse_config
    from tinylm_data.spark_engine import spark_engine

    work = Path(tempfile.mkdtemp(prefix="bench-spark-split-"))
    try:
        size = write_large_file(work / "big.jsonl", args.mb)
        print(f"input: one JSON-lines file of {size / 1e6:.1f} MB")
        split_bytes = int(args.split_mb * (1 << 20))
        times: dict[str, float] = {}
        tasks: dict[str, int] = {}
        results = {}
        start = time.perf_counter()
        results["local"] = run_build(
            parse_config(_config(0)), work, BuildOptions(out_root=work / "out-local", workers=2)
        )
        times["local"] = time.perf_counter() - start
        with spark_engine(args.master) as engine:
            for repeat in range(args.repeat):
                for name, split in (("whole", 0), ("split", split_bytes)):
                    out = work / f"out-{name}-{repeat}"
                    start = time.perf_counter()
                    results[name] = run_build(
                        parse_config(_config(split)),
                        work,
                        BuildOptions(out_root=out),
                        engine=engine,
                    )
                    elapsed = time.perf_counter() - start
                    times[name] = min(times.get(name, elapsed), elapsed)
                    tasks[name] = len(engine.stage_one_spark_tasks)
                    shutil.rmtree(out / "big" / ".stage1", ignore_errors=True)
        same = results["split"].manifest["version"] == results["whole"].manifest["version"] and (
            _shards(results["split"].out_dir) == _shards(results["whole"].out_dir)
        )
        report = {
            "input_mb": size / 1e6,
            "split_mb": args.split_mb,
            "master": args.master,
            "seconds": times,
            "spark_tasks": tasks,
            "whole_over_split": times["whole"] / times["split"],
            "whole_over_local": times["whole"] / times["local"],
            "split_over_local": times["split"] / times["local"],
            "identical_output": same,
        }
        print(f"local engine (2 workers)   {times['local']:7.1f} s")
        print(f"spark whole file           {times['whole']:7.1f} s  ({tasks['whole']} task)")
        print(f"spark split                {times['split']:7.1f} s  ({tasks['split']} tasks)")
        print(f"ratio whole/split          {report['whole_over_split']:7.2f}x")
        print(f"ratio spark whole/local    {report['whole_over_local']:7.2f}x")
        print(f"ratio spark split/local    {report['split_over_local']:7.2f}x")
        print(f"identical version and shards: {same}")
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_spark_split.json").write_text(json.dumps(report, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
