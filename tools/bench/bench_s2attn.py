"""S²-Attn against full causal attention on CPU: training tokens/s and peak memory, side by side.

One training step (forward, backward, AdamW) of a Qwen2 model on rows of one `--length`-token
sample each, with `tinylm_s2attn` (groups of length x `--fraction`, half the heads shifted) and
with `tinylm_varlen` (full causal attention, the baseline). Each variant runs in its own process,
so its peak memory is its own: the growth of the peak resident set (ru_maxrss) over the process
once the model and batch are built, i.e. activations, gradients and optimizer state of the steps.
Timings are medians over interleaved rounds (the variants alternate, so a busy machine affects
them alike).

Usage: OMP_NUM_THREADS=1 uv run python tools/bench/bench_s2attn.py [--length 4096]
       [--model cpu-small] [--fraction 0.25] [--steps 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

VARIANTS = ("tinylm_s2attn", "tinylm_varlen")


def worker(attention: str, *, model_name: str, length: int, fraction: float, steps: int) -> dict:
    """Time `steps` training steps; peak RSS growth over the process before its first step."""
    import numpy as np
    import torch
    from transformers import Qwen2ForCausalLM

    from tinylm_train.collate import collate_blocks
    from tinylm_train.long_context import group_size_for
    from tinylm_train.models.qwen2 import build_config
    from tinylm_train.models.qwen2.attention import model_inputs, register_varlen_attention
    from tinylm_train.models.qwen2.shifted_sparse import register_s2_attention
    from tinylm_train.shards import Block

    register_varlen_attention()
    register_s2_attention()
    torch.manual_seed(0)
    config = build_config(
        model_name,
        tokenizer_vocab_size=1000,
        eos_id=0,
        pad_id=0,
        attn_implementation=attention,
    )
    config.max_position_embeddings = max(config.max_position_embeddings, length)
    model = Qwen2ForCausalLM(config)
    model.config.use_cache = False
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = np.random.default_rng(0).integers(1, 1000, length).astype(np.int32)
    block = Block(input_ids=ids, doc_offsets=np.array([0, length], dtype=np.int32))
    group = group_size_for(length, fraction)
    inputs = model_inputs(collate_blocks([block]), attention, group_size=group)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    def step() -> None:
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up (AdamW state allocated)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "attention": attention,
        "tokens_per_s": steps * length / seconds,
        "peak_mib_above_start": (peak - before) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--length", type=int, default=4096)
    parser.add_argument("--model", default="cpu-small")
    parser.add_argument("--fraction", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--json", help="Write the figures here too.")
    args = parser.parse_args()
    settings = {
        "model_name": args.model,
        "length": args.length,
        "fraction": args.fraction,
        "steps": args.steps,
    }
    if args.worker:
        print(json.dumps(worker(args.worker, **settings)))
        return
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for round_ in range(args.rounds):
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--worker", variant]
            command += ["--length", str(args.length), "--model", args.model]
            command += ["--fraction", str(args.fraction), "--steps", str(args.steps)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            runs[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"round {round_ + 1}/{args.rounds} {variant}: {runs[variant][-1]}", flush=True)
    result = {
        v: {
            "tokens_per_s": statistics.median(r["tokens_per_s"] for r in rs),
            "peak_mib_above_start": statistics.median(r["peak_mib_above_start"] for r in rs),
        }
        for v, rs in runs.items()
    }
    s2, full = result["tinylm_s2attn"], result["tinylm_varlen"]
    result["ratio"] = {
        "tokens_per_s": s2["tokens_per_s"] / full["tokens_per_s"],
        "peak_memory": s2["peak_mib_above_start"] / full["peak_mib_above_start"],
    }
    result["settings"] = settings | {"rounds": args.rounds}
    print(f"{args.model}, {args.length} tokens, groups of {args.fraction} x length:")
    print(f"{'':16}{'tokens/s':>12}{'peak MiB':>12}")
    for name in VARIANTS:
        print(
            f"{name:16}{result[name]['tokens_per_s']:12.0f}{result[name]['peak_mib_above_start']:12.0f}"
        )
    ratio = result["ratio"]
    print(f"{'S2 / full':16}{ratio['tokens_per_s']:12.2f}x{ratio['peak_memory']:11.2f}x")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
