"""The pipeline's layer sequence computes the HF model: conversion, positions, document isolation.

These run the same layer modules the pipeline stages hold, one after another in one process.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_shards import cu_seqlens
from tinylm_train.collate import collate_blocks
from tinylm_train.models.qwen2 import ModelShape, build_config
from tinylm_train.models.qwen2.attention import model_inputs, select_attention
from tinylm_train.shards import Block

VOCAB = 100
BLOCK = 32
UNTIED = ModelShape(
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=64,
    rope_theta=1e4,
    max_position_embeddings=2048,
    tie_word_embeddings=False,
)


def _model(shape="debug", seed=0):
    from transformers import Qwen2ForCausalLM

    attention = select_attention("cpu", "tinylm_varlen")
    config = build_config(
        shape, tokenizer_vocab_size=VOCAB, eos_id=0, pad_id=0, attn_implementation=attention
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).eval()
    # why: fresh norms are all ones and biases zero; random ones catch a swapped tensor
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    return model


def _layers(model):
    from tinylm_train.models.qwen2.pipeline import hf_to_pipeline, local_layers

    layers = local_layers(model.config)
    per_layer = hf_to_pipeline(model.state_dict(), model.config)
    for layer, state in zip(layers, per_layer, strict=True):
        if isinstance(layer, torch.nn.Module):
            layer.load_state_dict(state, strict=True)
    return layers


def _blocks(lengths, seed=0):
    rng = np.random.default_rng(seed)
    blocks, docs = [], []
    for row in lengths:
        ids = [rng.integers(1, VOCAB, size=n) for n in row]
        docs.append(ids)
        flat = np.concatenate(ids)
        padded = np.concatenate([flat, np.zeros(BLOCK - len(flat), dtype=flat.dtype)])
        offsets = np.concatenate([[0], np.cumsum(row)])
        blocks.append(Block(input_ids=padded, doc_offsets=offsets))
    return blocks, docs


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(1, 12), min_size=1, max_size=5).filter(lambda r: sum(r) <= BLOCK),
        min_size=1,
        max_size=4,
    )
)
def test_segments_derived_from_positions_are_the_collated_cu_seqlens(lengths):
    from tinylm_train.models.qwen2.pipeline import cu_seqlens_from_positions

    blocks, _ = _blocks(lengths)
    batch = collate_blocks(blocks)
    cu, longest = cu_seqlens_from_positions(batch["position_ids"])
    expected = cu_seqlens([b.doc_offsets for b in blocks], BLOCK)
    np.testing.assert_array_equal(cu.numpy(), expected)
    assert cu.dtype == torch.int32
    assert longest == batch["max_seqlen"]


@pytest.mark.parametrize("shape", ["debug", UNTIED], ids=["tied", "untied"])
def test_hf_to_pipeline_to_hf_gives_identical_tensors(shape):
    from tinylm_train.models.qwen2.pipeline import hf_to_pipeline, pipeline_to_hf

    model = _model(shape)
    state = model.state_dict()
    back = pipeline_to_hf(hf_to_pipeline(state, model.config), model.config)
    assert back.keys() == state.keys()
    for key, tensor in state.items():
        assert torch.equal(back[key], tensor), key
    assert model.config.tie_word_embeddings == (shape == "debug")


def test_a_tied_embedding_that_differs_between_stages_is_refused():
    from tinylm_train.models.qwen2.pipeline import hf_to_pipeline, pipeline_to_hf

    model = _model()
    layers = hf_to_pipeline(model.state_dict(), model.config)
    layers[-1] = {"embed_tokens.weight": layers[0]["embed_tokens.weight"] + 1}
    with pytest.raises(ValueError, match="tied embedding differs"):
        pipeline_to_hf(layers, model.config)


@pytest.mark.parametrize("shape", ["debug", UNTIED], ids=["tied", "untied"])
def test_the_layer_sequence_computes_the_hf_logits(shape):
    from tinylm_train.models.qwen2.pipeline import run_layers

    model = _model(shape)
    layers = _layers(model)
    blocks, _ = _blocks([(7, 12, 9), (20, 5), (3, 3, 3, 3)])
    batch = collate_blocks(blocks)
    inputs = model_inputs(batch, "tinylm_varlen")
    del inputs["labels"]
    with torch.no_grad():
        expected = model(**inputs).logits
        got = run_layers(layers, batch["input_ids"], batch["position_ids"])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_packed_logits_through_the_layers_equal_each_document_alone():
    from tinylm_train.models.qwen2.pipeline import run_layers

    model = _model()
    layers = _layers(model)
    blocks, docs = _blocks([(7, 12, 9), (20, 5), (3, 3, 3, 3)])
    batch = collate_blocks(blocks)
    with torch.no_grad():
        packed = run_layers(layers, batch["input_ids"], batch["position_ids"])
        for r, row in enumerate(docs):
            start = 0
            for doc in row:
                ids = torch.as_tensor(doc)[None]
                alone = run_layers(layers, ids, torch.arange(len(doc))[None])[0]
                torch.testing.assert_close(
                    packed[r, start : start + len(doc)], alone, rtol=1e-5, atol=1e-5
                )
                start += len(doc)
        # Positions that never restart make one sequence of the row: the masking is real.
        flat = torch.arange(BLOCK).expand(len(blocks), BLOCK)
        crossing = run_layers(layers, batch["input_ids"], flat)
    assert not torch.allclose(crossing[0, 7:19], packed[0, 7:19], atol=1e-3)


def test_gradients_reach_the_embedding_and_every_layer():
    from tinylm_train.loss import causal_lm_loss
    from tinylm_train.models.qwen2.pipeline import run_layers

    model = _model()
    layers = _layers(model)
    batch = collate_blocks(_blocks([(7, 12, 9), (20, 5)])[0])
    logits = run_layers(layers, batch["input_ids"], batch["position_ids"])
    causal_lm_loss(logits, batch["labels"]).backward()
    for layer in layers:
        if isinstance(layer, torch.nn.Module):
            for name, param in layer.named_parameters():
                assert param.grad is not None and param.grad.abs().sum() > 0, name
