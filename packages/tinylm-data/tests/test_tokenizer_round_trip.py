"""Built shards decode and re-encode to the same ids with the saved tokenizer, in a dataset's
`tokenizer/` and beside a qwen2 `config.json` (an exported model's layout)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

# A qwen2 model's config as an export writes it; the fields beside model_type do not matter here.
QWEN2_CONFIG = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151936}

# Blocks long enough that most of the small corpus's documents are not cut.
WHOLE_BLOCKS = ("--block-size", "1024")

# Loads each directory with AutoTokenizer, decodes and re-encodes every whole document and counts
# those whose ids differ. One process per trust_remote_code setting, so neither sees the other's
# dynamically loaded class.
_ROUND_TRIP = """
import json, sys
from transformers import AutoTokenizer
docs_path, trust, directories = sys.argv[1], sys.argv[2] == "trust", sys.argv[3:]
docs = json.loads(open(docs_path).read())
results = {}
for directory in directories:
    hf = AutoTokenizer.from_pretrained(directory, **({"trust_remote_code": True} if trust else {}))
    wrong = sum(hf.encode(hf.decode(ids), add_special_tokens=False) != ids for ids in docs)
    results[directory] = {"class": type(hf).__name__, "wrong": wrong}
print(json.dumps(results))
"""


def _dataset(out: Path) -> Path:
    (name,) = [p for p in out.iterdir() if (p / "LATEST").is_file()]
    return name / (name / "LATEST").read_text().strip()


def whole_documents(dataset: Path) -> list[list[int]]:
    """Ids (without EOS) of every segment that is a whole document.

    A segment is whole when it ends with EOS and does not continue the previous block's last
    document (in `concat` mode a cut document continues at the start of the next block).
    """
    manifest = json.loads((dataset / "manifest.json").read_text())
    eos = manifest["tokenizer"]["eos_id"]
    docs, previous_open = [], False
    for shard in manifest["shards"]:
        table = pq.read_table(dataset / shard["path"], columns=["input_ids", "doc_offsets"])
        for ids, offsets in zip(
            table.column("input_ids").to_pylist(),
            table.column("doc_offsets").to_pylist(),
            strict=True,
        ):
            segments = [ids[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
            for k, segment in enumerate(segments):
                if segment[-1] == eos and not (k == 0 and previous_open):
                    docs.append(segment[:-1])
            previous_open = segments[-1][-1] != eos
    return docs


def _export_like(dataset: Path, target: Path) -> Path:
    shutil.copytree(dataset / "tokenizer", target)
    (target / "config.json").write_text(json.dumps(QWEN2_CONFIG))
    return target


def _mismatches(directories: list[Path], docs_path: Path, trust: bool, home: Path) -> dict:
    """Per directory: the tokenizer class AutoTokenizer loaded and the documents it got wrong."""
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _ROUND_TRIP, str(docs_path), "trust" * trust]
        + [str(d) for d in directories],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_round_trip(dataset: Path, tmp_path: Path, min_docs: int) -> None:
    docs = whole_documents(dataset)
    assert len(docs) >= min_docs
    docs_path = tmp_path / "docs.json"
    docs_path.write_text(json.dumps(docs))
    exported = _export_like(dataset, tmp_path / "export")
    directories = [dataset / "tokenizer", exported]
    for trust in (False, True):
        results = _mismatches(directories, docs_path, trust, tmp_path / "hf-home")
        assert sorted(results) == sorted(str(d) for d in directories)
        for directory, result in results.items():
            assert result["wrong"] == 0, (directory, trust, result, len(docs))


@pytest.mark.slow
def test_sample_tokenizer_round_trips_from_the_built_shards(sample_build, tmp_path):
    assert_round_trip(_dataset(sample_build), tmp_path, min_docs=3000)


@pytest.fixture
def tiny_root(tiny_corpus, tmp_path) -> Path:
    """A copy of the small corpus, without its tokenizer."""
    root = tmp_path / "corpus"
    shutil.copytree(tiny_corpus.parent, root, ignore=shutil.ignore_patterns("tokenizer"))
    return root


@pytest.mark.slow
def test_a_freshly_trained_tokenizer_round_trips(tiny_root, tinylm_data, tmp_path):
    config = tiny_root / "config.yaml"
    trained = tinylm_data(
        "tokenizer",
        "train",
        "--config",
        str(config),
        "--out",
        str(tiny_root / "tokenizer"),
        "--vocab-size",
        "600",
        "--min-frequency",
        "1",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    built = tinylm_data(
        "build", "--config", str(config), *WHOLE_BLOCKS, "--out", str(tmp_path / "out")
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert_round_trip(_dataset(tmp_path / "out"), tmp_path, min_docs=100)


@pytest.mark.slow
@pytest.mark.shared
def test_qwen_tokenizer_round_trips(shared_data, tiny_root, tinylm_data, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLM_CACHE", str(tmp_path / "cache"))
    built = tinylm_data(
        "build",
        "--config",
        str(tiny_root / "config.yaml"),
        "--tokenizer",
        str(shared_data / "qwen1.5-tokenizer"),
        *WHOLE_BLOCKS,
        "--out",
        str(tmp_path / "out"),
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert_round_trip(_dataset(tmp_path / "out"), tmp_path, min_docs=100)
