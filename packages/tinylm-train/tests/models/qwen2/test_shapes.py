import pytest

from tinylm_train.models.qwen2 import (
    MODEL_SHAPES,
    build_config,
    count_parameters,
    padded_vocab_size,
)


def test_vocab_is_padded_to_a_multiple_of_64():
    assert padded_vocab_size(8000) == 8000
    assert padded_vocab_size(8001) == 8064
    assert padded_vocab_size(151646) == 151680


def test_tinylm_05b_has_the_qwen15_shape():
    config = build_config("tinylm-0.5b", tokenizer_vocab_size=151936, eos_id=0, pad_id=0)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (
        1024,
        24,
        16,
    )
    assert config.intermediate_size == 2816 and config.rope_parameters["rope_theta"] == 1e6
    assert config.tie_word_embeddings
    assert config.vocab_size == 151936
    assert 0.45e9 < count_parameters(config) < 0.47e9


def test_too_small_vocab_is_a_clear_error():
    with pytest.raises(ValueError, match="smaller than the shard tokenizer"):
        build_config("debug", tokenizer_vocab_size=8000, eos_id=0, pad_id=0, vocab_size=4096)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model"):
        build_config("gpt-5", tokenizer_vocab_size=100, eos_id=0, pad_id=0)


@pytest.mark.parametrize("name", sorted(set(MODEL_SHAPES) - {"tinylm-0.5b"}))
def test_parameter_count_matches_the_built_model(name):
    from transformers import Qwen2ForCausalLM

    config = build_config(name, tokenizer_vocab_size=100, eos_id=0, pad_id=0)
    model = Qwen2ForCausalLM(config)
    assert sum(p.numel() for p in model.parameters()) == count_parameters(config)


def test_an_inline_shape_builds_its_config():
    from tinylm_train.models.qwen2 import ModelShape

    shape = ModelShape(
        hidden_size=48,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=2,
        intermediate_size=96,
        rope_theta=5e5,
        max_position_embeddings=512,
        tie_word_embeddings=False,
    )
    config = build_config(shape, tokenizer_vocab_size=100, eos_id=0, pad_id=0)
    assert (config.hidden_size, config.num_key_value_heads, config.max_position_embeddings) == (
        48,
        2,
        512,
    )
    assert config.rope_parameters["rope_theta"] == 5e5 and not config.tie_word_embeddings
    assert config.vocab_size == 128
