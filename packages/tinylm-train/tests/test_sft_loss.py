"""The SFT labels and the two loss normalisations: packing and gradient accumulation change
neither the loss nor the gradients."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sft_helpers import pack_samples, random_samples

from tinylm_train.collate import IGNORE_INDEX, collate_blocks, weights_per_sample
from tinylm_train.loss import LOSS_WEIGHTS, causal_lm_loss
from tinylm_train.models.qwen2.attention import model_inputs, select_attention
from tinylm_train.shards import Block

X = IGNORE_INDEX


def test_labels_are_the_loss_mask_tokens_and_weights_count_samples():
    block = Block(
        input_ids=np.array([5, 6, 7, 0, 8, 9, 0, 0]),
        doc_offsets=np.array([0, 4, 7]),
        token_columns={"loss_mask": np.array([0, 0, 1, 1, 0, 1, 1, 0], dtype=np.int8)},
    )
    batch = collate_blocks([block], loss_mask=True, sample_weights=True)
    assert batch["labels"].tolist() == [[X, X, 7, 0, X, 9, 0, X]]
    assert batch[LOSS_WEIGHTS].tolist() == [[0, 0, 0.5, 0.5, 0, 0.5, 0.5, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 0, 1, 2, 0]]
    # a 1 on a sample's first token is never a target: it would be predicted from the last sample
    block = Block(
        input_ids=block.input_ids,
        doc_offsets=block.doc_offsets,
        token_columns={"loss_mask": np.ones(8, dtype=np.int8)},
    )
    assert collate_blocks([block], loss_mask=True)["labels"].tolist() == [[X, 6, 7, 0, X, 9, 0, X]]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_each_sample_with_a_target_weighs_one_in_total(data):
    block_size = data.draw(st.integers(2, 40))
    cuts = sorted(data.draw(st.sets(st.integers(1, block_size), min_size=1, max_size=8)))
    offsets = np.array([0, *cuts])
    targets = np.where(
        np.array(data.draw(st.lists(st.booleans(), min_size=block_size, max_size=block_size))),
        1,
        IGNORE_INDEX,
    )[None]
    weights = weights_per_sample(targets, [offsets])[0]
    bounds = [*offsets.tolist(), *([block_size] if offsets[-1] < block_size else [])]
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        labelled = (targets[0, start:end] != IGNORE_INDEX).sum()
        assert weights[start:end].sum() == pytest.approx(1.0 if labelled else 0.0, abs=1e-6)
    assert np.all(weights[targets[0] == IGNORE_INDEX] == 0)


@pytest.fixture(scope="module")
def model():
    from transformers import Qwen2ForCausalLM

    from tinylm_train.models.qwen2 import build_config

    torch.manual_seed(0)
    attention = select_attention("cpu")
    config = build_config(
        "debug", tokenizer_vocab_size=100, eos_id=0, pad_id=0, attn_implementation=attention
    )
    return Qwen2ForCausalLM(config).eval(), attention


SAMPLES = random_samples(np.random.default_rng(3), 12, max_len=30)


def _loss_and_grads(model, attention, micro_batches, *, sample):
    """What the Trainer does: each micro-batch's loss over the whole batch's divisor, summed."""
    batches = [collate_blocks(b, loss_mask=True, sample_weights=sample) for b in micro_batches]
    key = LOSS_WEIGHTS if sample else "labels"
    divisor = sum(
        (b[key][:, 1:] if sample else (b[key][:, 1:] != X)).double().sum() for b in batches
    )
    model.zero_grad()
    total = 0.0
    for batch in batches:
        inputs = model_inputs(batch, attention)
        labels = inputs.pop("labels")
        logits = model(**inputs).logits
        loss = causal_lm_loss(
            logits, labels, num_items_in_batch=divisor, weights=batch.get(LOSS_WEIGHTS)
        )
        loss.backward()
        total += float(loss.detach())
    grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    return total, grads


def _per_sample_means(model, samples):
    """The definition of `sample`: each sample alone, its mean over its answer tokens."""
    means, tokens = [], []
    for ids, mask in samples:
        ids_t = torch.tensor(ids[None], dtype=torch.int64)
        logits = model(input_ids=ids_t).logits[0, :-1]
        target = torch.tensor(ids[1:], dtype=torch.int64)
        keep = torch.tensor(mask[1:] == 1)
        ce = torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="none")
        means.append(float(ce.mean()))
        tokens.append(ce)
    return float(np.mean(means)), float(torch.cat(tokens).mean())


@pytest.mark.parametrize("sample", [False, True], ids=["token", "sample"])
def test_packed_unpacked_and_accumulated_give_the_same_loss_and_gradients(model, sample):
    model, attention = model
    packed = pack_samples(SAMPLES, 64)
    unpacked = pack_samples(SAMPLES, 64, pack=False)
    assert len(packed) < len(unpacked) == len(SAMPLES)
    loss, grads = _loss_and_grads(model, attention, [packed], sample=sample)
    for micro_batches in (
        [unpacked],  # one sample per padded row
        [packed[:1], packed[1:]],  # accumulation over two uneven micro-batches
        [unpacked[k : k + 3] for k in range(0, len(unpacked), 3)],  # both at once
    ):
        other_loss, other_grads = _loss_and_grads(model, attention, micro_batches, sample=sample)
        assert other_loss == pytest.approx(loss, rel=1e-5)
        torch.testing.assert_close(other_grads, grads, rtol=1e-4, atol=1e-7)
    with torch.no_grad():
        per_sample, per_token = _per_sample_means(model, SAMPLES)
    assert loss == pytest.approx(per_sample if sample else per_token, rel=1e-5)
    _, switched = _loss_and_grads(model, attention, [packed], sample=not sample)
    assert not torch.allclose(switched, grads, rtol=1e-2)  # the switch changes the gradients
