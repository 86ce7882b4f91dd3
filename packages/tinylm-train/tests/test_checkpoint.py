import json

import pytest

from tinylm_train.checkpoint import (
    find_resume_point,
    latest_complete_checkpoint,
    load_data_state,
    save_data_state,
    truncate_jsonl,
)


def test_an_incomplete_checkpoint_is_skipped(tmp_path):
    for step in (10, 20, 30):
        (tmp_path / f"checkpoint-{step}").mkdir()
    for rank in (0, 1):
        save_data_state(tmp_path / "checkpoint-20", rank, {"index": 20 + rank})
    save_data_state(tmp_path / "checkpoint-30", 0, {"index": 30})  # rank 1 was killed first
    assert latest_complete_checkpoint(tmp_path, world_size=2) == tmp_path / "checkpoint-20"
    assert latest_complete_checkpoint(tmp_path, world_size=1) == tmp_path / "checkpoint-30"
    assert load_data_state(tmp_path / "checkpoint-20", 1) == {"index": 21}
    assert latest_complete_checkpoint(tmp_path / "missing", world_size=1) is None


def test_records_after_the_checkpoint_are_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 8)))
    truncate_jsonl(path, 5)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3, 4, 5]


def test_the_resume_point_is_the_newest_complete_checkpoint_with_this_ranks_position(tmp_path):
    for step in (5, 10):
        for rank in (0, 1):
            (tmp_path / f"checkpoint-{step}").mkdir(exist_ok=True)
            save_data_state(tmp_path / f"checkpoint-{step}", rank, {"index": step * 10 + rank})
    point = find_resume_point(tmp_path, rank=1, world_size=2)
    assert (point.checkpoint, point.step, point.data_state) == (
        tmp_path / "checkpoint-10",
        10,
        {"index": 101},
    )
    with pytest.raises(FileNotFoundError, match="no complete checkpoint-N"):
        find_resume_point(tmp_path / "empty", rank=0, world_size=1)
