import hashlib
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoModelForCausalLM

from tinylm_eval.perplexity import ShardError, block_inputs, nll_of_blocks, perplexity

BLOCK = 16
DOCS = [[3, 4, 5, 6, 0], [7, 8, 9, 0], [10, 11, 12, 13, 14, 0]]  # 15 real tokens, one pad slot


def write_dataset(root, schema_version=1):
    version = root / "v-0000000000000000"
    (version / "shards").mkdir(parents=True)
    ids = [t for d in DOCS for t in d]
    offsets = [0, 5, 9, 15]
    table = pa.table(
        {
            "input_ids": [ids + [0] * (BLOCK - len(ids))],
            "doc_offsets": [offsets],
            "num_tokens": pa.array([15], pa.int32()),
            "doc_ids": [["a", "b", "c"]],
            "is_partial": [True],
        }
    )
    shard = version / "shards" / "part-00000.parquet"
    pq.write_table(table, shard)
    manifest = {
        "schema_version": schema_version,
        "name": "t",
        "version": version.name,
        "block_size": BLOCK,
        "tokenizer": {"vocab_size": 100, "eos_id": 0, "pad_id": 0},
        "shards": [
            {
                "path": "shards/part-00000.parquet",
                "rows": 1,
                "sha256": hashlib.sha256(shard.read_bytes()).hexdigest(),
            }
        ],
    }
    (version / "manifest.json").write_text(json.dumps(manifest))
    (root / "LATEST").write_text(version.name)
    return version


def test_labels_skip_document_starts_and_padding():
    positions, labels = block_inputs([1, 2, 3, 4, 0, 0], [0, 2, 4])
    assert positions == [0, 1, 0, 1, 0, 0]
    assert labels == [-100, 2, -100, 4, -100, -100]


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()


def test_packed_perplexity_equals_documents_scored_one_by_one(model, tmp_path):
    write_dataset(tmp_path / "t")
    result = perplexity(model, tmp_path / "t")
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
    write_dataset(tmp_path / "future", schema_version=2)
    with pytest.raises(ShardError, match="schema_version 2"):
        perplexity(model, tmp_path / "future")
    version = write_dataset(tmp_path / "corrupt")
    shard = version / "shards" / "part-00000.parquet"
    shard.write_bytes(shard.read_bytes() + b"x")
    with pytest.raises(ShardError, match="sha256"):
        perplexity(model, tmp_path / "corrupt")
