import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tinylm_eval.cli import app

runner = CliRunner()


def on_sample(command, model, *args):
    """`tinylm-eval COMMAND --model MODEL --data sample ARGS...`."""
    return runner.invoke(app, [command, "--model", str(model), "--data", "sample", *args])


def test_mmlu_on_the_sample_writes_every_report(tiny_model_dir, tmp_path):
    out = tmp_path / "mmlu"
    result = on_sample(
        "mmlu", tiny_model_dir, "--shots", "2", "--batch-size", "4", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "results.json").read_text())
    assert (
        report["shots"] == 2
        and report["prompt_format"] == "mmlu"
        and report["scores"]["questions"] == 42
    )
    assert set(report["scores"]["categories"]) == {"STEM", "humanities", "social sciences", "other"}
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 42
    assert (out / "categories.png").stat().st_size > 0 and "macro average" in (
        out / "results.md"
    ).read_text()


def test_ceval_test_split_writes_a_submission(tiny_model_dir, tmp_path):
    out = tmp_path / "ceval"
    result = on_sample("ceval", tiny_model_dir, "--split", "test", "--out", str(out))
    assert result.exit_code == 0, result.output
    submission = json.loads((out / "submission.json").read_text())
    assert set(submission) == {
        "high_school_geography",
        "high_school_history",
        "middle_school_mathematics",
        "sports_science",
    }
    assert all(v in "ABCD" for answers in submission.values() for v in answers.values())
    assert "scores" not in json.loads((out / "results.json").read_text())


def test_bad_arguments_are_clear_errors(tiny_model_dir, tmp_path):
    result = runner.invoke(
        app, ["cmmlu", "--model", str(tiny_model_dir), "--data", "sample", "--split", "val"]
    )
    assert result.exit_code == 2 and "only dev and test" in " ".join(result.output.split())
    result = runner.invoke(
        app, ["mmlu", "--model", str(tiny_model_dir), "--data", str(tmp_path / "nope")]
    )
    assert result.exit_code == 2 and "not a directory" in " ".join(result.output.split())


