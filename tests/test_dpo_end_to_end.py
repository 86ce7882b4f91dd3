"""Preference data to a preferring model: `tinylm-data pref build --source sample` writes the
embedded pairs (every chosen answer ends with "Hope this helps!", its rejected twin does not),
`tinylm-train dpo` tunes a small random-initialised model on the training pairs (its step-0
rewards are all 0: no pair preferred), and `tinylm-eval pref` finds that the tuned model prefers
the chosen answer of every held-out pair against the model it started from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_run import run_cli as _run
from cli_run import save_random_qwen2

pytestmark = pytest.mark.slow  # builds, trains 30 small DPO steps, scores: three CLI processes


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> Path:
    from transformers import AutoTokenizer

    work = tmp_path_factory.mktemp("dpo-e2e")
    _run("tinylm-data", "pref", "build", "--source", "sample", "--out", "out", cwd=work)
    data = work / "out" / "pref-sample"
    version = data / (data / "LATEST").read_text(encoding="utf-8").strip()
    tokenizer = AutoTokenizer.from_pretrained(version / "tokenizer")

    save_random_qwen2(work / "base", vocab_size=len(tokenizer))
    tokenizer.save_pretrained(work / "base")
    (work / "dpo.yaml").write_text(
        "output_dir: run\n"
        "model: {init_from: base}\n"
        "data: {path: out/pref-sample, per_device_batch_size: 6}\n"
        "optimisation: {max_steps: 30, learning_rate: 3.0e-3, warmup_steps: 2, weight_decay: 0.0}\n"
        "checkpoint: {save_steps: 1000}\n"
        "metrics: {eval_steps: 15, console_steps: 15}\n"
        "dpo: {beta: 0.1}\n",
        encoding="utf-8",
    )
    said = _run("tinylm-train", "dpo", "--config", "dpo.yaml", cwd=work)
    assert "held-out accuracy" in said
    return work


def test_the_training_summary_reports_every_held_out_pair_preferred(tuned):
    summary = json.loads((tuned / "run" / "summary.json").read_text(encoding="utf-8"))
    assert summary["final_val_rewards/accuracies"] == 1.0
    assert summary["final_val_rewards/margins"] > 0


def test_eval_pref_finds_the_tuned_model_prefers_the_sign_off_against_its_start(tuned):
    _run(
        "tinylm-eval",
        "pref",
        "--model",
        "run/final",
        "--reference",
        "base",
        "--data",
        "out/pref-sample",
        "--out",
        "pref.json",
        cwd=tuned,
    )
    result = json.loads((tuned / "pref.json").read_text(encoding="utf-8"))
    assert (result["split"], result["pairs"]) == ("validation", 5)
    assert result["accuracy"] == 1.0 and result["mean_margin"] > 0
