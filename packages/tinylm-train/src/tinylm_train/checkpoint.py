"""The data position inside a checkpoint, the newest complete checkpoint, log truncation.

Each rank writes `data-rank<r>.json` (its shard reader's state_dict) into `checkpoint-N/` after
the Trainer has written the model, optimizer, scheduler, RNG and trainer state, so a checkpoint
holding the files of every rank is complete. A run killed while writing a checkpoint therefore
resumes from the previous one.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def data_state_path(checkpoint: Path, rank: int) -> Path:
    return checkpoint / f"data-rank{rank}.json"


def save_data_state(checkpoint: Path, rank: int, state: dict) -> None:
    path = data_state_path(checkpoint, rank)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    tmp.replace(path)  # why: the file marks the checkpoint complete, so it appears whole or not


def load_data_state(checkpoint: Path, rank: int) -> dict:
    path = data_state_path(checkpoint, rank)
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint} has no data position for rank {rank} ({path.name})")
    return json.loads(path.read_text(encoding="utf-8"))


def checkpoint_step(checkpoint: Path) -> int:
    match = _CHECKPOINT.match(checkpoint.name)
    if match is None:
        raise ValueError(f"{checkpoint} is not a checkpoint-N directory")
    return int(match.group(1))


def latest_complete_checkpoint(output_dir: Path, world_size: int) -> Path | None:
    """The highest checkpoint-N in output_dir that holds the data position of every rank."""
    if not output_dir.is_dir():
        return None
    candidates = sorted(
        (p for p in output_dir.iterdir() if p.is_dir() and _CHECKPOINT.match(p.name)),
        key=checkpoint_step,
        reverse=True,
    )
    for checkpoint in candidates:
        if all(data_state_path(checkpoint, r).is_file() for r in range(world_size)):
            return checkpoint
    return None


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Drop records with step > last_step (written after the checkpoint a run resumes from)."""
    if not path.is_file():
        return
    keep = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line)["step"] <= last_step
    ]
    path.write_text("".join(line + "\n" for line in keep), encoding="utf-8")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResumePoint:
    """Where a resumed run continues: a complete checkpoint and this rank's data position."""

    checkpoint: Path
    """The checkpoint-N directory the loop restores model, optimizer and RNG state from."""
    step: int
    """N: the optimizer steps already done."""
    data_state: dict
    """This rank's BlockDataset.state_dict() at that step."""


def find_resume_point(output_dir: Path, *, rank: int, world_size: int) -> ResumePoint:
    """The newest complete checkpoint in output_dir, or FileNotFoundError when there is none."""
    checkpoint = latest_complete_checkpoint(output_dir, world_size)
    if checkpoint is None:
        raise FileNotFoundError(f"--resume: no complete checkpoint-N in {output_dir}")
    return ResumePoint(
        checkpoint=checkpoint,
        step=checkpoint_step(checkpoint),
        data_state=load_data_state(checkpoint, rank),
    )
