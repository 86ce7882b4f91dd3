"""tinylm-train dpo in two real processes on CPU (gloo) under DeepSpeed ZeRO-2 and torchrun."""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tinylm_shards.testing import write_preference_dataset, write_wordlevel_tokenizer
from tinylm_train.checkpoint import checkpoint_problems

BIN = Path(sys.executable).parent
STEPS, PER_DEVICE = 3, 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tiny_model(directory: Path) -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, eos_token_id=0, pad_token_id=0,
    )  # fmt: skip
    Qwen2ForCausalLM(config).save_pretrained(directory)
    write_wordlevel_tokenizer(directory, 100)


@pytest.mark.slow
@pytest.mark.distributed
def test_two_process_zero2_dpo_run(tmp_path):
    _tiny_model(tmp_path / "model")
    rng = np.random.default_rng(0)

    def rows(n):
        return [tuple(rng.integers(1, 100, size=4).tolist() for _ in range(3)) for _ in range(n)]

    write_preference_dataset(tmp_path / "data", rows(16), validation_pairs=rows(6), max_length=16)
    out = tmp_path / "run"
    raw = {
        "output_dir": str(out),
        "model": {"init_from": str(tmp_path / "model")},
        "data": {"path": str(tmp_path / "data" / "prefs"), "per_device_batch_size": PER_DEVICE},
        "optimisation": {"max_steps": STEPS, "warmup_steps": 1},
        "checkpoint": {"save_steps": STEPS},
        "metrics": {"eval_steps": STEPS, "report_to": []},
        "parallelism": {"deepspeed": "zero2", "world_size": 2},
        "dpo": {"beta": 0.1, "eval_batch_size": 4},
    }
    config = tmp_path / "dpo.yaml"
    config.write_text(yaml.safe_dump(raw))
    launcher = [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", str(_free_port())]
    command = [*launcher, "--no-python", str(BIN / "tinylm-train"), "dpo", "--config", str(config)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if "loss" in r]
    assert [r["step"] for r in train] == list(range(1, STEPS + 1))  # rank 0 writes, once
    assert train[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert train[0]["rewards/margins"] == pytest.approx(0, abs=1e-5)
    held = [r for r in records if "val_loss" in r]
    assert held and 0 <= held[-1]["val_rewards/accuracies"] <= 1
    checkpoint = out / f"checkpoint-{STEPS}"
    assert checkpoint_problems(checkpoint, world_size=2) == []
    for rank in (0, 1):
        state = json.loads((checkpoint / f"data-rank{rank}.json").read_text())
        assert (state["rank"], state["world_size"], state["index"]) == (rank, 2, PER_DEVICE * STEPS)
    assert (out / "reference-logps.npz").is_file()
    assert (out / "final" / "model.safetensors").is_file()
