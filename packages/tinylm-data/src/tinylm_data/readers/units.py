"""Units of work of one input file: the whole file, line-aligned byte ranges, or Parquet row groups.

A large file read as one task leaves every other core (or executor) idle, so files larger than
`split_bytes` are cut into units that are read as separate stage-1 tasks:

* text and JSON lines: byte ranges `[start, end)`. A line belongs to the range where it starts
  (the Hadoop rule): a range skips a first line that began before `start`, and reads its last
  line to the end however far past `end` it goes. Every line is read exactly once whatever the
  cut points, so the cut points are plain multiples of `split_bytes` and need no search.
  `lines_before` (the newlines before `start`, counted when the file is planned) keeps line
  numbers the file's own, so rejects and document ids are the same as when the file is read
  whole.
* Parquet: consecutive row groups (`start`/`end` are row-group indices, `lines_before` the rows
  before the first).
* gzip: groups of whole members where the file has many (`gzip_members`: `start`/`end` are
  compressed offsets of member starts that begin a line); a single-member gzip file is read whole.
* Blank-line-separated text (documents that span lines) is read whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .storage import InputPath, input_name, open_input

logger = logging.getLogger(__name__)

DEFAULT_SPLIT_BYTES = 128 << 20

__all__ = ["DEFAULT_SPLIT_BYTES", "Unit", "file_units", "newlines_before"]


@dataclass(frozen=True, slots=True)
class Unit:
    """One part of a file, read as one task; `index` is its place among the file's units."""

    kind: str  # "bytes" (a line-aligned byte range), "gzip_members" or "row_groups" (Parquet)
    index: int
    start: int
    end: int  # exclusive
    lines_before: int  # lines (or Parquet rows) of the file before the unit's first one

    def label(self) -> str:
        return f"{self.kind}[{self.start}:{self.end}]"


def newlines_before(path: InputPath, offsets: list[int], chunk: int = 1 << 22) -> list[int]:
    """For each of the sorted `offsets`, how many b"\\n" the file holds before it."""
    counts: list[int] = []
    seen = 0  # newlines before `position`
    position = 0
    pending = iter(offsets)
    target = next(pending, None)
    with open_input(path) as handle:
        while target is not None:
            block = handle.read(chunk)
            end = position + len(block)
            while target is not None and (target <= end or not block):
                counts.append(seen + block.count(b"\n", 0, max(0, target - position)))
                target = next(pending, None)
            if not block:
                break
            seen += block.count(b"\n")
            position = end
    return counts


def line_units(path: InputPath, size: int, split_bytes: int) -> list[Unit]:
    starts = list(range(0, size, split_bytes))
    counts = newlines_before(path, starts)
    return [
        Unit("bytes", i, start, min(start + split_bytes, size), counts[i])
        for i, start in enumerate(starts)
    ]


def row_group_units(path: InputPath, split_bytes: int) -> list[Unit] | None:
    """Runs of consecutive row groups of about `split_bytes` (uncompressed); None if unreadable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with open_input(path) as handle:
            meta = pq.ParquetFile(handle).metadata
    except (OSError, pa.ArrowException):
        return None  # the reader rejects it, as a whole file
    units: list[Unit] = []
    first = rows_before = rows = size = 0
    for group in range(meta.num_row_groups):
        info = meta.row_group(group)
        if size and size + info.total_byte_size > split_bytes:
            units.append(Unit("row_groups", len(units), first, group, rows_before))
            first, rows_before, size = group, rows_before + rows, 0
            rows = 0
        size += info.total_byte_size
        rows += info.num_rows
    if meta.num_row_groups:
        units.append(Unit("row_groups", len(units), first, meta.num_row_groups, rows_before))
    return units


def member_units(cuts: list[tuple[int, int]], size: int) -> list[Unit] | None:
    if not cuts:
        return None
    starts = [(0, 0), *cuts]
    ends = [offset for offset, _ in cuts] + [size]
    return [
        Unit("gzip_members", i, start, end, before)
        for i, ((start, before), end) in enumerate(zip(starts, ends, strict=True))
    ]


_told_gzip = False


def file_units(path: InputPath, *, layout: str, size: int, split_bytes: int) -> list[Unit] | None:
    """The units of one file, or None when it is read whole (small, gzip, paragraphs, 0 = off).

    `layout` is "lines", "paragraphs" or "parquet" (see `readers.file_layout`).
    """
    global _told_gzip
    if split_bytes <= 0 or size <= split_bytes or layout == "paragraphs":
        return None
    if input_name(path).lower().endswith(".gz"):
        from .gzip_members import member_cuts

        units = member_units(member_cuts(path, split_bytes), size)
        if units is None and not _told_gzip:
            logger.info(
                "%s: a single-member gzip file is read whole, one task (a gzip stream cannot be "
                "entered in the middle): write large inputs as many members or many files",
                input_name(path),
            )
            _told_gzip = True
        return units
    units = (
        row_group_units(path, split_bytes)
        if layout == "parquet"
        else line_units(path, size, split_bytes)
    )
    return units if units and len(units) > 1 else None
