from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def _shared_data_dir() -> Path:
    override = os.environ.get("TINYLM_SHARED_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The optional real data beside the checkout; tests that use it skip when it is absent."""
    path = _shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"optional real data not found at {path} (set TINYLM_SHARED_DATA)")
    return path


# --- a small bilingual corpus with planted problems, and a tokenizer trained on it ---


EN_SENTENCES = [
    "The river carries silt from the mountains down to the wide green delta every spring.",
    "Engineers measure the load on each bridge before they open it to heavy traffic again.",
    "A good loaf of bread needs flour, water, salt, yeast and a great deal of patience.",
    "Migrating birds use the stars and the magnetic field of the earth to find their way.",
    "The library keeps old maps in a cool dry room where the light is always kept low.",
    "Small models can learn surprisingly much when the training data is clean and varied.",
]
ZH_SENTENCES = [
    "春天来了，河边的柳树发出了嫩绿的新芽，孩子们在草地上放风筝。",
    "这座古老的城市有许多狭窄的小巷，每一条都藏着不同的故事和美食。",
    "科学家们通过长期观测，发现这种鸟类每年都会沿着同一条路线迁徙。",
    "做一碗好吃的面条，需要新鲜的面粉、适量的水，还有足够的耐心。",
    "图书馆里保存着许多古老的地图，它们被放在一个阴凉干燥的房间里。",
]


def en_doc(i: int) -> str:
    return (
        " ".join(EN_SENTENCES[(i + k) % len(EN_SENTENCES)] for k in range(2 + i % 5))
        + f" Note {i}."
    )


def zh_doc(i: int) -> str:
    return (
        "".join(ZH_SENTENCES[(i + k) % len(ZH_SENTENCES)] for k in range(2 + i % 4)) + f"编号{i}。"
    )


def write_corpus(root: Path, n: int = 60) -> Path:
    """Writes the corpus and its config; returns the config path."""
    (root / "en").mkdir(parents=True)
    (root / "zh").mkdir(parents=True)
    for part in range(2):
        with gzip.open(root / "en" / f"part-{part}.jsonl.gz", "wt", encoding="utf-8") as handle:
            for i in range(part * n, (part + 1) * n):
                handle.write(json.dumps({"id": f"en{i}", "text": en_doc(i)}) + "\n")
            handle.write(json.dumps({"id": "dup", "text": en_doc(3)}) + "\n")  # exact duplicate
            handle.write("{not json\n")  # malformed line
            handle.write(json.dumps({"id": "short", "text": "Too short."}) + "\n")  # filtered
    (root / "zh" / "a.txt").write_text(
        "\n".join(zh_doc(i) for i in range(n)) + "\n" + zh_doc(1) + "\n" + "太短了。\n",
        encoding="utf-8",
    )
    config = {
        "name": "tiny",
        "tokenizer": "tokenizer",
        "block_size": 64,
        "rows_per_shard": 16,
        "sources": [
            {
                "name": "en",
                "kind": "jsonl",
                "paths": ["en/*.jsonl.gz"],
                "text_field": "text",
                "id_field": "id",
            },
            {"name": "zh", "kind": "clue", "paths": ["zh/*.txt"]},
        ],
    }
    path = root / "config.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


def train_tokenizer(root: Path) -> Path:
    from tinylm_data.tokenizer import save_trained_tokenizer, train_bpe_tokenizer

    texts = [en_doc(i) for i in range(50)] + [zh_doc(i) for i in range(50)]
    tokenizer = train_bpe_tokenizer(texts, vocab_size=600, min_frequency=1)
    save_trained_tokenizer(tokenizer, root / "tokenizer")
    return root / "tokenizer"


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """Config path of the small corpus (its tokenizer beside it, in tokenizer/)."""
    root = tmp_path_factory.mktemp("tiny-corpus")
    config = write_corpus(root)
    train_tokenizer(root)
    return config


# --- the real command line, and one build of the embedded sample shared by the tests ---
def run_tinylm_data(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tinylm_data", *args],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=cwd,
    )


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample-out")
    result = run_tinylm_data("build", "--source", "sample", "--out", str(out))
    assert result.returncode == 0, result.stderr[-4000:]
    return out


@pytest.fixture
def tinylm_data():
    """Runs the real `tinylm-data` command (as `python -m tinylm_data`) and returns the result."""
    return run_tinylm_data