def test_all_scores_the_three_benchmarks_of_an_exported_model(tiny_model_dir, tmp_path):
    """The README's first command ends with this step on the model tinylm-train exports."""
    from tinylm_eval.data import SAMPLE_DIR
    from tinylm_eval.subjects import CATEGORIES

    out = tmp_path / "eval"
    result = on_sample("all", tiny_model_dir, "--out", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    benchmarks = summary["benchmarks"]
    assert {b: (v["split"], v["questions"], v["task_version"]) for b, v in benchmarks.items()} == {
        "mmlu": ("test", 42, 2),
        "ceval": ("val", 32, 2),
        "cmmlu": ("test", 36, 2),
    }
    for benchmark, scores in benchmarks.items():
        every = {c for categories in CATEGORIES[benchmark].values() for c in categories}
        assert set(scores["categories"]) == every
        run = out / f"{benchmark}-{scores['split']}"
        report = json.loads((run / "results.json").read_text())
        assert report["prompt_format"] == benchmark and report["shots_used_histogram"] == {
            "3": scores["questions"]
        }
        assert report["task_version"] == scores["task_version"] and report["shot_seed"] is None
        assert (run / "categories.png").is_file() and (run / "predictions.jsonl").is_file()
    assert "| cmmlu | test | 36 |" in (out / "summary.md").read_text()

    # a directory holding mmlu/, ceval/ and cmmlu/ in their layouts reads the same way
    again = tmp_path / "again"
    result = runner.invoke(
        app, ["all", "--model", str(tiny_model_dir), "--data", str(SAMPLE_DIR), "--out", str(again)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((again / "summary.json").read_text())["benchmarks"] == benchmarks


@pytest.mark.parametrize("command", [[], ["mmlu"], ["all"], ["ppl"], ["rag"]])
def test_help_starts_without_torch(command):
    code = (
        "import sys\n"
        "from tinylm_eval.cli import app\n"
        "try:\n"
        f"    app({[*command, '--help']!r})\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["False", "False"], out.stdout
    assert "Usage" in out.stdout


def test_every_registered_benchmark_has_a_command():
    from tinylm_eval.tasks import TASKS

    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in [*TASKS, "all"]:
        assert f" {name} " in result.output


def _one_line_error(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_a_missing_model_directory_is_one_line_before_any_load(tmp_path):
    result = runner.invoke(app, ["mmlu", "--model", str(tmp_path / "nope"), "--data", "sample"])
    assert result.exit_code == 2
    assert _one_line_error(result) == (
        f"error: {tmp_path / 'nope'}: no such directory; pass a local model directory (a "
        "tinylm-train export holds config.json and model.safetensors, a LoRA adapter "
        "adapter_config.json)"
    )
    assert "torch" not in " ".join(result.output.split())  # nothing loaded, no traceback


@pytest.mark.parametrize("flag", [["--device", "gpu"], ["--device", "cuda:x"], ["--dtype", "f8"]])
def test_device_and_dtype_are_checked_when_the_command_starts(flag, tmp_path):
    # why: the model path does not exist, so reaching the model load would fail differently
    result = runner.invoke(
        app, ["mmlu", "--model", str(tmp_path / "nope"), "--data", "sample", *flag]
    )
    text = " ".join(result.output.replace("│", " ").split())  # why: typer boxes usage errors
    assert result.exit_code == 2 and f"Invalid value for '{flag[0]}'" in text
    assert "expected auto, cpu, cuda, cuda:N or mps" in text or "float32, bfloat16" in text


def test_a_device_this_machine_lacks_is_refused_before_loading(tiny_model_dir):
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    result = runner.invoke(
        app,
        ["ppl", "--model", str(tiny_model_dir), "--data", "x", "--device", f"cuda:{count}"],
    )
    assert result.exit_code == 2
    result = runner.invoke(
        app,
        ["mmlu", "--model", str(tiny_model_dir), "--data", "sample", "--device", f"cuda:{count}"],
    )
    assert result.exit_code == 2
    assert _one_line_error(result) == (
        f"error: --device cuda:{count}: this machine has {count} CUDA devices"
    )


def test_unknown_subjects_are_listed_before_the_model_loads(tmp_path):
    nope = str(tmp_path / "nope")  # a model that cannot load: the subjects are checked first
    result = runner.invoke(
        app, ["mmlu", "--model", nope, "--data", "sample", "--subjects", "philosophy,astrology"]
    )
    assert result.exit_code == 2
    assert _one_line_error(result) == (
        "error: mmlu test has no subject astrology; its subjects are computer_security, "
        "elementary_mathematics, high_school_geography, nutrition, philosophy"
    )
    result = runner.invoke(app, ["all", "--model", nope, "--data", "sample", "--subjects", "x"])
    line = _one_line_error(result)
    assert result.exit_code == 2 and line.startswith("error: --subjects x: no such subject in")
    assert "mmlu: computer_security," in line and "cmmlu: chinese_history," in line
    result = runner.invoke(
        app, ["all", "--model", nope, "--data", "sample", "--subjects", "gsm8k:algebra"]
    )
    assert result.exit_code == 2 and "no benchmark 'gsm8k'" in result.output


def test_all_scores_only_the_chosen_subjects(tiny_model_dir, tmp_path):
    out = tmp_path / "some"
    result = on_sample(
        "all",
        tiny_model_dir,
        "--shots",
        "1",
        "--subjects",
        "mmlu:philosophy,chinese_history",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    benchmarks = json.loads((out / "summary.json").read_text())["benchmarks"]
    # chinese_history is a CMMLU subject only; C-Eval has neither and is skipped
    assert {b: v["subjects"] for b, v in benchmarks.items()} == {"mmlu": 1, "cmmlu": 1}
    subjects = {
        b: {
            json.loads(line)["subject"]
            for line in (out / f"{b}-{v['split']}" / "predictions.jsonl").open()
        }
        for b, v in benchmarks.items()
    }
    assert subjects == {"mmlu": {"philosophy"}, "cmmlu": {"chinese_history"}}


def test_the_progress_bar_counts_questions_with_an_eta(tiny_model_dir, tmp_path, monkeypatch):
    import io

    from rich.console import Console

    from tinylm_eval import cli

    screen = io.StringIO()  # why: rich draws the bar only on a terminal
    monkeypatch.setattr(cli, "console", Console(file=screen, force_terminal=True, width=160))
    args = ["cmmlu", "--model", str(tiny_model_dir), "--data", "sample", "--shots", "1"]
    result = runner.invoke(app, [*args, "--batch-size", "4", "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    frames = [f for f in screen.getvalue().replace("\r", "\n").splitlines() if "cmmlu test" in f]
    # why: whether a frame is drawn mid-run depends on rich's refresh timer, so only the total
    # and the ETA column are checked
    assert any("36/36" in f and "ETA" in f for f in frames), frames


def test_saved_prompts_rescore_to_the_same_predictions(tiny_model_dir, tmp_path):
    """Another scorer, given only predictions.jsonl and results.json: the HF model, each saved
    prompt tokenized whole, the answer spellings' logits at its last position."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "saved"
    result = on_sample("ceval", tiny_model_dir, "--shots", "2", "--save-prompts", "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads((out / "results.json").read_text())
    records = [json.loads(line) for line in (out / "predictions.jsonl").open(encoding="utf-8")]
    assert len(records) == 32 and all(r["prompt"].endswith("答案：") for r in records)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    letters = [tokenizer.encode(s, add_special_tokens=False) for s in report["answer_spellings"]]
    assert report["answer_spellings"] == ["A", "B", "C", "D"] and all(len(t) == 1 for t in letters)
    for record in records:
        ids = tokenizer.encode(record["prompt"], add_special_tokens=False)
        assert len(ids) == record["prompt_tokens"]
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        scores = [float(logits[t[0]]) for t in letters]
        assert "ABCD"[scores.index(max(scores))] == record["prediction"]
        assert scores == pytest.approx(list(record["scores"].values()), abs=1e-4)
    # without the flag the records stay as they were
    result = on_sample("ceval", tiny_model_dir, "--out", str(tmp_path / "n"))
    assert (
        result.exit_code == 0
        and '"prompt"' not in (tmp_path / "n" / "predictions.jsonl").read_text()
    )


def test_auto_device_and_dtype_on_this_machine(tiny_model_dir, tmp_path):
    import torch

    from tinylm_eval.devices import resolve_device, resolve_dtype

    result = on_sample(
        "mmlu",
        tiny_model_dir,
        "--shots",
        "0",
        "--subjects",
        "philosophy",
        "--out",
        str(tmp_path / "a"),
    )
    assert result.exit_code == 0, result.output
    identity = json.loads((tmp_path / "a" / "results.json").read_text())["model"]
    device = resolve_device("auto")
    assert identity["dtype"] == resolve_dtype("auto", device)
    if not torch.cuda.is_available():
        assert (device, identity["dtype"]) == ("cpu", "float32")


@pytest.mark.gpu
def test_auto_dtype_is_bfloat16_on_a_gpu_that_has_it():
    import torch

    from tinylm_eval.devices import resolve_device, resolve_dtype

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    assert resolve_device("auto") == "cuda"
    expected = "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    assert resolve_dtype("auto", "cuda") == expected


def test_a_failure_is_one_line_and_debug_raises_it(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    args = ["mmlu", "--model", str(tmp_path), "--data", "sample", "--subjects", "philosophy"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if line.startswith("error:")] == [
        f"error: OSError: It looks like the config file at '{tmp_path / 'config.json'}' is not a "
        "valid JSON file. (tinylm-eval --debug ... shows the traceback)"
    ]
    result = runner.invoke(app, ["--debug", *args])
    assert result.exit_code == 1 and isinstance(result.exception, OSError)
