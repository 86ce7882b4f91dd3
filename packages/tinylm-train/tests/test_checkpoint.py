import json
import shutil

import pytest

from tinylm_train.checkpoint import (
    MARKER,
    CheckpointError,
    checkpoint_problems,
    find_resume_point,
    load_data_state,
    mark_complete,
    remove_checkpoint,
    rotate_checkpoints,
    save_data_state,
    truncate_jsonl,
)


def _checkpoint(root, step, *, ranks=(0,), mark=True, world_size=1):
    """A checkpoint-N with the files the Trainer writes (small stand-ins) and data positions."""
    checkpoint = root / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True)
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (checkpoint / name).write_bytes(b"x" * step)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    for rank in ranks:
        save_data_state(checkpoint, rank, {"index": step * 10 + rank})
    if mark:
        mark_complete(checkpoint, world_size=world_size)
    return checkpoint


def test_a_checkpoint_without_a_marker_or_a_rank_is_skipped(tmp_path):
    _checkpoint(tmp_path, 10, ranks=(0, 1), world_size=2)
    _checkpoint(tmp_path, 20, ranks=(0, 1), mark=False)  # killed before the marker
    _checkpoint(tmp_path, 30, ranks=(0,), mark=False)  # rank 1 was killed first
    point = find_resume_point(tmp_path, rank=1, world_size=2)
    assert point.checkpoint == tmp_path / "checkpoint-10"
    assert [c.name for c, _ in point.skipped] == ["checkpoint-30", "checkpoint-20"]
    assert checkpoint_problems(tmp_path / "checkpoint-30", world_size=2) == [
        "missing the data position (data-rank1.json)",
        f"no completion marker ({MARKER}): the save did not finish",
    ]
    assert point.data_state == load_data_state(tmp_path / "checkpoint-10", 1) == {"index": 101}


def test_the_marker_is_refused_before_every_rank_has_written(tmp_path):
    checkpoint = _checkpoint(tmp_path, 5, ranks=(0,), mark=False)
    with pytest.raises(CheckpointError, match=r"missing the data position \(data-rank1.json\)"):
        mark_complete(checkpoint, world_size=2)
    assert not (checkpoint / MARKER).exists()


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("optimizer.pt", "missing optimizer.pt"),
        ("scheduler.pt", "missing scheduler.pt"),
        ("rng_state.pth", "missing rng_state.pth"),
        ("model.safetensors", "missing the model (model.safetensors or"),
        ("trainer_state.json", "missing trainer_state.json"),
    ],
)
def test_a_file_removed_after_the_marker_falls_back_with_the_reason(tmp_path, name, problem):
    _checkpoint(tmp_path, 5)
    (_checkpoint(tmp_path, 10) / name).unlink()
    point = find_resume_point(tmp_path, rank=0, world_size=1)
    assert (point.checkpoint, point.step, point.data_state) == (
        tmp_path / "checkpoint-5",
        5,
        {"index": 50},
    )
    [(skipped, problems)] = point.skipped
    assert skipped == tmp_path / "checkpoint-10"
    assert any(p.startswith(problem) for p in problems), problems


def test_a_truncated_file_is_not_whole(tmp_path):
    checkpoint = _checkpoint(tmp_path, 10)
    (checkpoint / "optimizer.pt").write_bytes(b"x")
    assert checkpoint_problems(checkpoint, world_size=1) == [
        "optimizer.pt has 1 bytes, 10 when saved"
    ]


def test_no_whole_checkpoint_is_one_clear_error(tmp_path):
    (_checkpoint(tmp_path, 5) / "optimizer.pt").unlink()
    _checkpoint(tmp_path, 10, mark=False)
    with pytest.raises(CheckpointError) as error:
        find_resume_point(tmp_path, rank=0, world_size=1)
    assert str(error.value) == (
        f"--resume: no whole checkpoint in {tmp_path}: "
        f"checkpoint-10 (no completion marker ({MARKER}): the save did not finish), "
        "checkpoint-5 (missing optimizer.pt)"
    )
    with pytest.raises(CheckpointError, match="no checkpoint-N in"):
        find_resume_point(tmp_path / "empty", rank=0, world_size=1)


def test_rotation_keeps_the_newest(tmp_path):
    for step in (5, 10, 15, 20):
        _checkpoint(tmp_path, step)
    removed = rotate_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == ["checkpoint-10", "checkpoint-5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-15", "checkpoint-20"]


def test_a_removal_killed_midway_leaves_a_checkpoint_that_is_not_whole(tmp_path, monkeypatch):
    _checkpoint(tmp_path, 5)
    checkpoint = _checkpoint(tmp_path, 10)

    def killed(path, *args, **kwargs):  # fault: the process dies once deletion has begun
        (path / "optimizer.pt").unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        remove_checkpoint(checkpoint)
    assert not (checkpoint / MARKER).exists()  # the marker went first
    point = find_resume_point(tmp_path, rank=0, world_size=1)
    assert point.checkpoint == tmp_path / "checkpoint-5"


def test_records_after_the_checkpoint_are_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 8)))
    truncate_jsonl(path, 5)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3, 4, 5]
