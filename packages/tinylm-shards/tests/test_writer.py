import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tinylm_shards import (
    PACKED_BLOCKS,
    PARQUET_OPTIONS,
    Block,
    DatasetReader,
    ShardError,
    ShardWriter,
)
from tinylm_shards.testing import pack_concat, write_dataset


def _block(ids, offsets, doc_ids, **extra):
    return Block(
        input_ids=np.array(ids, dtype=np.int32),
        doc_offsets=np.array(offsets, dtype=np.int32),
        doc_ids=tuple(doc_ids),
        token_columns=extra,
    )


def test_files_have_the_format_schema_and_the_fixed_parquet_settings(tmp_path):
    writer = ShardWriter(tmp_path / "shards", rows_per_shard=2, root=tmp_path)
    for k in range(3):
        writer.add(_block([1, 2, 0, 3], [0, 3, 4], [f"a{k}", f"b{k}"]))
    shards = writer.close()
    assert [s["path"] for s in shards] == ["shards/part-00000.parquet", "shards/part-00001.parquet"]
    assert [s["rows"] for s in shards] == [2, 1] and shards[0]["tokens"] == 8
    file = pq.ParquetFile(tmp_path / shards[0]["path"])
    assert file.schema_arrow == PACKED_BLOCKS.schema
    column = file.metadata.row_group(0).column(0)
    assert column.compression == PARQUET_OPTIONS["compression"].upper()
    assert column.statistics is not None


def test_the_same_blocks_give_the_same_bytes(tmp_path):
    docs = [[5, 6, 7, 0], [8, 9, 0], [1, 2, 3, 4, 5, 0]]
    for name in ("a", "b"):
        writer = ShardWriter(tmp_path / name, rows_per_shard=10, root=tmp_path)
        for block in pack_concat(docs, 4):
            writer.add(block)
        writer.close()
    a = (tmp_path / "a" / "part-00000.parquet").read_bytes()
    assert a == (tmp_path / "b" / "part-00000.parquet").read_bytes()


@pytest.mark.parametrize(
    ("ids", "offsets", "doc_ids", "message"),
    [
        ([1, 2, 0], [0, 3], ["a"], "3 ids, block_size is 4"),
        ([1, 2, 0, 0], [0, 2, 2], ["a", "b"], "increase strictly"),
        ([1, 2, 0, 0], [1, 3], ["a"], "start at 0"),
        ([1, 2, 0, 0], [0, 3], ["a", "b"], "2 doc_ids for 1 segments"),
    ],
)
def test_a_broken_block_is_refused(tmp_path, ids, offsets, doc_ids, message):
    writer = ShardWriter(tmp_path, rows_per_shard=10)
    writer.add(_block([1, 2, 3, 0], [0, 4], ["first"]))
    with pytest.raises(ShardError, match=message):
        writer.add(_block(ids, offsets, doc_ids))


def test_extra_token_columns_are_declared_and_as_long_as_the_ids(tmp_path):
    writer = ShardWriter(tmp_path, rows_per_shard=10, token_columns={"loss_mask": pa.int8()})
    with pytest.raises(ShardError, match="carries token columns"):
        writer.add(_block([1, 2, 3, 0], [0, 4], ["a"]))
    with pytest.raises(ShardError, match="'loss_mask' has 3 values"):
        writer.add(_block([1, 2, 3, 0], [0, 4], ["a"], loss_mask=np.ones(3, np.int8)))
    with pytest.raises(ValueError, match="clash"):
        ShardWriter(tmp_path, rows_per_shard=1, token_columns={"doc_ids": pa.int8()})


def test_a_per_token_column_arrives_aligned_with_its_tokens(tmp_path):
    # The mask of a document is 1 on its odd token ids: after packing (documents cut across
    # blocks, padding appended) each token must still sit beside its own mask value.
    def odd(_d, ids):
        return (ids % 2).astype(np.int8)

    root = write_dataset(tmp_path, block_size=16, num_docs=40, max_doc_len=30, token_column=odd)
    reader = DatasetReader(root, token_columns=["loss_mask"])
    seen = 0
    for block in reader.blocks():
        mask = block.token_columns["loss_mask"]
        real = block.num_tokens
        assert mask.dtype == np.int8 and mask.shape == block.input_ids.shape
        assert np.array_equal(mask[:real], block.input_ids[:real] % 2)
        assert not mask[real:].any()
        seen += real
    assert seen == reader.manifest.raw["tokens"]["real"]


def test_a_missing_extra_column_is_reported(tmp_path):
    root = write_dataset(tmp_path)
    with pytest.raises(ShardError, match=r"lacks columns \['loss_mask'\]"):
        DatasetReader(root, token_columns=["loss_mask"]).block(0)


def test_before_write_runs_before_each_file(tmp_path):
    calls = []
    writer = ShardWriter(tmp_path, rows_per_shard=1, before_write=lambda: calls.append(1))
    writer.add(_block([1, 0], [0, 2], ["a"]))
    writer.add(_block([2, 0], [0, 2], ["b"]))
    writer.close()
    assert len(calls) == 2


def test_an_error_writing_a_file_in_the_background_is_raised_by_the_writer(tmp_path):
    def refuse_the_second():
        if (tmp_path / "part-00000.parquet").is_file():
            raise OSError("disk full")

    writer = ShardWriter(tmp_path, rows_per_shard=1, before_write=refuse_the_second)
    writer.add(_block([1, 0], [0, 2], ["a"]))
    writer.add(_block([2, 0], [0, 2], ["b"]))  # the first file is written while this is added
    with pytest.raises(OSError, match="disk full"):
        writer.add(_block([3, 0], [0, 2], ["c"]))
    assert [s["path"].rsplit("/", 1)[-1] for s in writer.shards] == ["part-00000.parquet"]
