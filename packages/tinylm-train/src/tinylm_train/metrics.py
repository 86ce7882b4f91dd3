"""Throughput and MFU per logged step, the metrics.jsonl writer and the loss plot.

Loop-independent: a loop calls `MetricsWriter.start()` when training starts and `log(...)` with
each logged step's loss; the writer times the interval itself.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def flops_per_token(n_params: int, layers: int, hidden: int, seq: int) -> float:
    """6·N + 12·L·d·T training FLOPs per token."""
    return 6 * n_params + 12 * layers * hidden * seq


class MetricsWriter:
    """Appends one record per logged step: loss, lr, grad norm, tokens/s and MFU.

    `tokens_per_step` is one device's tokens per optimizer step (batch x accumulation x block);
    tokens/s counts all `world_size` devices and MFU divides by their summed peak.
    """

    def __init__(
        self,
        path: Path,
        *,
        tokens_per_step: int,
        flops_per_token: float,
        peak_flops: float,
        world_size: int,
        logging_steps: int = 1,
        clock=time.perf_counter,
    ) -> None:
        self.path = path
        self.tokens_per_step = tokens_per_step
        self.flops_per_token = flops_per_token
        self.peak_flops = peak_flops
        self.world_size = world_size
        self.logging_steps = logging_steps
        self.clock = clock
        self.last = clock()

    def start(self) -> None:
        """Start timing the first interval (call when the first step begins)."""
        self.last = self.clock()

    def log(self, step: int, loss: float, *, lr: float | None, grad_norm: float | None) -> dict:
        now = self.clock()
        seconds = (now - self.last) / self.logging_steps
        self.last = now
        tps = self.tokens_per_step * self.world_size / seconds
        record = {
            "step": step,
            "loss": loss,
            "lr": lr,
            "grad_norm": grad_norm,
            "tokens_per_s": tps,
            "mfu": tps * self.flops_per_token / (self.peak_flops * self.world_size),
        }
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        return record


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics.jsonl file (empty when it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def plot_losses(metrics_path: Path, png: Path) -> None:
    """The loss curve of a metrics.jsonl as a PNG; nothing when there are no records."""
    rows = read_metrics(metrics_path)
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    fig.savefig(png, dpi=100)
    plt.close(fig)
