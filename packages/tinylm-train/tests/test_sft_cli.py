"""`tinylm-train sft` end to end on tiny data: the held-out assistant loss falls, the export
carries the chat template and stop rules; the Trainer path keeps the loss under accumulation
and resumes exactly."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from sft_helpers import learnable_samples, write_sft_dataset, write_start_model

from tinylm_shards.testing import EOS_ID
from tinylm_train.config import load_config

ENTRY = Path(sys.executable).with_name("tinylm-train")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    rng = np.random.default_rng(0)
    data = write_sft_dataset(
        root / "out", learnable_samples(rng, 120), validation=learnable_samples(rng, 16)
    )
    return data, write_start_model(root / "start")


def _config(tmp_path, data, start, **sections) -> Path:
    raw = {
        "output_dir": str(tmp_path / "run"),
        "model": {"init_from": str(start)},
        "data": {"path": str(data), "per_device_batch_size": 2},
        "optimisation": {"max_steps": 30, "learning_rate": 3e-3, "warmup_steps": 2},
        "checkpoint": {"save_steps": 30, "save_total_limit": 1},
        "metrics": {"eval_steps": 10},
    }
    for key, value in sections.items():
        raw[key] = raw.get(key, {}) | value
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_sft_trains_and_exports_a_chat_model(tmp_path, inputs):
    from transformers import AutoModelForCausalLM, GenerationConfig, PreTrainedTokenizerFast

    data, start = inputs
    done = subprocess.run(
        [str(ENTRY), "sft", "--config", str(_config(tmp_path, data, start))],
        capture_output=True,
        text=True,
        timeout=600,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "template tinylm" in output and "trained 30 steps" in done.stdout
    run = tmp_path / "run"
    val = [r["val_loss"] for r in _records(run) if "val_loss" in r]
    assert len(val) == 3 and val[-1] < val[0] - 0.2  # the held-out assistant loss falls
    summary = json.loads((run / "summary.json").read_text())
    assert summary["loss_normalisation"] == "token" and summary["stop_token_ids"] == [EOS_ID]
    assert (run / "loss.png").is_file() and any((run / "runs").rglob("events.out.tfevents*"))

    final = run / "final"
    generation = GenerationConfig.from_pretrained(final)
    assert generation.eos_token_id == [EOS_ID] and generation.pad_token_id == EOS_ID
    assert generation.stop_strings == ["\nHuman:"]
    tokenizer = PreTrainedTokenizerFast.from_pretrained(final)
    messages = [{"role": "user", "content": "w1 w2"}, {"role": "assistant", "content": "w60"}]
    assert tokenizer.apply_chat_template(messages, tokenize=False) == "w1 w2 w60 <eos> "
    model = AutoModelForCausalLM.from_pretrained(final)
    assert model.config.use_cache is True
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


@pytest.mark.slow
def test_accumulation_keeps_the_loss_and_gradient_norm_through_the_trainer(tmp_path, inputs):
    from tinylm_train.recipes.sft import run_sft

    data, start = inputs
    first = {}
    for batch, accumulation in ((2, 1), (1, 2)):
        out = tmp_path / f"b{batch}"
        config = load_config(
            _config(out, data, start, sft={"loss_normalisation": "sample"}),
            [
                "optimisation.max_steps=2",
                "optimisation.warmup_steps=0",
                f"data.per_device_batch_size={batch}",
                f"optimisation.gradient_accumulation_steps={accumulation}",
            ],
        )
        run_sft(config)
        first[batch] = _records(out / "run")[0]
    assert first[1]["loss"] == pytest.approx(first[2]["loss"], rel=1e-5)
    assert first[1]["grad_norm"] == pytest.approx(first[2]["grad_norm"], rel=1e-4)


@pytest.mark.slow
def test_sft_resumes_exactly(tmp_path, inputs):
    from tinylm_train.recipes.sft import run_sft

    data, start = inputs
    path = _config(tmp_path, data, start, sft={"loss_normalisation": "sample"})
    common = [
        "optimisation.max_steps=6",
        "checkpoint.save_steps=3",
        "checkpoint.save_total_limit=2",
    ]
    common.append("optimisation.gradient_accumulation_steps=2")
    run_sft(load_config(path, common))
    run = tmp_path / "run"
    full = [(r["loss"], r["grad_norm"]) for r in _records(run) if "loss" in r]
    assert len(full) == 6
    shutil.rmtree(run / "checkpoint-6")  # as if the run had stopped after its step-3 checkpoint
    shutil.rmtree(run / "final")
    run_sft(load_config(path, common), resume=True)
    assert [(r["loss"], r["grad_norm"]) for r in _records(run) if "loss" in r] == full


def test_sft_without_init_from_or_with_a_missing_one_is_a_config_error(tmp_path, inputs):
    data, _ = inputs
    for model, message in (
        ({}, "model.init_from: SFT starts from a model directory"),
        ({"init_from": str(tmp_path / "nowhere")}, "model.init_from: "),
    ):
        raw = {"output_dir": str(tmp_path / "run"), "model": model, "data": {"path": str(data)}}
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
        done = subprocess.run(
            [str(ENTRY), "sft", "--config", str(tmp_path / "c.yaml")],
            capture_output=True,
            text=True,
            timeout=120,
            env=ENV,
        )
        assert done.returncode == 2 and message in done.stderr
        assert not (tmp_path / "run").exists()
