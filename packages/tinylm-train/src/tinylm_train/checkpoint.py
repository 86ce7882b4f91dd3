"""Whole checkpoints: each rank's data position, a completion marker written last, rotation,
the newest whole checkpoint to resume from, and log truncation.

A checkpoint is whole when its marker `complete.json` exists and every file the marker lists is
still there with its recorded size. Rank 0 writes the marker after the Trainer's files (model,
optimizer, scheduler, RNG, trainer state) and every rank's `data-rank<r>.json` exist, and
rotation removes the marker first, so a run killed at any point never leaves a checkpoint that
looks whole but is not. Resume takes the newest whole checkpoint and says why newer ones were
skipped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

MARKER = "complete.json"
TRAINER_STATE = "trainer_state.json"
MODEL_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "adapter_model.safetensors",  # a LoRA run's checkpoint holds the adapters only
)
PIPELINE_STATE = "pipeline_state.json"
"""Written (rank 0) into a pipeline engine's checkpoint after DeepSpeed's per-layer states."""
PIPELINE_LAYERS = "layer_*-model_states.pt"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(RuntimeError):
    """No whole checkpoint to resume from (the message says what each one lacks)."""


def data_state_path(checkpoint: Path, rank: int) -> Path:
    return checkpoint / f"data-rank{rank}.json"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def save_data_state(checkpoint: Path, rank: int, state: dict) -> None:
    _write_atomic(data_state_path(checkpoint, rank), json.dumps(state))


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


def _files(checkpoint: Path) -> dict[str, int]:
    return {
        str(p.relative_to(checkpoint)): p.stat().st_size
        for p in sorted(checkpoint.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def mark_complete(checkpoint: Path, *, world_size: int) -> None:
    """Write the marker listing every file of the checkpoint; call once all ranks have saved."""
    problems = checkpoint_problems(checkpoint, world_size=world_size, marker=False)
    if problems:
        raise CheckpointError(f"{checkpoint.name} is not whole: {'; '.join(problems)}")
    record = {"world_size": world_size, "files": _files(checkpoint)}
    _write_atomic(checkpoint / MARKER, json.dumps(record, indent=1))


def checkpoint_problems(checkpoint: Path, *, world_size: int, marker: bool = True) -> list[str]:
    """Why `checkpoint` cannot be resumed from (empty when it is whole)."""
    problems = []
    if is_pipeline_checkpoint(checkpoint):
        if not (checkpoint / PIPELINE_STATE).is_file():
            problems.append(f"missing {PIPELINE_STATE}")
    else:
        if not (checkpoint / TRAINER_STATE).is_file():
            problems.append(f"missing {TRAINER_STATE}")
        if not any((checkpoint / name).is_file() for name in MODEL_FILES):
            problems.append(f"missing the model ({' or '.join(MODEL_FILES)})")
    missing_ranks = [r for r in range(world_size) if not data_state_path(checkpoint, r).is_file()]
    if missing_ranks:
        names = ", ".join(data_state_path(checkpoint, r).name for r in missing_ranks)
        problems.append(f"missing the data position ({names})")
    if not marker:
        return problems
    marker_path = checkpoint / MARKER
    if not marker_path.is_file():
        return [*problems, f"no completion marker ({MARKER}): the save did not finish"]
    try:
        listed = json.loads(marker_path.read_text(encoding="utf-8"))["files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return [*problems, f"unreadable completion marker ({MARKER})"]
    present = _files(checkpoint)
    for name, size in listed.items():
        if name not in present:
            problems.append(f"missing {name}")
        elif present[name] != size:
            problems.append(f"{name} has {present[name]} bytes, {size} when saved")
    return problems


def is_pipeline_checkpoint(checkpoint: Path) -> bool:
    """Written by the pipeline engine (DeepSpeed's per-layer model states)?"""
    return (checkpoint / PIPELINE_STATE).is_file() or any(checkpoint.glob(PIPELINE_LAYERS))


def list_checkpoints(output_dir: Path) -> list[Path]:
    """The checkpoint-N directories of output_dir, newest first."""
    if not output_dir.is_dir():
        return []
    return sorted(
        (p for p in output_dir.iterdir() if p.is_dir() and _CHECKPOINT.match(p.name)),
        key=checkpoint_step,
        reverse=True,
    )


def remove_checkpoint(checkpoint: Path) -> None:
    """Delete a checkpoint, its marker first, so a kill midway leaves it visibly incomplete."""
    (checkpoint / MARKER).unlink(missing_ok=True)
    shutil.rmtree(checkpoint)


def rotate_checkpoints(output_dir: Path, *, keep: int) -> list[Path]:
    """Remove all but the newest `keep` checkpoints; returns the removed ones."""
    removed = list_checkpoints(output_dir)[keep:]
    for checkpoint in removed:
        remove_checkpoint(checkpoint)
    return removed


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
    """Where a resumed run continues: a whole checkpoint and this rank's data position."""

    checkpoint: Path
    """The checkpoint-N directory the loop restores model, optimizer and RNG state from."""
    step: int
    """N: the optimizer steps already done."""
    data_state: dict
    """This rank's BlockDataset.state_dict() at that step."""
    skipped: tuple[tuple[Path, tuple[str, ...]], ...] = ()
    """Newer checkpoints that were not whole, each with what it lacks."""


def _describe(checkpoint: Path, problems: tuple[str, ...] | list[str]) -> str:
    return f"{checkpoint.name} ({'; '.join(problems)})"


def find_resume_point(output_dir: Path, *, rank: int, world_size: int) -> ResumePoint:
    """The newest whole checkpoint in output_dir; CheckpointError when there is none."""
    skipped: list[tuple[Path, tuple[str, ...]]] = []
    for checkpoint in list_checkpoints(output_dir):
        problems = tuple(checkpoint_problems(checkpoint, world_size=world_size))
        if not problems:
            return ResumePoint(
                checkpoint=checkpoint,
                step=checkpoint_step(checkpoint),
                data_state=load_data_state(checkpoint, rank),
                skipped=tuple(skipped),
            )
        skipped.append((checkpoint, problems))
    if not skipped:
        raise CheckpointError(f"--resume: no checkpoint-N in {output_dir}")
    why = ", ".join(_describe(c, p) for c, p in skipped)
    raise CheckpointError(f"--resume: no whole checkpoint in {output_dir}: {why}")


def drop_skipped(point: ResumePoint) -> None:
    """Say which checkpoint a run resumes from, and remove the newer ones that are not whole.

    why: the resumed run saves those steps again; writing into a directory that still holds an
    old marker could leave a mix of two runs' files that looks whole. Call on rank 0 only.
    """
    for checkpoint, problems in point.skipped:
        log.warning("skipping %s: not whole; removing it", _describe(checkpoint, problems))
        remove_checkpoint(checkpoint)
    reason = "the newest whole checkpoint" if point.skipped else "the newest checkpoint"
    log.info(
        "resuming from %s (%s) at data position %s", point.checkpoint, reason, point.data_state
    )
