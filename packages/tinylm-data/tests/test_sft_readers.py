"""SFT readers: every source format into one conversation schema; bad records rejected with
file, line and reason."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tinylm_data.document import Rejection
from tinylm_data.sft import read_conversations
from tinylm_data.sft.conversation import Conversation


def _read(kind: str, path: Path, **kw) -> list:
    return list(read_conversations(kind, path, source="s", **kw))


def _lines(path: Path, records: list) -> Path:
    path.write_text(
        "".join(
            (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records
        ),
        encoding="utf-8",
    )
    return path


def test_alpaca_json_list_with_line_numbers(tmp_path):
    records = [
        {"instruction": "Translate.", "input": "你好", "output": "Hello."},
        {"instruction": "Say hi.", "input": "", "output": "Hi!", "text": "ignored"},
        {"instruction": "No answer.", "input": "", "output": ""},
    ]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    first, second, third = _read("alpaca", path)
    assert first.turns == [("Translate.\n你好", "Hello.")] and first.system is None
    assert first.line == 2 and first.id == "s/a.json:2"
    assert second.turns == [("Say hi.", "Hi!")] and second.line == 7
    assert isinstance(third, Rejection) and (third.reason, third.line) == ("no_assistant_turn", 13)
    assert third.file == "a.json"


def test_alpaca_json_lines_gzip_and_field_names(tmp_path):
    path = tmp_path / "belle.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"question": "1+1?", "std_answer": "2", "id": 7}) + "\n")
    (item,) = _read("alpaca", path, fields={"instruction": "question", "output": "std_answer"})
    assert item.turns == [("1+1?", "2")] and item.id == "s/7"


def test_sharegpt_multi_turn_with_system(tmp_path):
    path = _lines(
        tmp_path / "sg.jsonl",
        [
            {
                "id": "c1",
                "conversations": [
                    {"from": "system", "value": "Be kind."},
                    {"from": "human", "value": "Hi"},
                    {"from": "gpt", "value": "Hello"},
                    {"from": "human", "value": "Bye"},
                    {"from": "assistant", "value": "Bye!"},
                ],
            }
        ],
    )
    (item,) = _read("sharegpt", path)
    assert item.system == "Be kind." and item.turns == [("Hi", "Hello"), ("Bye", "Bye!")]
    assert item.messages()[0] == {"role": "system", "content": "Be kind."}


def test_messages_longalign_style(tmp_path):
    path = _lines(
        tmp_path / "m.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": " Read this. "},
                    {"role": "assistant", "content": "Done."},
                ]
            }
        ],
    )
    (item,) = _read("messages", path)
    assert isinstance(item, Conversation) and item.turns == [("Read this.", "Done.")]


def _turns(*pairs):
    return {"messages": [{"role": r, "content": c} for r, c in pairs]}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (_turns(("user", "Hi")), "no_assistant_turn"),
        (_turns(("assistant", "Hi"), ("user", "Hello")), "roles_out_of_order"),
        (_turns(("user", "a"), ("user", "b"), ("assistant", "c")), "roles_out_of_order"),
        (_turns(("user", "a"), ("assistant", "b"), ("user", "c")), "roles_out_of_order"),
        (
            _turns(("user", "a"), ("assistant", "b"), ("system", "c"), ("assistant", "d")),
            "roles_out_of_order",
        ),
        (_turns(("user", "  "), ("assistant", "b")), "empty_content"),
        (
            {
                "messages": [
                    {"role": "user", "content": ["x"]},
                    {"role": "assistant", "content": "b"},
                ]
            },
            "non_string_field",
        ),
        (_turns(("robot", "a"), ("assistant", "b")), "unknown_role"),
        ({"messages": "hello"}, "non_string_field"),
        ({"conversations": []}, "missing_text"),
        ([1, 2], "malformed_json"),
        ("{broken", "malformed_json"),
    ],
)
def test_malformed_records_are_rejected_with_file_line_and_reason(tmp_path, record, reason):
    path = _lines(tmp_path / "bad.jsonl", [_turns(("user", "ok"), ("assistant", "fine")), record])
    good, bad = _read("messages", path)
    assert isinstance(good, Conversation)
    assert isinstance(bad, Rejection), bad
    assert (bad.reason, bad.file, bad.line, bad.stage) == (reason, "bad.jsonl", 2, "read")


def test_alpaca_non_string_fields(tmp_path):
    path = _lines(
        tmp_path / "a.jsonl",
        [
            {"instruction": "x", "input": 3, "output": "y"},
            {"instruction": "x", "output": {"a": 1}},
            {"input": "x", "output": "y"},
        ],
    )
    reasons = [r.reason for r in _read("alpaca", path)]
    assert reasons == ["non_string_field", "non_string_field", "missing_field"]


def test_truncated_gzip_and_unclosed_list(tmp_path):
    whole = gzip.compress(b'{"messages": []}\n' * 200)
    (tmp_path / "t.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    last = _read("messages", tmp_path / "t.jsonl.gz")[-1]
    assert isinstance(last, Rejection) and last.reason == "truncated_gzip"
    (tmp_path / "l.json").write_text('[{"instruction": "a", "output": "b"},\n', encoding="utf-8")
    good, bad = _read("alpaca", tmp_path / "l.json")
    assert isinstance(good, Conversation) and bad.reason == "malformed_json"
