import hashlib
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoModelForCausalLM

from tinylm_eval.perplexity import (
    ShardError,
    nll_of_blocks,
    perplexity,
    select_blocks,
)
from tinylm_shards.testing import write_dataset as write_shards

BLOCK = 16
DOCS = [[3, 4, 5, 6, 0], [7, 8, 9, 0], [10, 11, 12, 13, 14, 0]]  # 15 real tokens, one pad slot


def write_dataset(root, documents=DOCS, **options):
    """OUT/<name> as root: one partial block of the three documents unless told otherwise."""
    return write_shards(
        root.parent,
        name=root.name,
        documents=documents,
        block_size=BLOCK,
        vocab_size=100,
        tokenizer=False,
        **options,
    )


def score(model, dataset, *, batch_size=4, **selection):
    return perplexity(model, select_blocks(dataset, **selection), batch_size=batch_size)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()


def test_packed_perplexity_equals_documents_scored_one_by_one(model, tmp_path):
    write_dataset(tmp_path / "t")
    result = score(model, tmp_path / "t")
    total, count = 0.0, 0
    for doc in DOCS:
        with torch.inference_mode():
            total += float(
                model(input_ids=torch.tensor([doc]), labels=torch.tensor([doc])).loss
            ) * (len(doc) - 1)
        count += len(doc) - 1
    assert result["tokens"] == count == 12
    assert result["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-4)
    # Without document masking the figure differs: the test would catch lost masking.
    ids = [t for d in DOCS for t in d]
    with torch.inference_mode():
        leaky = float(model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss)
    assert leaky != pytest.approx(total / count, rel=1e-3)
    assert nll_of_blocks(model, [(ids + [0], [0, 5, 9, 15])])[1] == 12


def test_unknown_schema_and_bad_checksum_are_refused(model, tmp_path):
    write_dataset(tmp_path / "future", manifest_overrides={"schema_version": 2})
    with pytest.raises(ShardError, match="schema_version 2"):
        score(model, tmp_path / "future")
    version = write_dataset(tmp_path / "corrupt")
    shard = version / "shards" / "part-00000.parquet"
    shard.write_bytes(shard.read_bytes() + b"x")
    with pytest.raises(ShardError, match="bytes, the manifest says"):
        score(model, tmp_path / "corrupt")
    version = write_dataset(tmp_path / "tampered")
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["shards"][0]["sha256"] = "f" * 64
    (version / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match="checksum mismatch"):
        score(model, tmp_path / "tampered")


def test_another_format_is_refused(model, tmp_path):
    write_dataset(tmp_path / "sft", manifest_overrides={"format": "tinylm-sft-blocks"})
    with pytest.raises(ShardError, match="format 'tinylm-sft-blocks'"):
        score(model, tmp_path / "sft")
    write_dataset(tmp_path / "unnamed", manifest_overrides={"format": None})
    with pytest.raises(ShardError, match="lacks the field 'format'"):
        score(model, tmp_path / "unnamed")


def test_offsets_that_do_not_increase_are_refused(model, tmp_path):
    version = write_dataset(tmp_path / "bad")
    shard = version / "shards" / "part-00000.parquet"
    table = pq.read_table(shard)
    offsets = pa.array([[0, 5, 5, 9, 15]], pa.list_(pa.int32()))
    table = table.set_column(1, "doc_offsets", offsets)
    pq.write_table(table, shard)
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["shards"][0] |= {
        "bytes": shard.stat().st_size,
        "sha256": hashlib.sha256(shard.read_bytes()).hexdigest(),
    }
    (version / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match="increase strictly"):
        score(model, tmp_path / "bad")


def test_reading_stops_at_max_blocks(model, tmp_path):
    # Two blocks, one per shard; the shard of the block not drawn is corrupt, so touching it fails.
    version = write_dataset(tmp_path / "two", documents=DOCS * 2, rows_per_shard=1)
    (drawn,) = select_blocks(tmp_path / "two", max_blocks=1).indices.tolist()
    other = version / "shards" / f"part-{1 - drawn:05d}.parquet"
    other.write_bytes(b"not parquet")
    result = score(model, tmp_path / "two", max_blocks=1, batch_size=1)
    assert result["blocks"] == 1 and result["tokens"] > 0
    with pytest.raises(ShardError, match=other.name):
        score(model, tmp_path / "two")
