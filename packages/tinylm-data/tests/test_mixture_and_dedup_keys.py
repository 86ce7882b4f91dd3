from __future__ import annotations

import numpy as np

from tinylm_data.assembly import exact_duplicates
from tinylm_data.mixture import copies, rounds_needed


def test_integer_weights_are_exact_and_fractions_are_close():
    assert {copies(f"d{i}", 2.0, 0) for i in range(100)} == {2}
    assert {copies(f"d{i}", 0.0, 0) for i in range(100)} == {0}
    drawn = [copies(f"d{i}", 0.3, 0) for i in range(20000)]
    assert set(drawn) == {0, 1}
    assert abs(np.mean(drawn) - 0.3) < 0.02
    assert copies("x", 1.5, 7) == copies("x", 1.5, 7), "the coin depends only on seed and id"
    assert rounds_needed([0.5, 2.0, 1.2]) == 2


def _keys(values):
    return np.array([[v, 0] for v in values], dtype=np.uint64).reshape(-1, 2)


def test_exact_duplicates_keep_the_first_occurrence_across_tasks():
    dupes = exact_duplicates([_keys([1, 2, 1]), _keys([2, 3, 1])], groups=[0, 0])
    # global ordinals: task0 -> 0,1,2 ; task1 -> 3,4,5
    assert dupes == {2: 0, 3: 1, 5: 0}


def test_exact_duplicates_respect_groups():
    dupes = exact_duplicates([_keys([1, 1]), _keys([1])], groups=[0, 1])
    assert dupes == {1: 0}
    assert exact_duplicates([], groups=[]) == {}
