"""Questions/s of batched answer-letter scoring against one question at a time, same model, same predictions.

Usage: OMP_NUM_THREADS=1 uv run python tools/bench/bench_eval_batching.py [--model DIR] [--batch-size 16]
Without --model a random Qwen2 (hidden 64, 2 layers) and a BPE tokenizer trained on the sample are built.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tinylm_eval.data import SAMPLE_DIR
from tinylm_eval.scoring import answer_token_ids, predictions, score_letters

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packages" / "tinylm-eval" / "tests"))


def build_model(out: Path) -> Path:
    from eval_test_helpers import train_tokenizer
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = train_tokenizer(out)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
    )
    Qwen2ForCausalLM(config).save_pretrained(out)
    return out


def prompts_of(tokenizer, benchmark, split):
    """The prompts evaluate() scores (built once: only the model calls are timed)."""
    from tinylm_eval.data import list_subjects, read_subject
    from tinylm_eval.prompts import FORMATS, build_prompt, choose_shots

    fmt, root, ids = FORMATS[benchmark], SAMPLE_DIR / benchmark, []
    for subject in list_subjects(benchmark, root, split):
        shots = choose_shots(read_subject(benchmark, root, "dev", subject), 3, None)
        for question in read_subject(benchmark, root, split, subject):
            text = build_prompt(fmt, question, shots, lambda t: 0, 1).text
            ids.append(tokenizer.encode(text, add_special_tokens=False))
    letters = answer_token_ids(tokenizer, [fmt.answer_text(x) for x in "ABCD"])
    return ids, letters


def run(model, tokenizer, prompts, letters, batch_size):
    start = time.perf_counter()
    scores = score_letters(model, tokenizer, prompts, letters, batch_size)
    return predictions(scores), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or build_model(Path(tmp))
        model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        total_one = total_batched = questions = 0.0
        for benchmark, split in (("mmlu", "test"), ("ceval", "val"), ("cmmlu", "test")):
            prompts, letters = prompts_of(tokenizer, benchmark, split)
            run(model, tokenizer, prompts, letters, args.batch_size)  # warm-up
            one, t_one = run(model, tokenizer, prompts, letters, 1)
            batched, t_batched = run(model, tokenizer, prompts, letters, args.batch_size)
            same = one == batched
            print(
                f"{benchmark:6s} {len(one):3d} questions: one-at-a-time {len(one) / t_one:7.1f} q/s, "
                f"batched({args.batch_size}) {len(one) / t_batched:7.1f} q/s, "
                f"speed-up {t_one / t_batched:4.1f}x, identical predictions: {same}"
            )
            if not same:
                raise SystemExit("batched and one-at-a-time predictions differ")
            total_one, total_batched, questions = (
                total_one + t_one,
                total_batched + t_batched,
                questions + len(one),
            )
        print(f"all    {int(questions):3d} questions: speed-up {total_one / total_batched:.1f}x")


if __name__ == "__main__":
    main()
