"""Real DeepSpeed pipeline processes on CPU (gloo) against the HF engine, kill -9 and resume,
export of a pipeline checkpoint and `model.init_from`.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinylm_shards.testing import write_dataset

BIN = Path(sys.executable).parent
STEPS = 8
SAVE = 2  # the first checkpoint comes early, so the kill lands well before the end
TOLERANCE = 1e-5

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _command(data: Path, out: Path, processes: int, *extra: str) -> list[str]:
    launcher = []
    if processes > 1:
        launcher = [
            str(BIN / "torchrun"), "--nproc_per_node", str(processes), "--no-python",
            "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        ]  # fmt: skip
    return [
        *launcher, str(BIN / "tinylm-train"), "pretrain", "--config", "debug",
        "--set", f"data.path={data}", "--set", f"output_dir={out}",
        "--set", f"optimisation.max_steps={STEPS}", "--set", "optimisation.warmup_steps=2",
        "--set", "optimisation.gradient_accumulation_steps=2", "--set", "data.per_device_batch_size=2",
        "--set", f"checkpoint.save_steps={SAVE}", "--set", "checkpoint.save_total_limit=3",
        "--set", "data.record_blocks=true", "--set", "model.bf16=false",
        *extra,
    ]  # fmt: skip


def _pipeline(stages: int) -> list[str]:
    return [
        "--set", "parallelism.engine=pipeline", "--set", f"parallelism.pipeline_stages={stages}",
        "--set", "parallelism.deepspeed=zero1",
    ]  # fmt: skip


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _train(command: list[str]) -> None:
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _losses(out: Path) -> list[float]:
    return [r["loss"] for r in _records(out / "metrics.jsonl") if "loss" in r]


def _weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(model_dir / "model.safetensors")


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    assert worst <= TOLERANCE, worst


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data"), num_docs=300)


@pytest.fixture(scope="module")
def hf_run(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hf") / "run"
    _train(_command(data, out, 1))
    return out


@pytest.fixture(scope="module")
def pipeline_run(data, tmp_path_factory) -> Path:
    """P=2 x DP=1, uninterrupted."""
    out = tmp_path_factory.mktemp("pp2") / "run"
    _train(_command(data, out, 2, *_pipeline(2)))
    return out


def test_tensorboard_gets_the_logged_scalars(pipeline_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(pipeline_run / "runs" / "pipeline"))
    events.Reload()
    logged = [
        (r["step"], r["loss"]) for r in _records(pipeline_run / "metrics.jsonl") if "loss" in r
    ]
    board = [(e.step, e.value) for e in events.Scalars("train/loss")]
    assert [s for s, _ in board] == [s for s, _ in logged]
    assert [v for _, v in board] == pytest.approx([v for _, v in logged], rel=1e-6)
    assert {"train/lr", "train/grad_norm", "train/tokens_per_s"} <= set(events.Tags()["scalars"])


def test_activation_checkpointing_recomputes_the_same_losses_and_weights(
    data, pipeline_run, tmp_path
):
    # Recomputing every decoder layer in the backward pass changes memory, not the maths: if the
    # embedding were checkpointed too it would get no gradient and the weights would differ.
    out = tmp_path / "checkpointed"
    _train(
        _command(data, out, 2, *_pipeline(2), "--set", "model.gradient_checkpointing=true",
                 "--set", "parallelism.activation_checkpoint_interval=1")
    )  # fmt: skip
    assert _losses(out) == _losses(pipeline_run)
    _assert_same_weights(out / "final", pipeline_run / "final")


def test_two_stage_losses_and_weights_equal_the_hf_engine(hf_run, pipeline_run):
    hf, pp = _losses(hf_run), _losses(pipeline_run)
    assert len(hf) == len(pp) == STEPS
    assert max(abs(a - b) for a, b in zip(hf, pp, strict=True)) <= TOLERANCE, (hf, pp)
    assert hf[-1] < hf[0]
    # Both stages of the one data rank read the same blocks, the blocks the HF run read.
    blocks = _records(hf_run / "blocks-rank0.jsonl")
    assert _records(pipeline_run / "blocks-rank0.jsonl") == blocks
    assert _records(pipeline_run / "blocks-rank1.jsonl") == blocks
    _assert_same_weights(hf_run / "final", pipeline_run / "final")
    config = json.loads((pipeline_run / "final" / "config.json").read_text())
    assert config["tie_word_embeddings"] is True
    assert "lm_head.weight" not in _weights(pipeline_run / "final")  # tied: one tensor saved


def test_the_export_loads_in_transformers_with_the_tokenizer(pipeline_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    final = pipeline_run / "final"
    model = AutoModelForCausalLM.from_pretrained(final, local_files_only=True)
    assert model.config.num_hidden_layers == 2
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight
    assert AutoTokenizer.from_pretrained(final).vocab_size > 0


def test_export_cli_converts_a_pipeline_checkpoint(data, pipeline_run, tmp_path):
    out = tmp_path / "exported"
    done = subprocess.run(
        [str(BIN / "tinylm-train"), "export", str(pipeline_run / f"checkpoint-{STEPS}"),
         "--data", str(data), "--out", str(out)],
        env=ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    _assert_same_weights(out, pipeline_run / "final")
    assert (out / "tokenizer.json").is_file() or (out / "tokenizer_config.json").is_file()


def test_one_stage_two_data_ranks_equal_hf_data_parallel(data, tmp_path):
    hf, pp = tmp_path / "hf-dp2", tmp_path / "pp1-dp2"
    _train(_command(data, hf, 2))  # DDP: the HF engine's data parallel without DeepSpeed
    _train(_command(data, pp, 2, *_pipeline(1)))
    a, b = _losses(hf), _losses(pp)
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= TOLERANCE, (a, b)
    for rank in (0, 1):
        assert _records(pp / f"blocks-rank{rank}.jsonl") == _records(
            hf / f"blocks-rank{rank}.jsonl"
        )
    _assert_same_weights(hf / "final", pp / "final")


def test_killed_and_resumed_pipeline_continues_the_uninterrupted_losses(
    data, pipeline_run, tmp_path
):
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _command(data, killed, 2, *_pipeline(2)),
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    try:
        while not (killed / f"checkpoint-{SAVE}" / "complete.json").is_file():
            assert proc.poll() is None, "the run ended before it wrote a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 600 s"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both stages
    finally:
        proc.wait()
    assert not (killed / "final").exists(), "killed too late: the run had finished"
    _train(_command(data, killed, 2, *_pipeline(2), "--resume"))
    assert [r["step"] for r in _records(killed / "metrics.jsonl")] == list(range(1, STEPS + 1))
    assert _losses(killed) == _losses(pipeline_run)
    assert _records(killed / "blocks-rank0.jsonl") == _records(pipeline_run / "blocks-rank0.jsonl")
    _assert_same_weights(killed / "final", pipeline_run / "final")


def test_init_from_an_export_starts_from_its_weights(data, pipeline_run, tmp_path):
    import torch

    from tinylm_train.collate import collate_blocks
    from tinylm_train.loss import causal_lm_loss
    from tinylm_train.models.qwen2.attention import model_inputs, select_attention
    from tinylm_train.shards import ShardReader

    out = tmp_path / "continued"
    final = pipeline_run / "final"
    _train(
        _command(data, out, 2, *_pipeline(2), "--set", "model.name=null", "--set",
                 f"model.init_from={final}", "--set", "seed=1")
    )  # fmt: skip
    # The first step's loss is the export's own loss on that step's blocks.
    from transformers import AutoModelForCausalLM

    attention = select_attention("cpu", "tinylm_varlen")
    model = AutoModelForCausalLM.from_pretrained(
        final, local_files_only=True, attn_implementation=attention
    ).eval()
    reader = ShardReader(data, seed=1)
    first = [r["blocks"] for r in _records(out / "blocks-rank0.jsonl") if r["step"] == 1]
    batches = [collate_blocks([reader.block(i) for i in blocks]) for blocks in first]
    total = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
    expected = 0.0
    with torch.no_grad():
        for batch in batches:
            inputs = model_inputs(batch, attention)
            labels = inputs.pop("labels")
            logits = model(**inputs).logits
            expected += float(causal_lm_loss(logits, labels, num_items_in_batch=total))
    assert abs(_losses(out)[0] - expected) <= TOLERANCE, (_losses(out)[0], expected)
    assert _losses(out)[0] < _losses(pipeline_run)[0]  # below the fresh start it was trained from
