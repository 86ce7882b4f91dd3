"""The quality stage inside real builds: scores recorded, bands in the manifest, reuse, identity.

The corpus is authored: clean paragraphs of the sample with junk planted among them, in two
sources; the scorer is a fastText classifier trained here on other paragraphs.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tinylm_data.build import BuildOptions, run_build
from tinylm_data.config import ConfigError, parse_config
from tinylm_data.engines import LocalEngine
from tinylm_data.quality.junk import (
    JUNK_KINDS,
    clean_paragraphs,
    every_kind_of_junk,
    planted_junk,
)

pytest.importorskip("fasttext")
pytestmark = pytest.mark.slow


def _planted(doc_id: str) -> bool:
    return doc_id.split("/", 1)[1].startswith("j")  # ids are <source>/<id>


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from tinylm_data.quality.classifier import TrainSettings, train_classifier

    root = tmp_path_factory.mktemp("quality-corpus")
    clean = clean_paragraphs()
    random.Random(1).shuffle(clean)
    train, docs = clean[:400], clean[400:640]
    train_classifier(
        [t for _, t in train] * len(JUNK_KINDS),
        [t for _, t in every_kind_of_junk(train, seed=2)],
        root / "clf",
        TrainSettings(),
    )
    junk = planted_junk(docs[:40], seed=5)
    for language in ("en", "zh"):
        rows = [{"id": f"c{i}", "text": t} for i, (lang, t) in enumerate(docs) if lang == language]
        rows += [
            {"id": f"j{i}-{kind}", "text": t}
            for i, ((kind, t), (lang, _)) in enumerate(zip(junk, docs[:40], strict=True))
            if lang == language
        ]
        random.Random(3).shuffle(rows)
        half = len(rows) // 2
        (root / language).mkdir()
        for part, chunk in enumerate((rows[:half], rows[half:])):
            (root / language / f"part-{part}.jsonl").write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk), encoding="utf-8"
            )
    return root


def config_for(root: Path, **scorer) -> dict:
    return {
        "name": "q",
        "tokenizer": "builtin:sample",
        "block_size": 256,
        "validation_share": 0,
        "filters": {"min_en_words": 5, "min_zh_words": 5},
        "sources": [
            {
                "name": "en",
                "kind": "jsonl",
                "paths": ["en/*.jsonl"],
                "language": "en",
                "id_field": "id",
            },
            {
                "name": "zh",
                "kind": "jsonl",
                "paths": ["zh/*.jsonl"],
                "language": "zh",
                "id_field": "id",
            },
        ],
        "quality": {"scorers": [{"kind": "classifier", "model": "clf", **scorer}]},
    }


def build(root: Path, out: Path, data: dict, workers: int = 1, parallel_over: str = "files"):
    return run_build(
        parse_config(data),
        root,
        BuildOptions(out_root=out, workers=workers),
        engine=LocalEngine(workers, parallel_over),
    )


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("quality-out")
    return out, build(corpus, out, config_for(corpus))


def test_every_judged_document_is_recorded_with_its_score(built):
    out, result = built
    quality = result.manifest["quality"]
    (scorer,) = quality["scorers"]
    assert scorer["rule"] == {"type": "absolute", "min": 0.5, "max": None}
    assert scorer["bands"] == {"all": [0.5, None]}
    table = pq.read_table(result.out_dir / quality["table"]).to_pylist()
    assert len(table) == quality["judged"] == scorer["judged"]
    dropped = [r for r in table if not r["kept"]]
    assert len(dropped) == scorer["removed"] > 0
    assert all(r["classifier"] < 0.5 and r["dropped_by"] == "classifier" for r in dropped)
    assert all(r["classifier"] >= 0.5 and r["dropped_by"] is None for r in table if r["kept"])
    # planted junk is what goes (ids say which documents were planted)
    junk_dropped = sum(_planted(r["doc_id"]) for r in dropped)
    assert junk_dropped >= 0.9 * sum(_planted(r["doc_id"]) for r in table)
    assert len(dropped) - junk_dropped <= 0.05 * len(table)
    # the rejects carry the score and the rule
    rejects = pq.read_table(result.out_dir / "rejects").to_pylist()
    by_id = {r["doc_id"]: r for r in rejects if r["stage"] == "quality"}
    assert set(by_id) == {r["doc_id"] for r in dropped}
    one = by_id[dropped[0]["doc_id"]]
    assert one["reason"] == "low_classifier"
    assert f"{dropped[0]['classifier']:.6g}" in one["detail"] and "absolute" in one["detail"]
    # kept ones are exactly the documents in the shards
    shard_ids = {
        doc
        for shard in result.manifest["shards"]
        for ids in pq.read_table(result.out_dir / shard["path"], columns=["doc_ids"])
        .column(0)
        .to_pylist()
        for doc in ids
    }
    assert shard_ids == {r["doc_id"] for r in table if r["kept"]}


def test_the_ledger_closes_with_a_quality_column(built):
    _, result = built
    for source in result.stats["sources"].values():
        funnel = source["funnel"]
        assert list(funnel)[-2:] == ["quality", "mixture"]
        assert funnel["near_dedup"] - funnel["quality"] == sum(source["quality_removed"].values())
        assert source["accounting"]["filtered"] >= sum(source["quality_removed"].values())
    assert result.stats["quality"]["scorers"][0]["quantiles"].keys() == {"en", "zh"}
    assert result.stats["seconds"]["quality"] > 0


def _digests(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != "stats.json"
    }


def test_workers_do_not_change_a_byte(corpus, built, tmp_path):
    _, first = built
    again = build(corpus, tmp_path, config_for(corpus), workers=2, parallel_over="batches")
    assert again.out_dir.name == first.out_dir.name
    assert _digests(again.out_dir) == _digests(first.out_dir)


def test_a_new_rule_reuses_the_scores_and_changes_the_version(corpus, built):
    out, first = built
    stage = out / "q" / ".stage1"
    scores = {p: p.stat().st_mtime_ns for p in stage.glob("*.quality-*.parquet")}
    assert len(scores) == 4  # one per input file
    rule = {"type": "percentile", "low": 20, "per": "source"}
    second = build(corpus, out, config_for(corpus, rule=rule))
    assert second.out_dir.name != first.out_dir.name
    assert {p: p.stat().st_mtime_ns for p in stage.glob("*.quality-*.parquet")} == scores
    (scorer,) = second.manifest["quality"]["scorers"]
    table = pq.read_table(second.out_dir / "quality/scores.parquet").to_pandas()
    for source, (low, high) in scorer["bands"].items():
        values = table[table.source == source].classifier
        assert low == pytest.approx(values.quantile(0.2)) and high is None


def test_a_killed_scoring_pass_rescores_only_what_is_missing(corpus, tmp_path):
    import shutil

    first = build(corpus, tmp_path, config_for(corpus))
    stage = tmp_path / "q" / ".stage1"
    files = sorted(stage.glob("*.quality-*.parquet"))
    before = {p: p.stat().st_mtime_ns for p in files}
    files[0].unlink()
    shutil.rmtree(first.out_dir)
    again = build(corpus, tmp_path, config_for(corpus))
    after = {p: p.stat().st_mtime_ns for p in files}
    assert [p for p in files if after[p] != before[p]] == [files[0]]
    assert _digests(again.out_dir) == _digests(first.out_dir)


def test_another_model_changes_the_version(corpus, built, tmp_path):
    from tinylm_data.quality.classifier import TrainSettings, train_classifier

    _, first = built
    clean = clean_paragraphs()[:200]
    train_classifier(
        [t for _, t in clean],
        [t for _, t in planted_junk(clean)],
        tmp_path / "other",
        TrainSettings(epochs=2),
    )
    data = config_for(corpus, model=str(tmp_path / "other"))
    assert build(corpus, tmp_path / "out", data).out_dir.name != first.out_dir.name


def test_a_missing_model_stops_the_build_before_any_work(corpus, tmp_path):
    data = config_for(corpus, model="no-such-model", name="clf2")
    with pytest.raises(ConfigError, match=r"quality\.scorers\.clf2\.model: no-such-model"):
        build(corpus, tmp_path, data)
    assert not (tmp_path / "q").exists()
    data = config_for(corpus, sources=["web"])
    with pytest.raises(ConfigError, match=r"quality\.scorers\.classifier\.sources: unknown"):
        build(corpus, tmp_path, data)


def test_quality_report_prints_quantiles_examples_and_draws_histograms(built, tinylm_data):
    out, result = built
    run = tinylm_data("quality", "report", str(result.out_dir), "--examples", "1")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "p50" in run.stdout and "absolute [0.5, inf]" in run.stdout
    assert "lowest" in run.stdout and "[dropped]" in run.stdout and "[kept]" in run.stdout
    for source in ("en", "zh"):
        png = result.out_dir / "quality" / f"classifier-{source}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((result.out_dir / "quality" / "report.json").read_text())
    assert report["scorers"][0]["sources"]["en"]["documents"] > 0
    run = tinylm_data("quality", "report", str(out))
    assert run.returncode == 2 and "not a dataset" in run.stderr


def test_quality_train_on_files(tmp_path, tinylm_data):
    pos, neg = tmp_path / "pos.jsonl", tmp_path / "neg.jsonl"
    clean = clean_paragraphs()[:300]
    pos.write_text("".join(json.dumps({"text": t}) + "\n" for _, t in clean) + "{bad\n")
    neg.write_text("".join(json.dumps({"text": t}) + "\n" for _, t in planted_junk(clean)))
    run = tinylm_data(
        "quality", "train", "--positive", str(pos), "--negative", str(neg), "--out",
        str(tmp_path / "clf"), "--epochs", "5",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "1 unreadable record(s) skipped" in run.stderr
    stats = json.loads((tmp_path / "clf" / "training.json").read_text())
    assert stats["documents"] == {"positive": 300, "negative": 300}
    assert stats["valid_confusion"]["accuracy"] > 0.8
    assert (tmp_path / "clf" / "model.bin").stat().st_size > 0
    run = tinylm_data("quality", "train", "--positive", "nothing*.txt", "--negative", str(neg),
                      "--out", str(tmp_path / "x"))  # fmt: skip
    assert run.returncode == 2 and "matches no file" in run.stderr
