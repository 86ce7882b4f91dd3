"""Real preference data (optional, ../shared/data/preference): the 500 pairs of dpo_zh_500 build
with the Qwen1.5 tokenizer and ChatML; the counts are printed."""

from __future__ import annotations

import json

import pytest

import tinylm_shards
from tinylm_data.config import parse_model
from tinylm_data.pref import PrefConfig, run_pref_build


@pytest.mark.shared
@pytest.mark.slow
def test_dpo_zh_500_builds_with_its_counts(shared_data, tmp_path):
    data = shared_data / "preference" / "dpo_zh_500.jsonl"
    if not data.is_file() or not (shared_data / "qwen1.5-tokenizer").is_dir():
        pytest.skip("no preference/dpo_zh_500.jsonl or qwen1.5-tokenizer/ in the shared data")
    config = parse_model(
        PrefConfig,
        {
            "name": "dpo-zh",
            "tokenizer": str(shared_data / "qwen1.5-tokenizer"),
            "template": "chatml",
            "max_length": 1024,
            "max_prompt_length": 512,
            "sources": [
                {"name": "dpo_zh", "kind": "dpo_zh", "paths": [str(data)], "heldout_share": 0.05}
            ],
        },
    )
    result = run_pref_build(config, shared_data, tmp_path / "out")
    s = result.stats["sources"]["dpo_zh"]
    print("dpo_zh_500", json.dumps(s["accounting"]), "removed", json.dumps(s["removed"]),
          "splits", json.dumps(result.stats["splits"]))  # fmt: skip
    a = s["accounting"]
    assert a["in"] == 500 and a["in"] == a["kept"] + a["rejected"] + a["duplicates"]
    assert a["kept"] >= 450, a
    assert result.manifest["preference"]["added_special_tokens"] == []
    manifest = tinylm_shards.load_manifest(
        result.out_dir, formats=(tinylm_shards.PREFERENCE_PAIRS,)
    )
    pairs = tinylm_shards.PairReader(manifest).pairs()
    held = tinylm_shards.PairReader(manifest.split("validation")).pairs()
    assert len(pairs) + len(held) == a["kept"] and held
    im_end = 151645  # Qwen1.5's <|im_end|>
    for pair in pairs:
        assert pair.length <= 1024
        assert pair.chosen_ids[-1] == im_end or pair.answer_truncated
        assert im_end not in pair.chosen_ids[:-1].tolist()
    records = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    by_line = {f"dpo_zh/preference/{data.name}:{k + 1}": r for k, r in enumerate(records)}
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(result.out_dir / "tokenizer" / "tokenizer.json"))
    for pair in pairs[:20]:
        if not pair.answer_truncated:
            chosen = tokenizer.decode(pair.chosen_ids.tolist(), skip_special_tokens=False)
            assert chosen == by_line[pair.pair_id]["chosen"].strip() + "<|im_end|>"
