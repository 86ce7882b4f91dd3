"""Preference source formats in, `PrefRecord`s (or `Rejection`s with file, line and reason) out.

Kinds and the datasets they read:

- `dpo_zh`: `conversations` of `{from: human|gpt|system, value}` ending with the user's turn,
  `chosen` and `rejected` answer strings (the DPO-En-Zh-20k style of dpo_zh_500).
- `ultrafeedback`: `chosen` and `rejected` as message lists `{role, content}` that share every
  message but the last (the assistant's answer); or as answer strings after a `prompt` string
  (UltraFeedback binarized, Anthropic/TRL "conversational" preference sets).
- `hh_rlhf`: `chosen` and `rejected` as whole transcripts `\\n\\nHuman: ...\\n\\nAssistant: ...`
  sharing a prefix; each is split at its last `\\n\\nAssistant:` (Anthropic HH-RLHF).

Files, ids and read rejects are as for the SFT readers (`sft.readers.read_parsed`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..document import Rejection
from ..readers.formats import MISSING_TEXT, RecordError
from ..readers.lines import DEFAULT_MAX_LINE_BYTES
from ..sft.conversation import (
    ASSISTANT,
    NO_ASSISTANT,
    NON_STRING,
    ROLE_ORDER,
    USER,
    Conversation,
    content,
    from_messages,
)
from ..sft.readers import MESSAGE_ROLES, SHAREGPT_ROLES, message_list, read_parsed
from .config import PREF_KINDS

# Reject reasons of pairs (besides the SFT readers' malformed-record reasons).
EMPTY_ANSWER = "empty_answer"
SAME_ANSWERS = "chosen_equals_rejected"
PROMPT_MISMATCH = "prompt_mismatch"
PROMPT_TOO_LONG = "prompt_too_long"

_HH_TURN = re.compile(r"\n\n(Human|Assistant):")
_HH_ROLES = {"Human": USER, "Assistant": ASSISTANT}


@dataclass(slots=True)
class PrefRecord:
    """A prompt with two answers: `conversation` ends with (last user turn, chosen answer)."""

    conversation: Conversation
    rejected: str

    @property
    def id(self) -> str:
        return self.conversation.id

    @property
    def source(self) -> str:
        return self.conversation.source

    @property
    def file(self) -> str:
        return self.conversation.file

    @property
    def line(self) -> int | None:
        return self.conversation.line

    @property
    def chosen(self) -> str:
        return self.conversation.turns[-1][1]

    def rejected_conversation(self) -> Conversation:
        c = self.conversation
        user, _ = c.turns[-1]
        return Conversation(
            c.id, c.source, [*c.turns[:-1], (user, self.rejected)], c.system, c.file, c.line
        )


def _answer(value: object, where: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordError(EMPTY_ANSWER, f"{where} is missing or empty")
    return content(value, where)


def _with_answers(prompt: list[tuple[str, str]], chosen: str, rejected: str):
    if not prompt or prompt[-1][0] != USER:
        raise RecordError(ROLE_ORDER, "the prompt does not end with a user turn")
    system, turns = from_messages([*prompt, (ASSISTANT, chosen)])
    return system, turns, rejected


def _dpo_zh(record: dict[str, Any], fields: Mapping[str, str]):
    names = {"conversations": "conversations", "chosen": "chosen", "rejected": "rejected", **fields}
    prompt = message_list(record, names["conversations"], "from", "value", SHAREGPT_ROLES)
    chosen = _answer(record.get(names["chosen"]), repr(names["chosen"]))
    rejected = _answer(record.get(names["rejected"]), repr(names["rejected"]))
    return _with_answers(prompt, chosen, rejected)


def _answer_messages(record: dict[str, Any], key: str) -> tuple[list[tuple[str, str]], str]:
    value = record.get(key)
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        last = value[-1].get("content")
        if last is None or (isinstance(last, str) and not last.strip()):
            raise RecordError(EMPTY_ANSWER, f"{key}[{len(value) - 1}].content is empty")
    messages = message_list(record, key, "role", "content", MESSAGE_ROLES)
    if not messages or messages[-1][0] != ASSISTANT:
        raise RecordError(NO_ASSISTANT, f"{key!r} does not end with an assistant message")
    return messages[:-1], messages[-1][1]


def _ultrafeedback(record: dict[str, Any], fields: Mapping[str, str]):
    names = {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected", **fields}
    c, r = record.get(names["chosen"]), record.get(names["rejected"])
    if isinstance(c, list) and isinstance(r, list):
        prompt, chosen = _answer_messages(record, names["chosen"])
        other, rejected = _answer_messages(record, names["rejected"])
        if prompt != other:
            raise RecordError(PROMPT_MISMATCH, "chosen and rejected differ before the last answer")
    elif c is None or isinstance(c, str):
        chosen = _answer(c, repr(names["chosen"]))
        rejected = _answer(r, repr(names["rejected"]))
        prompt = []
    else:
        raise RecordError(NON_STRING, f"{names['chosen']!r} is {type(c).__name__}")
    if not prompt:
        if record.get(names["prompt"]) is None:
            raise RecordError(MISSING_TEXT, f"no {names['prompt']!r} field")
        prompt = [(USER, content(record.get(names["prompt"]), repr(names["prompt"])))]
    return _with_answers(prompt, chosen, rejected)


def _split_transcript(text: object, where: str) -> tuple[str, str]:
    """(prefix up to the last assistant marker, the last answer) of an HH transcript."""
    if not isinstance(text, str):
        raise RecordError(
            NON_STRING if text is not None else MISSING_TEXT, f"{where} is not a transcript"
        )
    text = "\n\n" + text if text.startswith(("Human:", "Assistant:")) else text
    at = text.rfind("\n\nAssistant:")
    if at < 0:
        raise RecordError(NO_ASSISTANT, f"{where} has no '\\n\\nAssistant:' turn")
    answer = text[at + len("\n\nAssistant:") :].strip()
    if not answer:
        raise RecordError(EMPTY_ANSWER, f"{where}'s last assistant turn is empty")
    return text[:at], answer


def _hh_messages(prefix: str) -> list[tuple[str, str]]:
    parts = _HH_TURN.split(prefix)
    if parts[0].strip():
        raise RecordError(ROLE_ORDER, "the transcript does not start with 'Human:'")
    return [
        (_HH_ROLES[role], content(text, f"turn {k} ({role})"))
        for k, (role, text) in enumerate(zip(parts[1::2], parts[2::2], strict=True))
    ]


def _hh_rlhf(record: dict[str, Any], fields: Mapping[str, str]):
    names = {"chosen": "chosen", "rejected": "rejected", **fields}
    prefix, chosen = _split_transcript(record.get(names["chosen"]), repr(names["chosen"]))
    other, rejected = _split_transcript(record.get(names["rejected"]), repr(names["rejected"]))
    if prefix.strip() != other.strip():
        raise RecordError(PROMPT_MISMATCH, "the two transcripts differ before the last answer")
    return _with_answers(_hh_messages(prefix), chosen, rejected)


PARSERS = {"dpo_zh": _dpo_zh, "ultrafeedback": _ultrafeedback, "hh_rlhf": _hh_rlhf}


def read_pairs(
    kind: str,
    path: Path,
    *,
    source: str,
    display_path: str | None = None,
    fields: Mapping[str, str] | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[PrefRecord | Rejection]:
    """The preference records of one file in order; a bad record is a `Rejection(stage="read")`."""
    if kind not in PARSERS:
        raise ValueError(
            f"unknown preference reader {kind!r}; choose one of {', '.join(PREF_KINDS)}"
        )
    for item in read_parsed(
        PARSERS[kind],
        path,
        source=source,
        display_path=display_path,
        fields=fields,
        max_line_bytes=max_line_bytes,
    ):
        if isinstance(item, Rejection):
            yield item
            continue
        doc_id, display, line, (system, turns, rejected) = item
        yield PrefRecord(Conversation(doc_id, source, turns, system, display, line), rejected)
