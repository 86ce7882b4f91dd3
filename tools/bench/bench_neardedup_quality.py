"""Near-dedup quality and cost on planted sets built from real text: shingling schemes, band
layouts, and the default configuration per language and kind of edit (and against datatrove).

    uv run python tools/bench/bench_neardedup_quality.py --data ../shared/data/corpora \
        [--split tune|eval] [--compare] [--datatrove-python PATH/bin/python] [--no-spark]

Base documents: real English (Dolma samples, >= 150 words) and Chinese (zhwiki and
CLUECorpusSmall lines, >= 300 characters), shuffled with a fixed seed and cut in two disjoint
halves: `--split tune` (the schemes and layouts were chosen on it) and `--split eval` (the
figures the README reports). Each base gets two planted copies, of these kinds in turn:
whitespace (line breaks and doubled spaces), boilerplate (a site header and footer around it),
and insertions, deletions or substitutions of 0.5% or 1% of its characters. Negatives: the
first half of one base spliced to the second half of the next (a duplicate of neither) and
random pairs of unrelated bases.

A pair counts for recall when its character 5-gram Jaccard (of the normalised text) is >= 0.9
and for the false-positive rate when it is <= 0.5; pairs in between are listed, not scored. A
pair is "found" when both documents end in the same cluster. Seconds cover shingling,
signatures, LSH, verification and components. datatrove runs in its own environment
(`--datatrove-python`, a Python with datatrove installed) with its defaults and its word
tokenizers: "eng" for English, "cmn" for Chinese. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from tinylm_data.dedup import char_shingles, document_shingles, minhash_signatures, near_dedup_local
from tinylm_data.dedup.lsh import choose_bands
from tinylm_data.dedup.planted import plant

HERE = Path(__file__).resolve().parent
SPLIT_SEED = 12  # fixes which bases are tuning text and which are evaluation text

# name -> document_shingles keyword arguments
SCHEMES = {
    "words-3": {"scheme": "words", "ngram": 3},
    "words-5": {"scheme": "words", "ngram": 5},
    "chars-4": {"scheme": "chars", "ngram_chars": 4},
    "chars-5": {"scheme": "chars", "ngram_chars": 5},
    "chars-7": {"scheme": "chars", "ngram_chars": 7},
    "words-5+chars-5": {"scheme": "words+chars", "ngram": 5, "ngram_chars": 5},
}
LAYOUTS = [(14, 9), (16, 8), (20, 6), (10, 12), (25, 5)]
DEFAULT_SCHEME = "chars-5"


def load_bases(data: Path, split: str) -> tuple[list[str], list[str]]:
    english = []
    for path in sorted((data / "dolma_samples").glob("*.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                text = json.loads(line).get("text", "")
                if len(text.split()) >= 150:
                    english.append(text[:4000])
    chinese = []
    for folder in ("zhwiki_sample", "cluecorpussmall_sample"):
        for path in sorted((data / folder).glob("*.txt")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if len(line) >= 300:
                    chinese.append(line[:2000])
    rng = random.Random(SPLIT_SEED)
    rng.shuffle(english)
    rng.shuffle(chinese)
    half = 0 if split == "tune" else 1
    return english[half::2], chinese[half::2]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    union = len(np.union1d(a, b))
    return len(np.intersect1d(a, b)) / union if union else 1.0


def classify(docs, pairs):
    """Pairs by (language, kind) split into positives, negatives and the number in between."""
    sets = [char_shingles(t, 5) for t, _ in docs]
    table: dict[tuple[str, str], dict] = defaultdict(lambda: {"pos": [], "neg": [], "mid": []})
    for i, j, language, kind in pairs:
        value = jaccard(sets[i], sets[j])
        entry = table[language, kind]
        if value >= 0.9:
            entry["pos"].append((i, j))
        elif value <= 0.5:
            entry["neg"].append((i, j))
        else:
            entry["mid"].append((i, j))
    return dict(table)


def signatures_of(docs, options: dict, num_perm: int = 128) -> tuple[np.ndarray, float, float]:
    """Signatures, and the seconds of shingling and of signatures."""
    start = time.perf_counter()
    sets = [document_shingles(t, lang, **options) for t, lang in docs]
    middle = time.perf_counter()
    sigs = minhash_signatures(sets, num_perm=num_perm)
    return sigs, middle - start, time.perf_counter() - middle


def dedup_signatures(sigs, work: Path, threshold: float, layout=None):
    start = time.perf_counter()
    ids = np.arange(len(sigs), dtype=np.int64)
    batches = (
        (ids[lo : lo + 1000], np.zeros(len(ids[lo : lo + 1000]), np.int64), sigs[lo : lo + 1000])
        for lo in range(0, len(sigs), 1000)
    )
    result = near_dedup_local(batches, threshold=threshold, work_dir=work, layout=layout)
    return result, time.perf_counter() - start


def rates(labels: dict, table: dict, language: str | None = None) -> tuple[float, float, int, int]:
    """(recall, false-positive rate, positives, false positives) over the table's pairs."""

    def same(i, j):
        return labels.get(i, i) == labels.get(j, j)

    pos = [p for (lang, _), e in table.items() if language in (None, lang) for p in e["pos"]]
    neg = [p for (lang, _), e in table.items() if language in (None, lang) for p in e["neg"]]
    found = sum(same(i, j) for i, j in pos)
    false = sum(same(i, j) for i, j in neg)
    return found / max(1, len(pos)), false / max(1, len(neg)), len(pos), false


