"""A dataset with a validation split: its loss every eval_steps, in metrics.jsonl and TensorBoard."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tinylm_shards import ShardError, load_manifest
from tinylm_shards.testing import pack_concat, random_documents, write_dataset
from tinylm_shards.writer import ShardWriter
from tinylm_train.validation import ValidationSet, validation_manifest


def _with_validation(root: Path, *, num_docs: int = 60) -> Path:
    """write_dataset's dataset plus a validation split written by the shard writer."""
    version = write_dataset(root, num_docs=300)
    docs = random_documents(np.random.default_rng(99), num_docs, 100, 50)
    writer = ShardWriter(version / "validation", rows_per_shard=8, root=version)
    for block in pack_concat(docs, 64):
        writer.add(block)
    shards = writer.close()
    path = version / "manifest.json"
    raw = json.loads(path.read_text())
    raw["splits"] = {"validation": {"shards": shards, "num_blocks": sum(s["rows"] for s in shards)}}
    path.write_text(json.dumps(raw))
    return version


def test_the_split_is_read_from_the_manifest_and_checked(tmp_path):
    version = _with_validation(tmp_path)
    manifest = load_manifest(version)
    held_out = validation_manifest(manifest)
    assert held_out.num_blocks == manifest.raw["splits"]["validation"]["num_blocks"]
    assert validation_manifest(load_manifest(write_dataset(tmp_path / "plain"))) is None
    ranks = [ValidationSet(held_out, rank=r, world_size=2).indices for r in (0, 1)]
    assert sorted(ranks[0] + ranks[1]) == list(range(held_out.num_blocks))
    shard = version / held_out.shards[0]["path"]
    shard.write_bytes(shard.read_bytes()[:-10])  # fault: a truncated validation shard
    with pytest.raises(ShardError, match="validation split: .*"):
        ValidationSet(held_out)


@pytest.mark.slow
def test_validation_loss_is_reported_every_eval_steps(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from transformers import AutoModelForCausalLM

    from tinylm_train.config import load_config
    from tinylm_train.recipes.pretrain import run_pretrain

    version = _with_validation(tmp_path / "data")
    out = tmp_path / "run"
    overrides = [f"data.path={version}", f"output_dir={out}", "optimisation.max_steps=10",
                 "metrics.eval_steps=5", "checkpoint.save_steps=10"]  # fmt: skip
    final = run_pretrain(load_config("debug", overrides))
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    validation = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in validation] == [5, 10]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 11))
    assert validation[1]["val_loss"] < validation[0]["val_loss"]

    # The reported loss is the exported model's mean loss per predicted validation token, each
    # document of each block run alone.
    model = AutoModelForCausalLM.from_pretrained(final).eval()
    held_out = ValidationSet(validation_manifest(load_manifest(version)))
    total, tokens = 0.0, 0
    with torch.no_grad():
        for [block] in held_out.batches(1):
            for start, end in zip(block.doc_offsets[:-1], block.doc_offsets[1:], strict=True):
                ids = torch.tensor(block.input_ids[start:end], dtype=torch.long)[None]
                if ids.shape[1] > 1:
                    loss = model(input_ids=ids, labels=ids).loss
                    total, tokens = (
                        total + float(loss) * (ids.shape[1] - 1),
                        tokens + ids.shape[1] - 1,
                    )
    assert validation[1]["val_tokens"] == tokens
    assert validation[1]["val_loss"] == pytest.approx(total / tokens, rel=1e-4)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_val_loss"] == validation[1]["val_loss"]
    [events] = list((out / "runs").iterdir())
    scalars = EventAccumulator(str(events)).Reload().Tags()["scalars"]
    assert {"eval/loss", "train/tokens_per_s", "train/loss"} <= set(scalars)
    assert "train/mfu" not in scalars  # no known peak on a CPU: no MFU rather than a wrong one
