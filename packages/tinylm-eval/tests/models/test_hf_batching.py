import itertools

from hypothesis import given
from hypothesis import strategies as st

from tinylm_eval.models.hf_scoring import _batches


def _cost(batches, lengths, forward_cost):
    return sum(len(b) * max(lengths[i] for i in b) + forward_cost for b in batches)


def test_padding_is_traded_against_forwards():
    # together: 6 x 100 + 32 = 632; apart: 300 + 32 + 30 + 32 = 394
    assert _batches([100, 10, 100, 10, 100, 10], 16, forward_cost=32) == [[0, 2, 4], [1, 3, 5]]
    # together: 2 x 100 + 32 = 232; apart: 100 + 95 + 64 = 259
    assert _batches([95, 100], 16, forward_cost=32) == [[1, 0]]
    assert _batches([95, 100], 1, forward_cost=32) == [[1], [0]]
    assert _batches([], 4) == []


@given(
    lengths=st.lists(st.integers(1, 2000), max_size=60),
    batch_size=st.integers(1, 20),
    forward_cost=st.integers(0, 200),
)
def test_every_row_once_longest_first_and_no_worse_than_fixed_chunks(
    lengths, batch_size, forward_cost
):
    batches = _batches(lengths, batch_size, forward_cost)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat, reverse=True)
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    assert _cost(batches, lengths, forward_cost) <= _cost(chunks, lengths, forward_cost)


@given(
    lengths=st.lists(st.integers(1, 300), max_size=8),
    batch_size=st.integers(1, 8),
    forward_cost=st.integers(0, 100),
)
def test_the_cost_is_the_minimum_over_every_cut_of_the_sorted_rows(
    lengths, batch_size, forward_cost
):
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    best = float("inf")
    for cuts in itertools.product([False, True], repeat=max(len(order) - 1, 0)):
        parts, start = [], 0
        for at, cut in enumerate(cuts, start=1):
            if cut:
                parts.append(order[start:at])
                start = at
        parts.append(order[start:])
        parts = [p for p in parts if p]
        if all(len(p) <= batch_size for p in parts):
            best = min(best, _cost(parts, lengths, forward_cost))
    got = _cost(_batches(lengths, batch_size, forward_cost), lengths, forward_cost)
    assert got == (best if lengths else 0)
