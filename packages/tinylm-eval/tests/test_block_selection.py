"""Which blocks ppl scores: the validation split by default, a seeded draw of blocks, shards checked
first. Datasets are written with tinylm_shards' own writer and manifest."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from tinylm_eval.cli import app
from tinylm_eval.perplexity import ShardError, nll_of_blocks, perplexity, select_blocks
from tinylm_shards import DatasetReader, ShardWriter, load_manifest, write_manifest
from tinylm_shards.testing import pack_concat, write_dataset

BLOCK = 16
SOURCE_A = [[3, 4, 5, 6, 7, 8, 9, 0]] * 16  # 8 blocks of low ids, then 8 of high ids
SOURCE_B = [[60, 61, 62, 63, 64, 65, 66, 0]] * 16
# 16 tokens a repeat: every block holds whole documents, so each can be scored on its own
VALIDATION = [[20, 21, 22, 0], [23, 24, 25, 26, 27, 0], [28, 29, 0], [20, 25, 0]] * 3


def with_validation(version, documents=VALIDATION):
    """Add a validation split (its own shards, the same packed-block format) to a dataset."""
    writer = ShardWriter(version / "validation", rows_per_shard=2, root=version, row_group_size=2)
    for block in pack_concat(documents, BLOCK):
        writer.add(block)
    shards = writer.close()
    raw = json.loads((version / "manifest.json").read_text())
    fields = {k: v for k, v in raw.items() if k not in ("schema_version", "format")}
    fields["splits"] = {
        "validation": {"shards": shards, "num_blocks": sum(s["rows"] for s in shards)}
    }
    write_manifest(version, fields)
    return version


def dataset(tmp_path, name="d"):
    return write_dataset(
        tmp_path, name=name, documents=SOURCE_A + SOURCE_B, block_size=BLOCK, rows_per_shard=4
    )


def test_the_validation_split_is_the_default_and_train_can_be_asked(tmp_path):
    version = with_validation(dataset(tmp_path))
    chosen = select_blocks(tmp_path / "d")
    assert chosen.split == "validation" and len(chosen.indices) == chosen.manifest.num_blocks == 3
    assert all(s["path"].startswith("validation/") for s in chosen.manifest.shards)
    ids = {t for i in chosen.indices for t in DatasetReader(chosen.manifest).block(i).input_ids}
    assert ids <= {0, *range(20, 30)}  # validation documents only
    train = select_blocks(version, split="train")
    assert train.split == "train" and len(train.indices) == 16


def test_without_a_validation_split_training_blocks_are_scored_with_a_warning(tmp_path, caplog):
    dataset(tmp_path)
    with caplog.at_level("WARNING"):
        chosen = select_blocks(tmp_path / "d")
    assert chosen.split == "train" and "has no validation split" in caplog.text
    with pytest.raises(ShardError, match=r"has no 'validation' split \(held-out splits: none\)"):
        select_blocks(tmp_path / "d", split="validation")


def test_blocks_are_drawn_by_a_seeded_permutation_not_first_source_first(tmp_path):
    dataset(tmp_path)
    drawn = select_blocks(tmp_path / "d", split="train", max_blocks=4).indices.tolist()
    assert drawn == sorted(np.random.default_rng(0).permutation(16)[:4].tolist())
    assert any(i < 8 for i in drawn) and any(i >= 8 for i in drawn)  # both sources
    assert select_blocks(tmp_path / "d", split="train", max_blocks=4).indices.tolist() == drawn
    other = select_blocks(tmp_path / "d", split="train", max_blocks=4, seed=1).indices.tolist()
    assert other != drawn
    first = select_blocks(tmp_path / "d", split="train", max_blocks=4, seed=None)
    assert first.indices.tolist() == [0, 1, 2, 3]


def test_a_deleted_or_corrupt_shard_is_found_before_scoring(tmp_path):
    version = with_validation(dataset(tmp_path))
    (version / "validation" / "part-00001.parquet").unlink()
    with pytest.raises(ShardError, match="missing shard .*validation/part-00001.parquet"):
        select_blocks(version)
    shard = version / "shards" / "part-00002.parquet"
    shard.write_bytes(shard.read_bytes()[:-1])
    with pytest.raises(ShardError, match="part-00002.parquet has .* bytes, the manifest says"):
        select_blocks(version, split="train")


def test_a_malformed_validation_entry_is_an_error_not_a_fallback(tmp_path):
    version = dataset(tmp_path)
    raw = json.loads((version / "manifest.json").read_text())
    raw["splits"] = {"validation": {"shards": [{"path": "validation/x.parquet"}]}}
    (version / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ShardError, match=r"lacks the field 'splits.validation.shards\[0\].rows'"):
        select_blocks(version)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()


def test_perplexity_is_that_of_exactly_the_drawn_blocks(model, tmp_path):
    dataset(tmp_path)
    chosen = select_blocks(tmp_path / "d", split="train", max_blocks=5, seed=3)
    result = perplexity(model, chosen, batch_size=2)
    reader = DatasetReader(load_manifest(tmp_path / "d"))
    rows = [(reader.block(i).input_ids, reader.block(i).doc_offsets) for i in chosen.indices]
    nll, tokens = nll_of_blocks(model, rows)
    assert (result["blocks"], result["tokens"], result["split"]) == (5, tokens, "train")
    assert result["mean_nll"] == pytest.approx(nll / tokens, rel=1e-5)


runner = CliRunner()


def test_ppl_command_scores_the_validation_split_end_to_end(tiny_model_dir, tmp_path):
    version = with_validation(dataset(tmp_path))
    out = tmp_path / "ppl.json"
    args = ["ppl", "--model", str(tiny_model_dir), "--data", str(tmp_path / "d")]
    result = runner.invoke(app, [*args, "--batch-size", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    scored = json.loads(out.read_text())
    assert (scored["task"], scored["task_version"], scored["split"]) == ("ppl", 1, "validation")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    total, count = 0.0, 0
    for doc in VALIDATION:  # each document on its own: what document masking must equal
        with torch.inference_mode():
            loss = model(input_ids=torch.tensor([doc]), labels=torch.tensor([doc])).loss
        total, count = total + float(loss) * (len(doc) - 1), count + len(doc) - 1
    assert scored["tokens"] == count
    assert scored["perplexity"] == pytest.approx(float(np.exp(total / count)), rel=1e-4)
    assert "perplexity" in result.output and "validation blocks" in " ".join(result.output.split())

    result = runner.invoke(app, [*args, "--split", "train", "--max-blocks", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["split"] == "train"
    assert json.loads(out.read_text())["blocks"] == 3

    (version / "validation" / "part-00000.parquet").unlink()
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert [line for line in result.output.splitlines() if line.startswith("error:")] == [
        f"error: missing shard {version / 'validation' / 'part-00000.parquet'}"
    ]
    result = runner.invoke(app, [*args, "--split", "held-out"])
    assert result.exit_code == 2 and "split must be one of train, validation" in result.output
