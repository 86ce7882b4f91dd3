"""Near-dedup quality and speed on planted pairs built from real text, against datatrove.

    uv run python tools/bench/bench_neardedup_quality.py --data ../shared/data/corpora \
        [--datatrove-python PATH/bin/python] [--docs 600] [--no-spark]

Planted from real English (Dolma) and Chinese (zhwiki, CLUECorpusSmall) documents:
* near copies: 0.5% of the words (English), 0.3% and 1% of the characters (Chinese) replaced;
  pairs with true Jaccard >= 0.9 (on our default shingles: 5 words, 2 jieba words for Chinese)
  and every Chinese 1% copy (Jaccard 0.89-0.93) count for recall; the 1% copies are also
  scored on their own;
* lightly related documents (a large share of words or characters replaced), splices (first half
  of one document, second half of another: a duplicate of neither) and random unrelated pairs;
  pairs with true Jaccard <= 0.5 count for the false-positive rate.
A pair is "found" when both documents end in the same cluster. Throughput counts shingling,
signatures, LSH and components. datatrove runs in its own environment (`--datatrove-python`, a
Python with datatrove installed, never the workspace's) with its defaults (5-grams, 14 x 8
hashes) and its word tokenizers: "eng" for English, "cmn" (jieba) for Chinese. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from tinylm_data.dedup import near_dedup_texts_local, shingles

HERE = Path(__file__).resolve().parent


def load_texts(data: Path, per_language: int, rng: random.Random) -> tuple[list[str], list[str]]:
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
    rng.shuffle(english)
    rng.shuffle(chinese)
    return english[:per_language], chinese[:per_language]


def edit_words(text: str, share: float, rng: random.Random, vocab: list[str]) -> str:
    words = text.split()
    for i in rng.sample(range(len(words)), max(1, round(share * len(words)))):
        words[i] = rng.choice(vocab)
    return " ".join(words)


def edit_chars(text: str, share: float, rng: random.Random, alphabet: str) -> str:
    chars = list(text)
    for i in rng.sample(range(len(chars)), max(1, round(share * len(chars)))):
        chars[i] = rng.choice(alphabet)
    return "".join(chars)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    union = len(np.union1d(a, b))
    return len(np.intersect1d(a, b)) / union if union else 1.0


def plant(english: list[str], chinese: list[str], rng: random.Random):
    """Documents (text, language) and the pairs to score: (i, j, true Jaccard, kind)."""
    docs: list[tuple[str, str]] = []
    pairs: list[tuple[int, int, str]] = []
    vocab = sorted({w for t in english for w in t.split()})
    alphabet = "".join(sorted({c for t in chinese for c in t if "\u4e00" <= c <= "\u9fff"}))
    for language, bases in (("en", english), ("zh", chinese)):
        first = len(docs)
        docs += [(t, language) for t in bases]
        base_ids = list(range(first, len(docs)))
        for k, i in enumerate(base_ids):
            text = docs[i][0]
            kind = k % 3
            if kind == 0 and language == "en":
                docs.append((edit_words(text, 0.005, rng, vocab), language))
                pairs.append((i, len(docs) - 1, "copy"))
            elif kind == 0:
                # 1% of the characters (the case) and a lighter 0.3% copy beside it.
                docs.append((edit_chars(text, 0.01, rng, alphabet), language))
                pairs.append((i, len(docs) - 1, "copy1%"))
                docs.append((edit_chars(text, 0.003, rng, alphabet), language))
                pairs.append((i, len(docs) - 1, "copy"))
            elif kind == 1:
                related = (
                    edit_words(text, 0.15, rng, vocab)
                    if language == "en"
                    else edit_chars(text, 0.08, rng, alphabet)
                )
                docs.append((related, language))
                pairs.append((i, len(docs) - 1, "related"))
            else:
                other = base_ids[(k + 1) % len(base_ids)]
                a, b = text, docs[other][0]
                if language == "en":
                    wa, wb = a.split(), b.split()
                    splice = " ".join(wa[: len(wa) // 2] + wb[len(wb) // 2 :])
                else:
                    splice = a[: len(a) // 2] + b[len(b) // 2 :]
                docs.append((splice, language))
                pairs += [(i, len(docs) - 1, "splice"), (other, len(docs) - 1, "splice")]
        for _ in range(5 * len(base_ids)):
            i, j = rng.sample(base_ids, 2)
            pairs.append((min(i, j), max(i, j), "unrelated"))
    return docs, pairs


def score(labels: dict, positives, negatives, zh_copies) -> tuple[float, float, int, float]:
    def same(i, j):
        return labels.get(i, i) == labels.get(j, j)

    recall = sum(same(i, j) for i, j in positives) / max(1, len(positives))
    false = sum(same(i, j) for i, j in negatives)
    zh_recall = sum(same(i, j) for i, j in zh_copies) / max(1, len(zh_copies))
    return recall, false / max(1, len(negatives)), false, zh_recall


def run_ours_local(docs, work: Path) -> tuple[dict, float]:
    start = time.perf_counter()
    batches = (
        (
            list(range(lo, min(lo + 1000, len(docs)))),
            ["all"] * len(docs[lo : lo + 1000]),
            [t for t, _ in docs[lo : lo + 1000]],
            [lang for _, lang in docs[lo : lo + 1000]],
        )
        for lo in range(0, len(docs), 1000)
    )
    result = near_dedup_texts_local(batches, work_dir=work / "ours")
    return result.labels, time.perf_counter() - start


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


def run_datatrove(docs, python: str, work: Path) -> tuple[dict, float]:
    labels: dict[int, tuple[str, int]] = {}
    seconds = 0.0
    for language, dt_language in (("en", "eng"), ("zh", "cmn")):
        folder = work / f"dt-{language}"
        folder.mkdir(parents=True)
        with open(folder / "input.jsonl", "w", encoding="utf-8") as handle:
            for i, (text, lang) in enumerate(docs):
                if lang == language:
                    handle.write(
                        json.dumps({"id": str(i), "text": text}, ensure_ascii=False) + "\n"
                    )
        out = subprocess.run(
            [
                python,
                str(HERE / "datatrove_minhash_runner.py"),
                str(folder / "input.jsonl"),
                str(folder / "work"),
                dt_language,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        report = json.loads(out.stdout.strip().splitlines()[-1])
        seconds += report["seconds"]
        labels.update(
            {int(doc): (language, cluster) for doc, cluster in report["clusters"].items()}
        )
    return labels, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared corpora folder")
    parser.add_argument("--docs", type=int, default=600, help="base documents per language")
    parser.add_argument("--datatrove-python", default=None, help="a Python with datatrove")
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.data / "dolma_samples").is_dir():
        raise SystemExit(f"corpora not found: no dolma_samples folder under {args.data} (--data)")
    rng = random.Random(args.seed)
    english, chinese = load_texts(args.data, args.docs, rng)
    if not english or not chinese:
        raise SystemExit(
            f"{args.data} gave {len(english)} English and {len(chinese)} Chinese documents; "
            "the bench needs both (dolma_samples/*.gz, zhwiki_sample or cluecorpussmall_sample)"
        )
    docs, pairs = plant(english, chinese, rng)
    sets = [shingles(t, lang) for t, lang in docs]
    positives, negatives, excluded, zh_copies = [], [], 0, []
    by_kind: dict[str, list[float]] = {}
    for i, j, kind in pairs:
        value = jaccard(sets[i], sets[j])
        by_kind.setdefault(f"{kind}-{docs[i][1]}", []).append(value)
        if kind == "copy1%":
            zh_copies.append((i, j))
        if value >= 0.9 or kind == "copy1%":
            positives.append((i, j))
        elif value <= 0.5:
            negatives.append((i, j))
        else:
            excluded += 1
    print(f"documents: {len(docs)} ({len(english)} English and {len(chinese)} Chinese bases)")
    for kind, values in sorted(by_kind.items()):
        print(
            f"  {kind:<14} pairs {len(values):>5}  true Jaccard median {np.median(values):.3f} "
            f"min {min(values):.3f} max {max(values):.3f}"
        )
    print(
        f"pairs scored: {len(positives)} with J >= 0.9 or Chinese 1% copies, "
        f"{len(negatives)} with J <= 0.5 "
        f"({excluded} in between, not scored)"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        labels, seconds = run_ours_local(docs, Path(tmp))
        rows.append(("tinylm local", labels, seconds))
        if not args.no_spark:
            labels, seconds = run_ours_spark(docs)
            rows.append(("tinylm spark local[2]", labels, seconds))
        if args.datatrove_python:
            labels, seconds = run_datatrove(docs, args.datatrove_python, Path(tmp))
            rows.append(("datatrove", labels, seconds))
    print(
        f"{'engine':<22} {'docs/s':>9} {'recall J>=0.9':>14} {'FP rate J<=0.5':>15} "
        f"{'FP pairs':>9} {'recall zh 1% copies':>20}"
    )
    for name, labels, seconds in rows:
        recall, fp_rate, fp, zh_recall = score(labels, positives, negatives, zh_copies)
        print(
            f"{name:<22} {len(docs) / seconds:>9.0f} {recall:>14.4f} {fp_rate:>15.5f} "
            f"{fp:>9} {zh_recall:>20.4f}"
        )


if __name__ == "__main__":
    main()
