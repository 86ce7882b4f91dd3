import dataclasses
import json

import pytest

from tinylm_shards import (
    PACKED_BLOCKS,
    SFT_BLOCKS,
    DatasetReader,
    ShardError,
    dataset_problems,
    format_named,
    load_manifest,
    resolve_version_dir,
    verify_shards,
    write_manifest,
)
from tinylm_shards.testing import write_dataset


@pytest.fixture
def root(tmp_path):
    return write_dataset(tmp_path, rows_per_shard=8)


def _rewrite(root, change):
    raw = json.loads((root / "manifest.json").read_text())
    change(raw)
    (root / "manifest.json").write_text(json.dumps(raw))


def test_a_name_directory_resolves_through_latest(root):
    assert resolve_version_dir(root.parent) == root
    manifest = load_manifest(root.parent)
    assert manifest.root == root and manifest.format is PACKED_BLOCKS
    assert manifest.num_blocks == sum(s["rows"] for s in manifest.shards) > 8


def test_latest_naming_a_missing_version(root):
    (root.parent / "LATEST").write_text("v-gone\n")
    with pytest.raises(ShardError, match="names 'v-gone', which has no manifest.json"):
        load_manifest(root.parent)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("format"), "lacks the field 'format'"),
        (lambda m: m.update(format="tinylm-sft-blocks"), "format 'tinylm-sft-blocks'"),
        (lambda m: m.update(format="nope"), "unknown format 'nope'"),
        (lambda m: m.update(schema_version=2), "schema_version 2"),
        (lambda m: m.pop("block_size"), "lacks the field 'block_size'"),
        (lambda m: m["tokenizer"].pop("pad_id"), "lacks the field 'tokenizer.pad_id'"),
        (lambda m: m["shards"][1].pop("sha256"), "lacks the field 'shards\\[1\\].sha256'"),
        (lambda m: m["shards"][0].update(rows="8"), "'shards\\[0\\].rows' must be int, found str"),
        (lambda m: m.update(block_size=True), "'block_size' must be int, found bool"),
    ],
)
def test_a_broken_manifest_names_its_file_and_field(root, change, message):
    _rewrite(root, change)
    with pytest.raises(ShardError, match=message) as caught:
        load_manifest(root)
    assert "manifest.json" in str(caught.value)


def test_a_reader_may_accept_other_declared_formats(root):
    _rewrite(root, lambda m: m.update(format=SFT_BLOCKS.name))
    assert load_manifest(root, formats=[SFT_BLOCKS]).format is SFT_BLOCKS
    own = dataclasses.replace(SFT_BLOCKS, name="my-blocks")  # a reader's own format
    _rewrite(root, lambda m: m.update(format="my-blocks"))
    assert load_manifest(root, formats=[own]).format is own


def test_verification_reports_every_kind_of_problem(root):
    manifest = load_manifest(root)
    verify_shards(manifest)
    first, second, third = (root / s["path"] for s in manifest.shards[:3])
    first.write_bytes(first.read_bytes() + b"x")
    second.unlink()
    _rewrite(root, lambda m: m["shards"][2].update(sha256="0" * 64))
    problems = dataset_problems(load_manifest(root))
    assert "bytes, the manifest says" in problems[0]
    assert problems[1].startswith("missing shard")
    assert "checksum mismatch" in problems[2] and len(problems) == 3
    assert dataset_problems(load_manifest(root), checksum=False) == problems[:2]
    with pytest.raises(ShardError, match="missing shard"):
        verify_shards(load_manifest(root))


def test_a_row_count_that_disagrees_is_found(root):
    _rewrite(root, lambda m: m["shards"][0].update(rows=7))
    assert "8 rows, the manifest says 7" in dataset_problems(load_manifest(root))[0]


def test_the_reader_verifies_only_the_shards_it_opens(root):
    last = root / load_manifest(root).shards[-1]["path"]
    last.write_bytes(b"garbage")
    reader = DatasetReader(root)
    assert len(list(reader.blocks(limit=8))) == 8
    with pytest.raises(ShardError, match=last.name):
        list(reader.blocks())
    assert DatasetReader(root, verify=False).block(0).index == 0


def test_write_manifest_checks_what_it_writes(tmp_path):
    with pytest.raises(ShardError, match="lacks the field 'block_size'"):
        write_manifest(tmp_path, {"name": "x", "version": "v", "tokenizer": {}, "shards": []})
    assert not (tmp_path / "manifest.json").exists()
    with pytest.raises(ValueError, match="come from the format"):
        write_manifest(tmp_path, {"format": "x"})
    fields = {
        "name": "x",
        "version": "v-1",
        "block_size": 8,
        "tokenizer": {"vocab_size": 10, "eos_id": 0, "pad_id": 0},
        "shards": [],
        "note": "ünïcode stays readable",
    }
    manifest = write_manifest(tmp_path, fields)
    text = (tmp_path / "manifest.json").read_text(encoding="utf-8")
    assert text.startswith('{\n  "schema_version": 1,\n  "format": "tinylm-packed-blocks",')
    assert "ünïcode" in text and text.endswith("}\n")
    assert manifest.raw == json.loads(text) and load_manifest(tmp_path).num_blocks == 0


def test_declared_formats_have_their_own_versions():
    assert format_named("tinylm-packed-blocks").schema_version == 1
    assert SFT_BLOCKS.schema.names[:5] == PACKED_BLOCKS.schema.names
    assert "loss_mask" in SFT_BLOCKS.token_columns
    assert {"chosen_ids", "rejected_ids"} <= set(
        format_named("tinylm-preference-pairs").schema.names
    )


def test_a_held_out_split_reads_as_a_manifest_of_its_own(tmp_path):
    held_out = [[5, 6, 7, 0], [8, 9, 0], [3] * 70 + [0]]
    root = write_dataset(tmp_path, validation_documents=held_out)
    manifest = load_manifest(root)
    validation = manifest.split("validation")
    assert [s["path"] for s in validation.shards] == ["validation/part-00000.parquet"]
    assert validation.num_blocks == manifest.raw["splits"]["validation"]["num_blocks"] == 2
    assert not any(s["path"].startswith("validation/") for s in manifest.shards)
    reader = DatasetReader(validation, doc_ids=True)
    assert [b.doc_ids for b in reader.blocks()] == [("doc-0", "doc-1", "doc-2"), ("doc-2",)]
    assert dataset_problems(manifest) == []
    (root / "validation" / "part-00000.parquet").unlink()
    assert dataset_problems(manifest) == [f"missing shard {root}/validation/part-00000.parquet"]
    assert DatasetReader(manifest).num_blocks == manifest.num_blocks  # train needs no split


def test_a_dataset_without_the_split_says_so(root):
    with pytest.raises(ShardError, match=r"has no 'validation' split \(held-out splits: none\)"):
        load_manifest(root).split("validation")


def test_a_split_whose_block_count_disagrees_is_refused(tmp_path):
    root = write_dataset(tmp_path, validation_documents=[[1, 2, 0]])
    _rewrite(root, lambda m: m["splits"]["validation"].update(num_blocks=5))
    with pytest.raises(ShardError, match=r"'splits.validation.num_blocks' is 5, its shards hold 1"):
        load_manifest(root)
