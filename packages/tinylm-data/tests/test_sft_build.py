"""End to end: the real `tinylm-data sft build` on the embedded sample and on tiny inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import tinylm_shards
from tinylm_data.config import parse_model
from tinylm_data.sft import SftConfig, run_sft_build

SAMPLE_REJECTS = {
    "duplicate": 1,
    "no_assistant_turn": 2,
    "non_string_field": 2,
    "roles_out_of_order": 1,
    "empty_content": 1,
    "malformed_json": 1,
}


def run_tinylm_data(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tinylm_data", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def sample_sft(tmp_path_factory):
    out = tmp_path_factory.mktemp("sft-out")
    result = run_tinylm_data("sft", "build", "--source", "sample", "--out", str(out))
    assert result.returncode == 0, result.stderr[-4000:]
    return out / "sft-sample", result


def _version_dir(dataset: Path) -> Path:
    return dataset / (dataset / "LATEST").read_text().strip()


def _reader(directory: Path, split: str | None = None) -> tinylm_shards.DatasetReader:
    manifest = tinylm_shards.load_manifest(directory, formats=(tinylm_shards.SFT_BLOCKS,))
    if split:
        manifest = manifest.split(split)
    return tinylm_shards.DatasetReader(manifest, token_columns=("loss_mask",), doc_ids=True)


@pytest.mark.slow
def test_sample_builds_sft_shards_with_the_contract(sample_sft):
    dataset, result = sample_sft
    directory = _version_dir(dataset)
    manifest = json.loads((directory / "manifest.json").read_text())
    stats = json.loads((directory / "stats.json").read_text())
    assert manifest["format"] == "tinylm-sft-blocks" and manifest["block_size"] == 512
    sft = manifest["sft"]
    assert sft["template"] == "tinylm" and sft["pack_mode"] == "bestfit"
    assert sft["stop_tokens"] == ["<|endoftext|>"] and sft["stop_strings"] == ["\nHuman:"]
    trained, seen = {"train": 0, "validation": 0}, set()
    for split in ("train", "validation"):
        reader = _reader(directory, None if split == "train" else "validation")
        for block in reader.blocks():
            mask = block.token_columns["loss_mask"]
            assert len(mask) == manifest["block_size"] and mask.dtype == np.int8
            offsets = block.doc_offsets
            assert not mask[offsets[:-1]].any(), "the first token of each sample is not trained"
            assert not mask[offsets[-1] :].any(), "padding is not trained"
            assert not seen & set(block.doc_ids), "a sample never crosses a block"
            seen |= set(block.doc_ids)
            trained[split] += int(mask.sum())
    assert trained == sft["trainable_tokens"] == stats["trainable_tokens"]
    assert trained["validation"] > 0 and stats["packing"]["validation"]["documents"] == 3
    assert len(seen) == stats["total"]["kept"] == 36
    # every planted problem is a counted, logged rejection
    rejects = pq.read_table(directory / "rejects" / "rejects-00000.parquet").to_pylist()
    reasons: dict[str, int] = {}
    for row in rejects:
        reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1
        assert row["file"] and row["line"]
    assert reasons == SAMPLE_REJECTS
    assert stats["total"] == {"in": 44, "kept": 36, "rejected": 7, "duplicates": 1}
    assert (directory / "plots" / "lengths.png").stat().st_size > 0
    config = json.loads((directory / "tokenizer" / "tokenizer_config.json").read_text())
    assert config["chat_template"] == sft["chat_template"]
    assert "trainable tokens" in result.stderr and "36" in result.stderr


@pytest.mark.slow
def test_rebuild_is_a_no_op(sample_sft):
    dataset, _ = sample_sft
    from tinylm_data.cli_sft import resolve_sft_config

    config, base = resolve_sft_config("sample", None, {})
    again = run_sft_build(config, base, dataset.parent)
    assert again.reused and again.out_dir == _version_dir(dataset)


@pytest.mark.slow
def test_two_builds_give_the_same_bytes(tmp_path):
    config, base = _tiny(tmp_path, augment={"instruction_rate": 0.5})
    first = run_sft_build(config, base, tmp_path / "a")
    second = run_sft_build(config, base, tmp_path / "b")
    assert first.manifest["version"] == second.manifest["version"]
    for entry in [*first.manifest["shards"], *first.manifest["splits"]["validation"]["shards"]]:
        path = entry["path"]
        assert (first.out_dir / path).read_bytes() == (second.out_dir / path).read_bytes()
    for name in ("rejects/rejects-00000.parquet", "tokenizer/tokenizer_config.json"):
        assert (first.out_dir / name).read_bytes() == (second.out_dir / name).read_bytes()


def _tiny(tmp_path: Path, **settings) -> tuple[SftConfig, Path]:
    records = [
        {"instruction": f"Question number {k}: what is {k} plus {k}?", "output": f"It is {2 * k}."}
        for k in range(40)
    ]
    (tmp_path / "qa.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )
    data = {
        "name": "tiny",
        "max_length": 64,
        "sources": [{"name": "qa", "kind": "alpaca", "paths": ["qa.jsonl"], "heldout_share": 0.3}],
        **settings,
    }
    return parse_model(SftConfig, data), tmp_path


def test_held_out_samples_are_never_augmented(tmp_path):
    config, base = _tiny(tmp_path, augment={"instruction_rate": 1.0, "char_rate": 0.5})
    result = run_sft_build(config, base, tmp_path / "out")
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(result.out_dir / "tokenizer" / "tokenizer.json"))
    texts = {}
    for split in ("train", "validation"):
        reader = _reader(result.out_dir, None if split == "train" else "validation")
        for block in reader.blocks():
            for k, doc in enumerate(block.doc_ids):
                ids = block.input_ids[block.doc_offsets[k] : block.doc_offsets[k + 1]]
                texts[doc] = (split, tokenizer.decode(ids.tolist(), skip_special_tokens=False))
    held = [t for s, t in texts.values() if s == "validation"]
    train = [t for s, t in texts.values() if s == "train"]
    assert held and train
    assert all("Question number" in t for t in held), "held out: the instruction unchanged"
    assert sum("Question number" in t for t in train) < len(train) / 2
    stats = result.stats["sources"]["qa"]["augmentation"]
    assert stats["turns"] == len(train) and stats["augmented"] == len(train)


def _cli(*args: str):
    from typer.testing import CliRunner

    from tinylm_data.cli import app

    return CliRunner().invoke(app, list(args))


def test_chatml_one_sample_per_row(tmp_path):
    _, base = _tiny(tmp_path)
    (base / "c.yaml").write_text(
        json.dumps(
            {
                "name": "tiny",
                "max_length": 64,
                "sources": [{"name": "qa", "kind": "alpaca", "paths": ["qa.jsonl"]}],
            }
        )
    )
    result = _cli(
        "sft", "build", "--config", str(base / "c.yaml"), "--template", "chatml",
        "--pack-mode", "none", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "added special tokens to the tokenizer: <|im_start|>, <|im_end|>" in result.output
    directory = _version_dir(tmp_path / "out" / "tiny")
    manifest = json.loads((directory / "manifest.json").read_text())
    sft = manifest["sft"]
    assert sft["added_special_tokens"] == ["<|im_start|>", "<|im_end|>"]
    assert sft["stop_tokens"][0] == "<|im_end|>" and sft["stop_strings"] == []
    table = pq.read_table(directory / "shards" / "part-00000.parquet").to_pylist()
    assert len(table) == manifest["num_blocks"] == sft["samples"]["train"]
    im_end = manifest["tokenizer"]["vocab_size"] - 1
    for row in table:
        assert len(row["doc_ids"]) == 1 and row["doc_offsets"] == [0, row["num_tokens"]]
        ids, mask = np.array(row["input_ids"]), np.array(row["loss_mask"])
        assert ids[row["num_tokens"] - 2] == im_end and mask[row["num_tokens"] - 2] == 1
        assert mask[row["num_tokens"] - 1] == 0, "the newline after <|im_end|> is not trained"


def test_samples_without_a_trainable_token_are_rejected_and_counted(tmp_path):
    config, base = _tiny(tmp_path)
    long = [{"instruction": f"Read text {k}: " + "blah " * 80, "output": "ok"} for k in range(5)]
    (base / "long.jsonl").write_text("".join(json.dumps(r) + "\n" for r in long))
    source = config.sources[0].model_copy(update={"paths": ["qa.jsonl", "long.jsonl"]})
    result = run_sft_build(config.model_copy(update={"sources": [source]}), base, tmp_path / "o")
    s = result.stats["sources"]["qa"]
    assert s["removed"]["tokenize"] == {"no_trainable_tokens": 5}
    assert s["accounting"] == {"in": 45, "kept": 40, "rejected": 5, "duplicates": 0}
    rejects = pq.read_table(result.out_dir / "rejects" / "rejects-00000.parquet").to_pylist()
    assert [(r["reason"], r["file"], r["line"]) for r in rejects] == [
        ("no_trainable_tokens", "long.jsonl", k) for k in range(1, 6)
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "max_lenght=5"], "max_lenght: Extra inputs are not permitted"),
        (["--set", "sources.alpaca.kind=csv"], "sources.alpaca.kind"),
        (["--template", "llama"], "template"),
        (["--set", "sources.alpaca.clean=[htm]"], "unknown cleaning rule(s) 'htm'"),
    ],
)
def test_config_mistakes_exit_2_naming_the_key(tmp_path, args, message):
    result = _cli("sft", "build", "--source", "sample", "--out", str(tmp_path), *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not any(tmp_path.iterdir()), "nothing is written"


def test_held_out_share_and_cap_per_source(tmp_path):
    from tinylm_data.mixture import validation_coin
    from tinylm_data.sft.builder import hold_out

    config, _ = _tiny(tmp_path)
    source = config.sources[0].model_copy(update={"heldout_share": 0.5, "heldout_max": 3})
    config = config.model_copy(update={"sources": [source]})
    held = hold_out(config, [(0, f"qa/{k}", f"qa/{k}") for k in range(200)])
    lowest = sorted((validation_coin(f"qa/{k}", 0), f"qa/{k}") for k in range(200))[:3]
    assert sorted(held) == sorted(i for _, i in lowest)
    uncapped = config.model_copy(
        update={"sources": [source.model_copy(update={"heldout_max": 10_000})]}
    )
    held = hold_out(uncapped, [(0, f"qa/{k}", k) for k in range(2000)])
    assert abs(len(held) / 2000 - 0.5) < 0.05


def test_one_sample_per_row_packer():
    from tinylm_data.pack import make_packer

    packer = make_packer("none", 8, 0, token_columns={"loss_mask": "int8"})
    tokens = np.arange(1, 6, dtype=np.int32)
    (block,) = packer.add("a", tokens, {"loss_mask": np.ones(5, dtype=np.int8)})
    assert block.input_ids.tolist() == [1, 2, 3, 4, 5, 0, 0, 0]
    assert block.token_columns["loss_mask"].tolist() == [1] * 5 + [0] * 3
    assert block.doc_offsets.tolist() == [0, 5] and list(packer.finish()) == []
    with pytest.raises(ValueError, match="more than a row of 8"):
        list(packer.add("b", np.arange(9, dtype=np.int32), {"loss_mask": np.ones(9, np.int8)}))


def test_cleaning_default_system_prompt_and_turns_left_empty():
    from tinylm_data.clean import Cleaner
    from tinylm_data.sft.build import _clean
    from tinylm_data.sft.conversation import Conversation

    cleaner = Cleaner(["unicode"])
    conversation = Conversation("s/1", "s", [("Ｈｉ\u200b", "  ok  ")])
    cleaned, changes = _clean(conversation, cleaner, "Be kind.")
    assert cleaned.system == "Be kind." and cleaned.turns == [("Hi", "ok")]
    assert changes["unicode"] == 1
    own = Conversation("s/2", "s", [("a", "b")], system="Mine.")
    assert _clean(own, cleaner, "Be kind.")[0].system == "Mine."
    empty, _ = _clean(Conversation("s/3", "s", [("\u200b\u200b", "b")]), cleaner, None)
    assert empty is None
