import json

import numpy as np
import pytest
import torch

from tinylm_shards.testing import write_dataset
from tinylm_train.collate import collate_blocks
from tinylm_train.data import BlockDataset, BlockLog, ModelInputCollator
from tinylm_train.shards import Block, ShardError


def _indices(stream, n):
    return [next(stream).index for _ in range(n)]


def test_a_dataset_restored_from_its_state_continues_the_stream(tmp_path):
    data = write_dataset(tmp_path)
    full = iter(BlockDataset(data, seed=4, rank=0, world_size=1))
    expected = _indices(full, 30)
    first = BlockDataset(data, seed=4, rank=0, world_size=1)
    seen = _indices(iter(first), 12)
    state = json.loads(json.dumps(first.state_dict()))  # as written into a checkpoint
    resumed = BlockDataset(data, seed=4, rank=0, world_size=1, state=state)
    assert seen + _indices(iter(resumed), 18) == expected
    later = BlockDataset(data, seed=4, rank=0, world_size=1)
    later.load_state_dict(state)
    assert _indices(iter(later), 18) == expected[12:]


def test_the_block_log_numbers_optimizer_steps_across_accumulation_and_resume(tmp_path):
    path = tmp_path / "blocks-rank0.jsonl"
    log = BlockLog(path, gradient_accumulation_steps=2, start_step=3)
    for i in range(4):
        log.record([Block(input_ids=np.zeros(4), doc_offsets=np.array([0, 4]), index=i)])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == [
        {"step": 4, "blocks": [0]},
        {"step": 4, "blocks": [1]},
        {"step": 5, "blocks": [2]},
        {"step": 5, "blocks": [3]},
    ]


def test_the_collator_gives_the_attention_path_its_inputs(tmp_path):
    blocks = [
        Block(input_ids=np.array([5, 6, 0, 7, 8, 0]), doc_offsets=np.array([0, 3, 6]), index=9),
        Block(input_ids=np.array([1, 2, 3, 4, 0, 0]), doc_offsets=np.array([0, 5]), index=2),
    ]
    log = BlockLog(tmp_path / "b.jsonl", gradient_accumulation_steps=1)
    varlen = ModelInputCollator("tinylm_varlen", block_log=log)(blocks)
    batch = collate_blocks(blocks)
    assert torch.equal(varlen["cu_seq_lens_q"], batch["cu_seqlens"])
    assert varlen["max_length_q"] == batch["max_seqlen"] and varlen["attention_mask"] is None
    assert torch.equal(varlen["labels"], batch["labels"])
    sdpa = ModelInputCollator("sdpa")(blocks)
    assert "cu_seq_lens_q" not in sdpa and torch.equal(sdpa["position_ids"], batch["position_ids"])
    assert json.loads((tmp_path / "b.jsonl").read_text()) == {"step": 1, "blocks": [9, 2]}


def test_only_rank_zero_checks_the_shards(tmp_path):
    data = write_dataset(tmp_path)
    shard = next((data / "shards").glob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[:-1] + b"\0")  # same size, other checksum
    with pytest.raises(ShardError, match="sha256|checksum"):
        BlockDataset(data, seed=0, rank=0, world_size=2)
    BlockDataset(data, seed=0, rank=1, world_size=2)  # trusts rank 0's check
