"""One dataset, three packages: tinylm-data writes it, tinylm-train and tinylm-eval read the same
blocks, positions and labels from it (through tinylm-shards, never through each other)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow  # builds the embedded sample (about 20 s)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from tinylm_data.build import BuildOptions, run_build
    from tinylm_data.config import load_config_file, parse_config
    from tinylm_data.sample import sample_config

    out = tmp_path_factory.mktemp("conformance")
    data = load_config_file(sample_config()) | {"block_size": 256}
    result = run_build(parse_config(data), sample_config().parent, BuildOptions(out, workers=1))
    return result.out_dir


def _written_rows(root):
    return pq.read_table(root / "shards").to_pylist()


def test_train_reads_exactly_what_data_wrote(built):
    from tinylm_train.collate import IGNORE_INDEX, collate_blocks
    from tinylm_train.shards import ShardReader

    rows = _written_rows(built)
    reader = ShardReader(built.parent, seed=0)
    assert reader.num_blocks == len(rows) > 4
    blocks = [reader.block(i) for i in range(len(rows))]
    for row, block in zip(rows, blocks, strict=True):
        assert block.input_ids.tolist() == row["input_ids"]
        assert block.doc_offsets.tolist() == row["doc_offsets"]
    batch = collate_blocks(blocks[:4])
    for r, row in enumerate(rows[:4]):
        starts = row["doc_offsets"][:-1]
        assert (batch["position_ids"][r, starts] == 0).all()
        assert (batch["labels"][r, starts] == IGNORE_INDEX).all()
        assert (batch["labels"][r, row["num_tokens"] :] == IGNORE_INDEX).all()
    assert int(batch["cu_seqlens"][-1]) == 4 * 256


def test_eval_scores_the_blocks_train_would_train_on(built):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from tinylm_eval.perplexity import perplexity, select_blocks
    from tinylm_train.collate import collate_blocks
    from tinylm_train.shards import ShardReader, load_manifest

    manifest = load_manifest(built)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=manifest.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
    )
    model = Qwen2ForCausalLM(config).eval()
    blocks = select_blocks(built, split="train", max_blocks=3, seed=None)  # the first three
    result = perplexity(model, blocks, batch_size=2)
    reader = ShardReader(built, seed=0)
    batch = collate_blocks([reader.block(i) for i in range(3)])
    with torch.inference_mode():
        logits = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
        ).logits
    labels = batch["labels"][:, 1:]
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), labels, ignore_index=-100, reduction="sum"
    )
    tokens = int((labels != -100).sum())
    assert result["blocks"] == 3 and result["tokens"] == tokens
    assert result["perplexity"] == pytest.approx(math.exp(float(nll) / tokens), rel=1e-5)


def test_inspect_decodes_the_same_rows(built):
    from tinylm_data.inspect_dataset import load_manifest, read_block, verify_shards

    manifest = load_manifest(built)
    assert verify_shards(built, manifest) == []
    rows = _written_rows(built)
    assert read_block(built, manifest, -1) == rows[-1]
    assert np.sum([r["num_tokens"] for r in rows]) == manifest["tokens"]["real"]
