"""The quality stage on the Spark engine (a grouped Arrow UDF) keeps what the local engine keeps."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tinylm_data.build import BuildOptions, run_build
from tinylm_data.config import load_config_file, parse_config
from tinylm_data.engines import LocalEngine
from tinylm_data.quality.junk import clean_paragraphs, planted_junk
from tinylm_data.sample import sample_dir

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _digests(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != "stats.json"
    }


def test_spark_and_local_engines_agree_with_the_quality_stage_on(tmp_path):
    pytest.importorskip("fasttext")
    from tinylm_data.quality.classifier import TrainSettings, train_classifier
    from tinylm_data.spark_engine import spark_engine

    clean = clean_paragraphs()[::3]
    train_classifier(
        [t for _, t in clean],
        [t for _, t in planted_junk(clean)],
        tmp_path / "clf",
        TrainSettings(epochs=5),
    )
    path = sample_dir() / "sample.yaml"
    data = load_config_file(path)
    data["quality"] = {
        "scorers": [
            {
                "kind": "classifier",
                "model": str(tmp_path / "clf"),
                "rule": {"type": "percentile", "low": 5, "per": "language"},
            }
        ]
    }
    config = parse_config(data)
    local = run_build(
        config,
        path.parent,
        BuildOptions(out_root=tmp_path / "local", workers=2),
        engine=LocalEngine(2),
    )
    with spark_engine("local[2]") as engine:
        spark = run_build(
            config, path.parent, BuildOptions(out_root=tmp_path / "spark"), engine=engine
        )
    assert spark.manifest["version"] == local.manifest["version"]
    assert spark.manifest["quality"] == local.manifest["quality"]
    assert local.manifest["quality"]["scorers"][0]["removed"] > 0
    assert _digests(spark.out_dir) == _digests(local.out_dir)
    assert spark.stats["sources"] == local.stats["sources"]
