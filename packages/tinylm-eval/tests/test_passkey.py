import json

import pytest
from typer.testing import CliRunner

from tinylm_eval.cli import app
from tinylm_eval.passkey import PasskeyConfig, score_answer, summarize

runner = CliRunner()


def test_the_first_digits_of_the_answer_are_scored():
    assert score_answer("12345", "12345") == {"found": "12345", "exact": True, "digits": 1.0}
    assert score_answer("The pass key is 12945.", "12345")["digits"] == 0.8
    assert score_answer("123", "12345") == {"found": "123", "exact": False, "digits": 0.6}
    assert score_answer("1234567", "12345")["exact"] is False
    assert score_answer("no idea", "12345") == {"found": "", "exact": False, "digits": 0.0}
    assert score_answer("7 and 12345", "12345")["found"] == "7"


def test_the_summary_groups_by_length_depth_and_cell():
    config = PasskeyConfig(lengths=(100, 200), depths=(0.0, 1.0), trials=1, key_digits=2)
    rows = [
        {"length": 100, "depth": 0.0, "exact": True, "digits": 1.0},
        {"length": 100, "depth": 1.0, "exact": False, "digits": 0.5},
        {"length": 200, "depth": 0.0, "exact": False, "digits": 0.0},
        {"length": 200, "depth": 1.0, "exact": False, "digits": 0.5},
    ]
    scores = summarize(rows, config)
    assert scores["accuracy"] == 0.25 and scores["digit_accuracy"] == 0.5
    assert scores["chance"] == {"accuracy": 0.01, "digit_accuracy": 0.1}
    assert scores["by_length"]["100"]["accuracy"] == 0.5
    assert scores["by_depth"]["1.0"]["digit_accuracy"] == 0.5
    assert [c["accuracy"] for c in scores["cells"]] == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "options",
    [
        {"depths": (1.5,)},
        {"lengths": ()},
        {"lengths": (100, 100)},
        {"trials": 0},
        {"language": "fr"},
        {"prompt": "html"},
    ],
)
def test_a_config_mistake_is_refused(options):
    with pytest.raises(ValueError):
        PasskeyConfig(**options)


def passkey(model, out, *args):
    return runner.invoke(
        app,
        ["passkey", "--model", str(model), "--out", str(out), "--device", "cpu", *args],
    )


def test_passkey_writes_every_report_with_a_plain_prompt(tiny_model_dir, tmp_path):
    out = tmp_path / "pk"
    args = ("--lengths", "200,300", "--depths", "0,0.5,1", "--trials", "2", "--key-digits", "3")
    result = passkey(tiny_model_dir, out, *args, "--batch-size", "4")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "results.json").read_text())
    assert report["prompt_format"] == "plain" and report["task"] == "passkey"
    assert report["config"]["max_new_tokens"] == 14
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all("prompt" not in r for r in rows)
    for row in rows:
        assert row | score_answer(row["output"], row["key"]) == row
        assert row["length"] - 20 <= row["prompt_tokens"] <= row["length"]
    scores = report["scores"]
    assert scores["digit_accuracy"] == pytest.approx(sum(r["digits"] for r in rows) / 12)
    assert [(c["length"], c["depth"], c["prompts"]) for c in scores["cells"]] == [
        (n, d, 2) for n in (200, 300) for d in (0.0, 0.5, 1.0)
    ]
    assert (out / "heatmap.png").stat().st_size > 0
    assert (out / "predictions.stats.json").is_file()
    # the same seed, the same keys and answers (greedy); another seed, other keys
    again = passkey(tiny_model_dir, tmp_path / "again", *args)
    assert again.exit_code == 0, again.output
    assert (tmp_path / "again" / "predictions.jsonl").read_text() == (
        out / "predictions.jsonl"
    ).read_text()
    other = passkey(tiny_model_dir, tmp_path / "other", *args, "--seed", "1")
    keys = [json.loads(line)["key"] for line in (tmp_path / "other" / "predictions.jsonl").open()]
    assert other.exit_code == 0 and keys != [r["key"] for r in rows]


def test_passkey_uses_the_chat_template_when_the_model_has_one(chat_model_dir, tmp_path):
    out = tmp_path / "pk"
    result = passkey(chat_model_dir, out, "--lengths", "128", "--depths", "0.5", "--trials", "1")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "results.json").read_text())
    assert report["prompt_format"] == "chat"
    low, high = report["prompt_tokens"]["128"]
    assert 100 < low <= high <= 128


def test_a_length_beyond_the_context_is_one_line_before_generation(tiny_model_dir, tmp_path):
    result = passkey(tiny_model_dir, tmp_path / "pk", "--lengths", "512,2048")
    assert result.exit_code == 2
    assert "error:" in result.output and "--lengths 2048" in result.output
    assert not (tmp_path / "pk").exists()
    result = passkey(tiny_model_dir, tmp_path / "pk", "--depths", "0,2")
    assert result.exit_code == 2 and "depths" in result.output


def test_passkey_data_writes_conversations_for_sft_build(tmp_path):
    from chat_test_helpers import SAMPLE_TOKENIZER

    out = tmp_path / "train.jsonl"
    result = runner.invoke(
        app,
        ["passkey-data", "--tokenizer", str(SAMPLE_TOKENIZER), "--out", str(out)]
        + ["--samples", "5", "--lengths", "128", "--key-digits", "4"],
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 5
    assert all(len(r["messages"][1]["content"]) == 4 for r in records)
    missing = runner.invoke(app, ["passkey-data", "--tokenizer", str(tmp_path), "--out", str(out)])
    assert missing.exit_code == 2 and "tokenizer_config.json" in missing.output


def test_an_export_with_rope_scaling_loads_scaled_and_runs_past_its_trained_length(
    tiny_model_dir, tmp_path
):
    import shutil

    import torch

    from tinylm_eval.models.hf import HFModel

    scaled = tmp_path / "scaled"
    shutil.copytree(tiny_model_dir, scaled)
    config = json.loads((scaled / "config.json").read_text())
    # what a long-context export writes (transformers 5 keeps it in rope_parameters)
    theta = config["rope_parameters"]["rope_theta"]
    config["rope_parameters"] = {"rope_type": "linear", "factor": 4.0, "rope_theta": theta}
    config["max_position_embeddings"] = 4 * 2048
    (scaled / "config.json").write_text(json.dumps(config))
    plain, stretched = HFModel.load(tiny_model_dir), HFModel.load(scaled)
    assert stretched.module.config.rope_parameters["rope_type"] == "linear"
    assert torch.allclose(
        stretched.module.model.rotary_emb.inv_freq, plain.module.model.rotary_emb.inv_freq / 4
    )
    result = passkey(scaled, tmp_path / "pk", "--lengths", "3000", "--depths", "0.5")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "pk" / "results.json").read_text())["scores"]["prompts"] == 5
