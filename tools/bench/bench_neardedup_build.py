"""Documents/s of the whole build with near dedup on, against datatrove's MinHash pipeline.

    uv run python tools/bench/bench_neardedup_build.py --data ../shared/data/corpora \
        [--workers 2] [--repeat 2] [--datatrove-python PATH/bin/python] [--no-datatrove]
        [--profile]

The documents are the planted sets of bench_neardedup_quality.py (real Dolma English and
zhwiki / CLUECorpusSmall Chinese bases, each with two planted copies, plus splices), of both
splits together: 4,960 documents (13.2 MB), so that the fixed costs of a run (worker
start-up, the tokenizer, datatrove's one pipeline per stage and 14 bucket tasks) do not decide
the ratio, while one round of all four runs takes ~3 minutes on 2 cores at load average ~5
(datatrove `cmn` is most of it; the default two rounds fit in ~6.5 minutes there). They are
written as JSONL input files (`workers` files per language, one source each) and timed end to
end, the four runs alternating, `--repeat` rounds, each keeping its fastest:

  build near   `tinylm_data.build.run_build` with `dedup.near.enabled` and the default cleaning,
               filters and exact dedup, like `tinylm-data build --near-dedup`: read, clean,
               filter, tokenize, exact + near dedup, pack, write shards and rejects
  build        the same build with near dedup off (so what near dedup adds is printed)
  datatrove    datatrove's MinHash pipeline (signatures, buckets, clusters, filter, writing
  cmn / eng    the kept and removed documents) on the same documents, its defaults with its
               `cmn` word tokenizer (the configuration that finds Chinese duplicates) and with
               `eng`, `workers` processes per stage; its seconds exclude its Python imports
               (its CPU seconds include them)

It prints docs/s of each (by wall-clock time, and per CPU second of all the run's processes,
which a loaded machine disturbs less), the ratios, the build's per-step seconds (stats.json `seconds`,
summed over workers; `hash` holds the shingles and signatures), and recall / false positives
per language of each on the planted pairs (as in bench_neardedup_quality.py: recall on pairs
with character 5-gram Jaccard >= 0.9, false positives on pairs <= 0.5; pairs with a document
the build's filters dropped are left out and counted). A build's clusters follow the rejects'
`duplicate_of` (exact and near). `--profile` adds a cProfile of near dedup in this process
(shingles + signatures of all documents, then the LSH to components of the assembly). Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import os
import pstats
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from bench_neardedup_quality import (
    classify,
    datatrove_minhash,
    load_bases,
    per_kind,
    rates,
    write_jsonl_parts,
)

from tinylm_data.dedup.planted import plant

ROOT = Path(__file__).resolve().parents[2]


def planted_documents(data: Path, seed: int) -> tuple[list[tuple[str, str]], list]:
    """Both splits' planted sets, one after the other (disjoint bases, disjoint pairs)."""
    docs: list[tuple[str, str]] = []
    pairs: list = []
    for split in ("tune", "eval"):
        english, chinese = load_bases(data, split)
        split_docs, split_pairs = plant(english, chinese, random.Random(seed))
        first = len(docs)
        docs += split_docs
        pairs += [(i + first, j + first, lang, kind) for i, j, lang, kind in split_pairs]
    return docs, pairs


def write_inputs(docs, folder: Path, files: int) -> None:
    """`files` JSONL files per language; the id field is the planted index."""
    for language in ("en", "zh"):
        indices = [i for i, (_, lang) in enumerate(docs) if lang == language]
        write_jsonl_parts(docs, indices, folder / language, files)


def build_config(tokenizer: Path, near: bool):
    from tinylm_data.config import parse_config

    source = {"kind": "jsonl", "text_field": "text", "id_field": "id"}
    return parse_config(
        {
            "name": "near" if near else "plain",
            "tokenizer": str(tokenizer),
            "sources": [
                {"name": "en", "paths": ["en/*.jsonl"], **source},
                {"name": "zh", "paths": ["zh/*.jsonl"], **source},
            ],
            "dedup": {"near": {"enabled": near}},
        }
    )


