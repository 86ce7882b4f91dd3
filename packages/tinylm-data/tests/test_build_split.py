"""Large inputs cut into units (byte ranges, row groups) build exactly what whole files build."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tinylm_data.build import BuildOptions, run_build
from tinylm_data.config import parse_config

WORDS = [
    "river",
    "bridge",
    "bread",
    "birds",
    "library",
    "models",
    "stars",
    "delta",
    "traffic",
    "patience",
    "maps",
    "light",
]
HAN = "春天河边柳树孩子草地城市小巷故事美食科学鸟类路线面条图书馆地图房间"


def en_doc(i: int) -> str:
    words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(12 + i % 9)]
    return f"Note {i}: " + " ".join(words).capitalize() + "."


def zh_doc(i: int) -> str:
    return "".join(HAN[(i * 5 + k * 3) % len(HAN)] for k in range(20 + i % 7)) + f"编号{i}。"


def write_split_corpus(root: Path, tokenizer: Path) -> dict:
    """JSON lines, text, Parquet and multi-member gzip files, each several units at 1 KiB."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(80):
        record = {"text": en_doc(i) if i % 2 else zh_doc(i)}
        if i % 4:
            record["id"] = f"d{i}"  # the others are named by their line number
        lines.append(json.dumps(record, ensure_ascii=False))
    lines[7] = "{not json"
    lines[11] = ""
    lines[30] = json.dumps({"id": "dup", "text": en_doc(5)})  # an exact duplicate of line 6
    lines[41] = json.dumps({"text": "Too short."})
    body = "\ufeff" + "\n".join(lines[:40]) + "\r\n" + "\r\n".join(lines[40:])
    (root / "big.jsonl").write_bytes(body.encode("utf-8"))  # no final newline
    (root / "big.txt").write_text(
        "\n".join(zh_doc(i + 100) for i in range(40)) + "\n\n" + zh_doc(3) + "\n", encoding="utf-8"
    )
    pq.write_table(
        pa.table({"text": [en_doc(i + 200) for i in range(60)]}),
        root / "big.parquet",
        row_group_size=6,
    )
    members = [
        "".join(json.dumps({"text": en_doc(i + 300 + k)}) + "\n" for k in range(4)).encode()
        for i in range(0, 60, 4)
    ]
    (root / "big.jsonl.gz").write_bytes(b"".join(gzip.compress(m, mtime=0) for m in members))
    shutil.copytree(tokenizer, root / "tokenizer", dirs_exist_ok=True)
    return {
        "name": "split",
        "tokenizer": "tokenizer",
        "block_size": 64,
        "rows_per_shard": 16,
        "validation_share": 0.1,
        "sources": [
            {"name": "lines", "kind": "jsonl", "paths": ["big.jsonl"], "id_field": "id"},
            {"name": "text", "kind": "clue", "paths": ["big.txt"]},
            {"name": "table", "kind": "parquet", "paths": ["big.parquet"]},
            {"name": "members", "kind": "jsonl", "paths": ["big.jsonl.gz"]},
        ],
    }


