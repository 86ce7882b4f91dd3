import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinylm_shards import (
    PREFERENCE_PAIRS,
    PairReader,
    ShardError,
    answer_mask,
    load_manifest,
    truncate_pair,
    verify_shards,
)
from tinylm_shards.testing import write_preference_dataset

ids = st.lists(st.integers(1, 99), min_size=1, max_size=40)


@given(ids, ids, ids, st.integers(2, 60))
def test_truncation_fits_cuts_the_prompt_start_first_and_counts(prompt, chosen, rejected, limit):
    pair = truncate_pair("p", prompt, chosen, rejected, max_length=limit)
    assert pair.length <= limit
    assert pair.prompt_truncated + len(pair.prompt_ids) == len(prompt)
    assert pair.prompt_ids.tolist() == prompt[pair.prompt_truncated :]  # the end is kept
    assert pair.chosen_ids.tolist() == chosen[: len(pair.chosen_ids)]
    assert pair.rejected_ids.tolist() == rejected[: len(pair.rejected_ids)]
    dropped = len(chosen) - len(pair.chosen_ids) + len(rejected) - len(pair.rejected_ids)
    assert pair.answer_truncated == dropped
    if dropped:  # answers are cut only once the prompt is down to its last token
        assert len(pair.prompt_ids) == 1
    if len(prompt) + max(len(chosen), len(rejected)) <= limit:
        assert pair.prompt_truncated == pair.answer_truncated == 0


def test_truncation_refuses_empty_parts_and_a_limit_with_no_room():
    with pytest.raises(ValueError, match="non-empty"):
        truncate_pair("p", [1], [], [2], max_length=8)
    with pytest.raises(ValueError, match="no answer token"):
        truncate_pair("p", [1], [2], [3], max_length=1)


def test_answer_mask_covers_only_the_answer():
    assert answer_mask(3, 2).tolist() == [0, 0, 0, 1, 1]


def test_pairs_round_trip_with_their_split_and_counts(tmp_path):
    rows = [([1, 2, 3], [4, 5], [6]), ([7] * 10, [8, 9], [10, 11, 12])]
    root = write_preference_dataset(
        tmp_path, rows, validation_pairs=[([1], [2], [3])], max_length=8, rows_per_shard=1
    )
    manifest = load_manifest(tmp_path / "prefs", formats=(PREFERENCE_PAIRS,))
    verify_shards(manifest)
    reader = PairReader(manifest)
    assert len(reader) == 2 and len(manifest.shards) == 2
    first, second = reader.pairs()
    assert first.prompt_ids.tolist() == [1, 2, 3] and first.chosen_ids.tolist() == [4, 5]
    assert second.prompt_ids.tolist() == [7] * 5 and second.prompt_truncated == 5
    assert [s.tolist() for s in first.sequences()] == [[1, 2, 3, 4, 5], [1, 2, 3, 6]]
    assert manifest.raw["counts"]["prompt_truncated_pairs"] == 1
    held = PairReader(manifest.split("validation"))
    assert held.pair(0).pair_id == "held-0" and held.pair(0).index == 0
    assert json.loads((root / "manifest.json").read_text())["schema_version"] == 2


def test_a_packed_block_reader_refuses_pairs_and_a_pair_reader_refuses_old_schemas(tmp_path):
    write_preference_dataset(tmp_path, [([1], [2], [3])], max_length=4)
    with pytest.raises(ShardError, match="reads \\['tinylm-packed-blocks'\\] only"):
        load_manifest(tmp_path / "prefs")
    write_preference_dataset(
        tmp_path,
        [([1], [2], [3])],
        name="old",
        max_length=4,
        manifest_overrides={"schema_version": 1},
    )
    with pytest.raises(ShardError, match="schema_version 1"):
        PairReader(tmp_path / "old")


def test_a_row_longer_than_max_length_is_refused_when_read(tmp_path):
    root = write_preference_dataset(tmp_path, [([1, 2], [3, 4], [5])], max_length=4)
    raw = json.loads((root / "manifest.json").read_text())
    raw["block_size"] = 3
    (root / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ShardError, match="4 tokens, max_length"):
        PairReader(root).pair(0)