def run_build(corpus: Path, out: Path, tokenizer: Path, workers: int, near: bool):
    """Seconds of one build from scratch, its stats.json `seconds`, and its output folder."""
    from tinylm_data.build import BuildOptions
    from tinylm_data.build import run_build as build

    shutil.rmtree(out, ignore_errors=True)
    config = build_config(tokenizer, near)
    start = time.perf_counter()
    result = build(config, corpus, BuildOptions(out_root=out, workers=workers))
    return time.perf_counter() - start, dict(result.stats["seconds"]), result.out_dir


def build_clusters(out_dir: Path) -> tuple[dict[int, int], set[int]]:
    """(planted doc -> its cluster's kept doc, docs dropped by cleaning or filters)."""
    parent: dict[int, int] = {}
    dropped: set[int] = set()
    for path in sorted((out_dir / "rejects").glob("*.parquet")):
        table = pq.read_table(path, columns=["doc_id", "duplicate_of"]).to_pylist()
        for row in table:
            doc = int(row["doc_id"].split("/", 1)[1])
            if row["duplicate_of"] is None:
                dropped.add(doc)
            else:
                parent[doc] = int(row["duplicate_of"].split("/", 1)[1])

    def root(doc: int) -> int:
        while doc in parent:
            doc = parent[doc]
        return doc

    return {doc: root(doc) for doc in parent}, dropped


