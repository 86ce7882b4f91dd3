"""Units of large files: every line (or Parquet row) is read exactly once, numbered as in the file."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_data.readers import ReadCounts, file_layout, read_documents
from tinylm_data.readers.lines import iter_lines
from tinylm_data.readers.units import file_units, line_units, newlines_before

# Pieces that make boundaries interesting: line ends of both kinds, blank lines, a BOM, UTF-8.
PIECES = st.sampled_from(
    [b"a", b"bc", b"\n", b"\r\n", b"\r", b"\n\n", "\ufeff".encode(), "é字".encode()]
)


@settings(max_examples=300, deadline=None)
@given(content=st.lists(PIECES, max_size=60).map(b"".join), split=st.integers(1, 40))
def test_every_line_is_read_exactly_once_whatever_the_cut(tmp_path_factory, content, split):
    path = tmp_path_factory.mktemp("units") / "f.txt"
    path.write_bytes(content)
    whole = list(iter_lines(path))
    parts = []
    for unit in line_units(path, len(content), split):
        parts += iter_lines(path, byte_range=(unit.start, unit.end, unit.lines_before))
    assert parts == whole


@settings(max_examples=200, deadline=None)
@given(
    content=st.lists(PIECES, max_size=80).map(b"".join),
    offsets=st.lists(st.integers(0, 200), max_size=8).map(sorted),
    chunk=st.integers(1, 17),
)
def test_newlines_before_counts_what_precedes_each_offset(
    tmp_path_factory, content, offsets, chunk
):
    path = tmp_path_factory.mktemp("nl") / "f.txt"
    path.write_bytes(content)
    assert newlines_before(path, offsets, chunk=chunk) == [
        content[:o].count(b"\n") for o in offsets
    ]


def _jsonl_with_every_edge(path: Path) -> None:
    lines = []
    for i in range(40):
        record = {"text": f"Document number {i} has a little text in it, enough to matter."}
        if i % 3:
            record["id"] = f"d{i}"  # the others get ids from their line numbers
        lines.append(json.dumps(record, ensure_ascii=False))
    lines[5] = "{not json"  # rejected with its line number
    lines[9] = ""  # empty line
    lines[12] = json.dumps({"text": "  "})  # empty text
    body = "\ufeff" + "\n".join(lines[:20]) + "\r\n" + "\r\n".join(lines[20:])  # BOM at offset 0
    path.write_bytes(body.encode("utf-8"))  # the final line has no newline


def _read(path: Path, kind: str, unit=None):
    counts = ReadCounts()
    items = list(read_documents(kind, path, source="s", id_field="id", unit=unit, counts=counts))
    return [dataclasses.asdict(item) for item in items], counts.bom_stripped


@pytest.mark.parametrize("split", [1024, 1500, 2047])
def test_a_split_json_lines_file_reads_as_the_whole_file(tmp_path, split):
    path = tmp_path / "edge.jsonl"
    _jsonl_with_every_edge(path)
    whole, boms = _read(path, "jsonl")
    units = file_units(path, layout="lines", size=path.stat().st_size, split_bytes=split)
    assert units is not None and len(units) > 1
    parts, part_boms = [], 0
    for unit in units:
        items, n = _read(path, "jsonl", unit)
        parts += items
        part_boms += n
    assert parts == whole
    assert part_boms == boms == 1
    rejected = [item for item in whole if "reason" in item]
    assert [(r["reason"], r["line"]) for r in rejected] == [
        ("malformed_json", 6),
        ("empty_text", 13),
    ]


def test_parquet_is_split_by_row_groups_with_file_row_numbers(tmp_path):
    path = tmp_path / "t.parquet"
    texts = [f"Row {i} of the table, with a sentence of text." for i in range(50)]
    pq.write_table(pa.table({"text": texts}), path, row_group_size=7)
    whole, _ = _read(path, "parquet")
    units = file_units(path, layout="parquet", size=path.stat().st_size, split_bytes=1024)
    assert units is not None and len(units) > 1
    assert units[0].start == 0 and units[-1].end == pq.ParquetFile(path).num_row_groups
    parts = []
    for unit in units:
        parts += _read(path, "parquet", unit)[0]
    assert parts == whole
    assert [p["meta"]["line"] for p in parts] == list(range(1, 51))


def test_gzip_paragraphs_small_files_and_zero_are_read_whole(tmp_path):
    gz = tmp_path / "a.jsonl.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write("".join(json.dumps({"text": "x" * 50}) + "\n" for _ in range(200)))
    paragraphs = tmp_path / "p.txt"
    paragraphs.write_text("".join(f"line one {i}\nline two {i}\n\n" for i in range(300)))
    assert file_layout("clue", paragraphs) == "paragraphs"
    assert file_units(paragraphs, layout="paragraphs", size=10**6, split_bytes=1024) is None
    assert file_units(gz, layout="lines", size=10**6, split_bytes=1024) is None
    plain = tmp_path / "b.jsonl"
    plain.write_text("".join(json.dumps({"text": "x" * 50}) + "\n" for _ in range(200)))
    size = plain.stat().st_size
    assert file_units(plain, layout="lines", size=size, split_bytes=0) is None
    assert file_units(plain, layout="lines", size=size, split_bytes=size) is None
    assert len(file_units(plain, layout="lines", size=size, split_bytes=1024)) > 1


def test_split_bytes_is_validated():
    from tinylm_data.config import ConfigError, parse_config

    base = {"name": "x", "sources": [{"name": "s", "kind": "jsonl", "paths": ["*.jsonl"]}]}
    assert parse_config(base).split_bytes == 128 << 20
    assert parse_config(base | {"split_bytes": 0}).split_bytes == 0
    for bad in (-1, 100):
        with pytest.raises(ConfigError, match="split_bytes"):
            parse_config(base | {"split_bytes": bad})


@settings(max_examples=150, deadline=None)
@given(
    content=st.lists(PIECES, max_size=60).map(b"".join),
    cuts=st.lists(st.integers(0, 120), max_size=6).map(sorted),
    split=st.integers(1, 200),
)
def test_multi_member_gzip_units_read_every_line_once(tmp_path_factory, content, cuts, split):
    """Members cut anywhere (mid-line too); units only start where a member begins a line."""
    bounds = [0, *(min(c, len(content)) for c in cuts), len(content)]
    members = [content[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    path = tmp_path_factory.mktemp("gz") / "f.jsonl.gz"
    path.write_bytes(b"".join(gzip.compress(m, mtime=0) for m in members))
    whole = list(iter_lines(path))
    units = file_units(path, layout="lines", size=path.stat().st_size, split_bytes=split)
    if units is None:
        return
    parts = []
    for unit in units:
        assert unit.kind == "gzip_members"
        parts += iter_lines(path, members=(unit.start, unit.end, unit.lines_before))
    assert parts == whole


def test_a_multi_member_gzip_file_is_split_at_members(tmp_path):
    noise = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(120)]  # incompressible
    lines = [json.dumps({"text": f"record {i} {noise[i]}"}) + "\n" for i in range(120)]
    path = tmp_path / "m.jsonl.gz"
    path.write_bytes(
        b"".join(gzip.compress("".join(lines[i : i + 10]).encode()) for i in range(0, 120, 10))
    )
    whole, _ = _read(path, "jsonl")
    units = file_units(path, layout="lines", size=path.stat().st_size, split_bytes=1024)
    assert units is not None and len(units) > 2
    parts = []
    for unit in units:
        parts += _read(path, "jsonl", unit)[0]
    assert parts == whole and len(whole) == 120
    truncated = tmp_path / "t.jsonl.gz"
    truncated.write_bytes(path.read_bytes()[:-20])
    size = truncated.stat().st_size
    assert file_units(truncated, layout="lines", size=size, split_bytes=1024) is None
