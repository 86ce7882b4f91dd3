import json

import numpy as np
import pytest

from tinylm_shards.testing import write_dataset
from tinylm_train.shards import ShardError, ShardReader, load_manifest


@pytest.fixture
def dataset(tmp_path):
    return write_dataset(tmp_path)


def _take(reader, n):
    return [tuple(reader.next_block().input_ids[:8]) for _ in range(n)]


def test_reads_latest_from_the_name_directory(dataset):
    assert load_manifest(dataset.parent).root == dataset
    assert load_manifest(dataset).vocab_size == 100


def test_unknown_schema_version_is_refused(tmp_path):
    root = write_dataset(tmp_path, manifest_overrides={"schema_version": 2})
    with pytest.raises(ShardError, match="schema_version 2"):
        ShardReader(root, seed=0)


def test_checksum_mismatch_is_refused(dataset):
    manifest = json.loads((dataset / "manifest.json").read_text())
    manifest["shards"][0]["sha256"] = "f" * 64
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match="checksum mismatch"):
        ShardReader(dataset, seed=0)


def test_not_a_dataset(tmp_path):
    with pytest.raises(ShardError, match="neither a manifest.json nor a LATEST"):
        load_manifest(tmp_path)


def test_epoch_covers_every_block_once_in_a_seeded_order(dataset):
    a, b, c = (ShardReader(dataset, seed=s) for s in (1, 1, 2))
    n = a.num_blocks
    order_a = [a._rank_order(0)[i] for i in range(n)]
    assert sorted(order_a) == list(range(n))
    assert _take(b, n) == [tuple(a.block(int(i)).input_ids[:8]) for i in order_a]
    assert list(c._rank_order(0)) != order_a


def test_ranks_are_disjoint_and_equal_sized(dataset):
    readers = [ShardReader(dataset, seed=3, rank=r, world_size=3) for r in range(3)]
    orders = [set(r._rank_order(0).tolist()) for r in readers]
    assert all(len(o) == readers[0].blocks_per_rank for o in orders)
    assert (
        not (orders[0] & orders[1]) and not (orders[1] & orders[2]) and not (orders[0] & orders[2])
    )


def test_resumed_reader_continues_where_the_first_stopped(dataset):
    full = ShardReader(dataset, seed=5)
    expected = _take(full, full.num_blocks + 7)  # crosses an epoch boundary
    first = ShardReader(dataset, seed=5)
    seen = _take(first, 11)
    resumed = ShardReader(dataset, seed=5)
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert seen + _take(resumed, len(expected) - 11) == expected


def test_resume_with_another_seed_is_refused(dataset):
    state = ShardReader(dataset, seed=5).state_dict()
    with pytest.raises(ValueError, match="seed"):
        ShardReader(dataset, seed=6).load_state_dict(state)


def test_blocks_follow_the_contract(dataset):
    reader = ShardReader(dataset, seed=0)
    for i in range(reader.num_blocks):
        block = reader.block(i)
        assert block.input_ids.shape == (64,)
        assert block.doc_offsets[0] == 0 and np.all(np.diff(block.doc_offsets) > 0)


def test_unverified_reader_skips_the_checksums_but_not_the_row_checks(dataset):
    manifest = json.loads((dataset / "manifest.json").read_text())
    manifest["shards"][0]["sha256"] = "f" * 64
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    reader = ShardReader(dataset, seed=0, verify=False)  # a rank whose node already verified
    assert reader.block(0).input_ids.shape == (64,)


def test_the_test_tokenizer_loads_with_transformers(dataset):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(dataset / "tokenizer")
    assert tokenizer("w1 w7 w99")["input_ids"] == [1, 7, 99]
    assert tokenizer.eos_token_id == tokenizer.pad_token_id == 0
