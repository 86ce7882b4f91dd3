"""`tinylm-data rag index` and `rag search` end to end, on the embedded bilingual sample."""

import json

import pytest

from tinylm_shards.retrieval import RetrievalIndex, load_index_manifest


@pytest.fixture
def sample_index(tmp_path, tinylm_data):
    out = tmp_path / "rag-out"
    result = tinylm_data("rag", "index", "--source", "sample", "--out", str(out))
    assert result.returncode == 0, result.stderr[-4000:]
    return out / "rag-sample", result


def test_index_publishes_manifest_passages_and_stats(sample_index):
    index_dir, result = sample_index
    manifest = load_index_manifest(index_dir)
    stats = json.loads((manifest.root / "stats.json").read_text())
    notes = stats["sources"]["notes"]
    # the sample plants one malformed line, one record empty after cleaning, one exact duplicate
    assert notes["rejected"] == {"empty_after_cleaning": 1, "malformed_json": 1}
    assert notes["duplicate_documents"] == 1
    assert (
        stats["totals"]["passages"] == manifest.num_passages == len(RetrievalIndex.open(index_dir))
    )
    assert manifest.raw["settings"]["config"]["chunking"] == {"max_tokens": 24, "overlap": 6}
    quality = stats["quality"]
    assert quality["questions"] == 5 and quality["skipped"]["no_answer"] == 1
    assert quality["recall@5"] == 1.0 and 0 < quality["mrr@20"] <= 1
    assert "recall@5 1.0" in result.stderr and "passages" in result.stderr
    # Traditional -> Simplified cleaning reached the passages
    texts = [RetrievalIndex.open(index_dir).passage(i).text for i in range(manifest.num_passages)]
    assert any("大熊猫" in t for t in texts) and not any("大熊貓" in t for t in texts)


def test_search_prints_the_top_passages_with_scores(sample_index, tinylm_data):
    index_dir, _ = sample_index
    result = tinylm_data(
        "rag", "search", "--index", str(index_dir), "濰坊每年幾月舉辦國際風箏節？", "-k", "2"
    )
    assert result.returncode == 0, result.stderr
    assert "reading/questions/1-0#0" in result.stdout and "潍坊" in result.stdout
    nothing = tinylm_data("rag", "search", "--index", str(index_dir), "zzzqqq")
    assert nothing.returncode == 0 and "no passage shares a token" in nothing.stderr


def test_a_bad_index_dir_and_a_bad_config_give_one_error_line(tmp_path, tinylm_data):
    result = tinylm_data("rag", "search", "--index", str(tmp_path), "x")
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "not a retrieval index" in result.stderr
    config = tmp_path / "bad.yaml"
    config.write_text("name: x\nsources: [{name: a, kind: jsonl, paths: [a.jsonl]}]\nchunks: {}\n")
    result = tinylm_data("rag", "index", "--config", str(config), "--out", str(tmp_path))
    assert result.returncode == 2 and "chunks: Extra inputs are not permitted" in result.stderr
    assert not any(tmp_path.glob("x"))
