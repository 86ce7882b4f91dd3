import numpy as np

from tinylm_shards import IGNORE_INDEX, cu_seqlens, labels, position_ids, segment_bounds

X = IGNORE_INDEX
OFFSETS = [np.array([0, 3, 6]), np.array([0, 8])]
IDS = np.array([[5, 6, 0, 7, 8, 9, 0, 0], [1, 2, 3, 4, 5, 6, 7, 0]])


def test_positions_restart_at_every_segment_and_padding_is_its_own_segment():
    assert position_ids(OFFSETS, 8).tolist() == [[0, 1, 2, 0, 1, 2, 0, 1], list(range(8))]


def test_labels_skip_segment_starts_and_padding():
    assert labels(IDS, OFFSETS).tolist() == [[X, 6, 0, X, 8, 9, X, X], [X, 2, 3, 4, 5, 6, 7, 0]]
    assert IDS[0, 0] == 5  # the input is not changed in place


def test_cu_seqlens_cover_the_flattened_batch():
    assert cu_seqlens(OFFSETS, 8).tolist() == [0, 3, 6, 8, 16]
    assert cu_seqlens(OFFSETS, 8).dtype == np.int32
    assert segment_bounds(np.array([0, 8]), 8).tolist() == [0, 8]


def test_agrees_with_a_plain_loop_on_random_rows():
    rng = np.random.default_rng(0)
    block = 32
    for _ in range(50):
        real = int(rng.integers(1, block + 1))
        cuts = np.sort(rng.choice(np.arange(1, real), size=min(3, real - 1), replace=False))
        offsets = np.concatenate([[0], cuts, [real]])
        ids = rng.integers(1, 50, size=(1, block))
        want_pos, want_lab = np.zeros(block, int), np.full(block, X)
        bounds = list(offsets) + ([block] if real < block else [])
        for s, e in zip(bounds[:-1], bounds[1:], strict=True):
            want_pos[s:e] = np.arange(e - s)
        for s, e in zip(offsets[:-1], offsets[1:], strict=True):
            want_lab[s + 1 : e] = ids[0, s + 1 : e]
        assert position_ids([offsets], block)[0].tolist() == want_pos.tolist()
        assert labels(ids, [offsets])[0].tolist() == want_lab.tolist()
