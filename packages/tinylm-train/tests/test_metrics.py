import json

import pytest

from tinylm_train.console import format_step, format_summary
from tinylm_train.metrics import (
    MetricsWriter,
    device_peak_flops,
    flops_per_token,
    plot_losses,
    read_metrics,
    resolve_peak_flops,
)


def test_flops_per_token_is_6n_plus_attention():
    assert flops_per_token(1000, layers=2, hidden=8, seq=16) == 6 * 1000 + 12 * 2 * 8 * 16


class _Clock:
    """Seconds that advance by a set amount on each read."""

    def __init__(self, *steps: float) -> None:
        self.now, self.steps = 0.0, list(steps)

    def __call__(self) -> float:
        self.now += self.steps.pop(0) if self.steps else 0.0
        return self.now


def test_records_carry_tokens_per_second_and_mfu_over_all_devices(tmp_path):
    path = tmp_path / "metrics.jsonl"
    # 2 devices of 1000 tokens a step; two logged steps per record, 4 s apart: 2 s a step.
    writer = MetricsWriter(
        path,
        tokens_per_step=1000,
        flops_per_token=6e6,
        peak_flops=1e10,
        world_size=2,
        logging_steps=2,
        clock=_Clock(0.0, 1.0, 4.0),
    )
    writer.start()
    record = writer.log(2, 3.5, lr=1e-3, grad_norm=0.5)
    assert record["tokens_per_s"] == pytest.approx(1000.0)  # 2 x 1000 tokens / 2 s
    assert record["mfu"] == pytest.approx(1000.0 * 6e6 / (1e10 * 2))
    assert read_metrics(path) == [record]
    assert set(json.loads(path.read_text())) == {
        "step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu",
    }  # fmt: skip


def test_the_loss_plot_is_a_png_and_nothing_without_records(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    plot_losses(metrics, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
    metrics.write_text("".join(json.dumps({"step": s, "loss": 5.0 / s}) + "\n" for s in (1, 2, 3)))
    plot_losses(metrics, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989e12),
        ("NVIDIA H100 PCIe", 756e12),
        ("NVIDIA H200", 989e12),
        ("NVIDIA A100-SXM4-80GB", 312e12),
        ("NVIDIA GeForce RTX 3090", 71e12),
        ("Some New Accelerator", None),
        (None, None),
    ],
)
def test_the_peak_comes_from_the_device_name(name, peak):
    assert device_peak_flops(name) == peak


def test_a_configured_peak_wins_and_a_cpu_gets_no_mfu(tmp_path):
    assert resolve_peak_flops(1e12, "NVIDIA H100 80GB HBM3") == 1e12
    assert resolve_peak_flops(None, None) is None
    writer = MetricsWriter(
        tmp_path / "m.jsonl", tokens_per_step=10, flops_per_token=1.0, peak_flops=None,
        world_size=1, clock=_Clock(0.0, 0.0, 1.0),
    )  # fmt: skip
    writer.start()
    record = writer.log(1, 2.0, lr=None, grad_norm=None)
    assert record["mfu"] is None and record["tokens_per_s"] == pytest.approx(10.0)
    assert writer.log_validation(1, 1.5, tokens=7) == {"step": 1, "val_loss": 1.5, "val_tokens": 7}
    assert [("loss" in r, "val_loss" in r) for r in read_metrics(writer.path)] == [
        (True, False),
        (False, True),
    ]


def test_console_lines_are_readable_numbers():
    record = {"step": 10, "loss": 6.51234, "lr": 4.95e-3, "grad_norm": 0.8412,
              "tokens_per_s": 2310.4, "mfu": 0.1214}  # fmt: skip
    assert format_step(record, max_steps=150) == (
        "step 10/150  loss 6.5123  lr 4.950e-03  grad 0.841  2,310 tok/s  mfu 12.1%"
    )
    summary = {"steps": 150, "tokens": 307200, "train_seconds": 123.4, "tokens_per_s": 2489.5,
               "final_loss": 5.7512, "final_val_loss": None, "model": "runs/x/final"}  # fmt: skip
    assert format_summary(summary) == (
        "trained 150 steps, 307,200 tokens in 123.4 s (2,490 tokens/s)\n"
        "final loss 5.7512\n"
        "model: runs/x/final"
    )
