"""Samples/s of the SFT builder against bare tokenization of the same text.

Reads the real instruction sets in ../shared/data/sft (Alpaca en/zh, BELLE's eval set,
ShareGPT-style medical and Chinese chat, python-codes; the embedded SFT sample when they are
absent), renders every conversation with the template once, and measures with the same tokenizer:

  bare     one `encode_batch_fast` call over the rendered conversations (the baseline)
  encode   the builder's turn-by-turn tokenization with the label mask and the
           joined-equals-whole check (`ConversationEncoder`), no I/O
  build    the whole `run_sft_build` with one encoding process: read, clean, dedup, hold out,
           augment, encode, pack, write shards, rejects, stats, plots and the tokenizer
  build-N  the same with N encoding worker processes (`--workers`, default 2)

and prints samples/s, tokens/s and the ratios encode/bare and build/bare. Each run keeps its
fastest of `--repeat`. Figures are printed, never asserted.

    uv run python tools/bench/bench_sft_build.py --repeat 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SOURCES = [
    {"name": "alpaca_en", "kind": "alpaca", "paths": ["sft/alpaca_en_demo.json"]},
    {"name": "alpaca_zh", "kind": "alpaca", "paths": ["sft/alpaca_zh_demo.json"]},
    {
        "name": "belle_eval",
        "kind": "alpaca",
        "paths": ["sft/belle_eval_set.jsonl"],
        "fields": {"instruction": "question", "output": "std_answer"},
    },
    {"name": "medical", "kind": "sharegpt", "paths": ["sft/medical_sft_1K_format.jsonl"]},
    {"name": "sharegpt_zh", "kind": "sharegpt", "paths": ["sft/sharegpt_zh_1K_format.jsonl"]},
    {"name": "python_codes", "kind": "alpaca", "paths": ["sft/python-codes-25k.sample.json"]},
]


def shared_data() -> Path:
    return Path(os.environ.get("TINYLM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def config_and_base(template: str, tokenizer: str | None):
    from tinylm_data.cli_sft import resolve_sft_config
    from tinylm_data.config import parse_model
    from tinylm_data.sft import SftConfig

    data = shared_data()
    if (data / "sft").is_dir():
        qwen = data / "qwen1.5-tokenizer"
        spec = tokenizer or (str(qwen) if qwen.is_dir() else "builtin:sample")
        settings = {"name": "bench", "tokenizer": spec, "template": template, "sources": SOURCES}
        return parse_model(SftConfig, settings), data
    overrides = {"template": template, **({"tokenizer": tokenizer} if tokenizer else {})}
    return resolve_sft_config("sample", None, overrides)


def conversations(config, base):
    from tinylm_data.readers import expand_paths
    from tinylm_data.sft import Conversation, read_conversations

    out = []
    for source in config.sources:
        for path in expand_paths(source.paths, base):
            for item in read_conversations(
                source.kind, path, source=source.name, fields=source.fields
            ):
                if isinstance(item, Conversation):
                    out.append(item)
    return out


def best(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="chatml", choices=["tinylm", "chatml"])
    parser.add_argument("--tokenizer", default=None, help="default: Qwen1.5 beside the checkout")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="encoding workers of build-N")
    args = parser.parse_args()

    from tinylm_data.sft import TEMPLATES, ConversationEncoder, EncodeError, run_sft_build
    from tinylm_data.sft.builder import ChatTokenizer

    config, base = config_and_base(args.template, args.tokenizer)
    tokenizer = ChatTokenizer(config.tokenizer, base, TEMPLATES[config.template])
    encoder = ConversationEncoder(
        tokenizer.backend,
        TEMPLATES[config.template],
        eos_token=tokenizer.eos_token,
        max_length=config.max_length,
    )
    samples = conversations(config, base)
    texts = [encoder.render(c) for c in samples]
    encoded = tokenizer.backend.encode_batch_fast(texts, add_special_tokens=False)
    tokens = sum(len(e.ids) for e in encoded)

    def bare():
        tokenizer.backend.encode_batch_fast(texts, add_special_tokens=False)

    def encode():
        for conversation in samples:
            with contextlib.suppress(EncodeError):
                encoder.encode(conversation)

    scratch = Path(tempfile.mkdtemp(prefix="bench-sft-"))

    def build(workers: int):
        shutil.rmtree(scratch / "out", ignore_errors=True)
        run_sft_build(config, base, scratch / "out", workers=workers)

    try:
        timings = {"bare": best(args.repeat, bare), "encode": best(args.repeat, encode)}
        timings["build"] = best(args.repeat, lambda: build(1))
        timings[f"build-{args.workers}"] = best(args.repeat, lambda: build(args.workers))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"{len(samples):,} conversations, {tokens:,} tokens, tokenizer {config.tokenizer}, "
        f"template {config.template}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}, "
        f"{os.cpu_count()} cores"
    )
    for name, seconds in timings.items():
        print(
            f"{name:>7}: {seconds:7.2f} s  {len(samples) / seconds:9,.0f} samples/s  "
            f"{tokens / seconds:11,.0f} tokens/s  ratio to bare {timings['bare'] / seconds:.2f}"
        )


if __name__ == "__main__":
    main()