def compare(docs, table, work: Path) -> None:
    print("\nshingling schemes (128 permutations, bands x rows from choose_bands):")
    print(
        f"{'scheme':<16} {'thr':>4} {'layout':>6} {'recall en':>9} {'recall zh':>9} "
        f"{'FP en':>7} {'FP zh':>7} {'cand.':>7} {'sig s':>6} {'lsh s':>6}"
    )
    signatures = {}
    for name, options in SCHEMES.items():
        sigs, shingle_seconds, minhash_seconds = signatures_of(docs, options)
        sig_seconds = shingle_seconds + minhash_seconds
        signatures[name] = sigs
        for threshold in (0.7, 0.8, 0.9):
            result, lsh_seconds = dedup_signatures(sigs, work, threshold)
            en, zh = rates(result.labels, table, "en"), rates(result.labels, table, "zh")
            print(
                f"{name:<16} {threshold:>4} {result.bands:>3}x{result.rows:<2} {en[0]:>9.4f} "
                f"{zh[0]:>9.4f} {en[3]:>7} {zh[3]:>7} {result.candidate_pairs:>7} "
                f"{sig_seconds:>6.2f} {lsh_seconds:>6.2f}"
            )
    print(f"\nband layouts ({DEFAULT_SCHEME}, threshold 0.8):")
    print(
        f"{'layout':>6} {'P(s=0.9)':>9} {'recall en':>9} {'recall zh':>9} {'FP':>4} {'cand.':>7} {'lsh s':>6}"
    )
    for bands, rows in LAYOUTS:
        result, lsh_seconds = dedup_signatures(signatures[DEFAULT_SCHEME], work, 0.8, (bands, rows))
        en, zh = rates(result.labels, table, "en"), rates(result.labels, table, "zh")
        s_curve = 1 - (1 - 0.9**rows) ** bands
        print(
            f"{bands:>3}x{rows:<2} {s_curve:>9.4f} {en[0]:>9.4f} {zh[0]:>9.4f} {en[3] + zh[3]:>4} "
            f"{result.candidate_pairs:>7} {lsh_seconds:>6.2f}"
        )


def per_kind(name: str, labels: dict, table: dict) -> None:
    def same(i, j):
        return labels.get(i, i) == labels.get(j, j)

    print(f"\n{name}: per language and kind (recall on J >= 0.9, false positives on J <= 0.5)")
    print(
        f"{'lang':<4} {'kind':<16} {'J>=0.9':>6} {'found':>6} {'recall':>7} {'J<=0.5':>6} "
        f"{'FP':>4} {'between':>7} {'found':>6}"
    )
    for (language, kind), entry in sorted(table.items()):
        found = sum(same(i, j) for i, j in entry["pos"])
        false = sum(same(i, j) for i, j in entry["neg"])
        between = sum(same(i, j) for i, j in entry["mid"])
        recall = f"{found / len(entry['pos']):.4f}" if entry["pos"] else "-"
        print(
            f"{language:<4} {kind:<16} {len(entry['pos']):>6} {found:>6} {recall:>7} "
            f"{len(entry['neg']):>6} {false:>4} {len(entry['mid']):>7} {between:>6}"
        )
    for language in ("en", "zh"):
        recall, fp_rate, positives, false = rates(labels, table, language)
        print(
            f"{language}: recall {recall:.4f} of {positives}, false-positive rate {fp_rate:.5f} ({false} pairs)"
        )


def run_ours_spark(docs) -> tuple[dict, float]:
    from tinylm_data.dedup import near_dedup_spark
    from tinylm_data.spark_engine import spark_session

    spark = spark_session("local[2]")
    spark.conf.set("spark.sql.shuffle.partitions", "4")
    try:
        frame = (
            spark.createDataFrame(
                [(i, "all", t, lang) for i, (t, lang) in enumerate(docs)],
                "doc long, group string, text string, language string",
            )
            .repartition(2)
            .cache()
        )
        frame.count()
        start = time.perf_counter()
        result = near_dedup_spark(spark, frame)
        return result.labels, time.perf_counter() - start
    finally:
        spark.stop()


