"""S²-Attn against a naive reference (explicit group split, shift and causal mask), forward and
backward; no query sees a later key; one group is ordinary causal attention; the layouts."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_train.long_context import group_size_for
from tinylm_train.models.qwen2.shifted_sparse import (
    S2ATTN_NAME,
    register_s2_attention,
    s2_attention_forward,
    s2_attention_mask,
    shifted_layouts,
)


def naive_s2(q, k, v, *, group, docs):
    """Reference: (B, H, T, D) q, (B, Hkv, T, D) k/v; docs (B, T) document id of each slot.

    Heads in the first half see keys of the same group i // G; heads in the second half of the
    same shifted group (i + G/2) // G (no shift when the row is one group); both only keys of
    the same document at or before the query. Softmax written out, masked scores -inf.
    """
    batch, heads, seq, dim = q.shape
    k = k.repeat_interleave(heads // k.shape[1], dim=1)
    v = v.repeat_interleave(heads // v.shape[1], dim=1)
    pos = torch.arange(seq)
    plain = pos // group
    shifted = (pos + group // 2) // group if group < seq else plain
    out = torch.empty_like(q)
    for b in range(batch):
        same_doc = docs[b][:, None] == docs[b][None, :]
        causal = pos[None, :] <= pos[:, None]
        for h in range(heads):
            g = plain if h < heads // 2 else shifted
            allowed = causal & same_doc & (g[:, None] == g[None, :])
            scores = q[b, h] @ k[b, h].T / math.sqrt(dim)
            scores = scores.masked_fill(~allowed, float("-inf"))
            out[b, h] = torch.softmax(scores, dim=-1) @ v[b, h]
    return out


def _docs_and_cu(lengths_per_row, seq):
    docs, cu = [], [0]
    for lengths in lengths_per_row:
        ids = np.concatenate([np.full(n, d) for d, n in enumerate(lengths)])
        assert len(ids) == seq
        docs.append(torch.as_tensor(ids))
        for n in lengths:
            cu.append(cu[-1] + n)
    return torch.stack(docs), torch.tensor(cu, dtype=torch.int32)


def _s2(q, k, v, cu, group):
    layouts = shifted_layouts(cu, q.shape[2], group)
    out, _ = s2_attention_forward(None, q, k, v, None, scaling=q.shape[-1] ** -0.5, **layouts)
    return out.transpose(1, 2)  # (B, H, T, D) like the reference


CASES = [  # seq, group, documents per row, kv heads
    (16, 4, [[16], [16]], 2),
    (32, 8, [[5, 20, 7], [32]], 2),
    (48, 16, [[48], [10, 38]], 1),
    (64, 8, [[3, 3, 50, 8]], 4),
    (24, 24, [[24], [9, 15]], 2),
]


@pytest.mark.parametrize(("seq", "group", "lengths", "kv_heads"), CASES)
def test_s2attn_equals_the_naive_reference_forward_and_backward(seq, group, lengths, kv_heads):
    torch.manual_seed(seq + group)
    batch, heads, dim = len(lengths), 4, 8
    q = torch.randn(batch, heads, seq, dim, dtype=torch.float64, requires_grad=True)
    k = torch.randn(batch, kv_heads, seq, dim, dtype=torch.float64, requires_grad=True)
    v = torch.randn(batch, kv_heads, seq, dim, dtype=torch.float64, requires_grad=True)
    docs, cu = _docs_and_cu(lengths, seq)
    ours = _s2(q, k, v, cu, group)
    reference = naive_s2(q, k, v, group=group, docs=docs)
    torch.testing.assert_close(ours, reference, rtol=1e-10, atol=1e-10)
    upstream = torch.randn_like(ours)
    got = torch.autograd.grad(ours, (q, k, v), upstream)
    want = torch.autograd.grad(reference, (q, k, v), upstream)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)


def test_the_attention_pattern_is_causal_grouped_shifted_and_half_length_at_the_ends():
    """With V the identity (D = T) each output row is that query's attention probabilities."""
    seq, group, heads = 16, 8, 2
    torch.manual_seed(0)
    q = torch.randn(1, heads, seq, seq, dtype=torch.float64)
    k = torch.randn(1, heads, seq, seq, dtype=torch.float64)
    v = torch.eye(seq, dtype=torch.float64).expand(1, heads, seq, seq)
    _, cu = _docs_and_cu([[seq]], seq)
    pattern = _s2(q, k, v, cu, group)[0] > 0  # (H, T, T): query i attends key j
    assert not torch.triu(pattern, diagonal=1).any()  # no query sees a later key
    blocks = [range(0, 8), range(8, 16)]
    shifted_blocks = [range(0, 4), range(4, 12), range(12, 16)]  # half-length ends, no roll
    for head, groups in ((0, blocks), (1, shifted_blocks)):
        want = torch.zeros(seq, seq, dtype=torch.bool)
        for g in groups:
            for i in g:
                for j in g:
                    want[i, j] = j <= i
        assert torch.equal(pattern[head], want)
    assert not pattern[1, 0:4, 12:16].any()  # why: the rolled eager path leaks exactly here


