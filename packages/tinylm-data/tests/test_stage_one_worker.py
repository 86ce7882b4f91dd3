"""How many threads a stage-1 runner's tokenizer gets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tinylm_data.stage_one_worker import tokenizer_threads


def test_one_in_process_worker_gets_every_core():
    assert tokenizer_threads(1, cores=8) == 8
    assert tokenizer_threads(1, cores=1) == 1


@given(workers=st.integers(min_value=2, max_value=64), cores=st.integers(1, 128))
def test_a_forked_pool_keeps_one_thread_per_worker(workers, cores):
    assert tokenizer_threads(workers, cores=cores) == 1
