"""`tinylm-eval generate`: a JSON-lines file of prompts checked line by line, answered in batches
through the same generation core as chat, with stats beside the output."""

import json

import pytest
from chat_test_helpers import ANSWERS
from typer.testing import CliRunner

from tinylm_eval.cli import app
from tinylm_eval.generation import PromptsError, read_prompts, stats_path

runner = CliRunner()


def write_lines(path, lines):
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "2: not JSON"),
        ({"id": 1}, "2: an object with either prompt or messages"),
        ({"prompt": "a", "messages": []}, "2: an object with either prompt or messages"),
        ([1, 2], "2: an object with either prompt or messages"),
        ({"prompt": ""}, "2: prompt must be a non-empty string"),
        ({"prompt": 3}, "2: prompt must be a non-empty string"),
        ({"prompt": "a", "output": "b"}, "2: 'output' is a key of the output line"),
        ({"messages": "hi"}, "2: messages must be a list"),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
            "2: messages: the last message must be the user's",
        ),
        ({"messages": [{"role": "user", "content": None}]}, r"2: messages\[0\]: content"),
    ],
)
def test_a_bad_line_is_an_error_naming_its_file_and_line(tmp_path, line, message):
    path = write_lines(tmp_path / "prompts.jsonl", [{"prompt": "fine"}, line])
    with pytest.raises(PromptsError, match=f"prompts.jsonl:{message}"):
        read_prompts(path, raw=False)


def test_prompts_are_read_as_chat_turns_or_raw_text(tmp_path):
    path = write_lines(
        tmp_path / "p.jsonl",
        [{"id": "a", "prompt": "hi"}, "", {"messages": [{"role": "user", "content": "yo"}]}],
    )
    records = read_prompts(path, raw=False)
    assert [r.line for r in records] == [1, 3]
    assert records[0].messages == [{"role": "user", "content": "hi"}]
    assert records[0].record == {"id": "a", "prompt": "hi"}
    with pytest.raises(PromptsError, match="p.jsonl:3: messages need the chat template"):
        read_prompts(path, raw=True)
    assert (
        read_prompts(write_lines(tmp_path / "r.jsonl", [{"prompt": "hi"}]), raw=True)[0].messages
        is None
    )
    with pytest.raises(PromptsError, match="no prompts"):
        read_prompts(write_lines(tmp_path / "e.jsonl", [""]), raw=False)
    with pytest.raises(PromptsError, match="no such file"):
        read_prompts(tmp_path / "absent.jsonl", raw=False)


def generate(model_dir, prompts, out, *args):
    return runner.invoke(
        app,
        [
            "generate",
            "--model",
            str(model_dir),
            "--prompts",
            str(prompts),
            "--out",
            str(out),
            "--max-new-tokens",
            "30",
            "--device",
            "cpu",
            *args,
        ],
    )


@pytest.mark.slow
def test_generate_answers_every_prompt_in_order_with_stats(chat_model_dir, tmp_path):
    questions = list(ANSWERS)
    lines = [
        {"id": 1, "prompt": questions[0], "reference": ANSWERS[questions[0]]},
        {"id": 2, "messages": [{"role": "user", "content": questions[1]}]},
        {"id": 3, "prompt": "far too long " * 200},
        {
            "id": 4,
            "messages": [
                {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "hi"},
                {"role": "user", "content": questions[2]},
            ],
        },
    ]
    prompts = write_lines(tmp_path / "prompts.jsonl", lines)
    out = tmp_path / "out" / "answers.jsonl"
    result = generate(chat_model_dir, prompts, out, "--batch-size", "2")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["output"] == ANSWERS[questions[0]] and rows[0]["reference"] == "Paris."
    assert rows[1]["output"] == ANSWERS[questions[1]]
    assert "output" not in rows[2] and "too long: its prompt is" in rows[2]["error"]
    assert isinstance(rows[3]["output"], str) and rows[3]["output_tokens"] <= 30
    stats = json.loads(stats_path(out).read_text())
    assert stats["prompts"] == 4 and stats["answered"] == 3 and stats["rejected"] == 1
    assert stats["rejected_lines"] == [3] and stats["options"]["max_new_tokens"] == 30
    assert stats["output_tokens"] == sum(r.get("output_tokens", 0) for r in rows) > 0
    assert "3 answered, 1 rejected" in " ".join(result.stdout.split())

    # --raw continues the text as it is: the template rendered by hand gives the same answer
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(chat_model_dir)
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": questions[0]}], add_generation_prompt=True, tokenize=False
    )
    raw = write_lines(tmp_path / "raw.jsonl", [{"prompt": rendered}])
    result = generate(chat_model_dir, raw, tmp_path / "raw-out.jsonl", "--raw")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "raw-out.jsonl").read_text())["output"] == "Paris."


def test_generate_checks_the_prompts_before_a_model_loads(tmp_path):
    prompts = write_lines(tmp_path / "p.jsonl", [{"prompt": "ok"}, {"prompt": 1}])
    result = generate(tmp_path / "absent", prompts, tmp_path / "o.jsonl")
    assert result.exit_code == 2 and "p.jsonl:2: prompt must be" in " ".join(result.output.split())
    good = write_lines(tmp_path / "g.jsonl", [{"prompt": "ok"}])
    result = generate(tmp_path / "absent", good, tmp_path / "o.jsonl", "--batch-size", "0")
    assert result.exit_code == 2 and "--batch-size must be >= 1" in result.output
    assert not (tmp_path / "o.jsonl").exists()
