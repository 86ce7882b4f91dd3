"""The Spark engine gives exactly the local engine's output (real Spark, local mode)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tinylm_data.build import BuildOptions, run_build
from tinylm_data.config import load_config_file, parse_config
from tinylm_data.sample import sample_dir

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _shards(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((directory / "shards").glob("*.parquet"))}


def _removed(directory: Path) -> set[tuple[str, str, str]]:
    rows = pq.read_table(directory / "rejects").to_pylist()
    return {(r["doc_id"] or f"{r['file']}:{r['line']}", r["stage"], r["detail"]) for r in rows}


def test_spark_and_local_engines_agree_on_the_sample(sample_build, tmp_path):
    from tinylm_data.spark_engine import spark_engine

    path = sample_dir() / "sample.yaml"
    config = parse_config(load_config_file(path))
    assert config.dedup.near.enabled, "the sample exercises near dedup too"
    with spark_engine("local[2]") as engine:
        spark = run_build(config, path.parent, BuildOptions(out_root=tmp_path), engine=engine)
    local_dir = sample_build / "sample" / (sample_build / "sample" / "LATEST").read_text().strip()
    local_manifest = json.loads((local_dir / "manifest.json").read_text())
    assert spark.manifest["version"] == local_manifest["version"]
    assert spark.manifest["shards"] == local_manifest["shards"]
    assert _shards(spark.out_dir) == _shards(local_dir)
    assert _removed(spark.out_dir) == _removed(local_dir)
    assert spark.stats["sources"] == json.loads((local_dir / "stats.json").read_text())["sources"]
    near = sum(s["near_duplicates"] for s in spark.stats["sources"].values())
    assert near > 0, "the planted near duplicates were found"


def test_missing_java_is_explained(monkeypatch):
    from tinylm_data import spark_engine

    monkeypatch.setenv("JAVA_HOME", "/nonexistent")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(spark_engine.SparkUnavailable, match="Java 17 or newer"):
        spark_engine.check_spark_requirements()