def write_jsonl_parts(docs, indices, folder: Path, parts: int) -> None:
    """`docs[indices]` dealt round-robin into `parts` JSONL files; the id field is the index."""
    folder.mkdir(parents=True)
    handles = [
        open(folder / f"part-{k}.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        for k in range(parts)
    ]
    try:
        for n, i in enumerate(indices):
            row = {"id": str(i), "text": docs[i][0]}
            handles[n % parts].write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        for handle in handles:
            handle.close()


def datatrove_minhash(
    docs, indices, python: str, folder: Path, dt_language: str, workers: int = 1
) -> tuple[dict, float]:
    """datatrove's MinHash pipeline on `docs[indices]` with its `dt_language` word tokenizer,
    in `workers` processes: ({doc: cluster id} for docs in a cluster of 2+, its seconds)."""
    folder.mkdir(parents=True)
    inputs = folder / "input"
    write_jsonl_parts(docs, indices, inputs, workers)
    command = [
        python,
        str(HERE / "datatrove_minhash_runner.py"),
        str(inputs / "part-0.jsonl"),
        str(folder / "work"),
        dt_language,
        str(workers),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    return {int(doc): cluster for doc, cluster in report["clusters"].items()}, report["seconds"]


def run_datatrove(docs, python: str, work: Path) -> tuple[dict, float]:
    """English with its "eng" tokenizer, Chinese with "cmn", as two pipelines."""
    labels: dict[int, tuple[str, int]] = {}
    seconds = 0.0
    for language, dt_language in (("en", "eng"), ("zh", "cmn")):
        indices = [i for i, (_, lang) in enumerate(docs) if lang == language]
        clusters, spent = datatrove_minhash(
            docs, indices, python, work / f"dt-{language}", dt_language
        )
        seconds += spent
        labels.update({doc: (language, cluster) for doc, cluster in clusters.items()})
    return labels, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared corpora folder")
    parser.add_argument("--split", choices=["tune", "eval"], default="eval")
    parser.add_argument("--compare", action="store_true", help="compare schemes and layouts")
    parser.add_argument("--datatrove-python", default=None, help="a Python with datatrove")
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--seed", type=int, default=0, help="seed of the planted edits")
    args = parser.parse_args()
    if not (args.data / "dolma_samples").is_dir():
        raise SystemExit(f"corpora not found: no dolma_samples folder under {args.data} (--data)")
    english, chinese = load_bases(args.data, args.split)
    if not english or not chinese:
        raise SystemExit(
            f"{args.data} gave {len(english)} English and {len(chinese)} Chinese documents; "
            "the bench needs both (dolma_samples/*.gz, zhwiki_sample or cluecorpussmall_sample)"
        )
    docs, pairs = plant(english, chinese, random.Random(args.seed))
    table = classify(docs, pairs)
    scored = sum(len(e["pos"]) + len(e["neg"]) for e in table.values())
    print(
        f"split {args.split}: {len(docs)} documents from {len(english)} English and "
        f"{len(chinese)} Chinese bases; {scored} pairs scored"
    )
    bands, rows = choose_bands(0.8, 128)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.compare:
            compare(docs, table, work / "compare")
        sigs, shingle_seconds, minhash_seconds = signatures_of(docs, SCHEMES[DEFAULT_SCHEME])
        result, lsh_seconds = dedup_signatures(sigs, work / "default", 0.8)
        total = shingle_seconds + minhash_seconds + lsh_seconds
        print(
            f"profile ({DEFAULT_SCHEME}): shingling {shingle_seconds:.2f} s "
            f"({shingle_seconds / total:.0%}), signatures {minhash_seconds:.2f} s "
            f"({minhash_seconds / total:.0%}), LSH + verification + components "
            f"{lsh_seconds:.2f} s ({lsh_seconds / total:.0%})"
        )
        rows_out = [(f"tinylm local ({DEFAULT_SCHEME}, {bands}x{rows})", result.labels, total)]
        if not args.no_spark:
            rows_out.append(("tinylm spark local[2]", *run_ours_spark(docs)))
        if args.datatrove_python:
            rows_out.append(("datatrove", *run_datatrove(docs, args.datatrove_python, work)))
    for name, labels, seconds in rows_out:
        per_kind(name, labels, table)
        print(f"{name}: {len(docs) / seconds:.0f} documents/s")


if __name__ == "__main__":
    main()
