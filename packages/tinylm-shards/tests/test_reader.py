import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tinylm_shards import DatasetReader, ShardError, ShardFile
from tinylm_shards.testing import write_dataset


def _rewrite_row0(path, column, value):
    table = pq.read_table(path)
    values = table.column(column).to_pylist()
    values[0] = value
    index = table.schema.get_field_index(column)
    table = table.set_column(index, column, pa.array(values, table.schema.field(column).type))
    pq.write_table(table, path)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("input_ids", [1, 2, 3], "row 0: 3 ids, block_size is 64"),
        ("doc_offsets", [0, 10, 10, 64], "increase strictly"),
        ("doc_offsets", [1, 64], "start at 0"),
        ("num_tokens", 63, "end at num_tokens=63"),
    ],
)
def test_every_row_is_checked_as_it_is_read(tmp_path, column, value, message):
    root = write_dataset(tmp_path)
    path = root / "shards" / "part-00000.parquet"
    _rewrite_row0(path, column, value)
    shard = ShardFile(path, block_size=64)
    shard.row(1)  # the others are fine
    with pytest.raises(ShardError, match=message):
        shard.row(0)


def test_random_access_matches_reading_in_order(tmp_path):
    root = write_dataset(tmp_path, row_group_size=3, rows_per_shard=7)
    reader = DatasetReader(root, doc_ids=True)
    in_order = list(reader.blocks())
    assert [b.index for b in in_order] == list(range(reader.num_blocks))
    for index in np.random.default_rng(1).permutation(reader.num_blocks):
        block = reader.block(int(index))
        assert np.array_equal(block.input_ids, in_order[index].input_ids)
        assert block.doc_ids == in_order[index].doc_ids
        assert len(block.doc_ids) == len(block.doc_offsets) - 1
    assert in_order[-1].is_partial and not in_order[0].is_partial
    with pytest.raises(IndexError):
        reader.block(reader.num_blocks)


def test_a_file_without_the_format_columns_is_refused(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"input_ids": [[1, 2]]}), path)
    with pytest.raises(ShardError, match="lacks columns"):
        ShardFile(path, block_size=2)
