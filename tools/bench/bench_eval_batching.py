"""Questions/s of batched answer-letter scoring against one question at a time, same model, same predictions.

Three runs of `evaluate()` over the authored sample (or `--data` in the official layout):
  one-at-a-time   batch 1, every full prompt through the model (the seed's way)
  batched         batch N, full prompts right-padded
  batched+prefix  batch N, each subject's header + exemplars run once (key/value cache reused)
Predictions of every run must equal the one-at-a-time predictions.

Usage: OMP_NUM_THREADS=1 uv run python tools/bench/bench_eval_batching.py [--model DIR] [--batch-size 16]
       [--data DIR --subjects a,b --shots 5]
Without --model a random Qwen2 (hidden 64, 2 layers) and a BPE tokenizer trained on the sample are built.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tinylm_eval.data import SAMPLE_DIR
from tinylm_eval.evaluate import EvalConfig, evaluate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packages" / "tinylm-eval" / "tests"))


def build_model(out: Path) -> Path:
    from eval_test_helpers import save_tiny_qwen2, train_tokenizer

    tokenizer = train_tokenizer(out)
    return save_tiny_qwen2(out, len(tokenizer))


def run(model, tokenizer, config: EvalConfig) -> tuple[list[str], float]:
    start = time.perf_counter()
    _, records = evaluate(model, tokenizer, config)
    return [r["prediction"] for r in records], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--data", type=Path, help="root holding mmlu/, ceval/, cmmlu/ (default: the sample)"
    )
    parser.add_argument(
        "--subjects", help="comma-separated subjects per benchmark, e.g. mmlu:a+b,ceval:c"
    )
    parser.add_argument("--shots", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    chosen = dict(item.split(":") for item in args.subjects.split(",")) if args.subjects else {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or build_model(Path(tmp))
        model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        totals = {"one": 0.0, "batched": 0.0, "prefix": 0.0}
        questions = 0
        for benchmark, split in (("mmlu", "test"), ("ceval", "val"), ("cmmlu", "test")):
            root = (args.data or SAMPLE_DIR) / benchmark
            subjects = chosen[benchmark].split("+") if benchmark in chosen else None

            base = EvalConfig(
                benchmark=benchmark, data_dir=root, split=split, subjects=subjects, shots=args.shots
            )

            run(
                model, tokenizer, replace(base, batch_size=args.batch_size, share_prefix=True)
            )  # warm-up
            one, t_one = run(model, tokenizer, replace(base, batch_size=1, share_prefix=False))
            batched, t_batched = run(
                model, tokenizer, replace(base, batch_size=args.batch_size, share_prefix=False)
            )
            prefix, t_prefix = run(
                model, tokenizer, replace(base, batch_size=args.batch_size, share_prefix=True)
            )
            same = one == batched == prefix
            n = len(one)
            print(
                f"{benchmark:6s} {n:4d} questions: one-at-a-time {n / t_one:7.1f} q/s, "
                f"batched({args.batch_size}) {n / t_batched:7.1f} q/s ({t_one / t_batched:4.1f}x), "
                f"batched+prefix {n / t_prefix:7.1f} q/s ({t_one / t_prefix:4.1f}x), "
                f"identical predictions: {same}"
            )
            if not same:
                raise SystemExit("batched and one-at-a-time predictions differ")
            for key, seconds in (("one", t_one), ("batched", t_batched), ("prefix", t_prefix)):
                totals[key] += seconds
            questions += n
        print(
            f"all    {questions:4d} questions: batched {totals['one'] / totals['batched']:.1f}x, "
            f"batched+prefix {totals['one'] / totals['prefix']:.1f}x over one at a time"
        )


if __name__ == "__main__":
    main()
