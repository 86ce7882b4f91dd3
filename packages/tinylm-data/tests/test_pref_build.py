"""End to end: the real `tinylm-data pref build` on the embedded sample and on tiny inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import tinylm_shards
from tinylm_data.config import parse_model
from tinylm_data.pref import PrefConfig, run_pref_build

SIGN_OFF = "Hope this helps!"
SAMPLE_REMOVED = {
    "dpo_zh": {
        "exact_dedup": {"duplicate": 1},
        "pair": {"chosen_equals_rejected": 1},
        "read": {"empty_answer": 1, "malformed_json": 1, "roles_out_of_order": 1},
    },
    "ultrafeedback": {"read": {"empty_answer": 1, "prompt_mismatch": 1, "unknown_role": 1}},
    "hh_rlhf": {"read": {"no_assistant_turn": 1}, "tokenize": {"prompt_too_long": 1}},
}


@pytest.fixture(scope="module")
def sample_pref(tmp_path_factory):
    out = tmp_path_factory.mktemp("pref-out")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tinylm_data",
            "pref",
            "build",
            "--source",
            "sample",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    dataset = out / "pref-sample"
    return dataset / (dataset / "LATEST").read_text().strip(), result


@pytest.mark.slow
def test_sample_builds_preference_pairs_with_the_contract(sample_pref):
    directory, result = sample_pref
    manifest = tinylm_shards.load_manifest(directory, formats=(tinylm_shards.PREFERENCE_PAIRS,))
    raw = manifest.raw
    stats = json.loads((directory / "stats.json").read_text())
    assert raw["format"] == "tinylm-preference-pairs" and raw["schema_version"] == 2
    assert {n: s["removed"] for n, s in stats["sources"].items()} == SAMPLE_REMOVED
    assert stats["total"] == {"in": 45, "kept": 35, "rejected": 9, "duplicates": 1}
    tinylm_shards.verify_shards(manifest)  # raises on a broken shard
    train = tinylm_shards.PairReader(manifest).pairs()
    held = tinylm_shards.PairReader(manifest.split("validation")).pairs()
    assert raw["num_pairs"] == len(train) == stats["splits"]["train"]["pairs"]
    assert raw["splits"]["validation"]["num_blocks"] == len(held) > 0
    assert len(train) + len(held) == 35
    assert (
        raw["counts"]["prompt_truncated_pairs"]
        + raw["splits"]["validation"]["counts"]["prompt_truncated_pairs"]
        == 1
    )
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(directory / "tokenizer" / "tokenizer.json"))

    def text(ids) -> str:
        return tokenizer.decode(ids.tolist(), skip_special_tokens=False)

    for pair in train + held:
        assert pair.length <= raw["block_size"] == 160
        assert text(pair.chosen_ids).endswith(SIGN_OFF + "<|endoftext|>")
        assert not text(pair.rejected_ids).endswith(SIGN_OFF + "<|endoftext|>")
        assert text(pair.prompt_ids).endswith("Assistant:\n")
    ids = [p.pair_id for p in train + held]
    assert len(set(ids)) == len(ids) and any("/dpo_zh.jsonl:" in i for i in ids)
    config = json.loads((directory / "tokenizer" / "tokenizer_config.json").read_text())
    assert config["chat_template"] == raw["preference"]["chat_template"]
    assert (directory / "plots" / "records.png").is_file()
    summary = result.stdout + result.stderr
    assert "prompt_too_long 1" in summary and "30 training pairs" in summary


@pytest.mark.slow
def test_rebuild_is_a_no_op(sample_pref):
    directory, _ = sample_pref
    result = _cli("pref", "build", "--source", "sample", "--out", str(directory.parents[1]))
    assert result.exit_code == 0 and "already built" in result.output


def _tiny(tmp_path: Path, **settings) -> tuple[PrefConfig, Path]:
    records = [
        {
            "conversations": [{"from": "human", "value": f"What is {k} plus {k}?"}],
            "chosen": f"It is {2 * k}.",
            "rejected": f"It is {2 * k + 1}.",
        }
        for k in range(30)
    ]
    # Same prompt and chosen answer, another rejected one: a different pair, not a duplicate.
    records.append({**records[0], "rejected": "I do not know."})
    records.append(dict(records[1]))  # a duplicate
    records.append({**records[2], "chosen": "\u200b", "rejected": "x"})  # empty after cleaning
    records.append({**records[3], "rejected": "It is 6.\u200b"})  # the same after cleaning
    (tmp_path / "qa.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )
    data = {
        "name": "tiny",
        "max_length": 64,
        "rows_per_shard": 8,
        "sources": [{"name": "qa", "kind": "dpo_zh", "paths": ["qa.jsonl"], "heldout_share": 0.3}],
        **settings,
    }
    return parse_model(PrefConfig, data), tmp_path


@pytest.mark.slow
def test_dedup_is_on_prompt_and_both_answers_and_cleaning_comes_first(tmp_path):
    config, base = _tiny(tmp_path)
    result = run_pref_build(config, base, tmp_path / "out")
    source = result.stats["sources"]["qa"]
    assert source["accounting"] == {"in": 34, "kept": 31, "rejected": 2, "duplicates": 1}
    assert source["removed"] == {
        "clean": {"empty_answer": 1},
        "pair": {"chosen_equals_rejected": 1},
        "exact_dedup": {"duplicate": 1},
    }
    manifest = tinylm_shards.load_manifest(
        result.out_dir, formats=(tinylm_shards.PREFERENCE_PAIRS,)
    )
    held = tinylm_shards.PairReader(manifest.split("validation")).pairs()
    assert 0 < len(held) < 31 and len(manifest.shards) == -(-result.manifest["num_pairs"] // 8)


@pytest.mark.slow
def test_two_builds_give_the_same_bytes(tmp_path):
    config, base = _tiny(tmp_path)
    first = run_pref_build(config, base, tmp_path / "a")
    second = run_pref_build(config, base, tmp_path / "b")
    assert first.manifest["version"] == second.manifest["version"]
    paths = [
        e["path"]
        for e in [*first.manifest["shards"], *first.manifest["splits"]["validation"]["shards"]]
    ]
    paths += ["rejects/rejects-00000.parquet", "tokenizer/tokenizer_config.json", "stats.json"]
    for path in paths:
        a, b = (first.out_dir / path).read_bytes(), (second.out_dir / path).read_bytes()
        if path == "stats.json":
            a, b = (json.loads(x) | {"seconds": None} for x in (a, b))
        assert a == b, path
    changed, _ = _tiny(tmp_path, seed=1)
    assert (
        run_pref_build(changed, base, tmp_path / "c").manifest["version"]
        != first.manifest["version"]
    )


def _cli(*args: str):
    from typer.testing import CliRunner

    from tinylm_data.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "max_lenght=5"], "max_lenght: Extra inputs are not permitted"),
        (["--set", "sources.hh_rlhf.kind=alpaca"], "sources.hh_rlhf.kind"),
        (["--set", "max_prompt_length=500"], "max_prompt_length (500) must be below max_length"),
        (["--template", "llama"], "template"),
    ],
)
def test_config_mistakes_exit_2_naming_the_key(tmp_path, args, message):
    result = _cli("pref", "build", "--source", "sample", "--out", str(tmp_path), *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not any(tmp_path.iterdir()), "nothing is written"


def test_nothing_kept_is_an_error_not_an_empty_dataset(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"chosen": "a", "rejected": "a", "prompt": "q"}\n')
    config = tmp_path / "pref.yaml"
    config.write_text("sources: [{name: uf, kind: ultrafeedback, paths: [bad.jsonl]}]\n")
    result = _cli("pref", "build", "--config", str(config), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and "nothing to build" in result.output
    assert not (tmp_path / "out" / "pref" / "LATEST").exists()
