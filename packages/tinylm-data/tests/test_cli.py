"""End-to-end: the real `tinylm-data` command on the embedded sample and on tiny inputs."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_sample_build_runs_every_stage(sample_build):
    dataset = sample_build / "sample"
    version = (dataset / "LATEST").read_text().strip()
    manifest = json.loads((dataset / version / "manifest.json").read_text())
    stats = json.loads((dataset / version / "stats.json").read_text())
    assert manifest["tokenizer"]["name"] == "builtin:sample"
    assert manifest["num_blocks"] >= 100 and manifest["block_size"] == 1024
    totals = stats["total"]
    assert totals["rejected"] > 0 and totals["filtered"] > 0 and totals["kept"] > 0
    assert sum(s["exact_duplicates"] for s in stats["sources"].values()) > 0
    changed = {
        rule for s in stats["sources"].values() for rule, n in s["clean_changes"].items() if n
    }
    assert {"html", "url", "email", "qq", "t2s", "emoji"} <= changed
    assert set(stats["sources"]) == {"dolma", "baike_qa", "zhihu_kol", "clue"}


@pytest.mark.slow
def test_inspect_shows_manifest_and_decodes_a_block(sample_build, tinylm_data):
    result = tinylm_data("inspect", str(sample_build / "sample"), "--block", "1", "--verify")
    assert result.returncode == 0, result.stderr
    text = result.stderr + result.stdout
    assert "builtin:sample" in text and "shards match their sha256" in text
    assert "⟦0: " in text and "⟦1: " in text, "segment boundaries are marked"


def test_inspect_refuses_what_is_not_a_dataset(tmp_path, tinylm_data):
    result = tinylm_data("inspect", str(tmp_path))
    assert result.returncode == 2 and "neither a manifest.json nor a LATEST" in result.stderr


def test_build_explains_what_is_missing(tmp_path, tinylm_data):
    result = tinylm_data("build", "--out", str(tmp_path))
    assert result.returncode == 2 and "--source sample" in result.stderr
    result = tinylm_data("build", "--source", "dolma", "--out", str(tmp_path))
    assert result.returncode == 2 and "--input" in result.stderr
    result = tinylm_data(
        "build", "--source", "sample", "--set", "pack_mode=zigzag", "--out", str(tmp_path)
    )
    assert result.returncode == 2 and "pack_mode" in result.stderr


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            ["--workers", "-3"],
            "Invalid value for '--workers': Input should be greater than or equal to 0",
        ),
        (["--pack-mode", "zigzag"], "pack_mode: Input should be 'concat' or 'bestfit'"),
        (["--engine", "dask"], "unknown engine 'dask': choose local or spark"),
        (["--parallel-over", "rows"], "--parallel-over must be auto, files, batches"),
        (["--block-size", "1"], "block_size: Input should be greater than or equal to 2"),
    ],
)
def test_bad_option_values_are_refused_before_any_work(tmp_path, tinylm_data, option, message):
    result = tinylm_data("build", "--source", "sample", "--out", str(tmp_path), *option)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in " ".join(result.stderr.split()), result.stderr
    assert not (tmp_path / "sample").exists()


def test_single_source_build_from_the_command_line(tiny_corpus, tmp_path, tinylm_data):
    root = tiny_corpus.parent
    result = tinylm_data(
        "build",
        "--source",
        "jsonl",
        "--input",
        "en/*.jsonl.gz",
        "--set",
        "sources.jsonl.id_field=id",
        "--tokenizer",
        str(root / "tokenizer"),
        "--block-size",
        "128",
        "--pack-mode",
        "bestfit",
        "--out",
        str(tmp_path),
        cwd=root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    version = (tmp_path / "jsonl" / "LATEST").read_text().strip()
    manifest = json.loads((tmp_path / "jsonl" / version / "manifest.json").read_text())
    assert manifest["pack_mode"] == "bestfit" and manifest["block_size"] == 128
    assert "utilisation" in result.stderr and "split documents" in result.stderr


@pytest.mark.slow
def test_tokenizer_train_on_the_sample(tmp_path, tinylm_data):
    result = tinylm_data(
        "tokenizer",
        "train",
        "--source",
        "sample",
        "--vocab-size",
        "600",
        "--out",
        str(tmp_path / "tok"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert len(tok) == 600 and tok.eos_token == "<|endoftext|>"
    ids = tok("人工智能 and language models", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == "人工智能 and language models", "byte-level BPE round-trips any text"
