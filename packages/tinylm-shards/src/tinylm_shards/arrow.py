"""Arrow list columns to and from numpy without a Python loop over the values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def list_array(arrays: Sequence[np.ndarray], value_type: pa.DataType) -> pa.ListArray:
    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    if lengths.sum() >= 2**31:
        raise ValueError("a list column chunk over 2**31 values: write smaller batches")
    offsets = np.zeros(len(arrays) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = np.concatenate(arrays) if arrays else np.empty(0)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=value_type))


def list_parts(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets (rows + 1,), values) of a list column: row i is values[offsets[i]:offsets[i+1]]."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return array.offsets.to_numpy(), array.values.to_numpy(zero_copy_only=False)
