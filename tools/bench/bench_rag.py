"""Throughput of the retrieval index on CPU: index build passages/s and queries/s, each beside a
baseline run on the same data in the same process.

Data: the contexts and questions of ../shared/data/rag/drcd_dev.json (DRCD, Traditional Chinese)
when present, else the embedded sample replicated --copies times (each copy tagged so that exact
dedup keeps it). Measured:

  tokenize    bm25_tokens over every passage alone (jieba, OpenCC, NFKC): the baseline of the build
  write       tinylm_shards.retrieval.write_index on the same passages: tokenize + bm25s index +
              save + publish; ratio write/tokenize (how close the build is to its tokenizer)
  rag index   the whole `tinylm-data rag index` build (read, clean, dedup, chunk, index), docs/s
  search      RetrievalIndex.search (bm25s sparse scores, our top-k), queries/s, mmap load
  brute       a brute-force BM25 scorer over the same tokens (a Python loop over every passage's
              term counts, same lucene formula and parameters; no index): the baseline of search;
              its top-1 agreement with `search` is printed as a check

Figures are printed, never asserted; each run keeps its fastest of --repeat.

    OMP_NUM_THREADS=1 uv run python tools/bench/bench_rag.py --repeat 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def shared_data() -> Path:
    return Path(os.environ.get("TINYLM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def load_data(copies: int) -> tuple[str, Path, list[dict], list[str]]:
    """(label, base dir, source configs, queries)."""
    drcd = shared_data() / "rag" / "drcd_dev.json"
    from tinylm_data.rag import squad_records

    if drcd.is_file():
        sources = [{"name": "drcd", "kind": "squad", "paths": [str(drcd)]}]
        return "DRCD dev", drcd.parent, sources, [r.question for r in squad_records(drcd)]
    from importlib import resources

    sample = Path(str(resources.files("tinylm_data") / "rag" / "sample"))
    tmp = Path(tempfile.mkdtemp())
    lines = [json.loads(line) for line in (sample / "corpus.jsonl").read_text().splitlines()[:-1]]
    with open(tmp / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for copy in range(copies):
            for record in lines:
                text = record["text"] + f" [{copy}]"
                handle.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    queries = [r.question for r in squad_records(sample / "questions.json")] * 50
    sources = [{"name": "sample", "kind": "jsonl", "paths": ["corpus.jsonl"]}]
    return f"embedded sample x{copies}", tmp, sources, queries


def fastest(repeat: int, run):
    best, value = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = run()
        best = min(best, time.perf_counter() - start)
    return best, value


class BruteForceBM25:
    """BM25 (bm25s' lucene variant) scored by looping over every passage: no inverted index."""

    def __init__(self, corpus_tokens: list[list[str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.counts = [Counter(tokens) for tokens in corpus_tokens]
        self.lengths = [len(tokens) for tokens in corpus_tokens]
        self.avg = sum(self.lengths) / len(self.lengths)
        df = Counter(t for c in self.counts for t in c)
        n = len(corpus_tokens)
        self.idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        self.k1, self.b = k1, b

    def top1(self, query_tokens: list[str]) -> int | None:
        best, best_row = 0.0, None
        for row, (counts, length) in enumerate(zip(self.counts, self.lengths, strict=True)):
            norm = self.k1 * (1 - self.b + self.b * length / self.avg)
            score = sum(
                self.idf[t] * counts[t] / (counts[t] + norm) for t in query_tokens if t in counts
            )
            if score > best:
                best, best_row = score, row
        return best_row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--copies", type=int, default=300, help="sample copies without DRCD")
    parser.add_argument("--brute-queries", type=int, default=200)
    args = parser.parse_args()

    from tinylm_data.config import parse_model
    from tinylm_data.progress import Progress
    from tinylm_data.rag.build import collect_passages, run_rag_index
    from tinylm_data.rag.config import RagIndexConfig
    from tinylm_shards.retrieval import RetrievalIndex, bm25_tokens, write_index

    label, base, sources, queries = load_data(args.copies)
    cfg = parse_model(RagIndexConfig, {"name": "bench", "sources": sources})
    bm25_tokens("warm up jieba 预热")  # the dictionary load is not part of any timing
    corpus = collect_passages(cfg, base, Progress())
    passages = corpus.passages
    documents = sum(c.documents_indexed for c in corpus.counts.values())
    print(
        f"data: {label}: {documents:,} documents, {len(passages):,} passages, {len(queries):,} queries"
    )

    out = Path(tempfile.mkdtemp())
    t_tok, tokens = fastest(args.repeat, lambda: [bm25_tokens(p.text) for p in passages])
    t_write, _ = fastest(
        args.repeat, lambda: write_index(passages, out / "idx", settings={"n": len(passages)})
    )
    t_build, _ = fastest(args.repeat, lambda: run_rag_index(cfg, base, out / "full"))
    t_open, index = fastest(args.repeat, lambda: RetrievalIndex.open(out / "idx"))
    t_search, hits = fastest(args.repeat, lambda: index.search_many(queries, 5))
    brute = BruteForceBM25(tokens)
    few = queries[: args.brute_queries]
    few_tokens = [bm25_tokens(q) for q in few]
    t_brute, brute_top = fastest(1, lambda: [brute.top1(q) for q in few_tokens])
    ours = [h[0].passage.id if h else None for h in hits[: len(few)]]
    theirs = [passages[r].id if r is not None else None for r in brute_top]
    agree = sum(a == b for a, b in zip(ours, theirs, strict=True)) / len(few)

    n = len(passages)
    print("\nindex build (passages/s)")
    print(f"  tokenize only (baseline)   {n / t_tok:10,.0f}   {t_tok:7.2f} s")
    print(
        f"  write_index                {n / t_write:10,.0f}   {t_write:7.2f} s   ratio {t_tok / t_write:.2f}"
    )
    print(f"  rag index (whole build)    {n / t_build:10,.0f}   {t_build:7.2f} s   ratio {t_tok / t_build:.2f}"
          f"   ({documents / t_build:,.0f} docs/s)")  # fmt: skip
    print("\nqueries (queries/s, top-5; query tokenization included)")
    print(f"  brute force (baseline)     {len(few) / t_brute:10,.1f}   ({len(few)} queries)")
    print(f"  RetrievalIndex.search      {len(queries) / t_search:10,.1f}   "
          f"ratio {len(queries) / t_search / (len(few) / t_brute):.1f}x; top-1 agreement {agree:.1%}")  # fmt: skip
    print(f"  open (mmap)                {t_open * 1000:10.1f} ms")


if __name__ == "__main__":
    main()
