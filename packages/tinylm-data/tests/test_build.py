from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tinylm_data.build import BuildOptions, run_build
from tinylm_data.config import load_config_file, parse_config
from tinylm_data.inspect_dataset import load_manifest, resolve_dataset_dir, verify_shards
from tinylm_data.stage_one import StrictModeError


@pytest.fixture
def corpus(tiny_corpus) -> Path:
    return tiny_corpus


def _build(config_path: Path, out: Path, workers: int = 1, **overrides):
    data = load_config_file(config_path) | overrides
    return run_build(
        parse_config(data), config_path.parent, BuildOptions(out_root=out, workers=workers)
    )


def _shard_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((directory / "shards").glob("*.parquet"))}


def _stats_without_timings(directory: Path) -> dict:
    stats = json.loads((directory / "stats.json").read_text())
    assert set(stats.pop("seconds")) >= {"read", "filter", "tokenize", "pack"}
    return stats


@pytest.mark.slow
def test_build_writes_the_contract_and_accounts_for_every_document(corpus, tmp_path):
    result = _build(corpus, tmp_path)
    directory = resolve_dataset_dir(tmp_path / "tiny")
    assert directory == result.out_dir and directory.name == result.manifest["version"]
    manifest = load_manifest(directory)
    assert manifest["schema_version"] == 1 and manifest["block_size"] == 64
    assert verify_shards(directory, manifest) == []
    assert sum(s["rows"] for s in manifest["shards"]) == manifest["num_blocks"] > 1
    table = pq.read_table(directory / "shards")
    assert table.schema.field("input_ids").type.value_type.bit_width == 32
    eos = manifest["tokenizer"]["eos_id"]
    real = 0
    for row in table.to_pylist():
        offsets = row["doc_offsets"]
        assert len(row["input_ids"]) == 64 and offsets[0] == 0 and offsets[-1] == row["num_tokens"]
        real += row["num_tokens"]
    assert real == manifest["tokens"]["real"]
    # every document ends in EOS: the number of EOS tokens is the number of documents packed
    assert sum(r["input_ids"][: r["num_tokens"]].count(eos) for r in table.to_pylist()) == sum(
        s["documents_packed"] for s in result.stats["sources"].values()
    )
    # accounting closes per source, and the planted problems are where they belong
    en = result.stats["sources"]["en"]
    assert en["accounting"]["in"] == 2 * 63
    assert en["read_rejected"] == {"malformed_json": 2}
    assert en["exact_duplicates"] == 2 and result.stats["sources"]["zh"]["exact_duplicates"] == 1
    for counts in manifest["counts"].values():
        assert (
            counts["in"]
            == counts["kept"] + counts["filtered"] + counts["duplicates"] + counts["rejected"]
        )
    rejects = pq.read_table(directory / "rejects").to_pylist()
    malformed = [r for r in rejects if r["reason"] == "malformed_json"]
    assert {(r["file"], r["line"]) for r in malformed} == {
        ("en/part-0.jsonl.gz", 62),
        ("en/part-1.jsonl.gz", 62),
    }
    dup = [r for r in rejects if r["stage"] == "exact_dedup" and r["source"] == "en"]
    assert [r["doc_id"] for r in dup] == ["en/dup", "en/dup"]
    assert all("duplicate of" in r["detail"] for r in dup)
    assert (directory / "stats.json").is_file() and (directory / "plots" / "funnel.png").is_file()
    assert (directory / "plots" / "lengths.png").is_file()
    assert (directory / "tokenizer" / "tokenizer.json").is_file()
    assert not list(tmp_path.glob("tiny/.work-*")), "work files are removed after success"


@pytest.mark.slow  # imports datasets and polars
def test_shards_load_with_datasets_and_polars(corpus, tmp_path):
    datasets = pytest.importorskip("datasets")
    pl = pytest.importorskip("polars")
    result = _build(corpus, tmp_path)
    files = sorted(str(p) for p in (result.out_dir / "shards").glob("*.parquet"))
    ds = datasets.load_dataset(
        "parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf")
    )
    assert len(ds) == result.manifest["num_blocks"] and len(ds[0]["input_ids"]) == 64
    frame = pl.read_parquet(files)
    assert frame["num_tokens"].sum() == result.manifest["tokens"]["real"]


