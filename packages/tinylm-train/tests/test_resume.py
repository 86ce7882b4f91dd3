"""A CLI run killed with SIGKILL after a checkpoint, then resumed, equals the uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinylm_shards.testing import write_dataset

ENTRY = Path(sys.executable).with_name("tinylm-train")
STEPS = 60


def _command(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        str(ENTRY), "pretrain", "--config", "debug",
        "--set", f"data.path={data}", "--set", f"output_dir={out}", "--set", f"optimisation.max_steps={STEPS}",
        "--set", "checkpoint.save_steps=5", "--set", "checkpoint.save_total_limit=2", "--set", "data.record_blocks=true",
        *extra,
    ]  # fmt: skip


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_killed_and_resumed_run_reproduces_the_uninterrupted_losses(tmp_path):
    data = write_dataset(tmp_path / "data", num_docs=300)  # ~100 blocks: the run crosses epochs
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    full = tmp_path / "full"
    subprocess.run(_command(data, full), env=env, check=True, capture_output=True, timeout=600)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _command(data, killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    try:
        while not list(killed.glob("checkpoint-*/data-rank0.json")):
            assert proc.poll() is None, "the run ended before it wrote a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "final").exists(), "killed too late: the run had finished"
    interrupted_at = max(r["step"] for r in _records(killed / "metrics.jsonl"))
    assert interrupted_at < STEPS

    subprocess.run(
        _command(data, killed) + ["--resume"], env=env, check=True, capture_output=True, timeout=600
    )
    expected, resumed = _records(full / "metrics.jsonl"), _records(killed / "metrics.jsonl")
    assert [r["step"] for r in resumed] == list(range(1, STEPS + 1))
    assert [r["loss"] for r in resumed] == [r["loss"] for r in expected]  # exact, not close
    assert [r["grad_norm"] for r in resumed] == [r["grad_norm"] for r in expected]
    # The data position was restored: every step trained on the same blocks, none twice or missed.
    assert _records(killed / "blocks-rank0.jsonl") == _records(full / "blocks-rank0.jsonl")
    assert (killed / "final" / "model.safetensors").is_file()
