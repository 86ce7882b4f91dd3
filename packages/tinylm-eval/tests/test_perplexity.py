import hashlib
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModelForCausalLM

from tinylm_eval.perplexity import (
    ShardError,
    nll_of_blocks,
    perplexity,
    select_blocks,
    windows,
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


@settings(max_examples=200, deadline=None)
@given(length=st.integers(1, 300), max_length=st.integers(2, 64), data=st.data())
def test_windows_predict_every_token_once_within_max_length(length, max_length, data):
    stride = data.draw(st.integers(1, max_length))
    spans = windows(length, max_length, stride)
    predicted = []
    for begin, end, first in spans:
        assert end - begin <= max_length and begin < max(first, 1) <= end
        predicted += range(max(first, 1), end)
        if begin > 0:  # context kept from the window before: max_length - stride, at least 1
            assert first - begin == max(max_length - stride, 1)
    assert predicted == list(range(1, length))


def test_windowed_perplexity_equals_each_window_scored_on_its_own(model, tmp_path):
    doc = list(range(3, 40))  # one document of 37 tokens in a block of 40
    write_shards(
        tmp_path, name="long", documents=[doc], block_size=40, vocab_size=100, tokenizer=False
    )
    selection = select_blocks(tmp_path / "long")
    whole = perplexity(model, selection)
    assert whole["windows"] == 1 and whole["tokens"] == 36
    result = perplexity(model, selection, max_length=16, stride=8, batch_size=2)
    total = 0.0
    for begin, end, first in windows(40, 16, 8):
        chunk = doc[begin:end]
        if not chunk:
            continue
        target = [t if begin + i >= max(first, 1) else -100 for i, t in enumerate(chunk)]
        if len(chunk) < 2 or all(t == -100 for t in target[1:]):
            continue
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([chunk]), labels=torch.tensor([target]))
        total += float(out.loss) * sum(t != -100 for t in target[1:])
    assert result["tokens"] == 36 and result["windows"] == len(windows(40, 16, 8))
    assert result["mean_nll"] == pytest.approx(total / 36, rel=1e-4)
    assert result["mean_nll"] != pytest.approx(whole["mean_nll"], rel=1e-4)
    assert result["max_length"] == 16 and result["stride"] == 8
    assert sum(b["tokens"] for b in result["by_position"].values()) == 36
    assert list(whole["by_position"]) == ["0-255"]


def test_windows_keep_document_masking(model, tmp_path):
    write_dataset(tmp_path / "t")  # three documents in a block of 16
    selection = select_blocks(tmp_path / "t")
    assert perplexity(model, selection, max_length=16)["mean_nll"] == pytest.approx(
        score(model, tmp_path / "t")["mean_nll"], rel=1e-6
    )
    # windows of 8: the 15 tokens are predicted once each, the documents still apart
    assert perplexity(model, selection, max_length=8)["tokens"] == 12
    with pytest.raises(ValueError, match="stride"):
        perplexity(model, selection, max_length=8, stride=9)


def test_ppl_cli_scores_in_windows_and_writes_the_position_breakdown(tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from tinylm_eval.cli import app

    write_shards(
        tmp_path, name="long", documents=[list(range(3, 40))], block_size=40, vocab_size=100,
        tokenizer=False,
    )  # fmt: skip
    out = tmp_path / "ppl.json"
    args = ["ppl", "--model", str(tiny_model_dir), "--data", str(tmp_path / "long")]
    result = CliRunner().invoke(
        app, [*args, "--split", "train", "--max-length", "16", "--stride", "8", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["windows"] == 4 and report["tokens"] == 36 and "0-255" in report["by_position"]
    assert "positions" in result.output
    bad = CliRunner().invoke(app, [*args, "--stride", "8"])
    assert bad.exit_code == 2 and "stride needs max_length" in bad.output
