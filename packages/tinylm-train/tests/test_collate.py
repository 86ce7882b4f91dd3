import numpy as np

from tinylm_train.collate import IGNORE_INDEX, collate_blocks
from tinylm_train.shards import Block


def test_positions_labels_and_cu_seqlens():
    blocks = [
        Block(input_ids=np.array([5, 6, 0, 7, 8, 9, 0, 0]), doc_offsets=np.array([0, 3, 6])),
        Block(input_ids=np.array([1, 2, 3, 4, 5, 6, 7, 0]), doc_offsets=np.array([0, 8])),
    ]
    batch = collate_blocks(blocks)
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2, 0, 1], list(range(8))]
    x = IGNORE_INDEX
    assert batch["labels"].tolist() == [[x, 6, 0, x, 8, 9, x, x], [x, 2, 3, 4, 5, 6, 7, 0]]
    assert batch["cu_seqlens"].tolist() == [0, 3, 6, 8, 16]
    assert batch["max_seqlen"] == 8
