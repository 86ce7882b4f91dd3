"""LoRA SFT: merging keeps the head tied to the embedding and gives the adapter model's logits;
`export --merge` folds a checkpoint's adapters into its base model."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sft_helpers import random_samples, write_sft_dataset, write_start_model

from tinylm_train.config import LoraSection, load_config

pytestmark = pytest.mark.slow  # peft takes seconds to import

ENTRY = Path(sys.executable).with_name("tinylm-train")
IDS = torch.tensor([[3, 14, 15, 92, 65, 35, 89, 79]])


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(input_ids=IDS).logits


def test_merged_logits_equal_the_adapter_models_and_the_head_stays_tied(tmp_path):
    from transformers import AutoModelForCausalLM

    from tinylm_train.lora import add_lora, merge_lora

    base = AutoModelForCausalLM.from_pretrained(write_start_model(tmp_path / "start"))
    model = add_lora(base, LoraSection(r=4, alpha=8))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    torch.manual_seed(1)
    with torch.no_grad():  # why: lora_B starts at zero, which would make any merge look right
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    adapted = _logits(model)
    assert not torch.allclose(
        adapted, _logits(model.get_base_model().__class__.from_pretrained(tmp_path / "start"))
    )
    merged = merge_lora(model)
    assert merged.lm_head.weight is merged.model.embed_tokens.weight
    torch.testing.assert_close(_logits(merged), adapted, rtol=1e-4, atol=1e-5)
    merged.save_pretrained(tmp_path / "merged")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert torch.equal(reloaded.lm_head.weight, reloaded.model.embed_tokens.weight)
    torch.testing.assert_close(_logits(reloaded), adapted, rtol=1e-4, atol=1e-5)


def test_a_lora_run_exports_merged_and_export_merge_matches(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tinylm_train.init_from import load_init_from
    from tinylm_train.recipes.sft import run_sft

    data = write_sft_dataset(tmp_path / "out", random_samples(np.random.default_rng(0), 40))
    start = write_start_model(tmp_path / "start")
    raw = {
        "output_dir": str(tmp_path / "run"),
        "model": {"init_from": str(start)},
        "data": {"path": str(data), "per_device_batch_size": 2},
        "optimisation": {"max_steps": 4, "learning_rate": 1e-2, "warmup_steps": 1},
        "checkpoint": {"save_steps": 4},
        "lora": {"r": 4, "alpha": 8},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    final = run_sft(load_config(tmp_path / "c.yaml"))
    run = tmp_path / "run"
    assert (run / "adapter" / "adapter_config.json").is_file()
    merged = _logits(AutoModelForCausalLM.from_pretrained(final))
    base = load_init_from(
        start, tokenizer_dir=data / "tokenizer", eos_id=0, pad_id=0, attention="sdpa"
    )
    adapter = PeftModel.from_pretrained(base, str(run / "adapter"))
    torch.testing.assert_close(merged, _logits(adapter), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(merged, _logits(AutoModelForCausalLM.from_pretrained(start)))

    from tinylm_train.export import ExportError, export_checkpoint

    with pytest.raises(ExportError, match="holds LoRA adapters: export it with --merge"):
        export_checkpoint(run / "checkpoint-4", data, tmp_path / "x")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [str(ENTRY), "export", str(run / "checkpoint-4"), "--data", str(data)]
    done = subprocess.run(
        [*args, "--out", str(tmp_path / "exported"), "--merge"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "exported")
    torch.testing.assert_close(_logits(exported), merged, rtol=1e-4, atol=1e-5)
    assert (tmp_path / "exported" / "generation_config.json").is_file()