def test_same_inputs_give_byte_identical_shards_whatever_the_worker_count(corpus, tmp_path):
    one = _build(corpus, tmp_path / "a", workers=1)
    for parallel_over in ("batches", "files"):
        data = load_config_file(corpus)
        two = run_build(
            parse_config(data),
            corpus.parent,
            BuildOptions(out_root=tmp_path / parallel_over, workers=2, parallel_over=parallel_over),
        )
        assert one.manifest["version"] == two.manifest["version"]
        assert _shard_bytes(one.out_dir) == _shard_bytes(two.out_dir)
        assert one.manifest["shards"] == two.manifest["shards"]
        assert _stats_without_timings(one.out_dir) == _stats_without_timings(two.out_dir)
    again = _build(corpus, tmp_path / "a")
    assert again.reused and again.out_dir == one.out_dir


def test_config_changes_change_the_version(corpus, tmp_path):
    base = _build(corpus, tmp_path)
    bestfit = _build(corpus, tmp_path, pack_mode="bestfit")
    assert bestfit.manifest["version"] != base.manifest["version"]
    assert (
        bestfit.manifest["tokens"]["split_documents"] < base.manifest["tokens"]["split_documents"]
    )
    assert (tmp_path / "tiny" / "LATEST").read_text().strip() == bestfit.manifest["version"]


def test_mixture_weights_scale_sources(corpus, tmp_path):
    base = _build(corpus, tmp_path)
    data = load_config_file(corpus)
    data["sources"][0]["weight"] = 2.0
    data["sources"][1]["weight"] = 0.5
    mixed = run_build(
        parse_config(data), corpus.parent, BuildOptions(out_root=tmp_path / "m", workers=1)
    )
    en, zh = mixed.stats["sources"]["en"], mixed.stats["sources"]["zh"]
    assert en["tokens_packed"] == 2 * base.stats["sources"]["en"]["tokens_packed"]
    assert 0 < zh["accounting"]["kept"] < base.stats["sources"]["zh"]["accounting"]["kept"]
    assert (
        zh["sampled_out"]
        == base.stats["sources"]["zh"]["accounting"]["kept"] - zh["accounting"]["kept"]
    )
    assert zh["accounting"]["in"] == sum(
        zh["accounting"][k] for k in ("kept", "filtered", "duplicates", "rejected")
    )


def test_strict_mode_stops_at_the_first_bad_line(corpus, tmp_path):
    data = load_config_file(corpus)
    with pytest.raises(StrictModeError, match=r"en/part-0.jsonl.gz:62: malformed_json"):
        run_build(
            parse_config(data),
            corpus.parent,
            BuildOptions(out_root=tmp_path, workers=1, strict=True),
        )


def _cli_build(
    corpus: Path, out: Path, crash: str | None, parallel_over: str = "batches"
) -> subprocess.CompletedProcess:
    env = {**os.environ, "TINYLM_DATA_CRASH_AT": crash or ""}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tinylm_data",
            "build",
            "--config",
            str(corpus),
            "--out",
            str(out),
            "--workers",
            "2",
            "--parallel-over",
            parallel_over,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("crash", "parallel_over"),
    [("batch:1", "batches"), ("batch:1", "files"), ("shard:2", "files")],
)
def test_killed_build_resumes_to_identical_output(corpus, tmp_path, crash, parallel_over):
    reference = _build(corpus, tmp_path / "ref")
    killed = _cli_build(corpus, tmp_path / "run", crash, parallel_over)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    dataset = tmp_path / "run" / "tiny"
    assert not (dataset / "LATEST").exists(), "nothing is published by a killed build"
    assert any((dataset / ".stage1").iterdir()), "the killed run left its work for the rerun"
    resumed = _cli_build(corpus, tmp_path / "run", None, parallel_over)
    assert resumed.returncode == 0, resumed.stderr
    out_dir = dataset / reference.manifest["version"]
    assert _shard_bytes(out_dir) == _shard_bytes(reference.out_dir)
    assert (
        json.loads((out_dir / "manifest.json").read_text())["shards"]
        == reference.manifest["shards"]
    )
    assert not list(dataset.rglob("*.tmp")) and not list(dataset.glob(".staging-*"))


