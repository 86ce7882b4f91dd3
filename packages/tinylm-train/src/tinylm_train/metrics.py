"""Throughput and MFU per logged step, the metrics.jsonl writer and the loss plot.

Loop-independent: a loop calls `MetricsWriter.start()` when training starts and `log(...)` with
each logged step's loss; the writer times the interval itself.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

# Dense bf16 tensor-core peaks per device, in FLOP/s, matched against the CUDA device name
# (longest name first, so "H100 PCIe" wins over "H100"). The one place MFU peaks come from.
PEAK_FLOPS_BY_DEVICE: dict[str, float] = {
    "H200": 989e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
}


def device_peak_flops(device_name: str | None) -> float | None:
    """The known per-device peak for a CUDA device name, or None (CPU, unknown device)."""
    if not device_name:
        return None
    for name in sorted(PEAK_FLOPS_BY_DEVICE, key=len, reverse=True):
        if name.lower() in device_name.lower():
            return PEAK_FLOPS_BY_DEVICE[name]
    return None


def resolve_peak_flops(configured: float | None, device_name: str | None) -> float | None:
    """The peak MFU is reported against: the config's, else the device's known one, else None."""
    if configured is not None:
        return configured
    peak = device_peak_flops(device_name)
    if peak is None:
        log.info(
            "MFU not reported: no known peak for %s (set metrics.peak_flops)",
            device_name or "this CPU",
        )
    return peak


def flops_per_token(n_params: int, layers: int, hidden: int, seq: int) -> float:
    """6·N + 12·L·d·T training FLOPs per token."""
    return 6 * n_params + 12 * layers * hidden * seq


class MetricsWriter:
    """Appends one record per logged step: loss, lr, grad norm, tokens/s and MFU.

    `tokens_per_step` is one device's tokens per optimizer step (batch x accumulation x block);
    tokens/s counts all `world_size` devices and MFU divides by their summed peak (None
    without a peak). Validation losses are records of their own (`val_loss`, no `loss`).
    """

    def __init__(
        self,
        path: Path,
        *,
        tokens_per_step: int,
        flops_per_token: float,
        peak_flops: float | None,
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
        self.started = self.last
        self.steps = 0
        self.last_record: dict | None = None

    def start(self) -> None:
        """Start timing the first interval (call when the first step begins)."""
        self.last = self.started = self.clock()

    def log(
        self,
        step: int,
        loss: float,
        *,
        lr: float | None,
        grad_norm: float | None,
        tokens: int | None = None,
        extra: dict | None = None,
    ) -> dict:
        """One step's record; `tokens` (this device's tokens since the last record) replaces
        the fixed tokens_per_step for variable-length batches; `extra` is merged in."""
        now = self.clock()
        seconds = (now - self.last) / self.logging_steps
        self.last = now
        per_step = self.tokens_per_step if tokens is None else tokens / self.logging_steps
        tps = per_step * self.world_size / seconds
        mfu = None
        if self.peak_flops is not None:
            mfu = tps * self.flops_per_token / (self.peak_flops * self.world_size)
        record = {
            "step": step,
            "loss": loss,
            "lr": lr,
            "grad_norm": grad_norm,
            "tokens_per_s": tps,
            "mfu": mfu,
            **(extra or {}),
        }
        self.steps += self.logging_steps
        self.last_record = record
        self._append(record)
        return record

    def log_validation(
        self, step: int, loss: float, *, tokens: int, extra: dict | None = None
    ) -> dict:
        record = {"step": step, "val_loss": loss, "val_tokens": tokens, **(extra or {})}
        self._append(record)
        return record

    @property
    def elapsed(self) -> float:
        """Seconds from start() to the last logged step."""
        return self.last - self.started

    def _append(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics.jsonl file (empty when it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def plot_losses(metrics_path: Path, png: Path) -> None:
    """The loss curve of a metrics.jsonl as a PNG; nothing when there are no records."""
    records = read_metrics(metrics_path)
    rows = [r for r in records if "loss" in r]
    validation = [r for r in records if "val_loss" in r]
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], label="train")
    if validation:
        steps = [r["step"] for r in validation]
        ax.plot(steps, [r["val_loss"] for r in validation], marker="o", label="validation")
        ax.legend()
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    fig.savefig(png, dpi=100)
    plt.close(fig)
