"""Inputs as fsspec URLs (memory://, file://): the same documents and shards as local files."""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import json

import fsspec
import pytest

from tinylm_data.readers import expand_paths, read_documents
from tinylm_data.readers.storage import MissingFilesystem, as_input


@pytest.fixture
def memory():
    fs = fsspec.filesystem("memory")
    yield fs
    fs.rm("/", recursive=True)


def test_a_url_reads_as_the_same_file_on_disk(tmp_path, memory):
    lines = [json.dumps({"text": f"line {i} of the file"}) for i in range(30)]
    lines[4] = "{broken"
    body = ("\n".join(lines) + "\n").encode()
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(body))
    memory.pipe("/in/a.jsonl.gz", gzip.compress(body))
    local = [
        dataclasses.asdict(d) for d in read_documents("jsonl", tmp_path / "a.jsonl.gz", source="s")
    ]
    remote = [
        dataclasses.asdict(d) for d in read_documents("jsonl", "memory://in/a.jsonl.gz", source="s")
    ]
    assert remote == local and len(local) == 30
    assert expand_paths(["memory://in/*.gz"], tmp_path) == ["memory:///in/a.jsonl.gz"]
    assert as_input((tmp_path / "a.jsonl.gz").as_uri()) == tmp_path / "a.jsonl.gz"
    with pytest.raises(FileNotFoundError, match="matches no file"):
        expand_paths(["memory://in/*.parquet"], tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed")
def test_a_url_without_its_filesystem_package_names_the_package(tmp_path):
    with pytest.raises(MissingFilesystem, match="s3fs"):
        expand_paths(["s3://bucket/corpus/*.jsonl"], tmp_path)
