"""`tinylm-eval rag` reports data mistakes in one line before a model loads."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tinylm_eval.cli import app

runner = CliRunner()


@pytest.fixture
def squad(tmp_path):
    qa = {"id": "q", "question": "Who?", "answers": [{"text": "Ann"}]}
    data = {"data": [{"paragraphs": [{"context": "Ann did.", "qas": [qa]}]} for _ in range(3)]}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (["--articles", "x"], "expected START:STOP"),
        (["--articles", "5:"], "no answerable question in articles 5:"),
        (["--k", "0"], "--k, --batch-size and --limit must be >= 1"),
        ([], "index"),  # the index directory does not exist
    ],
)
def test_data_mistakes_are_one_error_line_before_a_model_loads(squad, tmp_path, args, message):
    result = runner.invoke(
        app,
        [
            "rag",
            "--model",
            str(tmp_path / "absent"),
            "--data",
            str(squad),
            "--index",
            str(tmp_path / "no-index"),
            *args,
        ],
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_a_missing_data_file_is_named(tmp_path):
    result = runner.invoke(
        app, ["rag", "--model", "m", "--data", str(tmp_path / "none.json"), "--index", "i"]
    )
    assert result.exit_code == 2 and "no such file" in result.output
