"""The SFT export's generation config (stop tokens and strings, pad id) and its refusals."""

import json

import numpy as np
import pytest
from sft_helpers import random_samples, write_sft_dataset, write_start_model

from tinylm_shards import SFT_BLOCKS
from tinylm_train.export import ExportError, export_checkpoint, sft_generation_fields
from tinylm_train.shards import load_manifest

SAMPLES = random_samples(np.random.default_rng(0), 8)


def _manifest(tmp_path, **options):
    return load_manifest(
        write_sft_dataset(tmp_path / "out", SAMPLES, **options), formats=(SFT_BLOCKS,)
    )


def test_stop_tokens_become_eos_ids(tmp_path):
    fields = sft_generation_fields(_manifest(tmp_path, stop_tokens=("<eos>", "w7")))
    assert fields == {
        "eos_token_id": [0, 7],
        "stop_strings": ["\nHuman:"],
        "pad_token_id": 0,
        "bos_token_id": 0,
    }


def test_a_tokenizer_without_a_template_or_an_unknown_stop_token_is_refused(tmp_path):
    with pytest.raises(ExportError, match="has no chat_template"):
        sft_generation_fields(_manifest(tmp_path / "a", chat_template=None))
    with pytest.raises(ExportError, match=r"sft.stop_tokens \['<\|im_end\|>'\] are not tokens"):
        sft_generation_fields(_manifest(tmp_path / "b", stop_tokens=("<|im_end|>",)))


def test_a_checkpoint_of_an_sft_run_exports_with_the_generation_config(tmp_path):
    data = write_sft_dataset(tmp_path / "out", SAMPLES, stop_tokens=("<eos>", "w9"))
    start = write_start_model(tmp_path / "checkpoint-5")
    target = export_checkpoint(start, data, tmp_path / "model")
    generation = json.loads((target / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [0, 9] and generation["stop_strings"] == ["\nHuman:"]
    assert "chat_template" in json.loads((target / "tokenizer_config.json").read_text())
    with pytest.raises(ExportError, match="holds no LoRA adapters"):
        export_checkpoint(start, data, tmp_path / "merged", merge=True)