@pytest.fixture
def split_corpus(tiny_corpus, tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "corpus"
    return root, write_split_corpus(root, tiny_corpus.parent / "tokenizer")


def published(result) -> dict:
    """Everything a build publishes that must not depend on how the work was cut."""
    stats = json.loads((result.out_dir / "stats.json").read_text())
    return {
        "manifest": (result.out_dir / "manifest.json").read_bytes(),
        "shards": {
            p.relative_to(result.out_dir).as_posix(): p.read_bytes()
            for p in sorted(result.out_dir.rglob("*.parquet"))
            if "rejects" not in p.parts
        },
        "rejects": pq.read_table(result.out_dir / "rejects").to_pylist(),
        "sources": stats["sources"],
    }


def units_per_file(dataset: Path) -> dict[str, int]:
    per_file: dict[str, int] = {}
    for summary in (dataset / ".stage1").glob("*.json"):
        data = json.loads(summary.read_text())
        per_file[data["file"]] = per_file.get(data["file"], 0) + 1
    return per_file


def test_split_and_whole_file_builds_publish_identical_bytes(split_corpus, tmp_path):
    root, data = split_corpus
    whole = run_build(
        parse_config(data | {"split_bytes": 0}), root, BuildOptions(out_root=tmp_path / "whole")
    )
    split = run_build(
        parse_config(data | {"split_bytes": 1024}),
        root,
        BuildOptions(out_root=tmp_path / "split", workers=2),
    )
    assert units_per_file(tmp_path / "whole" / "split") == dict.fromkeys(
        ["big.jsonl", "big.txt", "big.parquet", "big.jsonl.gz"], 1
    )
    units = units_per_file(tmp_path / "split" / "split")
    assert min(units.values()) > 1, units
    assert split.manifest["version"] == whole.manifest["version"]
    assert published(split) == published(whole)
    lines = whole.stats["sources"]["lines"]
    assert lines["read_rejected"] == {"malformed_json": 1}
    assert lines["read_repairs"] == {"bom_stripped": 1}
    assert lines["exact_duplicates"] == 1
    rejects = {r["reason"]: r for r in published(whole)["rejects"]}
    assert rejects["malformed_json"]["line"] == 8  # the file's own line number


def test_a_split_build_resumes_unit_by_unit(split_corpus, tmp_path):
    root, data = split_corpus
    config = parse_config(data | {"split_bytes": 1024})
    first = run_build(config, root, BuildOptions(out_root=tmp_path))
    reference = published(first)
    dataset = tmp_path / "split"
    summaries = sorted((dataset / ".stage1").glob("*.json"))
    summaries[len(summaries) // 2].unlink()  # as if the build had been cut off in that unit
    shutil.rmtree(first.out_dir)
    (dataset / "LATEST").unlink()
    again = run_build(config, root, BuildOptions(out_root=tmp_path))
    assert again.stage_one_reused == len(summaries) - 1
    assert published(again) == reference


@pytest.fixture
def memory():
    fs = fsspec.filesystem("memory")
    yield fs
    fs.rm("/", recursive=True)


def test_a_build_from_urls_splits_and_publishes_the_local_shards(tiny_corpus, tmp_path, memory):
    root = tmp_path / "corpus"
    data = write_split_corpus(root, tiny_corpus.parent / "tokenizer")
    for name in ("big.jsonl", "big.txt", "big.parquet", "big.jsonl.gz"):
        memory.pipe(f"/corpus/{name}", (root / name).read_bytes())
    local = run_build(
        parse_config(data | {"split_bytes": 0}), root, BuildOptions(out_root=tmp_path / "l")
    )
    remote_data = data | {
        "split_bytes": 1024,
        "sources": [
            s | {"paths": [f"memory://corpus/{Path(s['paths'][0]).name}"]} for s in data["sources"]
        ],
    }
    remote = run_build(parse_config(remote_data), root, BuildOptions(out_root=tmp_path / "r"))
    assert [i["file"] for i in remote.manifest["inputs"]] == [
        "memory:///corpus/big.jsonl",
        "memory:///corpus/big.txt",
        "memory:///corpus/big.parquet",
        "memory:///corpus/big.jsonl.gz",
    ]
    assert len(list((tmp_path / "r" / "split" / ".stage1").glob("*.json"))) > 3  # units
    whole = run_build(
        parse_config(remote_data | {"split_bytes": 0}), root, BuildOptions(out_root=tmp_path / "w")
    )
    assert published(remote) == published(whole)
    # Ids without a native id name the file as given (here the URL), so only the counts match
    # the local build's.
    for name, stats in local.stats["sources"].items():
        ours = remote.stats["sources"][name]
        assert ours["read_rejected"] == stats["read_rejected"]
        assert ours["accounting"]["in"] == stats["accounting"]["in"]


@pytest.mark.spark
@pytest.mark.slow
def test_spark_runs_the_units_of_one_file_as_several_tasks_and_matches_local(
    split_corpus, tmp_path
):
    from tinylm_data.spark_engine import spark_engine

    root, data = split_corpus
    data = data | {"dedup": {"near": {"enabled": True}}}
    local = run_build(
        parse_config(data | {"split_bytes": 0}), root, BuildOptions(out_root=tmp_path / "local")
    )
    config = parse_config(data | {"split_bytes": 1024})
    with spark_engine("local[2]") as engine:
        spark = run_build(config, root, BuildOptions(out_root=tmp_path / "spark"), engine=engine)
        ran = engine.stage_one_spark_tasks
    assert published(spark) == published(local)
    by_file: dict[str, set[int]] = {}
    for task in ran:
        by_file.setdefault(task["file"], set()).add(task["partition"])
    assert all(len(partitions) > 1 for partitions in by_file.values()), by_file
