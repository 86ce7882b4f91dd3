from tinylm_shards.testing import write_dataset
from tinylm_train.export import copy_tokenizer, export_checkpoint
from tinylm_train.shards import load_manifest


def test_a_checkpoint_exports_with_the_shard_tokenizer(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2ForCausalLM

    from tinylm_train.models.qwen2 import build_config

    data = write_dataset(tmp_path / "data")
    manifest = load_manifest(data)
    torch.manual_seed(0)
    config = build_config(
        "debug", tokenizer_vocab_size=manifest.vocab_size, eos_id=manifest.eos_id, pad_id=0
    )
    Qwen2ForCausalLM(config).save_pretrained(tmp_path / "checkpoint-3")
    target = export_checkpoint(tmp_path / "checkpoint-3", data, tmp_path / "model")
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
