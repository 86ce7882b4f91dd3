"""SFT on two real processes (gloo, DeepSpeed ZeRO-2): the `sample` normalisation's divisor is
summed over the ranks, so the step equals one process training both ranks' rows (both under
torchrun: DeepSpeed without a launcher needs mpi4py)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from sft_helpers import learnable_samples, write_sft_dataset, write_start_model

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.distributed
def test_two_ranks_under_zero2_match_one_process(tmp_path):
    data = write_sft_dataset(tmp_path / "out", learnable_samples(np.random.default_rng(0), 60))
    start = write_start_model(tmp_path / "start")
    first = {}
    for name, processes, batch in (("one", 1, 2), ("two", 2, 1)):
        launcher = [str(BIN / "torchrun"), "--nproc_per_node", str(processes)]
        launcher += ["--master_port", str(_free_port()), "--no-python"]
        raw = {
            "output_dir": str(tmp_path / name),
            "model": {"init_from": str(start)},
            "data": {"path": str(data), "per_device_batch_size": batch},
            "optimisation": {"max_steps": 1, "warmup_steps": 0, "learning_rate": 1e-3},
            "checkpoint": {"save_steps": 1},
            "sft": {"loss_normalisation": "sample"},
            "parallelism": {"deepspeed": "zero2"},
        }
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump(raw))
        done = subprocess.run(
            [*launcher, str(BIN / "tinylm-train"), "sft", "--config", str(config)],
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
        first[name] = json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[0])
    assert first["two"]["loss"] == pytest.approx(first["one"]["loss"], rel=1e-5)
    assert first["two"]["grad_norm"] == pytest.approx(first["one"]["grad_norm"], rel=1e-4)
