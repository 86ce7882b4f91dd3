import json

import pytest

from tinylm_shards.testing import write_dataset
from tinylm_train.export import (
    ExportError,
    copy_tokenizer,
    export_checkpoint,
    finish_export,
)
from tinylm_train.shards import load_manifest


def test_a_checkpoint_exports_with_the_shard_tokenizer(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2ForCausalLM

    from tinylm_train.models.qwen2 import build_config

    data = write_dataset(tmp_path / "data")
    manifest = load_manifest(data)
    torch.manual_seed(0)
    config = build_config(
        "debug",
        tokenizer_vocab_size=manifest.vocab_size,
        eos_id=manifest.eos_id,
        pad_id=0,
    )
    config.rope_parameters["rope_theta"] = 5e5
    Qwen2ForCausalLM(config).save_pretrained(tmp_path / "checkpoint-3")
    (tmp_path / "checkpoint-3" / "training_args.bin").write_bytes(b"pickle")
    target = export_checkpoint(tmp_path / "checkpoint-3", data, tmp_path / "model")
    exported = json.loads((target / "config.json").read_text())
    assert exported["use_cache"] is True  # training runs without the KV cache
    assert exported["rope_theta"] == exported["rope_parameters"]["rope_theta"] == 5e5
    assert exported["rope_parameters"]["rope_type"] == "default"
    assert not (target / "training_args.bin").exists()
    assert AutoModelForCausalLM.from_pretrained(target).config.rope_parameters["rope_theta"] == 5e5
    names = {p.name for p in manifest.tokenizer_dir.iterdir() if p.is_file()}
    assert names <= {p.name for p in target.iterdir()}
    tokenizer = PreTrainedTokenizerFast.from_pretrained(target)
    model = AutoModelForCausalLM.from_pretrained(target)
    ids = torch.tensor([tokenizer("w1 w2")["input_ids"]])
    assert model(input_ids=ids).logits.shape == (1, 2, config.vocab_size)


def test_copy_tokenizer_creates_the_target_and_skips_directories(tmp_path):
    source = tmp_path / "tok"
    (source / "sub").mkdir(parents=True)
    (source / "tokenizer.json").write_text("{}")
    copy_tokenizer(source, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["tokenizer.json"]


def test_finish_export_drops_the_pickled_arguments_and_needs_a_rope_base(tmp_path):
    tokenizer = tmp_path / "tok"
    tokenizer.mkdir()
    (tokenizer / "tokenizer.json").write_text("{}")
    model = tmp_path / "model"
    model.mkdir()
    (model / "training_args.bin").write_bytes(b"pickle")
    (model / "config.json").write_text(json.dumps({"rope_theta": 1e6, "use_cache": False}))
    finish_export(model, tokenizer)
    config = json.loads((model / "config.json").read_text())
    assert config["use_cache"] is True and config["rope_theta"] == 1e6
    assert config["rope_parameters"] == {"rope_type": "default", "rope_theta": 1e6}
    assert sorted(p.name for p in model.iterdir()) == ["config.json", "tokenizer.json"]
    (model / "config.json").write_text(json.dumps({"use_cache": False}))
    with pytest.raises(ExportError, match="has no RoPE base"):
        finish_export(model, tokenizer)
