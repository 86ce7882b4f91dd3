"""Tokens/s and MFU of tinylm-0.5b pretraining with the pipeline engine on CUDA: 1024-token packed
blocks, varlen attention, bf16 with DeepSpeed's BF16 optimizer (fp32 gradient accumulation), ZeRO-1.

One GPU: P=1 (the pipeline engine's own loop and layers, no stage boundary). With --stages 2 on a
machine with 2+ GPUs it launches itself under torchrun as P=2 x DP=(GPUs/2). It runs the product
path, `run_pretrain` with `parallelism.engine=pipeline`, on synthetic shards with the Qwen1.5
vocabulary size (151646 ids), then reads the run's metrics.jsonl: tokens/s and MFU (6·N + 12·L·d·T
FLOPs per token against --peak-tflops; 989: H100/H200 dense bf16). The first --warmup steps are
left out of the medians. Compare with bench_train_gpu.py (the HF engine, same shape and batch).

Usage: uv run python tools/bench/bench_pipeline_gpu.py [--steps 40] [--batch 16]
       [--micro-batches 1] [--stages 1] [--warmup 10] [--peak-tflops 989] [--work DIR]
Exits with status 2 and a message when no CUDA device is present.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

QWEN_VOCAB = 151646


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=16, help="1024-token blocks per step.")
    parser.add_argument("--warmup", type=int, default=10, help="Steps left out of the medians.")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--stages", type=int, default=1, help="Pipeline stages P.")
    parser.add_argument(
        "--micro-batches", type=int, default=1, help="Micro-batches per step (accumulation)."
    )
    parser.add_argument("--work", help="Directory for shards and the run (default: a temp dir).")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print(
            "bench_pipeline_gpu.py needs a CUDA GPU: torch.cuda.is_available() is False here. "
            "Run it on a machine with an H100/H200-class GPU (CPU figures: bench_train.py).",
            file=sys.stderr,
        )
        return 2
    if not hasattr(torch.nn.attention, "varlen"):
        print(f"torch {torch.__version__} lacks torch.nn.attention.varlen", file=sys.stderr)
        return 2
    import torch.nn.attention.varlen  # noqa: F401  (fails here, not mid-run, if missing)

    from tinylm_shards.testing import write_dataset
    from tinylm_train.config import load_config
    from tinylm_train.recipes.pretrain import run_pretrain

    gpus = torch.cuda.device_count()
    if args.stages > 1 and "WORLD_SIZE" not in os.environ:
        if gpus < args.stages:
            print(f"--stages {args.stages} needs {args.stages} GPUs, {gpus} here", file=sys.stderr)
            return 2
        nproc = gpus - gpus % args.stages
        torchrun = Path(sys.executable).with_name("torchrun")
        return subprocess.call([str(torchrun), "--nproc_per_node", str(nproc), *sys.argv])
    for key, value in {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29561",
    }.items():
        os.environ.setdefault(key, value)

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-train-gpu-"))
    data = work / "data" / "sample"
    if not data.is_dir():
        blocks = (args.steps + 1) * args.batch * args.micro_batches * max(1, gpus // args.stages)
        # Documents up to 1500 tokens (mean ~750): packed blocks hold one to a few documents.
        write_dataset(
            work / "data",
            vocab_size=QWEN_VOCAB,
            block_size=1024,
            num_docs=blocks * 1024 // 750 + 8,
            max_doc_len=1500,
            rows_per_shard=256,
            row_group_size=64,
        )
    out = work / "run"
    config = load_config(
        "debug",
        [
            f"data.path={data}",
            f"output_dir={out}",
            "model.name=tinylm-0.5b",
            f"optimisation.max_steps={args.steps}",
            "optimisation.warmup_steps=2",
            f"data.per_device_batch_size={args.batch}",
            f"checkpoint.save_steps={args.steps * 10}",  # no checkpoint inside the timed window
            "model.bf16=true",
            "model.attention=tinylm_varlen",
            "parallelism.deepspeed=zero1",
            "parallelism.engine=pipeline",
            f"parallelism.pipeline_stages={args.stages}",
            f"optimisation.gradient_accumulation_steps={args.micro_batches}",
            f"metrics.peak_flops={args.peak_tflops * 1e12}",
        ],
    )
    print(
        f"{torch.cuda.get_device_name()}: tinylm-0.5b, {args.batch} x 1024 tokens a step, "
        f"varlen attention, bf16, ZeRO-1, pipeline P={args.stages}, "
        f"{args.micro_batches} micro-batches, {args.steps} steps"
    )
    run_pretrain(config)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    timed = rows[args.warmup :] or rows
    tps = statistics.median(r["tokens_per_s"] for r in timed)
    mfu = statistics.median(r["mfu"] for r in timed)
    print(
        f"steps {timed[0]['step']}-{timed[-1]['step']}: loss {rows[0]['loss']:.3f} -> {rows[-1]['loss']:.3f}"
    )
    print(f"tokens/s {tps:,.0f}   MFU {mfu:.1%} of {args.peak_tflops:g} TFLOP/s (target >= 45%)")
    print(f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
