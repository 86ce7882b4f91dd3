"""How many threads a stage-1 runner's tokenizer gets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tinylm_data.stage_one_worker import tokenizer_threads


def test_one_in_process_worker_gets_every_core():
    assert tokenizer_threads(1, cores=8) == 8
    assert tokenizer_threads(1, cores=1) == 1


@given(workers=st.integers(min_value=1, max_value=64), cores=st.integers(1, 128))
def test_workers_share_the_cores_and_each_keeps_at_least_one_thread(workers, cores):
    threads = tokenizer_threads(workers, cores=cores)
    assert threads >= 1
    assert workers * threads <= max(cores, workers)  # never more threads than cores
    assert workers * (threads + 1) > cores  # and no core left over that a thread could take
