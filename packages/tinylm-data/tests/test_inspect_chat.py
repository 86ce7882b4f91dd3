"""`tinylm-data inspect` on SFT and preference datasets: their manifests, counts, and one block
(trained spans marked) or one pair decoded; damage still reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinylm_data.config import parse_model
from tinylm_data.inspect_dataset import decode_block, load_manifest, read_block, read_pair
from tinylm_data.pref import PrefConfig, run_pref_build
from tinylm_data.sft import SftConfig, run_sft_build


def _cli(*args: str):
    from typer.testing import CliRunner

    from tinylm_data.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("chat")
    qa = [{"instruction": f"What is {k} plus {k}?", "output": f"It is {2 * k}."} for k in range(6)]
    (base / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qa), encoding="utf-8")
    pairs = [
        {
            "conversations": [{"from": "human", "value": f"What is {k} plus {k}?"}],
            "chosen": f"It is {2 * k}. Hope this helps!",
            "rejected": f"It is {2 * k + 1}.",
        }
        for k in range(6)
    ]
    (base / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pairs), "utf-8")
    sft = parse_model(
        SftConfig,
        {"name": "s", "max_length": 64, "augment": {"enabled": False},
         "sources": [{"name": "qa", "kind": "alpaca", "paths": ["qa.jsonl"], "heldout_share": 0}]},
    )  # fmt: skip
    pref = parse_model(
        PrefConfig,
        {"name": "p", "max_length": 64,
         "sources": [{"name": "d", "kind": "dpo_zh", "paths": ["pairs.jsonl"], "heldout_share": 0}]},
    )  # fmt: skip
    return {
        "sft": run_sft_build(sft, base, base / "out").out_dir,
        "pref": run_pref_build(pref, base, base / "out").out_dir,
    }


def test_sft_blocks_are_shown_with_their_trained_spans(built):
    directory = built["sft"]
    manifest = load_manifest(directory)
    segments = decode_block(directory, read_block(directory, manifest, 0))
    answers = {f"It is {2 * k}.<|endoftext|>" for k in range(6)}
    for segment in segments:
        trained = "".join(text for text, on in segment.spans if on)
        assert trained in answers and "".join(t for t, _ in segment.spans) == segment.text
    result = _cli("inspect", str(directory.parent), "--max-chars", "0")
    assert result.exit_code == 0, result.output
    assert "samples per source" in result.output and "trainable tokens" in result.output
    assert "It is 10." in result.output and "filtered" not in result.output


def test_preference_pairs_are_shown_one_pair_decoded(built):
    directory = built["pref"]
    pair = read_pair(directory, load_manifest(directory), -1)
    assert pair["chosen"]["text"].endswith("Hope this helps!<|endoftext|>")
    assert pair["prompt"]["text"].startswith("Human:\nWhat is")
    result = _cli("inspect", str(directory.parent), "--block", "0", "--verify")
    assert result.exit_code == 0, result.output
    assert (
        "tinylm-preference-pairs schema 2" in result.output
        and "records per source" in result.output
    )
    assert "Hope this helps!" in result.output and "match their sha256" in result.output
    assert _cli("inspect", str(directory), "--block", "99").exit_code == 2


def test_a_damaged_preference_shard_is_reported(built, tmp_path):
    import shutil

    copy = tmp_path / "p"
    shutil.copytree(built["pref"], copy)
    shard = copy / json.loads((copy / "manifest.json").read_text())["shards"][0]["path"]
    shard.write_bytes(shard.read_bytes()[:-10])
    result = _cli("inspect", str(copy))
    assert result.exit_code == 1 and "damaged" in result.output
