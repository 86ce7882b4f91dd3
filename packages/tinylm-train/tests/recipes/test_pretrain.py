import json
import shutil
from pathlib import Path

import pytest
import torch

from tinylm_shards.testing import write_dataset
from tinylm_train.config import load_config
from tinylm_train.recipes.pretrain import run_pretrain

CONFIG = Path(__file__).resolve().parents[2] / "src" / "tinylm_train" / "configs" / "debug.yaml"


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_train_export_reload_and_resume_exactly(tmp_path):
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    write_dataset(tmp_path / "data", num_docs=400)
    common = [
        f"data.path={tmp_path / 'data' / 'sample'}",
        "optimisation.max_steps=20",
        "checkpoint.save_steps=10",
    ]
    full = tmp_path / "full"
    final = run_pretrain(load_config(CONFIG, [*common, f"output_dir={full}"]))
    losses = _losses(full)
    assert len(losses) == 20
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5  # the model learns the sample

    model = AutoModelForCausalLM.from_pretrained(final)
    # why: AutoTokenizer on a qwen2 model dir picks Qwen2Tokenizer; the shard tokenizer is generic.
    tokenizer = PreTrainedTokenizerFast.from_pretrained(final)
    ids = torch.tensor([tokenizer("w1 w2 w3")["input_ids"]])
    assert model(input_ids=ids).logits.shape == (1, 3, model.config.vocab_size)
    assert sorted(p.name for p in full.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-20"]
    exported = json.loads((final / "config.json").read_text())
    assert exported["use_cache"] is True and not (final / "training_args.bin").exists()
    assert exported["rope_theta"] == exported["rope_parameters"]["rope_theta"] == 1e4

    # A run that stopped after its step-10 checkpoint, then resumed.
    stopped = tmp_path / "stopped"
    shutil.copytree(full / "checkpoint-10", stopped / "checkpoint-10")
    (stopped / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": i + 1, "loss": x}) + "\n" for i, x in enumerate(losses[:10]))
    )
    run_pretrain(load_config(CONFIG, [*common, f"output_dir={stopped}"]), resume=True)
    assert _losses(stopped) == losses
