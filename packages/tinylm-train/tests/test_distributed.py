"""Two real processes on CPU (gloo): DeepSpeed ZeRO-1/2 through the Trainer, and plain DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinylm_shards.testing import write_dataset
from tinylm_train.checkpoint import checkpoint_problems

BIN = Path(sys.executable).parent
PER_DEVICE = 4
STEPS = 4


def _run(launcher: list[str], tmp_path: Path, out: Path, stage: int | None) -> None:
    write_dataset(tmp_path / "data", num_docs=200)
    command = [
        *launcher, str(BIN / "tinylm-train"), "pretrain", "--config", "debug",
        "--set", f"data.path={tmp_path / 'data' / 'sample'}", "--set", f"output_dir={out}",
        "--set", f"optimisation.max_steps={STEPS}", "--set", f"checkpoint.save_steps={STEPS}", "--set", "optimisation.warmup_steps=1",
        "--set", f"data.per_device_batch_size={PER_DEVICE}", "--set", "data.record_blocks=true",
    ]  # fmt: skip
    if stage is not None:
        command += ["--set", f"parallelism.deepspeed=zero{stage}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]


def _check_two_ranks(out: Path) -> None:
    # Metrics are written once, by rank 0: one record per step.
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    assert all(r["loss"] == r["loss"] and r["loss"] > 0 for r in records)
    # The ranks split the data: per step each trains on its own PER_DEVICE blocks, no block twice,
    # so the global batch is 2 x PER_DEVICE.
    per_rank = []
    for rank in (0, 1):
        rows = [
            json.loads(line) for line in (out / f"blocks-rank{rank}.jsonl").read_text().splitlines()
        ]
        assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
        assert all(len(r["blocks"]) == PER_DEVICE for r in rows)
        per_rank.append([b for r in rows for b in r["blocks"]])
    assert not set(per_rank[0]) & set(per_rank[1])
    assert len(set(per_rank[0]) | set(per_rank[1])) == 2 * PER_DEVICE * STEPS
    checkpoint = out / f"checkpoint-{STEPS}"
    for rank in (0, 1):
        state = json.loads((checkpoint / f"data-rank{rank}.json").read_text())
        assert (state["rank"], state["world_size"], state["index"]) == (rank, 2, PER_DEVICE * STEPS)
    # Rank 0 marked the checkpoint whole only once both ranks' files were there.
    assert checkpoint_problems(checkpoint, world_size=2) == []
    marked = json.loads((checkpoint / "complete.json").read_text())["files"]
    assert {"data-rank0.json", "data-rank1.json", "trainer_state.json"} <= set(marked)
    assert (out / "final" / "config.json").is_file()
    assert (out / "final" / "model.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("stage", [1, 2, None], ids=["zero1", "zero2", "ddp"])
def test_two_process_run_under_torchrun(tmp_path, stage):
    out = tmp_path / f"zero{stage}"
    _run([str(BIN / "torchrun"), "--nproc_per_node", "2", "--no-python"], tmp_path, out, stage)
    _check_two_ranks(out)


@pytest.mark.slow
@pytest.mark.distributed
def test_two_process_zero_run_under_the_deepspeed_launcher(tmp_path):
    out = tmp_path / "ds-launcher"
    launcher = [str(BIN / "deepspeed"), "--num_gpus", "2", "--no_python", "--master_port", "29517"]
    _run(launcher, tmp_path, out, 1)
    _check_two_ranks(out)