@pytest.mark.slow  # reads and rejects a 50 MB document
def test_unreadable_and_truncated_inputs_are_counted_not_fatal(corpus, tmp_path):
    root = tmp_path / "c"
    shutil.copytree(corpus.parent, root)
    good = (root / "en" / "part-0.jsonl.gz").read_bytes()
    (root / "en" / "part-2.jsonl.gz").write_bytes(good[: len(good) // 2])  # truncated gzip
    huge = "A very long document. " * (50 * 2**20 // 22)  # a 50 MB single document
    (root / "en" / "part-3.jsonl").write_text(json.dumps({"id": "huge", "text": huge}) + "\n")
    data = load_config_file(root / "config.yaml")
    data["sources"][0]["paths"] = ["en/*.jsonl.gz", "en/*.jsonl"]
    result = run_build(parse_config(data), root, BuildOptions(out_root=tmp_path / "out", workers=1))
    en = result.stats["sources"]["en"]
    assert en["read_rejected"].get("truncated_gzip") == 1
    assert en["filtered"].get("too_long") == 1
    a = en["accounting"]
    assert a["in"] == a["kept"] + a["filtered"] + a["duplicates"] + a["rejected"]


def test_records_behind_a_byte_order_mark_are_kept_and_counted(corpus, tmp_path):
    root = tmp_path / "c"
    shutil.copytree(corpus.parent, root)
    text = (
        "The harbour master kept a careful record of every ship that came in from the sea, "
        "noting its cargo, its crew and the weather it had met on the way. Entry {i}."
    )
    lines = ["\ufeff" + json.dumps({"id": f"bom{i}", "text": text.format(i=i)}) for i in range(3)]
    (root / "en" / "bom.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = load_config_file(root / "config.yaml")
    data["sources"][0]["paths"] = ["en/*.jsonl.gz", "en/*.jsonl"]
    result = run_build(parse_config(data), root, BuildOptions(out_root=tmp_path / "out", workers=1))
    en = result.stats["sources"]["en"]
    assert en["read_repairs"] == {"bom_stripped": 3}
    assert en["read_rejected"].get("malformed_json") == 2  # the corpus's own two bad lines
    rejects = pq.read_table(result.out_dir / "rejects").to_pylist()
    assert not any((r["doc_id"] or "").startswith("bom") for r in rejects)
    assert result.stats["sources"]["zh"]["read_repairs"] == {"bom_stripped": 0}


def _one_file_config(root: Path, tokenizer: Path, lines: list[str]) -> Path:
    (root / "in.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    config = {
        "name": "one",
        "tokenizer": str(tokenizer),
        "block_size": 64,
        "sources": [{"name": "docs", "kind": "jsonl", "paths": ["in.jsonl"]}],
    }
    (root / "config.yaml").write_text(json.dumps(config), encoding="utf-8")
    return root / "config.yaml"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], r"nothing to build: the 1 input file\(s\) hold no document"),
        (
            ['{"text": "Too short."}', "{broken"],
            r"all 2 input documents were removed \(1 rejected, 1 filtered, 0 duplicates\)",
        ),
    ],
)
def test_a_build_that_keeps_no_document_is_refused(corpus, tmp_path, tinylm_data, lines, message):
    from tinylm_data.build import EmptyBuildError

    config = _one_file_config(tmp_path, corpus.parent / "tokenizer", lines)
    with pytest.raises(EmptyBuildError, match=message):
        _build(config, tmp_path / "out")
    assert not (tmp_path / "out" / "one" / "LATEST").exists()
    result = tinylm_data("build", "--config", str(config), "--out", str(tmp_path / "cli"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "--allow-empty" in result.stderr
    allowed = tinylm_data(
        "build", "--config", str(config), "--out", str(tmp_path / "cli"), "--allow-empty"
    )
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    manifest = load_manifest(resolve_dataset_dir(tmp_path / "cli" / "one"))
    assert manifest["num_blocks"] == 0 and manifest["shards"] == []


def _doc_ids(directory: Path) -> set[str]:
    if not directory.is_dir():
        return set()
    return {
        i
        for ids in pq.read_table(directory, columns=["doc_ids"])["doc_ids"].to_pylist()
        for i in ids
    }


def test_the_validation_split_is_held_out_of_training(corpus, tmp_path):
    import tinylm_shards
    from tinylm_data.mixture import held_out

    data = load_config_file(corpus)
    data["sources"][0]["weight"] = 2.0  # upsampled copies must not leak held-out documents
    result = run_build(
        parse_config(data | {"validation_share": 0.2}),
        corpus.parent,
        BuildOptions(out_root=tmp_path, workers=1),
    )
    train, validation = _doc_ids(result.out_dir / "shards"), _doc_ids(result.out_dir / "validation")
    assert validation and train and not train & validation
    assert all(held_out(i, 0.2, 0) for i in validation)
    assert not any(held_out(i, 0.2, 0) for i in train)
    split = result.manifest["splits"]["validation"]
    assert split["share"] == 0.2 and split["documents"] == len(validation)
    stats = result.stats
    assert (
        stats["validation"]["documents"]
        == len(validation)
        == sum(s["validation"]["documents"] for s in stats["sources"].values())
    )
    assert len(train) + len(validation) == stats["total"]["kept"]
    en = stats["sources"]["en"]
    assert en["upsampled"] == en["accounting"]["kept"] - en["validation"]["documents"] > 0
    manifest = tinylm_shards.load_manifest(result.out_dir)
    reader = tinylm_shards.DatasetReader(manifest.split("validation"), doc_ids=True)
    assert reader.num_blocks == split["num_blocks"] > 0
    assert {i for b in reader.blocks() for i in b.doc_ids} == validation
    assert tinylm_shards.dataset_problems(manifest) == []

    disabled = _build(corpus, tmp_path / "none", validation_share=0)
    assert "splits" not in disabled.manifest and not (disabled.out_dir / "validation").exists()
    assert disabled.stats["validation"]["documents"] == 0


def test_a_weight_change_reruns_only_the_assembly(corpus, tmp_path):
    first = _build(corpus, tmp_path / "out")
    assert first.stage_one_reused == 0
    data = load_config_file(corpus)
    data["sources"][1]["weight"] = 0.5
    data["validation_share"] = 0.1
    reweighted = run_build(
        parse_config(data), corpus.parent, BuildOptions(out_root=tmp_path / "out", workers=1)
    )
    tasks = len(reweighted.manifest["inputs"])
    assert reweighted.stage_one_reused == tasks == 3, "no input was read again"
    assert reweighted.manifest["version"] != first.manifest["version"]
    assert sum(reweighted.stats["seconds"][s] for s in ("read", "clean", "tokenize")) == sum(
        first.stats["seconds"][s] for s in ("read", "clean", "tokenize")
    ), "stage-1 timings come from the first build's summaries"
    fresh = run_build(
        parse_config(data), corpus.parent, BuildOptions(out_root=tmp_path / "fresh", workers=1)
    )
    assert fresh.stage_one_reused == 0
    assert fresh.manifest == reweighted.manifest
    assert _shard_bytes(fresh.out_dir) == _shard_bytes(reweighted.out_dir)
    assert _stats_without_timings(fresh.out_dir) == _stats_without_timings(reweighted.out_dir)
    # a cleaning change does rerun stage 1, for the source it touches only
    data["sources"][1]["clean"] = ["whitespace"]
    recleaned = run_build(
        parse_config(data), corpus.parent, BuildOptions(out_root=tmp_path / "out", workers=1)
    )
    assert recleaned.stage_one_reused == 2
    assert len(list((tmp_path / "out" / "tiny" / ".stage1").glob("*.json"))) == tasks
