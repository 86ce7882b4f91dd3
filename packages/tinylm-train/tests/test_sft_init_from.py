"""model.init_from: the vocabulary check, the tied resize for new special tokens, config errors."""

import json

import pytest
import torch
from sft_helpers import write_start_model

from tinylm_shards.testing import write_wordlevel_tokenizer
from tinylm_train.config import ConfigError, load_config
from tinylm_train.init_from import (
    VocabularyMismatch,
    check_init_from,
    check_vocabulary,
    load_init_from,
)


def test_a_token_with_another_id_or_missing_is_named():
    shard = {"a": 0, "b": 1, "c": 2, "<|im_end|>": 3}
    check_vocabulary({"a": 0, "b": 1, "c": 2}, shard, "m")  # the shards may add tokens
    with pytest.raises(VocabularyMismatch, match=r"differ at 2 of 3 tokens \(e\.g\. 'b' is id 1"):
        check_vocabulary({"a": 0, "b": 1, "x": 2}, {"a": 0, "b": 2, "c": 1}, "m")
    with pytest.raises(VocabularyMismatch, match="'x' is id 2 in the model, missing in the shards"):
        check_vocabulary({"a": 0, "x": 2}, shard, "m")


def test_a_missing_or_non_model_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="model.init_from: .* is not a directory"):
        check_init_from(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="model.init_from: .* has no config.json"):
        check_init_from(tmp_path)


def test_init_from_beside_a_shape_name_is_refused():
    with pytest.raises(
        ConfigError, match="model.init_from: Value error, the model's shape comes from"
    ):
        load_config(None, ["output_dir=r", "data.path=d", "model.name=debug", "model.init_from=m"])
    config = load_config(None, ["output_dir=r", "data.path=d", "model.init_from=runs/x/final"])
    assert config.model.label == "final"


def _add_token(tokenizer_dir, token: str, token_id: int):
    path = tokenizer_dir / "tokenizer.json"
    spec = json.loads(path.read_text())
    spec["added_tokens"].append(
        {"id": token_id, "content": token, "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": True}
    )  # fmt: skip
    path.write_text(json.dumps(spec))


def test_new_special_tokens_get_tied_rows_at_the_mean_and_old_logits_stay(tmp_path):
    from transformers import AutoModelForCausalLM

    start = write_start_model(tmp_path / "start", vocab_size=128)  # 128 rows, ids 0-127 used
    shard_tokenizer = write_wordlevel_tokenizer(tmp_path / "tok", 128)
    _add_token(shard_tokenizer, "<|im_end|>", 128)
    before = AutoModelForCausalLM.from_pretrained(start)
    model = load_init_from(
        start, tokenizer_dir=shard_tokenizer, eos_id=128, pad_id=0, attention="sdpa"
    )
    embedding = model.get_input_embeddings().weight
    assert embedding.shape[0] == 192  # 129 tokens, padded to a multiple of 64
    assert model.get_output_embeddings().weight is embedding
    assert model.config.vocab_size == 192 and model.config.eos_token_id == 128
    old = before.get_input_embeddings().weight
    torch.testing.assert_close(embedding[:128], old)
    torch.testing.assert_close(embedding[128:], old.mean(0).expand(64, -1))
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_ids=ids).logits[..., :128], before(input_ids=ids).logits
        )


def test_a_model_of_another_tokenizer_is_refused(tmp_path):
    start = write_start_model(tmp_path / "start")
    other = write_wordlevel_tokenizer(tmp_path / "tok", 100)
    spec = json.loads((other / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    vocab["w1"], vocab["w2"] = vocab["w2"], vocab["w1"]
    (other / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(VocabularyMismatch, match="differ at 2 of 100 tokens"):
        load_init_from(start, tokenizer_dir=other, eos_id=0, pad_id=0, attention="sdpa")


@pytest.mark.slow
def test_pretraining_continues_from_init_from_weights(tmp_path):
    from transformers import AutoModelForCausalLM

    from tinylm_shards.testing import write_dataset
    from tinylm_train.collate import collate_blocks
    from tinylm_train.models.qwen2.attention import model_inputs, select_attention
    from tinylm_train.recipes.pretrain import run_pretrain
    from tinylm_train.shards import ShardReader

    data = write_dataset(tmp_path / "data", num_docs=100)
    start = write_start_model(tmp_path / "start", seed=7)
    overrides = [f"output_dir={tmp_path / 'run'}", f"data.path={data}", f"model.init_from={start}"]
    overrides += ["optimisation.max_steps=2", "optimisation.warmup_steps=0"]
    overrides += ["data.per_device_batch_size=2", "checkpoint.save_steps=2"]
    run_pretrain(load_config(None, overrides))
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    reader = ShardReader(data, seed=0)
    attention = select_attention("cpu")
    batch = model_inputs(collate_blocks([reader.next_block(), reader.next_block()]), attention)
    model = AutoModelForCausalLM.from_pretrained(start, attn_implementation=attention)
    with torch.no_grad():
        expected = float(model(**batch).loss)
    assert first["loss"] == pytest.approx(expected, rel=1e-4)  # step 1 ran the start weights
