"""Questions/s of batched answer-letter scoring against one question at a time, same model, same predictions.

Three runs of `evaluate()` over the authored sample (or `--data` in the official layout):
  one-at-a-time   batch 1, every full prompt through the model (the seed's way)
  batched         batch N, full prompts right-padded
  batched+prefix  batch N, each subject's header + exemplars run once (key/value cache reused)
All three read the same prompt ids; predictions of every run must equal the one-at-a-time predictions.

Usage: OMP_NUM_THREADS=1 uv run python tools/bench/bench_eval_batching.py [--model DIR] [--batch-size 16]
       [--data ROOT --subjects mmlu:a+b,ceval:c --shots 5] [--shape cpu-small|tiny] [--tokenizer DIR]
       [--repeat 3]
Without --model a random Qwen2 is built: `cpu-small` is tinylm-train's CPU shape (hidden 128, 4 layers,
4 heads), `tiny` the test model (hidden 64, 2 layers). Its tokenizer is --tokenizer, else the Qwen1.5
tokenizer found at ROOT/qwen1.5-tokenizer, else (or with `--tokenizer sample`) a 600-token BPE trained
on the sample. Each mode runs --repeat times, interleaved; the fastest run of each counts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2ForCausalLM

from tinylm_eval.data import SAMPLE_DIR
from tinylm_eval.evaluate import EvalConfig, evaluate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packages" / "tinylm-eval" / "tests"))

SHAPES = ("cpu-small", "tiny")


def build_model(shape: str, tokenizer_dir: Path | None, out: Path):
    """A random Qwen2 of `shape` with the tokenizer of `tokenizer_dir` (or one trained on the sample).

    "cpu-small" is built by tinylm-train itself (the model the README's first command trains),
    "tiny" by the eval tests' own helper, so neither shape is restated here.
    """
    from eval_test_helpers import save_tiny_qwen2, train_tokenizer

    from tinylm_train.models import build_config

    tokenizer = (
        train_tokenizer(out)
        if tokenizer_dir is None
        else AutoTokenizer.from_pretrained(tokenizer_dir)
    )
    torch.manual_seed(0)
    if shape == "tiny":
        save_tiny_qwen2(out / "tiny", len(tokenizer))
        return AutoModelForCausalLM.from_pretrained(out / "tiny").eval(), tokenizer
    eos = tokenizer.eos_token_id
    config = build_config(
        shape,
        tokenizer_vocab_size=len(tokenizer),
        eos_id=eos,
        pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos,
    )
    return Qwen2ForCausalLM(config).eval(), tokenizer


def run(model, tokenizer, config: EvalConfig) -> tuple[list[str], float]:
    start = time.perf_counter()
    _, records = evaluate(model, tokenizer, config)
    return [r["prediction"] for r in records], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--shape", choices=SHAPES, default="cpu-small")
    parser.add_argument(
        "--tokenizer", help="a tokenizer directory, or 'sample' for the BPE trained on the sample"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--data", type=Path, help="root holding mmlu/, ceval/, cmmlu/ (default: the sample)"
    )
    parser.add_argument(
        "--subjects", help="comma-separated subjects per benchmark, e.g. mmlu:a+b,ceval:c"
    )
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode; the fastest counts")
    args = parser.parse_args()
    torch.set_num_threads(1)
    chosen = dict(item.split(":") for item in args.subjects.split(",")) if args.subjects else {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            model = AutoModelForCausalLM.from_pretrained(args.model).eval()
            tokenizer = AutoTokenizer.from_pretrained(args.model)
            print(f"model {args.model}")
        else:
            tokenizer_dir = None if args.tokenizer in (None, "sample") else Path(args.tokenizer)
            qwen = args.data / "qwen1.5-tokenizer" if args.data else None
            if args.tokenizer is None and qwen and qwen.is_dir():
                tokenizer_dir = qwen
            model, tokenizer = build_model(args.shape, tokenizer_dir, Path(tmp))
            print(
                f"random Qwen2 {args.shape}, tokenizer {tokenizer_dir.name if tokenizer_dir else 'sample BPE'}"
                f" ({len(tokenizer)} tokens), batch {args.batch_size}, {args.shots} shots"
            )
        totals = {"one": 0.0, "batched": 0.0, "prefix": 0.0}
        questions = 0
        for benchmark, split in (("mmlu", "test"), ("ceval", "val"), ("cmmlu", "test")):
            root = (args.data or SAMPLE_DIR) / benchmark
            subjects = chosen[benchmark].split("+") if benchmark in chosen else None
            base = EvalConfig(
                benchmark=benchmark, data_dir=root, split=split, subjects=subjects, shots=args.shots
            )

            modes = {
                "one": replace(base, batch_size=1, share_prefix=False),
                "batched": replace(base, batch_size=args.batch_size, share_prefix=False),
                "prefix": replace(base, batch_size=args.batch_size, share_prefix=True),
            }
            run(model, tokenizer, modes["prefix"])  # warm-up
            # why: the machine is shared; interleaved repeats, the fastest of each mode counts
            best: dict[str, float] = {}
            got: dict[str, list[str]] = {}
            for _ in range(args.repeat):
                for mode, config in modes.items():
                    got[mode], seconds = run(model, tokenizer, config)
                    best[mode] = min(seconds, best.get(mode, seconds))
            one, batched, prefix = got["one"], got["batched"], got["prefix"]
            t_one, t_batched, t_prefix = best["one"], best["batched"], best["prefix"]
            same = one == batched == prefix
            n = len(one)
            print(
                f"{benchmark:6s} {n:4d} questions: one-at-a-time {n / t_one:7.1f} q/s, "
                f"batched({args.batch_size}) {n / t_batched:7.1f} q/s ({t_one / t_batched:4.1f}x), "
                f"batched+prefix {n / t_prefix:7.1f} q/s ({t_one / t_prefix:4.1f}x), "
                f"identical predictions: {same}",
                flush=True,
            )
            if not same:
                raise SystemExit("batched and one-at-a-time predictions differ")
            for key, seconds in (("one", t_one), ("batched", t_batched), ("prefix", t_prefix)):
                totals[key] += seconds
            questions += n
        print(
            f"all    {questions:4d} questions: one-at-a-time {questions / totals['one']:.1f} q/s, "
            f"batched {questions / totals['batched']:.1f} q/s "
            f"({totals['one'] / totals['batched']:.1f}x), batched+prefix "
            f"{questions / totals['prefix']:.1f} q/s ({totals['one'] / totals['prefix']:.1f}x)"
        )


if __name__ == "__main__":
    main()
