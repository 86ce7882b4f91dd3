"""DPO step time with the reference log-probs cached against a live reference model.

Builds a random Qwen2 of the given shape (an HF model directory with a word-level tokenizer) and
random preference pairs, then runs `tinylm-train dpo` (run_dpo) twice on the same pairs and
model: `dpo.reference: cached` (one reference pass over all pairs before training, no second
model) and `live` (a frozen copy forwarded every step). Prints the mean step time of each after
the first --skip steps (from metrics.jsonl), their ratio, tokens/s, the time outside the steps (loading, the cache's one reference
pass, export) and peak GPU memory when on CUDA. Figures are printed, never asserted.

    uv run python tools/bench/bench_dpo.py                      # CPU, a small model
    uv run python tools/bench/bench_dpo.py --hidden 1024 --layers 24 --heads 16 --pairs 512 \
        --batch 8 --length 512 --steps 40                       # a GPU
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def build_model(directory: Path, args) -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from tinylm_shards.testing import write_wordlevel_tokenizer

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 4,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        max_position_embeddings=args.length,
        eos_token_id=0,
        pad_token_id=0,
    )
    Qwen2ForCausalLM(config).save_pretrained(directory)
    write_wordlevel_tokenizer(directory, args.vocab)


def build_pairs(directory: Path, args) -> Path:
    from tinylm_shards.testing import write_preference_dataset

    rng = np.random.default_rng(0)
    half = args.length // 2

    def part(low, high):
        return rng.integers(1, args.vocab, size=int(rng.integers(low, high))).tolist()

    rows = [(part(half // 2, half), part(8, half), part(8, half)) for _ in range(args.pairs)]
    write_preference_dataset(
        directory, rows, max_length=args.length, vocab_size=args.vocab, rows_per_shard=1024
    )
    return directory / "prefs"


def run(reference: str, model: Path, data: Path, out: Path, args) -> dict:
    import torch

    from tinylm_train.config import validate_config
    from tinylm_train.recipes.dpo import run_dpo

    config = validate_config(
        {
            "output_dir": str(out),
            "model": {"init_from": str(model)},
            "data": {"path": str(data), "per_device_batch_size": args.batch},
            "optimisation": {"max_steps": args.steps, "warmup_steps": 1, "learning_rate": 1e-5},
            "checkpoint": {"save_steps": args.steps * 10},
            "metrics": {"report_to": [], "console_steps": args.steps},
            "dpo": {"reference": reference, "eval_batch_size": args.batch},
        }
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    run_dpo(config)
    total = time.perf_counter() - started
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if "loss" in r][args.skip :]
    tps = [r["tokens_per_s"] for r in train]
    summary = json.loads((out / "summary.json").read_text())
    return {
        "step_s": summary["train_seconds"] / args.steps,
        "tokens_per_s": float(np.median(tps)),
        "setup_s": total - summary["train_seconds"],
        "peak_gb": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--skip", type=int, default=2, help="warm-up steps left out of tokens/s")
    args = parser.parse_args()
    os.environ.setdefault("DS_ACCELERATOR", "cpu") if not _cuda() else None
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_model(root / "model", args)
        data = build_pairs(root / "data", args)
        results = {r: run(r, root / "model", data, root / r, args) for r in ("cached", "live")}
    cached, live = results["cached"], results["live"]
    print(
        f"shape hidden {args.hidden} x {args.layers} layers, {args.pairs} pairs, batch "
        f"{args.batch}, max_length {args.length}, {args.steps} steps"
    )
    for name, r in results.items():
        memory = f", peak {r['peak_gb']:.2f} GiB" if r["peak_gb"] is not None else ""
        print(
            f"{name:>6}: {r['step_s'] * 1000:8.1f} ms/step  {r['tokens_per_s']:10,.0f} tokens/s"
            f"  (load, reference cache, export {r['setup_s']:.1f} s{memory})"
        )
    print(f"live / cached step time: {live['step_s'] / cached['step_s']:.2f}x")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