def test_one_group_is_ordinary_causal_attention():
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 4, 20, 8) for _ in range(3))
    _, cu = _docs_and_cu([[20], [20]], 20)
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(_s2(q, k, v, cu, 20), want, rtol=1e-5, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 3),
    st.sampled_from([(16, 4), (16, 8), (32, 8), (24, 6), (12, 12)]),
    st.data(),
)
def test_layouts_cut_at_groups_shifts_and_documents(rows, shape, data):
    seq, group = shape
    cu = [0]
    for r in range(rows):
        cuts = data.draw(st.sets(st.integers(1, seq - 1), max_size=4))
        cu += [r * seq + c for c in sorted(cuts)] + [(r + 1) * seq]
    layouts = shifted_layouts(torch.tensor(cu, dtype=torch.int32), seq, group)
    docs = set(cu)
    for name, offset in (("s2_cu_plain", 0), ("s2_cu_shifted", group // 2 if group < seq else 0)):
        bounds = layouts[name].tolist()
        assert bounds[0] == 0 and bounds[-1] == rows * seq and bounds == sorted(set(bounds))
        assert docs <= set(bounds)  # documents never share a segment
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            s, e = start % seq, end - (start // seq) * seq
            assert e <= seq  # no segment crosses a row
            assert (s + offset) // group == (e - 1 + offset) // group  # inside one group
        assert layouts[name.replace("cu", "max")] == max(np.diff(bounds))


def test_group_size_checks():
    assert group_size_for(8192, 0.25) == 2048
    assert group_size_for(2048, 1.0) == 2048
    for context, fraction in ((100, 0.3), (2048, 0.0), (10, 0.1)):
        with pytest.raises(ValueError):
            group_size_for(context, fraction)


def test_registered_with_a_mask_function_that_refuses_padding():
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    assert register_s2_attention() == S2ATTN_NAME
    assert AttentionInterface._global_mapping[S2ATTN_NAME] is s2_attention_forward
    assert ALL_MASK_ATTENTION_FUNCTIONS._global_mapping[S2ATTN_NAME] is s2_attention_mask
    assert s2_attention_mask(1, 4, 4, attention_mask=torch.ones(1, 4, dtype=torch.bool)) is None
    with pytest.raises(ValueError, match="no padding attention_mask"):
        s2_attention_mask(1, 4, 4, attention_mask=torch.tensor([[1, 1, 1, 0]], dtype=torch.bool))
    q = torch.randn(1, 2, 4, 8)
    with pytest.raises(ValueError, match="needs the group layouts"):
        s2_attention_forward(None, q, q, q, None)


def test_the_whole_model_output_at_t_ignores_every_later_token():
    from transformers import Qwen2ForCausalLM

    from tinylm_train.collate import collate_blocks
    from tinylm_train.models.qwen2 import build_config
    from tinylm_train.models.qwen2.attention import model_inputs
    from tinylm_train.shards import Block

    register_s2_attention()
    torch.manual_seed(0)
    config = build_config(
        "debug", tokenizer_vocab_size=100, eos_id=0, pad_id=0, attn_implementation=S2ATTN_NAME
    )
    model = Qwen2ForCausalLM(config).eval()
    rng = np.random.default_rng(0)
    seq, group = 64, 16
    ids = rng.integers(1, 100, seq)

    def logits(tokens):
        block = Block(input_ids=tokens, doc_offsets=np.array([0, 40]))  # one doc, then padding
        inputs = model_inputs(collate_blocks([block]), S2ATTN_NAME, group_size=group)
        del inputs["labels"]
        with torch.no_grad():
            return model(**inputs).logits[0]

    base = logits(ids)
    for t in (0, 3, 7, 8, 15, 23, 30):  # inside groups, at group and half-group edges
        changed = ids.copy()
        changed[t + 1 : 40] = rng.integers(1, 100, 40 - t - 1)
        after = logits(changed)
        torch.testing.assert_close(after[: t + 1], base[: t + 1], rtol=0, atol=0)
        assert not torch.allclose(after[t + 1 : 40], base[t + 1 : 40])
