"""Packed blocks see no other document: logits equal each document run alone."""

import numpy as np
import pytest
import torch

from tinylm_train.collate import collate_blocks
from tinylm_train.models.qwen2 import build_config
from tinylm_train.models.qwen2.attention import model_inputs, select_attention
from tinylm_train.shards import Block


def test_cpu_runs_per_document_attention_and_never_flash_attn():
    assert select_attention("cpu") == "tinylm_varlen"
    assert select_attention("cpu", "sdpa") == "sdpa"
    with pytest.raises(ValueError, match="needs a CUDA device"):
        select_attention("cpu", "flash_attention_2")


@pytest.mark.parametrize("attention", ["sdpa", "tinylm_varlen"])
def test_packed_logits_equal_each_document_alone(attention):
    from transformers import Qwen2ForCausalLM

    select_attention("cpu", attention)  # registers tinylm_varlen
    torch.manual_seed(0)
    config = build_config(
        "debug", tokenizer_vocab_size=100, eos_id=0, pad_id=0, attn_implementation=attention
    )
    model = Qwen2ForCausalLM(config).eval()
    rng = np.random.default_rng(0)
    lengths = [(7, 12, 9), (20, 5), (3, 3, 3, 3)]
    block_size = 32
    blocks, docs = [], []
    for row in lengths:
        ids = [rng.integers(1, 100, size=n) for n in row]
        docs.append(ids)
        flat = np.concatenate(ids)
        padded = np.concatenate([flat, np.zeros(block_size - len(flat), dtype=flat.dtype)])
        blocks.append(Block(input_ids=padded, doc_offsets=np.concatenate([[0], np.cumsum(row)])))
    batch = collate_blocks(blocks)
    inputs = model_inputs(batch, attention)
    del inputs["labels"]
    with torch.no_grad():
        packed = model(**inputs).logits
        for r, row in enumerate(docs):
            start = 0
            for doc in row:
                alone = model(input_ids=torch.as_tensor(doc)[None], use_cache=False).logits[0]
                torch.testing.assert_close(
                    packed[r, start : start + len(doc)], alone, rtol=1e-5, atol=1e-5
                )
                start += len(doc)
    # Without the per-document positions the later documents do attend across the boundary.
    with torch.no_grad():
        crossing = model(input_ids=batch["input_ids"], use_cache=False).logits
    assert not torch.allclose(crossing[0, 7:19], packed[0, 7:19], atol=1e-3)
