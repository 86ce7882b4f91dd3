"""Throughput of the quality scorers against the rest of the build.

Writes --docs documents (clean paragraphs of the embedded sample and junk planted from them, as
JSON lines), then measures, on the same corpus:

  build      a build without scorers (read, clean, filter, tokenize, dedup, pack): the baseline
  scorer     each scorer alone over the stage-1 texts: documents/s
  build+X    the build with scorer X, and the share of its time the scorer adds

Scorers: `classifier` (a fastText model trained here), `perplexity` and `reward` (random-init
Qwen2-shaped models of --hidden / --layers with the sample tokenizer: throughput does not depend
on the weights). `--device cuda` puts the two transformers scorers on a GPU. Figures are printed,
never asserted.

    uv run python tools/bench/bench_quality.py --docs 2000 --workers 2
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path


def corpus(root: Path, docs: int) -> None:
    from tinylm_data.quality.junk import clean_paragraphs, planted_junk

    clean = clean_paragraphs()
    junk = planted_junk(clean, seed=1)
    rows = []
    rng = random.Random(0)
    while len(rows) < docs:
        lang, text = rng.choice(clean)
        rows.append(text if rng.random() < 0.8 else rng.choice(junk)[1])
    (root / "data.jsonl").write_text(
        "".join(
            json.dumps({"text": f"{t} ({i})"}, ensure_ascii=False) + "\n"
            for i, t in enumerate(rows)
        ),
        encoding="utf-8",
    )


def models(root: Path, hidden: int, layers: int) -> dict[str, Path]:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2ForSequenceClassification

    from tinylm_data.quality.classifier import TrainSettings, train_classifier
    from tinylm_data.quality.junk import clean_paragraphs, planted_junk
    from tinylm_data.tokenizer import LoadedTokenizer

    torch.manual_seed(0)
    tokenizer = LoadedTokenizer("builtin:sample", root)
    shape = dict(
        vocab_size=tokenizer.backend.get_vocab_size(),
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(hidden // 64, 1),
        num_key_value_heads=max(hidden // 128, 1),
        max_position_embeddings=2048,
    )
    Qwen2ForCausalLM(Qwen2Config(**shape)).save_pretrained(root / "lm")
    Qwen2ForSequenceClassification(Qwen2Config(**shape, num_labels=1)).save_pretrained(root / "rm")
    tokenizer.save(root / "lm")
    tokenizer.save(root / "rm")
    clean = clean_paragraphs()[::2]
    train_classifier(
        [t for _, t in clean], [t for _, t in planted_junk(clean)], root / "clf", TrainSettings()
    )
    return {"classifier": root / "clf", "perplexity": root / "lm", "reward": root / "rm"}


def build(root: Path, out: Path, workers: int, scorer: dict | None) -> tuple[float, float]:
    from tinylm_data.build import BuildOptions, run_build
    from tinylm_data.config import parse_config

    data = {
        "name": "bench",
        "tokenizer": "builtin:sample",
        "validation_share": 0,
        "sources": [{"name": "web", "kind": "jsonl", "paths": ["data.jsonl"]}],
    }
    if scorer:
        data["quality"] = {"scorers": [scorer]}
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    result = run_build(parse_config(data), root, BuildOptions(out_root=out, workers=workers))
    return time.perf_counter() - start, result.stats["seconds"]["quality"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from tinylm_data.quality.config import ScorerConfig
    from tinylm_data.quality.scorers import load_scorer

    root = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    try:
        corpus(root, args.docs)
        paths = models(root, args.hidden, args.layers)
        texts = [json.loads(line)["text"] for line in (root / "data.jsonl").open(encoding="utf-8")]
        build(root, root / "out", args.workers, None)  # warm-up: first imports, jieba
        baseline, _ = build(root, root / "out", args.workers, None)
        print(
            f"{len(texts):,} documents; build without scorers: {baseline:.1f} s "
            f"({len(texts) / baseline:,.0f} docs/s), {args.workers} workers"
        )
        for kind, model in paths.items():
            settings = {
                "kind": kind,
                "model": str(model),
                "max_tokens": args.max_tokens,
                "batch_size": args.batch_size,
            }
            if kind != "classifier":
                settings["device"] = args.device
            scorer = load_scorer(ScorerConfig(**settings), model)
            start = time.perf_counter()
            scorer.score(texts)
            alone = time.perf_counter() - start
            with_scorer, quality_seconds = build(root, root / "out", args.workers, settings)
            print(
                f"{kind:>10}: {len(texts) / alone:,.0f} docs/s alone ({alone:.1f} s); build with it "
                f"{with_scorer:.1f} s, {with_scorer / baseline:.2f}x the build, scoring "
                f"{quality_seconds / with_scorer:.0%} of its time in the quality stage"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
