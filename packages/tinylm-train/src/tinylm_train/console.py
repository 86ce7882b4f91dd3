"""What a person watches during a run (rank 0 only): one rich progress bar with loss, lr,
tokens/s and ETA, a readable log line every `every` steps, and the closing summary.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

log = logging.getLogger(__name__)


def format_step(record: dict, *, max_steps: int) -> str:
    """`step 10/150  loss 6.512  lr 4.95e-03  grad 0.84  2,310 tok/s  mfu 12.1%` of a record."""
    parts = [f"step {record['step']}/{max_steps}", f"loss {record['loss']:.4f}"]
    if record.get("lr") is not None:
        parts.append(f"lr {record['lr']:.3e}")
    if record.get("grad_norm") is not None:
        parts.append(f"grad {record['grad_norm']:.3f}")
    parts.append(f"{record['tokens_per_s']:,.0f} tok/s")
    if record.get("mfu") is not None:
        parts.append(f"mfu {100 * record['mfu']:.1f}%")
    return "  ".join(parts)


class TrainingProgress:
    """The progress bar and periodic log lines of one run."""

    def __init__(self, *, max_steps: int, every: int) -> None:
        self.max_steps = max_steps
        self.every = every
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[tps]} tok/s"),
            TextColumn("eta"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = None

    def start(self, step: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=self.max_steps, completed=step, loss="-", lr="-", tps="-"
        )

    def step(self, step: int) -> None:
        self.progress.update(self.task, completed=step)

    def record(self, record: dict) -> None:
        lr = "-" if record.get("lr") is None else f"{record['lr']:.2e}"
        self.progress.update(
            self.task,
            loss=f"{record['loss']:.3f}",
            lr=lr,
            tps=f"{record['tokens_per_s']:,.0f}",
        )
        if record["step"] % self.every == 0 or record["step"] == self.max_steps:
            log.info(format_step(record, max_steps=self.max_steps))

    def validation(self, record: dict) -> None:
        log.info(
            "step %d/%d  validation loss %.4f (%d tokens)",
            record["step"],
            self.max_steps,
            record["val_loss"],
            record["val_tokens"],
        )

    def close(self) -> None:
        self.progress.stop()


def write_summary(path: Path, summary: dict) -> None:
    """The run's closing summary as JSON (summary.json beside metrics.jsonl)."""
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def format_summary(summary: dict) -> str:
    """The closing summary as the lines printed at the end of a run."""
    loss = summary["final_loss"]
    lines = [
        f"trained {summary['steps']} steps, {summary['tokens']:,} tokens "
        f"in {summary['train_seconds']:.1f} s ({summary['tokens_per_s']:,.0f} tokens/s)",
        f"final loss {loss:.4f}" if loss is not None else "final loss -",
    ]
    if summary.get("final_val_loss") is not None:
        lines[-1] += f", validation loss {summary['final_val_loss']:.4f}"
    lines.append(f"model: {summary['model']}")
    return "\n".join(lines)