def profile_near_dedup(docs, top: int = 12) -> None:
    """cProfile of this process's near dedup: signatures of all documents (what the HashStep
    does in the workers), then LSH, verification and components (the assembly's part)."""
    from tinylm_data.dedup import near_dedup_local, signature_batches

    profile = cProfile.Profile()
    step = 256  # the build's batch size
    inputs = [
        (
            range(lo, lo + len(docs[lo : lo + step])),
            [0] * len(docs[lo : lo + step]),
            [t for t, _ in docs[lo : lo + step]],
            [lang for _, lang in docs[lo : lo + step]],
        )
        for lo in range(0, len(docs), step)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        profile.enable()
        batches = list(signature_batches(inputs))
        signed = time.perf_counter()
        near_dedup_local(iter(batches), work_dir=Path(tmp) / "near")
        profile.disable()
    done = time.perf_counter()
    print(
        f"\nnear dedup in one process (with cProfile): shingles + signatures "
        f"{signed - start:.2f} s, LSH + verification + components {done - signed:.2f} s"
    )
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(top)
    print("\n".join(line for line in text.getvalue().splitlines()[6:] if line.strip()))


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (worker processes, datatrove)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared corpora folder")
    parser.add_argument(
        "--tokenizer", type=Path, default=None, help="default: qwen1.5-tokenizer next to --data"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="rounds; each run keeps its fastest")
    parser.add_argument(
        "--datatrove-python",
        default=None,
        help="a Python with datatrove (default: this one, when it has datatrove)",
    )
    parser.add_argument("--no-datatrove", action="store_true", help="time the builds only")
    parser.add_argument("--profile", action="store_true", help="cProfile near dedup")
    parser.add_argument("--seed", type=int, default=0, help="seed of the planted edits")
    args = parser.parse_args()
    tokenizer = args.tokenizer or args.data.parent / "qwen1.5-tokenizer"
    if not (args.data / "dolma_samples").is_dir():
        raise SystemExit(f"corpora not found: no dolma_samples folder under {args.data} (--data)")
    if not tokenizer.exists():
        raise SystemExit(f"tokenizer not found: {tokenizer} (--tokenizer)")
    python = args.datatrove_python
    if python is None and importlib.util.find_spec("datatrove") is not None:
        python = sys.executable
    if args.no_datatrove:
        python = None
    elif python is None:
        print("datatrove is not installed here and --datatrove-python is not given: skipped")

    docs, pairs = planted_documents(args.data, args.seed)
    table = classify(docs, pairs)
    size = sum(len(t.encode()) for t, _ in docs) / 1e6
    load = os.getloadavg()[0]
    print(
        f"{len(docs)} planted documents ({size:.1f} MB), {args.workers} workers, "
        f"{args.repeat} rounds, load average {load:.1f} at the start"
    )
    runs = ["build near", "build"] + (["datatrove cmn", "datatrove eng"] if python else [])
    best: dict[str, float] = {}
    best_cpu: dict[str, float] = {}
    labels: dict[str, dict] = {}
    build_seconds: dict[str, dict] = {}
    dropped: set[int] = set()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_inputs(docs, work / "corpus", args.workers)
        for round_ in range(args.repeat):
            for name in runs:
                cpu_start = cpu_seconds()
                if name.startswith("build"):
                    near = name == "build near"
                    seconds, by_step, out_dir = run_build(
                        work / "corpus", work / "out", tokenizer, args.workers, near
                    )
                    if name not in best or seconds < best[name]:
                        build_seconds[name] = by_step
                    if near:
                        labels[name], dropped = build_clusters(out_dir)
                else:
                    folder = work / f"dt-{round_}-{name.split()[1]}"
                    found, seconds = datatrove_minhash(
                        docs, range(len(docs)), python, folder, name.split()[1], args.workers
                    )
                    labels[name] = found
                    shutil.rmtree(folder)
                cpu = cpu_seconds() - cpu_start
                best[name] = min(best.get(name, seconds), seconds)
                best_cpu[name] = min(best_cpu.get(name, cpu), cpu)
                print(
                    f"  round {round_ + 1}: {name:<14} {seconds:7.2f} s, {cpu:7.2f} CPU s",
                    flush=True,
                )
    load_end = os.getloadavg()[0]

    print(
        f"\ndocuments/s (fastest of {args.repeat}; load average {load_end:.1f} at the end); "
        "CPU s: all processes of the run, so less sensitive to a loaded machine"
    )
    print(f"  {'run':<14} {'seconds':>8} {'docs/s':>8} {'CPU s':>8} {'docs/CPU s':>10}")
    for name in runs:
        print(
            f"  {name:<14} {best[name]:8.2f} {len(docs) / best[name]:8.0f} "
            f"{best_cpu[name]:8.2f} {len(docs) / best_cpu[name]:10.0f}"
        )
    for unit, table_ in (("seconds", best), ("CPU s", best_cpu)):
        added = table_["build near"] - table_["build"]
        print(
            f"near dedup adds {added:.2f} {unit} to the build: "
            f"{added / table_['build']:.2f}x the {unit} of the rest"
        )
    for name in runs[2:]:
        print(
            f"build near against {name}: {best[name] / best['build near']:.2f}x the documents/s, "
            f"{best_cpu[name] / best_cpu['build near']:.2f}x per CPU second"
        )
    for name in ("build near", "build"):
        steps = build_seconds[name]
        total = sum(steps.values())
        shares = ", ".join(
            f"{step} {s:.2f} s ({s / total:.0%})"
            for step, s in sorted(steps.items(), key=lambda kv: -kv[1])
        )
        print(f"{name} per step (stats.json seconds, summed over workers): {shares}")

    if dropped:
        print(f"\n{len(dropped)} documents were dropped by the build's cleaning or filters;")
        print("pairs with one of them are left out of every row below")
    kept = {
        key: {k: [p for p in e[k] if not dropped.intersection(p)] for k in ("pos", "neg", "mid")}
        for key, e in table.items()
    }
    for name in ["build near", *runs[2:]]:
        per_kind(name, labels[name], kept)
    print("\nsummary (recall on J >= 0.9 / false positives on J <= 0.5):")
    for name in ["build near", *runs[2:]]:
        cells = []
        for language in ("en", "zh"):
            recall, _, positives, false = rates(labels[name], kept, language)
            negatives = sum(len(e["neg"]) for (lang, _), e in kept.items() if lang == language)
            cells.append(f"{language} {recall:.4f} of {positives}, FP {false} of {negatives}")
        print(f"  {name:<14} {'; '.join(cells)}")
    if args.profile:
        profile_near_dedup(docs)


if __name__ == "__main__":
    main()
