"""Questions/s of batched answer-letter scoring against one question at a time, same model, same predictions.

Three runs of each benchmark task's `evaluate()` over the authored sample (or `--data` in the official layout):
  one-at-a-time   batch 1, every full prompt through the model (the seed's way)
  batched         batch N, full prompts right-padded
  batched+prefix  batch N, each subject's header + exemplars run once (key/value cache reused)
All three read the same prompt ids; predictions of every run must equal the one-at-a-time predictions.

Usage: OMP_NUM_THREADS=1 uv run python tools/bench/bench_eval_batching.py [--model DIR] [--batch-size 16]
       [--data ROOT --subjects mmlu:a+b,ceval:c --shots 5] [--questions N]
       [--shape cpu-small|tinylm-0.5b|tiny] [--tokenizer DIR] [--modes one,batched,prefix] [--repeat 3]
Without --model a random Qwen2 is built: `cpu-small` is tinylm-train's CPU shape (hidden 128, 4 layers,
4 heads; the README's model), `tinylm-0.5b` the Qwen1.5-0.5B shape, `tiny` the test model (hidden 64,
2 layers). Its tokenizer is --tokenizer, else the Qwen1.5 tokenizer found at ROOT/qwen1.5-tokenizer,
else (or with `--tokenizer sample`) a 600-token BPE trained on the sample. `--questions N` scores only
the first N questions of each subject (all exemplars kept), for models too slow to score whole
subjects one at a time. Each mode runs --repeat times, interleaved; the fastest run of each counts.
As the CLI does on CPU, glibc keeps freed buffers in the heap (`cpu_allocator`); `--glibc-defaults`
measures without that.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2ForCausalLM

from tinylm_eval.cpu_allocator import keep_freed_memory
from tinylm_eval.data import SAMPLE_DIR
from tinylm_eval.models.hf import HFModel
from tinylm_eval.tasks import ChoiceConfig, multiple_choice_tasks

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packages" / "tinylm-eval" / "tests"))

SHAPES = ("cpu-small", "tinylm-0.5b", "tiny")


def build_model(shape: str, tokenizer_dir: Path | None, out: Path):
    """A random Qwen2 of `shape` with the tokenizer of `tokenizer_dir` (or one trained on the sample).

    "cpu-small" (the model the README's first command trains) and "tinylm-0.5b" are built by
    tinylm-train itself, "tiny" by the eval tests' own helper, so no shape is restated here.
    """
    from eval_test_helpers import save_tiny_qwen2, train_tokenizer

    from tinylm_train.models.qwen2 import build_config

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


def first_questions(root: Path, chosen: dict[str, list[str]], count: int, out: Path) -> Path:
    """A copy of the chosen subjects under `out`: dev files whole, scored splits cut to `count` rows."""
    for benchmark, task in multiple_choice_tasks().items():
        source, split = root / benchmark, task.split
        for subject in chosen.get(benchmark) or task.layout.subjects(source, split):
            for part in ("dev", split):
                path = task.layout.path(source, part, subject)
                target = out / benchmark / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                with path.open(newline="", encoding="utf-8") as f:
                    rows = list(csv.reader(f))
                if part == split:
                    header = 0 if benchmark == "mmlu" else 1
                    rows = rows[: header + count]
                with target.open("w", newline="", encoding="utf-8") as f:
                    csv.writer(f).writerows(rows)
    return out


def run(model: HFModel, task, config: ChoiceConfig) -> tuple[list[str], float]:
    start = time.perf_counter()
    _, records = task.evaluate(model, config)
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
    parser.add_argument(
        "--questions", type=int, help="score only the first N questions of a subject"
    )
    parser.add_argument(
        "--modes", default="one,batched,prefix", help="of one,batched,prefix; one is always run"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode; the fastest counts")
    parser.add_argument("--glibc-defaults", action="store_true", help="leave malloc as it is")
    args = parser.parse_args()
    tuned = False if args.glibc_defaults else keep_freed_memory()
    torch.set_num_threads(1)
    chosen = {
        benchmark: names.split("+")
        for benchmark, names in (
            item.split(":") for item in (args.subjects or "").split(",") if item
        )
    }
    unknown = set(args.modes.split(",")) - {"one", "batched", "prefix"}
    if unknown:
        parser.error(f"unknown --modes {', '.join(sorted(unknown))}: of one, batched, prefix")
    wanted = ["one", *(m for m in ("batched", "prefix") if m in args.modes.split(","))]
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or SAMPLE_DIR
        if args.questions:
            data = first_questions(data, chosen, args.questions, Path(tmp) / "questions")
        if args.model:
            model = AutoModelForCausalLM.from_pretrained(args.model).eval()
            tokenizer = AutoTokenizer.from_pretrained(args.model)
            print(f"model {args.model}, freed memory kept in the heap: {tuned}")
        else:
            tokenizer_dir = None if args.tokenizer in (None, "sample") else Path(args.tokenizer)
            qwen = args.data / "qwen1.5-tokenizer" if args.data else None
            if args.tokenizer is None and qwen and qwen.is_dir():
                tokenizer_dir = qwen
            model, tokenizer = build_model(args.shape, tokenizer_dir, Path(tmp))
            print(
                f"random Qwen2 {args.shape}, tokenizer {tokenizer_dir.name if tokenizer_dir else 'sample BPE'}"
                f" ({len(tokenizer)} tokens), batch {args.batch_size}, {args.shots} shots,"
                f" freed memory kept in the heap: {tuned}"
            )
        totals = dict.fromkeys(wanted, 0.0)
        questions = 0
        lm = HFModel(model, tokenizer)
        for benchmark, task in multiple_choice_tasks().items():
            root = data / benchmark
            base = ChoiceConfig(
                data_dir=root,
                split=task.split,
                subjects=chosen.get(benchmark),
                shots=args.shots,
            )

            every = {
                "one": replace(base, batch_size=1, share_prefix=False),
                "batched": replace(base, batch_size=args.batch_size, share_prefix=False),
                "prefix": replace(base, batch_size=args.batch_size, share_prefix=True),
            }
            modes = {mode: every[mode] for mode in wanted}
            run(lm, task, every["prefix"])  # warm-up
            # why: the machine is shared; interleaved repeats, the fastest of each mode counts
            best: dict[str, float] = {}
            got: dict[str, list[str]] = {}
            for _ in range(args.repeat):
                for mode, config in modes.items():
                    got[mode], seconds = run(lm, task, config)
                    best[mode] = min(seconds, best.get(mode, seconds))
            same = all(got[mode] == got["one"] for mode in wanted)
            n = len(got["one"])
            print(
                f"{benchmark:6s} {n:4d} questions: {_rates(n, best, args.batch_size)}, "
                f"identical predictions: {same}",
                flush=True,
            )
            if not same:
                raise SystemExit("batched and one-at-a-time predictions differ")
            for mode in wanted:
                totals[mode] += best[mode]
            questions += n
        print(f"all    {questions:4d} questions: {_rates(questions, totals, args.batch_size)}")


def _rates(questions: int, seconds: dict[str, float], batch_size: int) -> str:
    """Questions/s of each mode, and each batched mode's speed-up over one at a time."""
    labels = {"batched": f"batched({batch_size})", "prefix": "batched+prefix"}
    parts = [f"one-at-a-time {questions / seconds['one']:8.2f} q/s"]
    for mode, label in labels.items():
        if mode in seconds:
            parts.append(
                f"{label} {questions / seconds[mode]:8.2f} q/s "
                f"({seconds['one'] / seconds[mode]:4.1f}x)"
            )
    return ", ".join(parts)


if __name__ == "__main__":
    main()
