import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tinylm_eval.cli import app

runner = CliRunner()


def test_mmlu_on_the_sample_writes_every_report(tiny_model_dir, tmp_path):
    out = tmp_path / "mmlu"
    result = runner.invoke(
        app,
        [
            "mmlu",
            "--model",
            str(tiny_model_dir),
            "--data",
            "sample",
            "--shots",
            "2",
            "--batch-size",
            "4",
            "--out",
            str(out),
        ],
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
    result = runner.invoke(
        app,
        [
            "ceval",
            "--model",
            str(tiny_model_dir),
            "--data",
            "sample",
            "--split",
            "test",
            "--out",
            str(out),
        ],
    )
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
    result = runner.invoke(
        app, ["all", "--model", str(tiny_model_dir), "--data", "sample", "--out", str(out)]
    )
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


@pytest.mark.parametrize("command", [[], ["mmlu"], ["all"], ["ppl"]])
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
