"""The pipeline bubble on CPU: tokens/s of a 2-stage pipeline against micro-batches per step,
next to the HF engine (data parallel) on the same 2 processes.

For each m in --micro-batches (gradient accumulation = micro-batches per step), three runs of the
product CLI on the same shards, model and per-micro-batch size:
  pipeline  engine 'pipeline', P=2 x DP=1 (torchrun, 2 processes, gloo)
  hf-dp2    engine 'hf', data parallel (DDP, gloo) on the same 2 processes
  single    engine 'hf', one process (the work of the whole model on one core)
The measured bubble is 1 - pipeline / (2 x single): the share of the two processes' time not
spent computing (idle stages, plus the sends between stages), printed against the schedule's
(P-1)/(m+P-1). Figures are medians of each run's metrics.jsonl tokens/s after --warmup steps.

Usage: OMP_NUM_THREADS=1 uv run python tools/bench/bench_pipeline.py [--data OUT/sample]
       [--model cpu-small] [--micro-batches 1 2 4 8] [--batch 1] [--steps 12] [--warmup 2]
Without --data a synthetic shard set is written (tinylm_shards.testing, 1024-token blocks).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
STAGES = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(kind: str, micro: int, args, data: Path, out: Path) -> float:
    command = [str(BIN / "tinylm-train"), "pretrain", "--config", "debug"]
    if kind != "single":
        command = [
            str(BIN / "torchrun"), "--nproc_per_node", "2", "--no-python",
            "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), *command,
        ]  # fmt: skip
    settings = {
        "data.path": data,
        "output_dir": out,
        "model.name": args.model,
        "model.bf16": "false",
        "optimisation.max_steps": args.steps,
        "optimisation.warmup_steps": 1,
        "optimisation.gradient_accumulation_steps": micro,
        "data.per_device_batch_size": args.batch,
        "checkpoint.save_steps": args.steps,
        "metrics.report_to": "[]",
    }
    if kind == "pipeline":
        settings |= {"parallelism.engine": "pipeline", "parallelism.pipeline_stages": STAGES}
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{kind} m={micro} failed:\n{done.stderr[-3000:]}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in rows if "loss" in r][args.warmup :]
    return statistics.median(r["tokens_per_s"] for r in timed)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path)
    parser.add_argument("--model", default="cpu-small")
    parser.add_argument("--micro-batches", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--batch", type=int, default=1, help="Blocks per micro-batch.")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    data = args.data
    if data is None:
        from tinylm_shards.testing import write_dataset

        blocks = 2 * args.steps * max(args.micro_batches) * args.batch + 16
        data = write_dataset(
            work / "data", vocab_size=8000, block_size=1024, num_docs=blocks * 1024 // 400,
            max_doc_len=800, rows_per_shard=256, row_group_size=64,
        )  # fmt: skip
    print(f"{args.model}, {args.batch} x 1024 tokens a micro-batch, P={STAGES}, CPU gloo")
    print(f"{'m':>3} {'pipeline tok/s':>15} {'hf-dp2 tok/s':>13} {'pipe/hf':>8} "
          f"{'single tok/s':>13} {'bubble':>7} {'(P-1)/(m+P-1)':>14}")  # fmt: skip
    for micro in args.micro_batches:
        tps = {
            kind: _run(kind, micro, args, data, work / f"{kind}-m{micro}")
            for kind in ("pipeline", "hf-dp2", "single")
        }
        bubble = 1 - tps["pipeline"] / (STAGES * tps["single"])
        estimate = (STAGES - 1) / (micro + STAGES - 1)
        print(
            f"{micro:>3} {tps['pipeline']:>15,.0f} {tps['hf-dp2']:>13,.0f} "
            f"{tps['pipeline'] / tps['hf-dp2']:>8.2f} {tps['single']:>13,.0f} "
            f"{bubble:>7.1%} {estimate:>14.1%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
