"""Real instruction data (optional, ../shared/data/sft): Alpaca (en, zh), BELLE's eval set,
ShareGPT-style (medical, zh chat) and python-codes records all build, with the Qwen1.5
tokenizer and ChatML; the counts are printed. The first RECORDS records of each file are
written, in the file's own layout (JSON list or JSON lines), to the test's directory: the
whole files take minutes to tokenize twice on two cores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tinylm_shards
from tinylm_data.config import parse_model
from tinylm_data.sft import SftConfig, run_sft_build

SOURCES = [
    {"name": "alpaca_en", "kind": "alpaca", "paths": ["sft/alpaca_en_demo.json"]},
    {"name": "alpaca_zh", "kind": "alpaca", "paths": ["sft/alpaca_zh_demo.json"]},
    {
        "name": "belle_eval",
        "kind": "alpaca",
        "paths": ["sft/belle_eval_set.jsonl"],
        "fields": {"instruction": "question", "output": "std_answer"},
    },
    {"name": "medical", "kind": "sharegpt", "paths": ["sft/medical_sft_1K_format.jsonl"]},
    {"name": "sharegpt_zh", "kind": "sharegpt", "paths": ["sft/sharegpt_zh_1K_format.jsonl"]},
    {"name": "python_codes", "kind": "alpaca", "paths": ["sft/python-codes-25k.sample.json"]},
]


RECORDS = 200


def _head(source: Path, target: Path) -> None:
    if source.suffix == ".json":
        records = json.loads(source.read_text(encoding="utf-8"))[:RECORDS]
        target.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    else:
        with source.open(encoding="utf-8") as handle:
            lines = [next(handle) for _ in range(RECORDS)]
        target.write_text("".join(lines), encoding="utf-8")


@pytest.mark.shared
@pytest.mark.slow
def test_real_sft_sets_build_with_their_counts(shared_data, tmp_path):
    if not (shared_data / "sft").is_dir() or not (shared_data / "qwen1.5-tokenizer").is_dir():
        pytest.skip("no sft/ or qwen1.5-tokenizer/ in the shared data")
    for source in SOURCES:
        (tmp_path / "sft").mkdir(exist_ok=True)
        _head(shared_data / source["paths"][0], tmp_path / source["paths"][0])
    config = parse_model(
        SftConfig,
        {
            "name": "real",
            "tokenizer": str(shared_data / "qwen1.5-tokenizer"),
            "template": "chatml",
            "max_length": 2048,
            "sources": SOURCES,
        },
    )
    result = run_sft_build(config, tmp_path, tmp_path / "out")
    stats = result.stats["sources"]
    for name, s in stats.items():
        print(name, json.dumps(s["accounting"]), "removed", json.dumps(s["removed"]),
              "truncated", s["truncated_samples"], "trainable", s["trainable_tokens"])  # fmt: skip
    for name, s in stats.items():
        a = s["accounting"]
        # BELLE's eval set leaves std_answer empty for about a third of its questions
        least = 0.5 if name == "belle_eval" else 0.9
        assert a["in"] == RECORDS and a["kept"] >= least * a["in"], (name, a)
        assert a["in"] == a["kept"] + a["rejected"] + a["duplicates"]
    assert set(stats["belle_eval"]["removed"]["read"]) == {"no_assistant_turn"}
    assert stats["medical"]["turns"] >= stats["medical"]["accounting"]["kept"]
    assert stats["sharegpt_zh"]["turns"] > 1.5 * stats["sharegpt_zh"]["accounting"]["kept"]
    # The Qwen tokenizer already has <|im_start|>/<|im_end|>: nothing is added.
    assert result.manifest["sft"]["added_special_tokens"] == []
    manifest = tinylm_shards.load_manifest(result.out_dir, formats=(tinylm_shards.SFT_BLOCKS,))
    reader = tinylm_shards.DatasetReader(manifest, token_columns=("loss_mask",))
    im_end = 151645  # Qwen1.5's <|im_end|>
    for block in reader.blocks(limit=20):
        mask, ids = block.token_columns["loss_mask"], block.input_ids
        assert mask[ids == im_end].sum() > 0 and not mask[block.doc_offsets[:-1]].any()
        assert np.all(mask[block.doc_offsets[-1] :] == 0)
