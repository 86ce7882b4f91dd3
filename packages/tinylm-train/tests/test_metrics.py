import json

import pytest

from tinylm_train.metrics import MetricsWriter, flops_per_token, plot_losses, read_metrics


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
