from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_data.pack import BestFitPacker, ConcatPacker, make_packer

PAD = -1


def _docs(lengths: list[int]) -> list[tuple[str, np.ndarray]]:
    docs, next_token = [], 0
    for i, n in enumerate(lengths):
        docs.append((f"d{i}", np.arange(next_token, next_token + n, dtype=np.int32)))
        next_token += n
    return docs


def _pack(mode: str, block: int, docs, **kw):
    packer = make_packer(mode, block, PAD, **kw)
    blocks = [b for doc_id, toks in docs for b in packer.add(doc_id, toks)]
    blocks += list(packer.finish())
    return packer, blocks


def _segments(blocks):
    for b in blocks:
        for k, doc_id in enumerate(b.doc_ids):
            yield doc_id, b.input_ids[b.doc_offsets[k] : b.doc_offsets[k + 1]]


def _check_block_invariants(blocks, block: int):
    for b in blocks:
        off = b.doc_offsets
        assert b.input_ids.shape == (block,) and b.input_ids.dtype == np.int32
        assert off[0] == 0 and off[-1] == b.num_tokens <= block
        assert np.all(np.diff(off) > 0), "offsets strictly increasing: no empty segment"
        assert len(b.doc_ids) == len(off) - 1
        assert np.all(b.input_ids[b.num_tokens :] == PAD), "only padding after the real tokens"


lengths_strategy = st.lists(st.integers(min_value=1, max_value=300), min_size=0, max_size=60)
block_strategy = st.integers(min_value=2, max_value=128)


@settings(max_examples=150, deadline=None)
@given(lengths=lengths_strategy, block=block_strategy)
def test_concat_properties(lengths, block):
    docs = _docs(lengths)
    packer, blocks = _pack("concat", block, docs)
    _check_block_invariants(blocks, block)
    # Every block but the last is full; the last is partial exactly when it is not full.
    assert all(b.num_tokens == block and not b.is_partial for b in blocks[:-1])
    if blocks:
        assert blocks[-1].is_partial == (blocks[-1].num_tokens < block)
    # Tokens conserved and in order: the concatenation of segments is the concatenation of docs.
    flat = np.concatenate([t for _, t in _segments(blocks)]) if blocks else np.empty(0)
    expected = np.concatenate([t for _, t in docs]) if docs else np.empty(0)
    assert np.array_equal(flat, expected)
    # Segments name the document their tokens came from.
    for doc_id, toks in _segments(blocks):
        source = dict(docs)[doc_id]
        assert np.isin(toks, source).all()
    assert packer.stats.real_tokens == sum(lengths)
    assert packer.stats.documents == len(lengths)


@settings(max_examples=150, deadline=None)
@given(lengths=lengths_strategy, block=block_strategy, window=st.integers(1, 20))
def test_bestfit_properties(lengths, block, window):
    docs = _docs(lengths)
    packer, blocks = _pack("bestfit", block, docs, window_docs=window)
    _check_block_invariants(blocks, block)
    pieces: dict[str, list[np.ndarray]] = {}
    for doc_id, toks in _segments(blocks):
        pieces.setdefault(doc_id, []).append(toks)
    assert set(pieces) == {d for d, _ in docs}
    for doc_id, toks in docs:
        got = pieces[doc_id]
        if len(toks) <= block:
            assert len(got) == 1, "a document that fits a block is never split"
        # Pieces of a split document appear in order and reassemble it exactly.
        assert np.array_equal(np.concatenate(got), toks)
    assert packer.stats.real_tokens == sum(lengths)
    assert not any(b.is_partial for b in blocks)


def test_concat_example_offsets():
    packer, blocks = _pack("concat", 4, _docs([3, 3, 1]))
    assert [b.doc_offsets.tolist() for b in blocks] == [[0, 3, 4], [0, 2, 3]]
    assert [b.doc_ids for b in blocks] == [["d0", "d1"], ["d1", "d2"]]
    assert blocks[1].input_ids.tolist() == [4, 5, 6, PAD] and blocks[1].is_partial
    assert packer.stats.split_documents == 1 and packer.stats.partial_blocks == 1


def test_bestfit_fills_gaps_with_small_documents():
    # 3 + 1 and 2 + 2 fit exactly: best-fit-decreasing finds the zero-padding packing.
    packer, blocks = _pack("bestfit", 4, _docs([3, 2, 2, 1]))
    assert sorted(sorted(b.doc_ids) for b in blocks) == [["d0", "d3"], ["d1", "d2"]]
    assert packer.stats.utilisation == 1.0 and packer.stats.split_documents == 0


def test_bestfit_splits_long_document_into_full_blocks_and_rest():
    packer, blocks = _pack("bestfit", 4, _docs([9, 3]))
    assert packer.stats.split_documents == 1
    assert sum(b.num_tokens == 4 for b in blocks) == 3  # two full pieces + (remainder 1 with d1)


def test_bestfit_beats_concat_on_splits():
    rng = np.random.default_rng(0)
    docs = _docs(rng.integers(5, 60, size=400).tolist())
    concat, _ = _pack("concat", 64, docs)
    bestfit, _ = _pack("bestfit", 64, docs, window_docs=400)
    assert bestfit.stats.split_documents == 0 < concat.stats.split_documents
    # Best-fit-decreasing uses at most 11/9 OPT + 1 bins, and OPT >= ceil(tokens / block).
    lower_bound = -(-bestfit.stats.real_tokens // 64)
    assert bestfit.stats.blocks <= 11 / 9 * lower_bound + 1
    assert bestfit.stats.utilisation > 0.9


def test_invalid_configurations():
    with pytest.raises(ValueError, match="pack mode"):
        make_packer("greedy", 8, 0)
    with pytest.raises(ValueError, match="block_size"):
        ConcatPacker(1, 0)
    with pytest.raises(ValueError, match="no tokens"):
        list(BestFitPacker(8, 0).add("x", np.empty(0, dtype=np.int32)))
