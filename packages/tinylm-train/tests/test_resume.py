"""A CLI run killed with SIGKILL after a checkpoint, then resumed, equals the uninterrupted run."""

import json
import logging
import os
import shutil
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
        while not list(killed.glob("checkpoint-*/complete.json")):
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


def _train(data: Path, out: Path, *, resume: bool = False, steps: int = 10) -> None:
    from tinylm_train.config import load_config
    from tinylm_train.recipes.pretrain import run_pretrain

    overrides = [
        f"data.path={data}", f"output_dir={out}", f"optimisation.max_steps={steps}",
        "optimisation.warmup_steps=6", "checkpoint.save_steps=5", "checkpoint.save_total_limit=2",
    ]  # fmt: skip
    run_pretrain(load_config("debug", overrides), resume=resume)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """An uninterrupted 10-step run with whole checkpoints at steps 5 and 10."""
    root = tmp_path_factory.mktemp("full")
    data = write_dataset(root / "data", num_docs=300)
    _train(data, root / "run")
    return data, root / "run"


@pytest.mark.parametrize(
    ("removed", "reason"),
    [
        ("optimizer.pt", "missing optimizer.pt"),
        ("scheduler.pt", "missing scheduler.pt"),
        ("model.safetensors", "missing the model"),
        ("trainer_state.json", "missing trainer_state.json"),
    ],
)
def test_resume_falls_back_past_a_checkpoint_that_lost_a_file(
    full_run, tmp_path, caplog, removed, reason
):
    data, full = full_run
    run = tmp_path / "run"
    shutil.copytree(full, run, ignore=shutil.ignore_patterns("final", "runs"))
    (run / "checkpoint-10" / removed).unlink()  # fault: a file lost after the save
    (run / "metrics.jsonl").write_text(
        "".join(line + "\n" for line in (full / "metrics.jsonl").read_text().splitlines()[:7])
    )  # the run went on to step 7 before it died
    with caplog.at_level(logging.INFO, logger="tinylm_train"):
        _train(data, run, resume=True)
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith(f"skipping checkpoint-10 ({reason}") and m.endswith("not whole; removing it")
        for m in messages
    ), messages
    assert any(
        m.startswith(f"resuming from {run / 'checkpoint-5'} (the newest whole checkpoint)")
        for m in messages
    ), messages
    expected, resumed = _records(full / "metrics.jsonl"), _records(run / "metrics.jsonl")
    # The scheduler was restored: step 6 has the scheduled lr, not a restarted warmup's 0.0.
    assert resumed[5]["lr"] == expected[5]["lr"] > 0
    assert [(r["step"], r["loss"], r["lr"]) for r in resumed] == [
        (r["step"], r["loss"], r["lr"]) for r in expected
    ]
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-5"]
    assert (run / "checkpoint-10" / removed).is_file()


def test_resume_without_a_whole_checkpoint_exits_with_one_line(full_run, tmp_path):
    data, full = full_run
    run = tmp_path / "run"
    shutil.copytree(full, run, ignore=shutil.ignore_patterns("final", "runs"))
    (run / "checkpoint-5" / "optimizer.pt").unlink()
    (run / "checkpoint-10" / "complete.json").unlink()
    done = subprocess.run(
        [str(ENTRY), "pretrain", "--config", "debug", "--set", f"data.path={data}",
         "--set", f"output_dir={run}", "--resume"],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert line == (
        f"error: --resume: no whole checkpoint in {run}: checkpoint-10 (no completion marker "
        "(complete.json): the save did not finish), checkpoint-5 (missing optimizer.pt) "
        "(--debug shows the traceback)"
    )
    assert not (run / "final").exists()
