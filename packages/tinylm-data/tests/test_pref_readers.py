"""The preference readers: each source format into one record, and every malformed-record reason."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_data.document import Rejection
from tinylm_data.pref import PrefRecord, read_pairs


def _read(tmp_path: Path, kind: str, *records) -> list[PrefRecord | Rejection]:
    path = tmp_path / "pairs.jsonl"
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return list(read_pairs(kind, path, source="s"))


def _reasons(items) -> list[str]:
    return [i.reason for i in items if isinstance(i, Rejection)]


def test_dpo_zh_record_with_a_system_prompt(tmp_path):
    [record] = _read(
        tmp_path,
        "dpo_zh",
        {
            "conversations": [
                {"from": "system", "value": "你是助手。"},
                {"from": "human", "value": "你好"},
            ],
            "chosen": "你好！很高兴见到你。",
            "rejected": "嗯。",
        },
    )
    assert record.conversation.system == "你是助手。"
    assert record.conversation.turns == [("你好", "你好！很高兴见到你。")]
    assert record.chosen == "你好！很高兴见到你。" and record.rejected == "嗯。"
    assert record.id == "s/pairs.jsonl:1"
    assert record.rejected_conversation().turns == [("你好", "嗯。")]


def test_dpo_zh_multi_turn_prompt_keeps_the_history(tmp_path):
    [record] = _read(
        tmp_path,
        "dpo_zh",
        {
            "id": 7,
            "conversations": [
                {"from": "human", "value": "a"},
                {"from": "gpt", "value": "b"},
                {"from": "human", "value": "c"},
            ],
            "chosen": "good",
            "rejected": "bad",
        },
    )
    assert record.id == "s/7"
    assert record.conversation.turns == [("a", "b"), ("c", "good")]


def test_ultrafeedback_message_lists_and_answer_strings(tmp_path):
    lists = {
        "prompt": "Q?",
        "chosen": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "Yes."}],
        "rejected": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "No."}],
    }
    strings = {"prompt": "Q2?", "chosen": "Sure.", "rejected": "Nope."}
    first, second = _read(tmp_path, "ultrafeedback", lists, strings)
    assert first.conversation.turns == [("Q?", "Yes.")] and first.rejected == "No."
    assert second.conversation.turns == [("Q2?", "Sure.")] and second.rejected == "Nope."


def test_hh_rlhf_transcripts_split_at_the_last_assistant_turn(tmp_path):
    prefix = "\n\nHuman: Hi there\n\nAssistant: Hello.\n\nHuman: Tell me a joke"
    [record] = _read(
        tmp_path,
        "hh_rlhf",
        {
            "chosen": prefix + "\n\nAssistant: Why did the chicken...",
            "rejected": prefix + "\n\nAssistant: No.",
        },
    )
    assert record.conversation.turns == [
        ("Hi there", "Hello."),
        ("Tell me a joke", "Why did the chicken..."),
    ]
    assert record.rejected == "No."


def test_malformed_records_are_rejected_with_file_line_and_reason(tmp_path):
    ok_prompt = [{"from": "human", "value": "q"}]
    items = _read(
        tmp_path,
        "dpo_zh",
        {"conversations": ok_prompt, "chosen": "a", "rejected": ""},
        {"conversations": ok_prompt, "rejected": "b"},
        '{"conversations": ',
        {
            "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}],
            "chosen": "a",
            "rejected": "b",
        },
        {"conversations": [{"from": "robot", "value": "q"}], "chosen": "a", "rejected": "b"},
        {"chosen": "a", "rejected": "b"},
        {"conversations": ok_prompt, "chosen": 3, "rejected": "b"},
        [1, 2],
    )
    assert _reasons(items) == [
        "empty_answer",
        "empty_answer",
        "malformed_json",
        "roles_out_of_order",
        "unknown_role",
        "missing_text",
        "non_string_field",
        "malformed_json",
    ]
    assert [i.line for i in items] == list(range(1, 9))
    assert {i.file for i in items} == {"pairs.jsonl"} and {i.stage for i in items} == {"read"}


def test_mismatched_prompts_and_missing_answers_are_rejected(tmp_path):
    user = {"role": "user", "content": "Q?"}
    uf = _read(
        tmp_path,
        "ultrafeedback",
        {
            "chosen": [user, {"role": "assistant", "content": "A"}],
            "rejected": [
                {"role": "user", "content": "Other?"},
                {"role": "assistant", "content": "B"},
            ],
        },
        {
            "chosen": [user, {"role": "assistant", "content": " "}],
            "rejected": [user, {"role": "assistant", "content": "B"}],
        },
        {"chosen": [user], "rejected": [user]},
        {"chosen": "A", "rejected": "B"},
    )
    assert _reasons(uf) == ["prompt_mismatch", "empty_answer", "no_assistant_turn", "missing_text"]
    hh = _read(
        tmp_path,
        "hh_rlhf",
        {"chosen": "\n\nHuman: a\n\nAssistant: x", "rejected": "\n\nHuman: b\n\nAssistant: y"},
        {"chosen": "\n\nHuman: a\n\nAssistant:  ", "rejected": "\n\nHuman: a\n\nAssistant: y"},
        {"chosen": "\n\nHuman: a", "rejected": "\n\nHuman: a"},
        {
            "chosen": "preamble\n\nHuman: a\n\nAssistant: x",
            "rejected": "preamble\n\nHuman: a\n\nAssistant: y",
        },
    )
    assert _reasons(hh) == [
        "prompt_mismatch",
        "empty_answer",
        "no_assistant_turn",
        "roles_out_of_order",
    ]


_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
    min_size=1,
    max_size=30,
).filter(lambda t: t.strip() == t and t and "Human:" not in t and "Assistant:" not in t)


@settings(max_examples=60, deadline=None)
@given(turns=st.lists(st.tuples(_text, _text), min_size=1, max_size=4), rejected=_text)
def test_hh_transcripts_round_trip(tmp_path_factory, turns, rejected):
    def transcript(answer: str) -> str:
        body = [f"\n\nHuman: {u}\n\nAssistant: {a}" for u, a in turns[:-1]]
        return "".join(body) + f"\n\nHuman: {turns[-1][0]}\n\nAssistant: {answer}"

    tmp = tmp_path_factory.mktemp("hh")
    [record] = _read(
        tmp, "hh_rlhf", {"chosen": transcript(turns[-1][1]), "rejected": transcript(rejected)}
    )
    assert record.conversation.turns == turns
    assert record.rejected == rejected
